//! Busy secondaries: the counting jobs that secondaries run while a test
//! stops, fuzzes or measures them, and starting every secondary in one.
//! Each job counts in its slot's scratch word [`S_COUNT`] until the test's
//! cleanup says stop ([`smp::aborting`]) or the hypervisor stops the CPU.

use super::common::cookie;
use core::sync::atomic::Ordering::*;
use guestlib::abi::{SUCCESS, status_name};
use guestlib::arch::smp::{self, aborting};
use guestlib::arch::{cpu, time};
use guestlib::{Env, Msg, TestResult, ensure};

/// The slot scratch word a busy job counts in.
pub const S_COUNT: usize = 0;

/// How long to wait for a CPU_ON'd CPU to show up (scaled with vCPUs: TCG
/// with more vCPUs than host cores can leave one waiting a long time).
pub fn entry_wait_us() -> u64 {
    smp::ENTRY_TIMEOUT_US * (1 + guestlib::env().ncpus as u64 / 8)
}

/// CPU `idx`'s busy counter.
pub fn count(idx: usize) -> u64 {
    smp::slot(idx).scratch[S_COUNT].load(Relaxed)
}

/// Counts in the slot of `idx` until the test ends.
pub fn count_until_aborted(idx: usize) {
    let s = smp::slot(idx);
    while !aborting() {
        let v = s.scratch[S_COUNT].load(Relaxed);
        s.scratch[S_COUNT].store(v + 1, Relaxed);
    }
}

/// Busy job with every DAIF bit clear (masked again before CPU_OFF).
pub fn unmasked_job(idx: usize, _ctx: u64) {
    cpu::with_all_unmasked(|| count_until_aborted(idx));
}

/// Busy job with DAIF fully masked.
pub fn masked_job(idx: usize, _ctx: u64) {
    cpu::mask_all();
    count_until_aborted(idx);
}

/// CPU_ON of `idx` into `job`, waiting up to `wait_us` for it to enter.
pub fn start_within(env: &Env, idx: usize, job: smp::Job, wait_us: u64) -> TestResult {
    let before = smp::slot(idx).entries();
    cpu_on(env, idx, job)?;
    expect_entered(idx, before, wait_us)
}

fn cpu_on(env: &Env, idx: usize, job: smp::Job) -> TestResult {
    let st = smp::cpu_on(env, idx, job, cookie());
    ensure!(
        st == SUCCESS,
        "CPU_ON(cpu{}) = {} ({})",
        idx,
        st,
        status_name(st)
    );
    Ok(())
}

fn expect_entered(idx: usize, before: u64, wait_us: u64) -> TestResult {
    ensure!(
        smp::wait_entered(idx, before, wait_us),
        "{}",
        smp::no_entry_reason(idx)
    );
    Ok(())
}

/// [`start_within`] with [`entry_wait_us`].
pub fn start_long(env: &Env, idx: usize, job: smp::Job) -> TestResult {
    start_within(env, idx, job, entry_wait_us())
}

/// Starts every secondary except `skip` in `job` (scratch cleared) and
/// waits up to `wait_us` for each to enter and for its counter to move.
/// Returns how many run.
pub fn start_all_within(
    env: &Env,
    job: smp::Job,
    skip: Option<usize>,
    wait_us: u64,
) -> Result<u64, Msg> {
    // Every CPU_ON first, then the waits: the targets start together, and
    // none waits for its wake-up behind CPUs already busy (under QEMU's
    // single-threaded round robin a busy CPU holds its whole turn).
    let mut entries = [0u64; guestlib::env::MAX_CPUS];
    let mut n = 0;
    for idx in env.secondaries().filter(|&i| Some(i) != skip) {
        smp::slot(idx).clear_scratch();
        entries[idx] = smp::slot(idx).entries();
        cpu_on(env, idx, job)?;
        n += 1;
    }
    for idx in env.secondaries().filter(|&i| Some(i) != skip) {
        expect_entered(idx, entries[idx], wait_us)?;
        ensure!(
            time::spin_until(wait_us, || count(idx) > 0),
            "cpu{} entered but its counter never moved",
            idx
        );
    }
    Ok(n)
}

/// [`start_all_within`] with [`entry_wait_us`].
pub fn start_all(env: &Env, job: smp::Job, skip: Option<usize>) -> Result<u64, Msg> {
    start_all_within(env, job, skip, entry_wait_us())
}
