//! Decoding of data aborts from a lower EL for MMIO emulation.
//!
//! When the guest touches an IPA that stage 2 does not map (GICD/GICR, the
//! PL011), the access traps to EL2 as a Data Abort with `ESR_EL2.EC = 0x24`.
//! For single-register loads and stores the hardware describes the access in
//! the instruction syndrome (ISS, Arm ARM D24.2 "ESR_EL2", ISS encoding for an
//! exception from a Data Abort):
//!
//! | ISS bits | field | meaning |
//! |---|---|---|
//! | 24    | ISV   | bits 23:14 hold a valid instruction syndrome |
//! | 23:22 | SAS   | access size: 0 byte, 1 halfword, 2 word, 3 doubleword |
//! | 21    | SSE   | the load sign-extends |
//! | 20:16 | SRT   | the transfer register Xt/Wt (31 = XZR/WZR) |
//! | 15    | SF    | the register is 64-bit (Xt), else 32-bit (Wt) |
//! | 14    | AR    | acquire/release semantics |
//! | 10    | FnV   | FAR is not valid |
//! | 9     | EA    | external abort type |
//! | 8     | CM    | fault from a cache maintenance / address translation instruction |
//! | 7     | S1PTW | fault on a stage-2 walk *for* a stage-1 table walk |
//! | 6     | WnR   | write (1) or read (0) |
//! | 5:0   | DFSC  | data fault status code |
//!
//! The IPA comes from `HPFAR_EL2.FIPA` (bits 47:4 hold IPA bits 55:12; bits
//! above the implemented IPA size are RES0) for the page and `FAR_EL2[11:0]`
//! for the offset within it.
//!
//! Instructions the syndrome cannot describe (load/store pair, writeback
//! addressing, SIMD/FP registers, atomics, ...) report ISV = 0. parkvisor does
//! not decode instructions from guest memory: such accesses yield
//! [`MmioErrorKind::NoSyndrome`] and the caller injects an abort and traces a
//! `fault` line.

use crate::esr::{EC_DABT_LOWER, ISS_WNR, exception_class, iss};
use core::fmt;

const ISS_ISV: u32 = 1 << 24;
const ISS_SAS_SHIFT: u32 = 22;
const ISS_SSE: u32 = 1 << 21;
const ISS_SRT_SHIFT: u32 = 16;
const ISS_SF: u32 = 1 << 15;
const ISS_AR: u32 = 1 << 14;
const ISS_FNV: u32 = 1 << 10;
const ISS_CM: u32 = 1 << 8;
const ISS_S1PTW: u32 = 1 << 7;
const ISS_DFSC_MASK: u32 = 0x3F;

/// `HPFAR_EL2.FIPA`: bits 47:4 (IPA bits 55:12).
const HPFAR_FIPA_MASK: u64 = ((1 << 44) - 1) << 4;

/// The faulting IPA from HPFAR_EL2 (page) and FAR_EL2 (offset in the page).
pub const fn fault_ipa(far: u64, hpfar: u64) -> u64 {
    ((hpfar & HPFAR_FIPA_MASK) << 8) | (far & 0xFFF)
}

/// Data fault status code (`ISS.DFSC`), the parts parkvisor cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    /// Address size fault at a level (-1 with FEAT_LPA2, 0..=3).
    AddressSize(i8),
    /// Translation fault at a level (-1..=3): the IPA is not mapped.
    Translation(i8),
    /// Access flag fault at a level.
    AccessFlag(i8),
    /// Permission fault at a level.
    Permission(i8),
    /// Synchronous external abort (not on a table walk).
    ExternalAbort,
    /// Alignment fault.
    Alignment,
    /// Any other code (table-walk external aborts, parity, TLB conflict, ...).
    Other(u8),
}

