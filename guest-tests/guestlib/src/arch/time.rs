//! Time from the EL1 virtual counter.

#[inline]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

#[inline]
pub fn freq() -> u64 {
    let v: u64;
    // SAFETY: as above.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    if v == 0 { 62_500_000 } else { v }
}

pub fn ticks_to_ns(t: u64) -> u64 {
    (t as u128 * 1_000_000_000 / freq() as u128) as u64
}

pub fn us_to_ticks(us: u64) -> u64 {
    (us as u128 * freq() as u128 / 1_000_000) as u64
}

pub fn now_ns() -> u64 {
    ticks_to_ns(counter())
}

/// Waits `us`. Waits `yield` ([`super::cpu::yield_now`]): a no-op on
/// hardware and under MTTCG, but under QEMU's single-threaded round robin
/// (`-icount`) it ends this vCPU's turn, so the CPUs it waits for get to run
/// instead of this one burning its whole slice.
pub fn delay_us(us: u64) {
    let end = counter() + us_to_ticks(us);
    while counter() < end {
        super::cpu::yield_now();
    }
}

/// Polls `f` until it returns true (-> true) or `timeout_us` passes
/// (-> false; `f` is evaluated once more at the deadline). Yields between
/// polls, as [`delay_us`] does.
pub fn spin_until(timeout_us: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = counter() + us_to_ticks(timeout_us);
    loop {
        if f() {
            return true;
        }
        if counter() >= end {
            return f();
        }
        super::cpu::yield_now();
    }
}
