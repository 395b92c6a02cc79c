//! The Arm ARM's rules for taking a synchronous exception to AArch64 EL1, as
//! parkvisor applies them when it injects one (an abort for an access it will
//! not emulate, an undefined instruction for a register it will not emulate):
//! the PSTATE the guest's handler starts with, which vector it starts at, and
//! how far "step over the trapped instruction" moves the PC. Pure functions
//! of register values; `arch::el2` reads and writes the registers.
//!
//! References: Arm ARM (DDI 0487) D1.3 "Exception entry" and the
//! `AArch64.TakeException` pseudocode; SPSR_EL1 / ESR_EL2 field layouts.

/// SPSR (AArch64 format) fields.
pub mod spsr {
    /// M[4]: the source was in AArch32 state.
    pub const M_AARCH32: u64 = 1 << 4;
    /// M[3:0] = EL1h (EL1, SP_EL1).
    pub const M_EL1H: u64 = 0b0101;
    /// M[3:0] = EL1t (EL1, SP_EL0).
    pub const M_EL1T: u64 = 0b0100;
    /// M[3:0] = EL0t.
    pub const M_EL0T: u64 = 0b0000;
    /// F, I, A, D masks (bits 6..9).
    pub const DAIF: u64 = 0xf << 6;
    /// SSBS (bit 12, FEAT_SSBS).
    pub const SSBS: u64 = 1 << 12;
    /// PAN (bit 22, FEAT_PAN).
    pub const PAN: u64 = 1 << 22;
    /// DIT (bit 24, FEAT_DIT).
    pub const DIT: u64 = 1 << 24;
    /// TCO (bit 25, FEAT_MTE).
    pub const TCO: u64 = 1 << 25;
    /// N, Z, C, V (bits 31:28).
    pub const NZCV: u64 = 0xf << 28;
}

/// SPSR fields of an AArch32 source that sit elsewhere than in AArch64 format.
pub mod spsr32 {
    /// DIT of an AArch32 PSTATE (bit 21; bit 21 is SS in AArch64 format).
    pub const DIT: u64 = 1 << 21;
}

/// SCTLR_EL1 fields that shape exception entry.
pub mod sctlr {
    /// SPAN (bit 23): 0 = PSTATE.PAN is set on taking an exception to EL1.
    pub const SPAN: u64 = 1 << 23;
    /// DSSBS (bit 44): the value of PSTATE.SSBS on taking an exception to EL1.
    pub const DSSBS: u64 = 1 << 44;
    /// EE (bit 25): endianness of EL1 data accesses and of the translation walks.
    pub const EE: u64 = 1 << 25;
}

/// Which optional PSTATE fields the CPU implements (from the ID registers);
/// an unimplemented field is RES0 and must stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PstateFeatures {
    /// FEAT_PAN (ID_AA64MMFR1_EL1.PAN != 0).
    pub pan: bool,
    /// FEAT_SSBS (ID_AA64PFR1_EL1.SSBS != 0).
    pub ssbs: bool,
    /// FEAT_DIT (ID_AA64PFR0_EL1.DIT != 0).
    pub dit: bool,
    /// FEAT_MTE2 or later (ID_AA64PFR1_EL1.MTE >= 2): TCO is set on entry.
    pub mte: bool,
}