impl FaultStatus {
    /// Classifies a 6-bit DFSC.
    pub const fn from_dfsc(dfsc: u8) -> FaultStatus {
        let level = (dfsc & 3) as i8;
        match dfsc & 0x3F {
            0b00_0000..=0b00_0011 => FaultStatus::AddressSize(level),
            0b10_1001 => FaultStatus::AddressSize(-1),
            0b00_0100..=0b00_0111 => FaultStatus::Translation(level),
            0b10_1011 => FaultStatus::Translation(-1),
            0b00_1000..=0b00_1011 => FaultStatus::AccessFlag(level),
            0b00_1100..=0b00_1111 => FaultStatus::Permission(level),
            0b01_0000 => FaultStatus::ExternalAbort,
            0b10_0001 => FaultStatus::Alignment,
            other => FaultStatus::Other(other),
        }
    }

    /// Whether an access that faulted like this can be emulated: the stage-2
    /// translation, access flag and permission faults that unmapped or
    /// protected MMIO produces.
    pub const fn is_emulatable(self) -> bool {
        matches!(
            self,
            FaultStatus::Translation(_) | FaultStatus::AccessFlag(_) | FaultStatus::Permission(_)
        )
    }
}

/// Why a data abort cannot be emulated as an MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioErrorKind {
    /// ESR.EC is not a Data Abort from a lower EL (carries the EC).
    NotDataAbort(u8),
    /// ISV = 0: the instruction syndrome is not valid (LDP/STP, writeback,
    /// SIMD&FP register, atomic, ...).
    NoSyndrome,
    /// S1PTW = 1: the fault is on the guest's own stage-1 page-table walk.
    StageOneWalk,
    /// CM = 1: a cache maintenance or address translation instruction
    /// (`DC IVAC` etc.) on the address; no data is transferred.
    CacheMaintenance,
    /// FnV = 1: FAR_EL2 does not hold the address.
    FarNotValid,
    /// A fault status that is not a stage-2 translation/access/permission fault.
    FaultStatus(FaultStatus),
}

impl MmioErrorKind {
    /// Short text for the `(<why>)` of a `fault` trace line.
    pub const fn why(self) -> &'static str {
        match self {
            MmioErrorKind::NotDataAbort(_) => "not a data abort",
            MmioErrorKind::NoSyndrome => "instruction syndrome not valid",
            MmioErrorKind::StageOneWalk => "stage-1 table walk",
            MmioErrorKind::CacheMaintenance => "cache maintenance",
            MmioErrorKind::FarNotValid => "far not valid",
            MmioErrorKind::FaultStatus(FaultStatus::ExternalAbort) => "external abort",
            MmioErrorKind::FaultStatus(FaultStatus::Alignment) => "alignment fault",
            MmioErrorKind::FaultStatus(FaultStatus::AddressSize(_)) => "address size fault",
            MmioErrorKind::FaultStatus(_) => "unexpected fault status",
        }
    }
}

/// A data abort that is not an emulatable MMIO access, with what is known
/// about it (for the trace line and abort injection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioError {
    /// Why.
    pub kind: MmioErrorKind,
    /// The faulting IPA when FAR was valid.
    pub ipa: Option<u64>,
    /// ISS.WnR (for a cache maintenance fault, always 1).
    pub write: bool,
    /// Access size in bytes when the syndrome was valid, else 0.
    pub size: u8,
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.why())?;
        if let Some(ipa) = self.ipa {
            write!(f, " at {ipa:#x}")?;
        }
        Ok(())
    }
}

/// One emulatable MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Intermediate physical address accessed.
    pub ipa: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Store (true) or load (false).
    pub write: bool,
    /// Transfer register number; 31 means XZR/WZR (store zero, discard load).
    pub reg: u8,
    /// Load sign-extends (LDRSB/LDRSH/LDRSW).
    pub sign_extend: bool,
    /// Transfer register is 64-bit (Xt) rather than 32-bit (Wt).
    pub sixty_four: bool,
    /// Acquire/release (LDAR/STLR): the caller must order it like a barrier.
    pub acquire_release: bool,
}

