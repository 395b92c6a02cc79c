//! PSTATE fields and SCTLR_EL1 bits that shape exception entry (PAN, SSBS,
//! DIT; SPAN, DSSBS, EE), read and written at EL1. Each accessor checks the
//! ID registers first: the PSTATE registers of an unimplemented feature are
//! UNDEFINED.

use core::arch::asm;

/// SPSR / PSTATE bit positions (AArch64 format).
pub const PAN: u64 = 1 << 22;
pub const SSBS: u64 = 1 << 12;
pub const DIT: u64 = 1 << 24;
/// SCTLR_EL1 bits.
pub const SCTLR_SPAN: u64 = 1 << 23;
pub const SCTLR_DSSBS: u64 = 1 << 44;
pub const SCTLR_EE: u64 = 1 << 25;

/// Which of PAN, SSBS, DIT this CPU implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub pan: bool,
    pub ssbs: bool,
    pub dit: bool,
}

/// The features from ID_AA64MMFR1_EL1 / ID_AA64PFR0_EL1 / ID_AA64PFR1_EL1.
pub fn features() -> Features {
    let (mmfr1, pfr0, pfr1): (u64, u64, u64);
    // SAFETY: ID registers are readable at EL1 and have no side effects.
    unsafe {
        asm!("mrs {}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack));
        asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack));
        asm!("mrs {}, id_aa64pfr1_el1", out(reg) pfr1, options(nomem, nostack));
    }
    Features {
        pan: (mmfr1 >> 20) & 0xf != 0,
        ssbs: (pfr1 >> 4) & 0xf != 0,
        dit: (pfr0 >> 48) & 0xf != 0,
    }
}

/// True when EL0 can run AArch32 (ID_AA64PFR0_EL1.EL0 == 2).
pub fn el0_aarch32() -> bool {
    let pfr0: u64;
    // SAFETY: ID register read.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack)) };
    pfr0 & 0xf == 2
}

/// PAN | SSBS | DIT of the current PSTATE (unimplemented ones read 0).
pub fn read() -> u64 {
    let f = features();
    let mut v = 0;
    let mut r: u64;
    if f.pan {
        // SAFETY: PAN exists (FEAT_PAN); reading has no side effects.
        unsafe { asm!("mrs {}, S3_0_C4_C2_3", out(reg) r, options(nomem, nostack)) };
        v |= r & PAN;
    }
    if f.ssbs {
        // SAFETY: SSBS exists (FEAT_SSBS).
        unsafe { asm!("mrs {}, S3_3_C4_C2_6", out(reg) r, options(nomem, nostack)) };
        v |= r & SSBS;
    }
    if f.dit {
        // SAFETY: DIT exists (FEAT_DIT).
        unsafe { asm!("mrs {}, S3_3_C4_C2_5", out(reg) r, options(nomem, nostack)) };
        v |= r & DIT;
    }
    v
}

/// Sets PAN, SSBS and DIT from the bits of `v` (where implemented).
pub fn write(v: u64) {
    let f = features();
    // SAFETY: each register exists (checked); the fields only change access
    // permission checks with stage 1 on (off here), speculation and timing.
    unsafe {
        if f.pan {
            asm!("msr S3_0_C4_C2_3, {}", in(reg) v & PAN, options(nomem, nostack));
        }
        if f.ssbs {
            asm!("msr S3_3_C4_C2_6, {}", in(reg) v & SSBS, options(nomem, nostack));
        }
        if f.dit {
            asm!("msr S3_3_C4_C2_5, {}", in(reg) v & DIT, options(nomem, nostack));
        }
        asm!("isb", options(nomem, nostack));
    }
}

/// SCTLR_EL1.
pub fn sctlr() -> u64 {
    let v: u64;
    // SAFETY: reading SCTLR_EL1.
    unsafe { asm!("mrs {}, sctlr_el1", out(reg) v, options(nomem, nostack)) };
    v
}

/// Writes SCTLR_EL1 (callers change only SPAN and DSSBS this way).
pub fn set_sctlr(v: u64) {
    // SAFETY: callers flip SPAN/DSSBS only, which affect exception entry
    // and nothing the running code depends on.
    unsafe { asm!("msr sctlr_el1, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

/// Takes a real synchronous exception at EL1 (BRK) under
/// [`super::expecting_abort`]: the vector records the PSTATE it started
/// with, which is returned (see [`super::vectors::Abort::pstate`]).
pub fn real_exception_pstate() -> Option<u64> {
    let ((), ab) = super::expecting_abort(|| {
        // SAFETY: BRK traps to our own vector, which records and skips it.
        unsafe { asm!("brk #0x77", options(nomem, nostack)) };
    });
    ab.map(|a| a.pstate)
}

/// ID_AA64PFR0_EL1 and ID_AA64PFR1_EL1.
pub fn id_aa64pfr() -> (u64, u64) {
    let (p0, p1): (u64, u64);
    // SAFETY: reading ID registers has no side effects.
    unsafe {
        asm!("mrs {}, id_aa64pfr0_el1", "mrs {}, id_aa64pfr1_el1", out(reg) p0, out(reg) p1,
            options(nomem, nostack))
    };
    (p0, p1)
}

/// Writes `v` to SCXTNUM_EL1 (FEAT_CSV2_2) and reads it back.
pub fn scxtnum_el1_roundtrip(v: u64) -> u64 {
    let r: u64;
    // SAFETY: a software context number register of this CPU; only
    // speculation-restriction hints depend on it.
    unsafe {
        asm!("msr S3_0_C13_C0_7, {v}", "isb", "mrs {r}, S3_0_C13_C0_7", v = in(reg) v,
            r = out(reg) r, options(nomem, nostack))
    };
    r
}

/// Writes `v` to TPIDR2_EL0 (FEAT_SME) and reads it back; restores it.
pub fn tpidr2_el0_roundtrip(v: u64) -> u64 {
    let r: u64;
    // SAFETY: a thread ID register nothing in the guest library uses; the
    // old value is put back.
    unsafe {
        asm!("mrs {old}, S3_3_C13_C0_5", "msr S3_3_C13_C0_5, {v}", "isb",
            "mrs {r}, S3_3_C13_C0_5", "msr S3_3_C13_C0_5, {old}", v = in(reg) v,
            r = out(reg) r, old = out(reg) _, options(nomem, nostack))
    };
    r
}
