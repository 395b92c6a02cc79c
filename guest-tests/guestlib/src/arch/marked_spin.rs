//! A spin with interrupts masked and known register contents, for checking
//! the registers FAST_STOP's SAVE_REGS reports: a CPU stopped in it must show
//! a PC inside [`range`] and x19..x28 = [`marker`]`(cpu, n)`.

core::arch::global_asm!(
    r#"
    .text
    .balign 4
    .global pv_marked_spin
    // x0 = the marker base (cpu tag): x19..x28 = base + 0..9, then spin
    // forever with DAIF masked. Never returns.
pv_marked_spin:
    msr     daifset, #0xf
    add     x19, x0, #0
    add     x20, x0, #1
    add     x21, x0, #2
    add     x22, x0, #3
    add     x23, x0, #4
    add     x24, x0, #5
    add     x25, x0, #6
    add     x26, x0, #7
    add     x27, x0, #8
    add     x28, x0, #9
1:  b       1b
    .global pv_marked_spin_end
pv_marked_spin_end:
    "#
);

unsafe extern "C" {
    fn pv_marked_spin(base: u64) -> !;
    static pv_marked_spin_end: u8;
}

/// What x(19 + n) holds while `cpu` spins.
pub const fn marker(cpu: usize, n: u64) -> u64 {
    0x5a7e_0000_0000 | (cpu as u64) << 8 | n
}

/// The code addresses of the spin: `[start, end)`.
pub fn range() -> (u64, u64) {
    (
        pv_marked_spin as *const () as u64,
        &raw const pv_marked_spin_end as u64,
    )
}

/// Spins forever with interrupts masked and the markers of `cpu` in
/// x19..x28; only the hypervisor can take this CPU out.
pub fn spin(cpu: usize) -> ! {
    // SAFETY: the routine only writes callee-saved registers it never
    // restores, which is fine because it never returns; it touches no memory.
    unsafe { pv_marked_spin(marker(cpu, 0)) }
}
