//! What EL2 writes into this CPU's system registers for its vCPU, portable
//! and host-tested: the trap configuration the guest runs under, the EL1
//! state of a cold boot (PSCI CPU_ON), and exception injection. Every
//! access goes through [`Registers`], typed with arm-sysregs' register
//! values: `arch` implements it with this CPU's registers, the host tests
//! with arm-sysregs' fake registers (`crate::test_cpu`).

use crate::exception::{self, PstateFeatures};
use arm_sysregs::el1::registers::{
    ElrEl1, EsrEl1, FarEl1, IdAa64mmfr1El1, IdAa64pfr0El1, IdAa64pfr1El1, SctlrEl1, SpsrEl1,
    VbarEl1,
};
use arm_sysregs::el2::registers::{CnthctlEl2, CptrEl2, EsrEl2, HcrEl2, HcrxEl2, VsesrEl2};

/// The accessor layer: the registers the logic below reads and writes.
pub trait Registers {
    fn hcr_el2(&self) -> HcrEl2;
    fn set_hcr_el2(&mut self, value: HcrEl2);
    /// Only with FEAT_RAS (see [`has_ras`]).
    fn set_vsesr_el2(&mut self, value: VsesrEl2);
    fn sctlr_el1(&self) -> SctlrEl1;
    fn set_sctlr_el1(&mut self, value: SctlrEl1);
    fn vbar_el1(&self) -> VbarEl1;
    fn set_vbar_el1(&mut self, value: VbarEl1);
    fn set_esr_el1(&mut self, value: EsrEl1);
    fn set_far_el1(&mut self, value: FarEl1);
    fn set_elr_el1(&mut self, value: ElrEl1);
    fn set_spsr_el1(&mut self, value: SpsrEl1);
    fn id_aa64pfr0_el1(&self) -> IdAa64pfr0El1;
    fn id_aa64pfr1_el1(&self) -> IdAa64pfr1El1;
    fn id_aa64mmfr1_el1(&self) -> IdAa64mmfr1El1;
}

/// HCR_EL2 while the guest runs, bit by bit (every bit not named is 0,
/// i.e. no trap, no override):
/// - VM: stage 2 on (the guest's view of memory is the hypervisor's choice);
/// - SWIO: set/way invalidation upgraded to clean+invalidate (harmless, and
///   stale data can never appear in hypervisor memory through it);
/// - FMO/IMO/AMO: physical FIQ/IRQ/SError to EL2 (so the guest's IPIs trap,
///   fast-stop's SGI lands even with DAIF masked, and an SError of the guest
///   is seen by EL2 and re-injected as a virtual one, see [`inject_serror`]);
/// - FB, BSU=inner shareable: TLB/cache maintenance and barriers of the guest
///   are broadcast, as on bare metal (the guest migrates nothing, but its
///   own CPUs share memory);
/// - TSC: SMC trapped (PSCI via SMC is emulated like HVC);
/// - RW: EL1 is AArch64 (EL0 may be AArch32 where the CPU allows);
/// - APK/API: pointer authentication not trapped.
///
/// Left 0 on purpose: TWI/TWE (WFI/WFE run natively: 1:1 vCPU to pCPU),
/// TID* (ID registers read natively except MIDR/MPIDR, which VPIDR/VMPIDR
/// give), TVM/TRVM (the guest owns its stage 1), TGE/E2H (not a host OS),
/// TERR/TEA (RAS registers and external aborts stay the guest's), VSE (set
/// only by [`inject_serror`]).
pub const HCR_GUEST: HcrEl2 = HcrEl2::VM
    .union(HcrEl2::SWIO)
    .union(HcrEl2::FMO)
    .union(HcrEl2::IMO)
    .union(HcrEl2::AMO)
    .union(HcrEl2::FB)
    .union(HcrEl2::TSC)
    .union(HcrEl2::RW)
    .union(HcrEl2::APK)
    .union(HcrEl2::API)
    .with_bsu(BSU_INNER_SHAREABLE);
const BSU_INNER_SHAREABLE: u8 = 0b01;