/// Decodes ESR_EL2 / FAR_EL2 / HPFAR_EL2 of a trapped data abort.
pub fn decode(esr: u64, far: u64, hpfar: u64) -> Result<MmioAccess, MmioError> {
    let iss = iss(esr);
    let isv = iss & ISS_ISV != 0;
    let ec = exception_class(esr);
    let err = MmioError {
        kind: MmioErrorKind::NoSyndrome,
        ipa: if ec == EC_DABT_LOWER && iss & ISS_FNV == 0 {
            Some(fault_ipa(far, hpfar))
        } else {
            None
        },
        write: iss & ISS_WNR != 0,
        size: if isv {
            1 << ((iss >> ISS_SAS_SHIFT) & 3)
        } else {
            0
        },
    };
    let fail = |kind| Err(MmioError { kind, ..err });
    if ec != EC_DABT_LOWER {
        return fail(MmioErrorKind::NotDataAbort(ec));
    }
    let status = FaultStatus::from_dfsc((iss & ISS_DFSC_MASK) as u8);
    if !status.is_emulatable() {
        return fail(MmioErrorKind::FaultStatus(status));
    }
    if iss & ISS_S1PTW != 0 {
        return fail(MmioErrorKind::StageOneWalk);
    }
    if iss & ISS_CM != 0 {
        return fail(MmioErrorKind::CacheMaintenance);
    }
    if iss & ISS_FNV != 0 {
        return fail(MmioErrorKind::FarNotValid);
    }
    if !isv {
        return fail(MmioErrorKind::NoSyndrome);
    }
    Ok(MmioAccess {
        ipa: fault_ipa(far, hpfar),
        size: err.size,
        write: err.write,
        reg: ((iss >> ISS_SRT_SHIFT) & 0x1F) as u8,
        sign_extend: iss & ISS_SSE != 0,
        sixty_four: iss & ISS_SF != 0,
        acquire_release: iss & ISS_AR != 0,
    })
}

impl MmioAccess {
    /// The register number to read or write, or `None` for XZR/WZR.
    pub const fn gpr(&self) -> Option<usize> {
        if self.reg == 31 {
            None
        } else {
            Some(self.reg as usize)
        }
    }

    /// Mask of the accessed bytes (`size * 8` low bits).
    pub const fn mask(&self) -> u64 {
        if self.size >= 8 {
            u64::MAX
        } else {
            (1u64 << (self.size as u32 * 8)) - 1
        }
    }

    /// The data a store writes, given the value of register `reg` (pass
    /// anything for XZR: the result is 0 then). Truncated to the access size.
    pub const fn store_value(&self, reg_value: u64) -> u64 {
        if self.reg == 31 {
            0
        } else {
            reg_value & self.mask()
        }
    }

    /// The data a store writes, read from the guest's x0..x30.
    pub fn store_value_from(&self, gprs: &[u64; 31]) -> u64 {
        match self.gpr() {
            Some(r) => self.store_value(gprs[r]),
            None => 0,
        }
    }