/// PSTATE (as an SPSR value) on taking a synchronous exception to EL1h,
/// from the interrupted context's PSTATE `old` (SPSR_EL2 as trapped, either
/// format) and the guest's SCTLR_EL1:
/// NZCV kept; DAIF all set; mode EL1h; SS, IL, UAO, BTYPE cleared; PAN set
/// when SCTLR_EL1.SPAN is 0, else kept; SSBS = SCTLR_EL1.DSSBS; DIT kept;
/// TCO set when MTE is implemented. (ALLINT and PM, FEAT_NMI/FEAT_EBEP, are
/// not offered to the guest by QEMU's virt and stay 0.)
pub fn pstate_on_entry(old: u64, sctlr_el1: u64, features: PstateFeatures) -> u64 {
    let from_aarch32 = old & spsr::M_AARCH32 != 0;
    let mut new = (old & spsr::NZCV) | spsr::DAIF | spsr::M_EL1H;
    if features.pan && (sctlr_el1 & sctlr::SPAN == 0 || old & spsr::PAN != 0) {
        // PAN sits at bit 22 in both SPSR formats.
        new |= spsr::PAN;
    }
    if features.ssbs && sctlr_el1 & sctlr::DSSBS != 0 {
        new |= spsr::SSBS;
    }
    let old_dit = if from_aarch32 {
        old & spsr32::DIT != 0
    } else {
        old & spsr::DIT != 0
    };
    if features.dit && old_dit {
        new |= spsr::DIT;
    }
    if features.mte {
        new |= spsr::TCO;
    }
    new
}

/// Offset in VBAR_EL1 of the synchronous-exception vector for a source with
/// PSTATE `old`: current EL with SP_EL0 0x000, current EL with SP_ELx 0x200,
/// lower EL in AArch64 0x400, lower EL in AArch32 0x600 (for a target of
/// EL1, "lower EL" is EL0, so its own state picks the group).
pub fn sync_vector_offset(old: u64) -> u64 {
    if old & spsr::M_AARCH32 != 0 {
        return 0x600;
    }
    match old & 0xf {
        spsr::M_EL1H => 0x200,
        spsr::M_EL1T => 0x000,
        _ => 0x400,
    }
}

/// True when the source of the exception was EL0 (either state).
pub fn from_el0(old: u64) -> bool {
    // AArch32 modes: 0b10000 is User (EL0); every other AArch32 mode is EL1.
    if old & spsr::M_AARCH32 != 0 {
        old & 0x1f == 0b1_0000
    } else {
        old & 0xf == spsr::M_EL0T
    }
}

/// ESR_EL2.IL: the trapped instruction was 32 bits (clear only for a 16-bit
/// Thumb instruction from AArch32).
pub const ESR_IL: u64 = 1 << 25;

/// How far "step over the trapped instruction" moves the PC: 4, or 2 for a
/// 16-bit instruction (ESR_EL2.IL clear).
pub fn instruction_length(esr: u64) -> u64 {
    if esr & ESR_IL != 0 { 4 } else { 2 }
}

/// SPSR_EL2.SS (bit 21, either format): the software-step state machine.
pub const SPSR_SS: u64 = 1 << 21;
/// SPSR_EL2.BTYPE (bits 11:10, AArch64 format).
pub const SPSR_BTYPE: u64 = 0b11 << 10;
/// AArch32 format: T (Thumb) and the IT bits, IT[1:0] at 26:25, IT[7:2]
/// at 15:10.
const SPSR32_T: u64 = 1 << 5;
const SPSR32_IT: u64 = 0x0600_fc00;

/// The guest's (PC, PSTATE) after the hypervisor emulated the trapped
/// instruction described by `esr` in its place, as executing it would have
/// left them (the same as KVM's `kvm_skip_instr`):
/// - the PC moves past it (ESR_EL2.IL);
/// - SS is cleared: a debugger single-stepping the guest gets its step
///   exception at the next instruction, not one later;
/// - AArch64: BTYPE is cleared (no emulated instruction is a branch);
/// - AArch32 Thumb inside an IT block: the IT state advances
///   (`ITAdvance()`), so the next instruction gets its own condition.
pub fn skip_instruction(pc: u64, spsr: u64, esr: u64) -> (u64, u64) {
    let len = instruction_length(esr);
    let mut spsr = spsr & !SPSR_SS;
    if spsr & spsr::M_AARCH32 == 0 {
        return (pc.wrapping_add(len), spsr & !SPSR_BTYPE);
    }
    if spsr & SPSR32_T != 0 && spsr & SPSR32_IT != 0 {
        spsr = it_advance(spsr);
    }
    (pc.wrapping_add(len) & 0xffff_ffff, spsr)
}