/// CPTR_EL2 (E2H=0): RES1 bits only, so FP/SIMD, SVE and SME are not
/// trapped (TFP, TZ, TSM, TTA, TAM, TCPAC all 0: the vCPU owns its CPU).
pub const CPTR_GUEST: CptrEl2 = CptrEl2::RES1;

/// HCRX_EL2 (with FEAT_HCX), the enables a kernel booted at EL2 gives
/// itself and that a guest kernel expects when its ID registers show the
/// feature (Linux's HCRX_HOST_FLAGS): MSCEn (the MOPS memcpy/memset
/// instructions at EL1/EL0; with 0 they are UNDEFINED, and Debian's glibc
/// uses them once the kernel advertises HWCAP2_MOPS), TCR2En and EnFPM
/// (TCR2_EL1 and FPMR are EL1/EL0 state). MCE2 stays 0: MOPS exceptions go
/// to EL1. Every other bit 0 (no trap, nothing enabled).
pub const HCRX_GUEST: HcrxEl2 = HcrxEl2::MSCEN.union(HcrxEl2::TCR2EN).union(HcrxEl2::ENFPM);

/// CNTHCTL_EL2 (E2H=0): EL1 may read the physical counter and use the
/// physical timer (EL1PCTEN, bit 0, which arm-sysregs names by its E2H=1
/// meaning EL0PCTEN; EL1PCEN). The event stream (EVNTEN, on bit 14 of the
/// counter: about every 0.5 ms at 62.5 MHz) bounds every WFE wait of the
/// hypervisor, so a wait for something that never comes still sees its
/// deadline.
pub const CNTHCTL_GUEST: CnthctlEl2 = CnthctlEl2::EL0PCTEN
    .union(CnthctlEl2::EL1PCEN)
    .union(CnthctlEl2::EVNTEN)
    .with_evnti(EVENT_STREAM_BIT);
const EVENT_STREAM_BIT: u8 = 14;

/// SCTLR_EL1 as the architecture resets it: MMU and caches off, the bits
/// that were RES1 in Armv8.0 set (EOS, TSCXT, EIS, SPAN, nTLSMD, LSMAOE).
pub const SCTLR_EL1_RESET: SctlrEl1 = SctlrEl1::EOS
    .union(SctlrEl1::TSCXT)
    .union(SctlrEl1::EIS)
    .union(SctlrEl1::SPAN)
    .union(SctlrEl1::NTLSMD)
    .union(SctlrEl1::LSMAOE);

/// Whether the CPU implements FEAT_RAS (and so VSESR_EL2).
/// HCR_EL2 for this CPU: [`HCR_GUEST`] plus the enables of registers the
/// ID registers advertise to the guest (which reads them natively), so
/// that what it is told exists does not trap:
/// - EnSCXT with FEAT_CSV2_2 (ID_AA64PFR0_EL1.CSV2 >= 2): SCXTNUM_EL0/EL1;
/// - ATA with FEAT_MTE2 (ID_AA64PFR1_EL1.MTE >= 2): the allocation tag
///   registers (GCR_EL1, RGSR_EL1, TFSR*_EL1) and instructions.
pub fn hcr_guest(regs: &impl Registers) -> HcrEl2 {
    let mut hcr = HCR_GUEST;
    if regs.id_aa64pfr0_el1().csv2() >= 2 {
        hcr |= HcrEl2::ENSCXT;
    }
    if regs.id_aa64pfr1_el1().mte() >= 2 {
        hcr |= HcrEl2::ATA;
    }
    hcr
}

/// HFGRTR_EL2 and HFGWTR_EL2 with FEAT_FGT (their reset value is UNKNOWN):
/// no fine-grained trap. Most bits trap when 1; these trap when 0 (the
/// nXXX bits: AMAIR2/MAIR2, S2POR, POR, PIR/PIRE0, RCWMASK, TPIDR2,
/// SMPRI, GCS, ACCDATA), so they are set. (HFGITR_EL2, HDFGRTR_EL2 and
/// HDFGWTR_EL2 are written 0: their trap-when-0 bits belong to features
/// QEMU virt does not offer: BRBE, SPE, ... see docs/hostile-guest.md.)
pub const HFGXTR_NO_TRAPS: u64 = 0xfff << 52 | 1 << 50;