    /// The value the destination register holds after a load that read
    /// `data` from the device: `data` truncated to the access size, then
    /// sign- or zero-extended to the register width; a 32-bit (W) destination
    /// has its upper 32 bits cleared, as for any AArch64 write to Wt.
    pub const fn load_value(&self, data: u64) -> u64 {
        let bits = self.size as u32 * 8;
        let data = data & self.mask();
        let extended = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((data << shift) as i64) >> shift) as u64
        } else {
            data
        };
        if self.sixty_four {
            extended
        } else {
            extended & 0xFFFF_FFFF
        }
    }

    /// Completes a load into the guest's x0..x30 (nothing for XZR).
    pub fn apply_load(&self, gprs: &mut [u64; 31], data: u64) {
        if let Some(r) = self.gpr() {
            gprs[r] = self.load_value(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esr::EC_DABT_SAME as EC_DABT_CURRENT;
    use crate::exception::ESR_IL;

    /// Builds an ESR for a lower-EL data abort (IL = 1).
    fn esr(iss: u32) -> u64 {
        ((EC_DABT_LOWER as u64) << 26) | ESR_IL | iss as u64
    }

    /// ISS with a valid syndrome for a stage-2 level-3 translation fault.
    fn syndrome(sas: u32, sse: bool, srt: u32, sf: bool, ar: bool, wnr: bool) -> u32 {
        ISS_ISV
            | (sas << 22)
            | ((sse as u32) << 21)
            | (srt << 16)
            | ((sf as u32) << 15)
            | ((ar as u32) << 14)
            | ((wnr as u32) << 6)
            | 0b00_0111
    }

    // GICD at 0x0800_0000: HPFAR holds IPA[55:12] in bits [47:4].
    const GICD_HPFAR: u64 = (0x0800_0000 >> 12) << 4;

    #[test]
    fn str_w1_to_gicd_ctlr() {
        // STR W1, [X0]: word, SRT=1, SF=0, write.
        let e = esr(syndrome(2, false, 1, false, false, true));
        let a = decode(e, 0xFFFF_0000_0800_0000, GICD_HPFAR).unwrap();
        assert_eq!(
            a,
            MmioAccess {
                ipa: 0x0800_0000,
                size: 4,
                write: true,
                reg: 1,
                sign_extend: false,
                sixty_four: false,
                acquire_release: false,
            }
        );
        assert_eq!(a.store_value(0xAAAA_BBBB_1234_5678), 0x1234_5678);
        assert_eq!(crate::exception::instruction_length(e), 4);
    }

    #[test]
    fn hand_assembled_esr_values() {
        // ESR 0x93C08007: EC 0x24, IL, ISV, SAS=3 (8), SRT=0, SF, read, DFSC=7.
        let a = decode(0x93C0_8007, 0x0801_0008, (0x0801_0000 >> 12) << 4).unwrap();
        assert_eq!(
            (a.ipa, a.size, a.write, a.reg, a.sixty_four),
            (0x0801_0008, 8, false, 0, true)
        );
        // ESR 0x93050046: ISV, SAS=0 (1), SRT=5, write, DFSC=6 (translation L2).
        let a = decode(0x9305_0046, 0x0900_0000, (0x0900_0000 >> 12) << 4).unwrap();
        assert_eq!(
            (a.ipa, a.size, a.write, a.reg, a.sixty_four),
            (0x0900_0000, 1, true, 5, false)
        );
        // ESR 0x93AA8006: ISV, SAS=2, SSE, SRT=10, SF → LDRSW X10.
        let a = decode(0x93AA_8006, 0x0800_0004, GICD_HPFAR).unwrap();
        assert!(a.sign_extend && a.sixty_four);
        assert_eq!((a.size, a.reg, a.write), (4, 10, false));
    }

    #[test]
    fn every_field_decodes_independently() {
        for sas in 0..4u32 {
            for srt in [0u32, 1, 17, 30, 31] {
                for bits in 0..16u32 {
                    let (sse, sf, ar, wnr) =
                        (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
                    let a = decode(esr(syndrome(sas, sse, srt, sf, ar, wnr)), 0x123, GICD_HPFAR)
                        .unwrap();
                    assert_eq!(a.size, 1 << sas);
                    assert_eq!(a.reg as u32, srt);
                    assert_eq!(a.sign_extend, sse);
                    assert_eq!(a.sixty_four, sf);
                    assert_eq!(a.acquire_release, ar);
                    assert_eq!(a.write, wnr);
                    assert_eq!(a.ipa, 0x0800_0123);
                }
            }
        }
    }

    #[test]
    fn ipa_from_hpfar_and_far() {
        // FAR holds the guest VA: only its page offset matters.
        assert_eq!(
            fault_ipa(0xFFFF_8000_1234_5ABC, (0x0800_0000 >> 12) << 4),
            0x0800_0ABC
        );
        // Large IPA (52-bit): FIPA bits up to 47 → IPA bit 55.
        let ipa = 0x00F0_1234_5678_9000u64;
        assert_eq!(fault_ipa(0x10, (ipa >> 12) << 4), ipa | 0x10);
        // HPFAR.NS (bit 63) and bits 3:0 are not part of the address.
        assert_eq!(
            fault_ipa(0, (1 << 63) | 0xF | ((0x4000_0000 >> 12) << 4)),
            0x4000_0000
        );
    }

    #[test]
    fn isv_clear_is_an_error_with_what_is_known() {
        // LDP X0, X1, [X2] to MMIO: ISV=0, WnR=0, DFSC=translation L3.
        let e = esr(0b00_0111);
        let err = decode(e, 0x0800_0010, GICD_HPFAR).unwrap_err();
        assert_eq!(
            err,
            MmioError {
                kind: MmioErrorKind::NoSyndrome,
                ipa: Some(0x0800_0010),
                write: false,
                size: 0
            }
        );
        assert_eq!(err.kind.why(), "instruction syndrome not valid");
        // STP: WnR = 1 still reported.
        let err = decode(esr(ISS_WNR | 0b00_0111), 0x0800_0010, GICD_HPFAR).unwrap_err();
        assert!(err.write);
    }

    #[test]
    fn other_errors() {
        let ok = syndrome(2, false, 1, false, false, true);
        // Wrong exception class (e.g. an HVC, EC 0x16).
        let hvc = (0x16u64 << 26) | ESR_IL;
        assert_eq!(
            decode(hvc, 0, 0).unwrap_err().kind,
            MmioErrorKind::NotDataAbort(0x16)
        );
        // Same-EL data abort is not guest MMIO.
        let cur = ((EC_DABT_CURRENT as u64) << 26) | ESR_IL | ok as u64;
        assert_eq!(
            decode(cur, 0, 0).unwrap_err().kind,
            MmioErrorKind::NotDataAbort(0x25)
        );
        // Stage-1 walk.
        let e = decode(esr(ok | ISS_S1PTW), 0, GICD_HPFAR).unwrap_err();
        assert_eq!(e.kind, MmioErrorKind::StageOneWalk);
        // Cache maintenance (DC CIVAC on MMIO).
        let e = decode(esr(ok | ISS_CM), 0, GICD_HPFAR).unwrap_err();
        assert_eq!(e.kind, MmioErrorKind::CacheMaintenance);
        // FnV: no IPA known.
        let e = decode(esr(ok | ISS_FNV), 0, GICD_HPFAR).unwrap_err();
        assert_eq!(
            e,
            MmioError {
                kind: MmioErrorKind::FarNotValid,
                ipa: None,
                write: true,
                size: 4
            }
        );
        // Synchronous external abort, alignment.
        let e = decode(esr((ok & !0x3F) | 0b01_0000), 0, GICD_HPFAR).unwrap_err();
        assert_eq!(
            e.kind,
            MmioErrorKind::FaultStatus(FaultStatus::ExternalAbort)
        );
        let e = decode(esr((ok & !0x3F) | 0b10_0001), 0, GICD_HPFAR).unwrap_err();
        assert_eq!(e.kind, MmioErrorKind::FaultStatus(FaultStatus::Alignment));
        assert_eq!(e.kind.why(), "alignment fault");
    }

    #[test]
    fn fault_status_codes() {
        assert_eq!(
            FaultStatus::from_dfsc(0b00_0100),
            FaultStatus::Translation(0)
        );
        assert_eq!(
            FaultStatus::from_dfsc(0b00_0111),
            FaultStatus::Translation(3)
        );
        assert_eq!(
            FaultStatus::from_dfsc(0b10_1011),
            FaultStatus::Translation(-1)
        );
        assert_eq!(
            FaultStatus::from_dfsc(0b00_1001),
            FaultStatus::AccessFlag(1)
        );
        assert_eq!(
            FaultStatus::from_dfsc(0b00_1111),
            FaultStatus::Permission(3)
        );
        assert_eq!(
            FaultStatus::from_dfsc(0b00_0010),
            FaultStatus::AddressSize(2)
        );
        assert_eq!(
            FaultStatus::from_dfsc(0b11_0000),
            FaultStatus::Other(0b11_0000)
        );
        for l in 0..4u8 {
            assert!(
                decode(
                    esr((syndrome(0, false, 0, false, false, false) & !0x3F) | 0b1100 | l as u32),
                    0,
                    0
                )
                .is_ok()
            );
            assert!(
                decode(
                    esr((syndrome(0, false, 0, false, false, false) & !0x3F) | 0b1000 | l as u32),
                    0,
                    0
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn xzr_store_and_load() {
        // STR WZR, [X0]: stores zero whatever the caller passes.
        let a = decode(
            esr(syndrome(2, false, 31, false, false, true)),
            0,
            GICD_HPFAR,
        )
        .unwrap();
        assert_eq!(a.gpr(), None);
        assert_eq!(a.store_value(0xFFFF_FFFF), 0);
        let mut gprs = [7u64; 31];
        assert_eq!(a.store_value_from(&gprs), 0);
        // LDR XZR: discarded, no register changes.
        let a = decode(
            esr(syndrome(3, false, 31, true, false, false)),
            0,
            GICD_HPFAR,
        )
        .unwrap();
        a.apply_load(&mut gprs, 0x1234);
        assert_eq!(gprs, [7u64; 31]);
    }

    #[test]
    fn store_values_by_width() {
        let mut a = decode(
            esr(syndrome(0, false, 3, false, false, true)),
            0,
            GICD_HPFAR,
        )
        .unwrap();
        let v = 0x8877_6655_4433_2211u64;
        assert_eq!(a.store_value(v), 0x11);
        a.size = 2;
        assert_eq!(a.store_value(v), 0x2211);
        a.size = 4;
        assert_eq!(a.store_value(v), 0x4433_2211);
        a.size = 8;
        assert_eq!(a.store_value(v), v);
        let mut gprs = [0u64; 31];
        gprs[3] = v;
        assert_eq!(a.store_value_from(&gprs), v);
    }

    fn load(size: u8, sse: bool, sf: bool) -> MmioAccess {
        let sas = size.trailing_zeros();
        decode(esr(syndrome(sas, sse, 2, sf, false, false)), 0, GICD_HPFAR).unwrap()
    }

    #[test]
    fn load_merging() {
        // LDRB W2: zero-extend, upper bits of data ignored.
        assert_eq!(load(1, false, false).load_value(0xFFFF_FF80), 0x80);
        // LDRSB W2: sign-extend to 32 bits, upper 32 cleared.
        assert_eq!(load(1, true, false).load_value(0x80), 0xFFFF_FF80);
        // LDRSB X2: sign-extend to 64 bits.
        assert_eq!(load(1, true, true).load_value(0x80), 0xFFFF_FFFF_FFFF_FF80);
        assert_eq!(load(1, true, true).load_value(0x7F), 0x7F);
        // LDRH / LDRSH.
        assert_eq!(load(2, false, false).load_value(0x1_8000), 0x8000);
        assert_eq!(load(2, true, false).load_value(0x8000), 0xFFFF_8000);
        assert_eq!(
            load(2, true, true).load_value(0x8000),
            0xFFFF_FFFF_FFFF_8000
        );
        // LDR W / LDRSW X.
        assert_eq!(
            load(4, false, false).load_value(0xDEAD_BEEF_8000_0001),
            0x8000_0001
        );
        assert_eq!(
            load(4, true, true).load_value(0x8000_0001),
            0xFFFF_FFFF_8000_0001
        );
        // LDR X.
        assert_eq!(load(8, false, true).load_value(u64::MAX), u64::MAX);
        assert_eq!(
            load(8, true, true).load_value(0x8000_0000_0000_0000),
            0x8000_0000_0000_0000
        );
        // apply_load writes the whole register.
        let mut gprs = [u64::MAX; 31];
        load(1, false, false).apply_load(&mut gprs, 0x42);
        assert_eq!(gprs[2], 0x42);
        assert_eq!(gprs[1], u64::MAX);
    }
}