/// `ITAdvance()` on an AArch32 SPSR: IT[7:0] is cond (7:5) and mask (4:0);
/// when the mask's low 3 bits are 0 the block ends, else the mask and the
/// condition's low bit shift left.
fn it_advance(spsr: u64) -> u64 {
    let it = (spsr >> 25 & 0b11) | (spsr >> 10 & 0x3f) << 2;
    let next = if it & 0b111 == 0 {
        0
    } else {
        it & 0xe0 | (it << 1) & 0x1f
    };
    spsr & !SPSR32_IT | (next & 0b11) << 25 | (next >> 2) << 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_clears_ss_and_btype_and_moves_the_pc() {
        let el1h = spsr::M_EL1H | spsr::DAIF | SPSR_SS | 0b10 << 10 | spsr::NZCV;
        let (pc, s) = skip_instruction(0x4000_1000, el1h, ESR_IL);
        assert_eq!(pc, 0x4000_1004);
        assert_eq!(s, spsr::M_EL1H | spsr::DAIF | spsr::NZCV);
        // AArch32 Thumb, 16-bit, not in an IT block: SS cleared, PC + 2.
        let t32 = spsr::M_AARCH32 | SPSR32_T | SPSR_SS;
        let (pc, s) = skip_instruction(0x8000, t32, 0);
        assert_eq!((pc, s), (0x8002, spsr::M_AARCH32 | SPSR32_T));
        let (pc, _) = skip_instruction(0xffff_fffe, t32, 0);
        assert_eq!(pc, 0, "AArch32 PC wraps at 32 bits");
    }

    /// IT[7:0] into an AArch32 SPSR.
    fn with_it(it: u64) -> u64 {
        spsr::M_AARCH32 | SPSR32_T | (it & 0b11) << 25 | (it >> 2) << 10
    }

    #[test]
    fn skipping_advances_the_it_state() {
        // ITE EQ: firstcond 0000, mask 1100 -> IT = 0000_1100; after the
        // first instruction: 0000_1000 | (cond[0]=0 -> else) ... per
        // ITAdvance: IT[4:0] shifted left.
        let ite_eq = 0b0000_1100;
        let (_, s) = skip_instruction(0x8000, with_it(ite_eq), 0);
        assert_eq!(s, with_it(0b0001_1000), "second instruction: the else");
        let (_, s) = skip_instruction(0x8002, s, 0);
        assert_eq!(s, with_it(0), "the block has ended");
        // ITT NE (cond 0001, mask 0100 -> IT = 0001_0100... firstcond[0]=1).
        let itt_ne = 0b0001_0100;
        let (_, s) = skip_instruction(0x8000, with_it(itt_ne), 0);
        assert_eq!(s, with_it(0b0000_1000));
        // A32 (T clear): IT bits are not touched.
        let a32 = spsr::M_AARCH32 | 0b11 << 25;
        assert_eq!(skip_instruction(0x8000, a32, ESR_IL).1, a32);
    }

    const ALL: PstateFeatures = PstateFeatures {
        pan: true,
        ssbs: true,
        dit: true,
        mte: true,
    };
    const NONE: PstateFeatures = PstateFeatures {
        pan: false,
        ssbs: false,
        dit: false,
        mte: false,
    };
    const EL1H: u64 = spsr::M_EL1H;
    const USR32: u64 = 0b1_0000;
    /// SPSR fields that exception entry clears and nothing else names.
    const BTYPE: u64 = 0b11 << 10;
    const IL: u64 = 1 << 20;
    const SS: u64 = 1 << 21;
    const UAO: u64 = 1 << 23;
    /// AArch32 T (bit 5): Thumb state.
    const T32: u64 = 1 << 5;

    #[test]
    fn daif_mode_and_cleared_fields() {
        let old = SS | IL | UAO | BTYPE | spsr::NZCV | spsr::M_EL0T;
        let new = pstate_on_entry(old, sctlr::SPAN, NONE);
        assert_eq!(new, spsr::NZCV | spsr::DAIF | EL1H);
        assert_eq!(
            pstate_on_entry(0, sctlr::SPAN, NONE),
            0x3c5,
            "the old fixed value when nothing applies"
        );
    }

    #[test]
    fn pan_follows_span() {
        assert_eq!(
            pstate_on_entry(EL1H, 0, ALL) & spsr::PAN,
            spsr::PAN,
            "SPAN=0 sets PAN"
        );
        assert_eq!(
            pstate_on_entry(EL1H, sctlr::SPAN, ALL) & spsr::PAN,
            0,
            "SPAN=1 keeps PAN=0"
        );
        assert_eq!(
            pstate_on_entry(EL1H | spsr::PAN, sctlr::SPAN, ALL) & spsr::PAN,
            spsr::PAN,
            "SPAN=1 keeps PAN=1"
        );
        assert_eq!(
            pstate_on_entry(EL1H, 0, NONE) & spsr::PAN,
            0,
            "no FEAT_PAN: RES0"
        );
        assert_eq!(
            pstate_on_entry(USR32 | spsr::PAN, sctlr::SPAN, ALL) & spsr::PAN,
            spsr::PAN,
            "AArch32 PAN is bit 22 too"
        );
    }

    #[test]
    fn ssbs_from_dssbs() {
        assert_eq!(
            pstate_on_entry(EL1H, sctlr::DSSBS | sctlr::SPAN, ALL) & spsr::SSBS,
            spsr::SSBS
        );
        assert_eq!(
            pstate_on_entry(EL1H | spsr::SSBS, sctlr::SPAN, ALL) & spsr::SSBS,
            0,
            "not kept from the source"
        );
        assert_eq!(pstate_on_entry(EL1H, sctlr::DSSBS, NONE) & spsr::SSBS, 0);
    }

    #[test]
    fn dit_kept_and_tco_set() {
        assert_eq!(
            pstate_on_entry(EL1H | spsr::DIT, sctlr::SPAN, ALL) & spsr::DIT,
            spsr::DIT
        );
        assert_eq!(pstate_on_entry(EL1H, sctlr::SPAN, ALL) & spsr::DIT, 0);
        // AArch32: DIT is bit 21, which must not be read as SS.
        let new = pstate_on_entry(USR32 | spsr32::DIT, sctlr::SPAN, ALL);
        assert_eq!(new & (spsr::DIT | SS), spsr::DIT);
        assert_eq!(
            pstate_on_entry(EL1H, sctlr::SPAN, ALL) & spsr::TCO,
            spsr::TCO
        );
        assert_eq!(
            pstate_on_entry(EL1H | spsr::TCO, sctlr::SPAN, NONE) & spsr::TCO,
            0
        );
    }

    #[test]
    fn aarch32_source_drops_its_own_fields() {
        // T, IT, GE, Q, E of AArch32 have no place in the new AArch64 PSTATE.
        let old = USR32 | T32 | 0x0600_fc00 | 1 << 27 | 1 << 9 | 0xf << 16;
        assert_eq!(pstate_on_entry(old, sctlr::SPAN, NONE), spsr::DAIF | EL1H);
    }

    #[test]
    fn vector_offsets() {
        assert_eq!(sync_vector_offset(spsr::M_EL1T), 0x000);
        assert_eq!(sync_vector_offset(spsr::M_EL1H | spsr::DAIF), 0x200);
        assert_eq!(sync_vector_offset(spsr::M_EL0T), 0x400);
        assert_eq!(sync_vector_offset(USR32), 0x600);
        assert_eq!(sync_vector_offset(USR32 | T32), 0x600);
    }

    #[test]
    fn el0_sources() {
        assert!(from_el0(spsr::M_EL0T));
        assert!(from_el0(USR32 | T32));
        assert!(!from_el0(spsr::M_EL1H));
        assert!(!from_el0(spsr::M_EL1T));
        assert!(!from_el0(0b1_0011), "AArch32 SVC mode is EL1");
    }

    #[test]
    fn step_by_il() {
        assert_eq!(instruction_length(ESR_IL | 0x9200_0000), 4);
        assert_eq!(instruction_length(0x9000_0000), 2);
    }
}