pub fn has_ras(regs: &impl Registers) -> bool {
    regs.id_aa64pfr0_el1().ras() != 0
}

/// Which optional PSTATE fields this CPU implements (ID registers).
pub fn pstate_features(regs: &impl Registers) -> PstateFeatures {
    let pfr0 = regs.id_aa64pfr0_el1();
    let pfr1 = regs.id_aa64pfr1_el1();
    PstateFeatures {
        pan: regs.id_aa64mmfr1_el1().pan() != 0,
        ssbs: pfr1.ssbs() != 0,
        dit: pfr0.dit() != 0,
        mte: pfr1.mte() != 0,
    }
}

/// Puts this CPU's EL1 into the cold-boot state PSCI CPU_ON promises: MMU
/// and caches off, endianness `big_endian` (the caller's), vectors at 0,
/// and no pending virtual SError of a previous life. (The TLB and I-cache
/// maintenance that goes with it is the caller's.)
pub fn reset_el1(regs: &mut impl Registers, big_endian: bool) {
    let ee = if big_endian {
        SctlrEl1::from_bits_retain(exception::sctlr::EE)
    } else {
        SctlrEl1::empty()
    };
    regs.set_sctlr_el1(SCTLR_EL1_RESET | ee);
    regs.set_vbar_el1(VbarEl1::empty());
    let hcr = regs.hcr_el2();
    regs.set_hcr_el2(hcr - HcrEl2::VSE);
}

/// Hands an SError the guest caused back to it as a virtual SError with the
/// same syndrome (ESR ISS, IDS included), taken when its PSTATE.A allows,
/// as a physical one would be. Without FEAT_RAS there is no VSESR_EL2 and
/// the guest sees an IMPLEMENTATION DEFINED syndrome.
pub fn inject_serror(regs: &mut impl Registers, esr: u64) {
    if has_ras(regs) {
        // VSESR_EL2 holds ISS[24:0] of the SError, IDS (bit 24) included.
        let iss = EsrEl2::from_bits_retain(esr).iss();
        regs.set_vsesr_el2(VsesrEl2::from_bits_retain(u64::from(iss)));
    }
    let hcr = regs.hcr_el2();
    regs.set_hcr_el2(hcr | HcrEl2::VSE);
}

/// Where the guest resumes: its PC and PSTATE (ELR_EL2 and SPSR_EL2 of
/// the trapped frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    pub pc: u64,
    pub pstate: u64,
}

