//! Small controls of the calling CPU the suites need: its MPIDR, its
//! interrupt masks (PSTATE.DAIF) and the `yield` hint.
//!
//! Changing DAIF is safe here: it only decides which exceptions are taken,
//! and the vectors handle every kind (an unexpected one ends the run with a
//! `GUEST FAIL` line).

use core::arch::asm;

/// MPIDR_EL1 of the calling CPU (as the hypervisor presents it).
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v
}

/// Hands the host CPU to another vCPU: under QEMU TCG a guest `yield` ends
/// this vCPU's time slice. Architecturally only a hint.
pub fn yield_now() {
    // SAFETY: a hint instruction; no memory or register effects.
    unsafe { asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// Masks every exception kind (DAIF = 0b1111).
pub fn mask_all() {
    // SAFETY: see the module comment; masking only.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
}

/// Unmasks every exception kind (DAIF = 0).
pub fn unmask_all() {
    // SAFETY: see the module comment.
    unsafe { asm!("msr daifclr, #0xf", options(nomem, nostack)) };
}

/// Masks IRQs only (PSTATE.I), effective at once.
pub fn mask_irq() {
    // SAFETY: see the module comment; masking only.
    unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
}

/// Unmasks IRQs only (PSTATE.I), effective at once.
pub fn unmask_irq() {
    // SAFETY: see the module comment.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

/// Runs `f` with every exception kind unmasked, then masks them all again.
pub fn with_all_unmasked<R>(f: impl FnOnce() -> R) -> R {
    unmask_all();
    let r = f();
    mask_all();
    r
}