/// Makes the guest take a synchronous exception at EL1 with `esr`/`far` as
/// if the hardware had delivered it at `from`: the EL1 syndrome registers
/// are written and the returned [`Resume`] is the Arm ARM's vector and
/// PSTATE (see `crate::exception`).
pub fn inject_sync(regs: &mut impl Registers, from: Resume, esr: u64, far: u64) -> Resume {
    let offset = exception::sync_vector_offset(from.pstate);
    regs.set_esr_el1(EsrEl1::from_bits_retain(esr));
    regs.set_far_el1(FarEl1::from_bits_retain(far));
    regs.set_elr_el1(ElrEl1::from_bits_retain(from.pc));
    regs.set_spsr_el1(SpsrEl1::from_bits_retain(from.pstate));
    Resume {
        pc: regs.vbar_el1().bits() + offset,
        pstate: exception::pstate_on_entry(
            from.pstate,
            regs.sctlr_el1().bits(),
            pstate_features(regs),
        ),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_cpu::TestCpu;
    use arm_sysregs::el1::accessors as el1;
    use arm_sysregs::el1::fake::SYSREGS as EL1;
    use arm_sysregs::el2::accessors as el2;
    use arm_sysregs::el2::fake::SYSREGS as EL2;

    /// The typed values equal the hand-written ones they replaced (kept
    /// here as literals), bit for bit, except CPTR_EL2 bit 11.
    #[test]
    fn typed_configuration_equals_the_old_literals() {
        let old_hcr: u64 = 1 << 0
            | 1 << 1
            | 1 << 3
            | 1 << 4
            | 1 << 5
            | 1 << 9
            | 1 << 10
            | 1 << 19
            | 1 << 31
            | 1 << 40
            | 1 << 41;
        assert_eq!(HCR_GUEST.bits(), old_hcr);
        assert_eq!(CNTHCTL_GUEST.bits(), 0b11 | 1 << 2 | 14 << 4);
        assert_eq!(SCTLR_EL1_RESET.bits(), 0x30d0_0800);
        assert_eq!(HcrEl2::VSE.bits(), 1 << 8);
        // The old value also set bit 11, which is RES0 in CPTR_EL2 (E2H=0):
        // the crate's RES1 mask leaves it clear, and so does Linux's
        // CPTR_NVHE_EL2_RES1. Nothing traps either way.
        let old_cptr: u64 = 1 << 13 | 1 << 11 | 1 << 9 | 0xff;
        assert_eq!(CPTR_GUEST.bits(), old_cptr & !(1 << 11));
    }

    #[test]
    fn hcr_enables_what_the_id_registers_advertise() {
        let cpu = TestCpu::new(4);
        assert_eq!(hcr_guest(&cpu), HCR_GUEST);
        {
            let mut fake = EL1.lock().unwrap();
            fake.id_aa64pfr0_el1 = IdAa64pfr0El1::from_bits_retain(2 << 56);
            fake.id_aa64pfr1_el1 = IdAa64pfr1El1::from_bits_retain(2 << 8);
        }
        assert_eq!(
            hcr_guest(&cpu),
            HCR_GUEST | HcrEl2::ENSCXT | HcrEl2::ATA,
            "SCXTNUM and MTE tag registers reachable"
        );
        {
            let mut fake = EL1.lock().unwrap();
            fake.id_aa64pfr0_el1 = IdAa64pfr0El1::from_bits_retain(1 << 56);
            fake.id_aa64pfr1_el1 = IdAa64pfr1El1::from_bits_retain(1 << 8);
        }
        assert_eq!(
            hcr_guest(&cpu),
            HCR_GUEST,
            "CSV2 1 / MTE 1: nothing to enable"
        );
        assert_eq!(HFGXTR_NO_TRAPS.count_ones(), 13);
        assert_eq!(HFGXTR_NO_TRAPS >> 50, 0b11_1111_1111_1101);
    }

    /// The typed ID register fields are the nibbles the old code shifted out.
    #[test]
    fn features_come_from_the_id_register_fields() {
        let cpu = TestCpu::new(4);
        assert_eq!(pstate_features(&cpu), PstateFeatures::default());
        assert!(!has_ras(&cpu));
        {
            let mut fake = EL1.lock().unwrap();
            fake.id_aa64pfr0_el1 = IdAa64pfr0El1::from_bits_retain(1 << 28 | 1 << 48);
            fake.id_aa64pfr1_el1 = IdAa64pfr1El1::from_bits_retain(1 << 4 | 2 << 8);
            fake.id_aa64mmfr1_el1 = IdAa64mmfr1El1::from_bits_retain(3 << 20);
        }
        let all = PstateFeatures {
            pan: true,
            ssbs: true,
            dit: true,
            mte: true,
        };
        assert_eq!(pstate_features(&cpu), all);
        assert!(has_ras(&cpu));
        // Neighbouring nibbles do not count.
        {
            let mut fake = EL1.lock().unwrap();
            fake.id_aa64pfr0_el1 = IdAa64pfr0El1::from_bits_retain(0xf << 24 | 0xf << 52);
            fake.id_aa64pfr1_el1 = IdAa64pfr1El1::from_bits_retain(0xf | 0xf << 12);
            fake.id_aa64mmfr1_el1 = IdAa64mmfr1El1::from_bits_retain(0xf << 16 | 0xf << 24);
        }
        assert_eq!(pstate_features(&cpu), PstateFeatures::default());
        assert!(!has_ras(&cpu));
    }

    #[test]
    fn injection_writes_the_el1_syndrome_and_enters_the_vector() {
        let mut cpu = TestCpu::new(4);
        {
            let mut fake = EL1.lock().unwrap();
            fake.vbar_el1 = VbarEl1::from_bits_retain(0xffff_8000_1001_0800);
            fake.sctlr_el1 = SCTLR_EL1_RESET;
        }
        // From EL1h (SPSR.M = 0b0101), interrupts unmasked, NZCV = 0b1010.
        let from = Resume {
            pc: 0xffff_8000_1234_5678,
            pstate: 0xa000_0005,
        };
        let esr = 0x25 << 26 | 1 << 25 | 0x10;
        let to = inject_sync(&mut cpu, from, esr, 0xdead_0000);
        assert_eq!(el1::read_esr_el1().bits(), esr);
        let fake = EL1.lock().unwrap().clone();
        assert_eq!(fake.far_el1.bits(), 0xdead_0000);
        assert_eq!(fake.elr_el1.bits(), from.pc, "ELR_EL1 = the faulting PC");
        assert_eq!(fake.spsr_el1.bits(), from.pstate, "SPSR_EL1 = old PSTATE");
        assert_eq!(to.pc, 0xffff_8000_1001_0800 + 0x200, "current EL, SP_ELx");
        assert_eq!(
            to.pstate,
            0xa000_0000 | 0xf << 6 | 0b0101,
            "DAIF masked, EL1h"
        );
    }

    #[test]
    fn injection_from_el0_uses_the_lower_el_vector() {
        let mut cpu = TestCpu::new(4);
        EL1.lock().unwrap().vbar_el1 = VbarEl1::from_bits_retain(0x4000_0000);
        let to = inject_sync(
            &mut cpu,
            Resume {
                pc: 0x40_0000,
                pstate: 0,
            },
            0x24 << 26,
            0,
        );
        assert_eq!(to.pc, 0x4000_0400);
        let elr = EL1.lock().unwrap().elr_el1;
        assert_eq!(elr.bits(), 0x40_0000);
    }

    #[test]
    fn serror_injection_sets_vse_and_the_syndrome_with_ras() {
        let mut cpu = TestCpu::new(4);
        EL2.lock().unwrap().hcr_el2 = HCR_GUEST;
        let esr = 0x2f << 26 | 1 << 25 | 1 << 24 | 0x1234;
        inject_serror(&mut cpu, esr);
        assert_eq!(el2::read_hcr_el2(), HCR_GUEST | HcrEl2::VSE);
        assert_eq!(
            el2::read_vsesr_el2(),
            VsesrEl2::empty(),
            "no FEAT_RAS: no VSESR_EL2 write"
        );
        EL1.lock().unwrap().id_aa64pfr0_el1 = IdAa64pfr0El1::from_bits_retain(1 << 28);
        inject_serror(&mut cpu, esr);
        assert_eq!(
            el2::read_vsesr_el2().bits(),
            1 << 24 | 0x1234,
            "ISS and IDS"
        );
    }

    #[test]
    fn cpu_on_reset_state() {
        let mut cpu = TestCpu::new(4);
        {
            let mut fake = EL1.lock().unwrap();
            fake.sctlr_el1 = SctlrEl1::M | SctlrEl1::C | SctlrEl1::I | SCTLR_EL1_RESET;
            fake.vbar_el1 = VbarEl1::from_bits_retain(0xffff_8000_1001_0800);
        }
        EL2.lock().unwrap().hcr_el2 = HCR_GUEST | HcrEl2::VSE;
        reset_el1(&mut cpu, false);
        assert_eq!(el1::read_sctlr_el1(), SCTLR_EL1_RESET, "MMU and caches off");
        assert_eq!(el1::read_vbar_el1().bits(), 0);
        assert_eq!(
            el2::read_hcr_el2(),
            HCR_GUEST,
            "a pending virtual SError dies with the old life; nothing else changes"
        );
        reset_el1(&mut cpu, true);
        assert_eq!(
            el1::read_sctlr_el1().bits(),
            SCTLR_EL1_RESET.bits() | exception::sctlr::EE,
            "the caller's endianness"
        );
    }
}
