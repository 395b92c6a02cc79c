//! Helpers shared by the suites.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::*};
use guestlib::abi::{AFF_OFF, AFF_ON, AFF_ON_PENDING, status_name};
use guestlib::arch::smp::{self, job_wait};
use guestlib::{Env, Msg, TestResult, ensure, msg};

/// Scratch word a held job sets once it runs.
pub const S_ALIVE: usize = 6;
/// Scratch word the controller sets to let a held job return.
pub const S_RELEASE: usize = 7;

static COOKIE: AtomicU64 = AtomicU64::new(0x00A5_5A00_0000);

/// A fresh context cookie (bits above the slot byte of context_id); uses
/// the upper half of the register so a truncated x0 is caught.
pub fn cookie() -> u64 {
    0x00C0_DE00_0000_0000 >> 8 | COOKIE.fetch_add(1, Relaxed)
}

/// 32-bit-safe cookie for CPU_ON_32 (context_id fits in 32 bits).
pub fn cookie32() -> u64 {
    0x00C3_0000 | (COOKIE.fetch_add(1, Relaxed) & 0xFFFF)
}

/// Skips a test of something only a GICv3 has (ICC_SGI1R affinity
/// routing, redistributors, priorities set from another CPU).
pub fn skip_gicv2(env: &Env) -> Option<Msg> {
    env.is_gicv2()
        .then(|| msg!("GICv3 only (this board has a GICv2)"))
}

/// Both of the above: a GICv3-only test that needs parkvisor.
pub fn skip_plain_or_gicv2(env: &Env) -> Option<Msg> {
    skip_plain(env).or_else(|| skip_gicv2(env))
}

/// Skips tests that need parkvisor when running on plain QEMU (`plain=1`).
pub fn skip_plain(env: &Env) -> Option<Msg> {
    env.opts()
        .plain()
        .then(|| msg!("needs parkvisor (plain QEMU run)"))
}

/// A job that marks itself alive and waits (bounded) to be released.
pub fn hold_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[S_ALIVE].store(1, Release);
    job_wait(smp::JOB_WAIT_US, || s.scratch[S_RELEASE].load(Acquire) != 0);
}

/// A job that does nothing (the CPU goes straight to CPU_OFF).
pub fn nop_job(_idx: usize, _ctx: u64) {}

/// Starts CPU `idx` running [`hold_job`] and waits until it is alive.
pub fn start_held(env: &Env, idx: usize) -> TestResult {
    let s = smp::slot(idx);
    s.clear_scratch();
    smp::start(env, idx, hold_job, cookie())?;
    ensure!(
        guestlib::time::spin_until(smp::ENTRY_TIMEOUT_US, || s.scratch[S_ALIVE].load(Acquire)
            != 0),
        "cpu{} entered but its job never ran",
        idx
    );
    Ok(())
}

/// Starts every secondary with [`hold_job`].
pub fn start_all_held(env: &Env) -> TestResult {
    for idx in env.secondaries() {
        start_held(env, idx)?;
    }
    Ok(())
}

pub fn release(idx: usize) {
    smp::slot(idx).scratch[S_RELEASE].store(1, Release);
}

/// Releases every secondary and waits for each to be OFF.
pub fn release_all_and_wait_off(env: &Env) -> TestResult {
    for idx in env.secondaries() {
        release(idx);
    }
    for idx in env.secondaries() {
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    Ok(())
}

/// Formats a list of small integers for messages.
pub fn list(v: &[i32]) -> Msg {
    let mut m = Msg::new();
    for (i, x) in v.iter().enumerate() {
        let _ = core::fmt::Write::write_fmt(
            &mut m,
            format_args!("{}{}", if i > 0 { "," } else { "" }, x),
        );
    }
    m
}

/// Plain QEMU 7.2's built-in PSCI (the development baseline) is known to
/// fail some checks; with `plain=1` those tests are skipped, naming the quirk.
/// Under parkvisor they always run.
fn plain_quirk(env: &Env, quirk: &str) -> Option<Msg> {
    env.opts()
        .plain()
        .then(|| msg!("plain QEMU's PSCI quirk: {}", quirk))
}

pub fn quirk_no_reset2_smccc(env: &Env) -> Option<Msg> {
    plain_quirk(env, "no SYSTEM_RESET2 / SMCCC_VERSION")
}

pub fn quirk_aff_level(env: &Env) -> Option<Msg> {
    plain_quirk(env, "AFFINITY_INFO ignores the level")
}

pub fn quirk_racy_cpu_on(env: &Env) -> Option<Msg> {
    plain_quirk(
        env,
        "CPU_ON is not atomic (reads OFF after SUCCESS; racing callers both succeed)",
    )
}

/// `expect_ret!(got, want, "CALL(args)", args..)`: the PSCI status `got`
/// must be `want` (or one of `[A, B, ..]`); otherwise the test fails with
/// `CALL(args) = got (NAME), expected want (NAME)`.
macro_rules! expect_ret {
    ($($t:tt)+) => { $crate::suites::common::expect_named!(guestlib::abi::status_name, $($t)+) };
}
pub(crate) use expect_ret;

/// `expect_aff!(got, want, "AFFINITY_INFO(args)", args..)`: as
/// [`expect_ret!`] for an AFFINITY_INFO answer (a state or a status).
macro_rules! expect_aff {
    ($($t:tt)+) => { $crate::suites::common::expect_named!($crate::suites::common::aff_name, $($t)+) };
}
pub(crate) use expect_aff;

/// The body of [`expect_ret!`] and [`expect_aff!`], with the naming function.
macro_rules! expect_named {
    ($name:expr, $got:expr, [$($want:expr),+], $($call:tt)+) => {
        $crate::suites::common::check_named(format_args!($($call)+), $got, &[$($want),+], $name)?
    };
    ($name:expr, $got:expr, $want:expr, $($call:tt)+) => {
        $crate::suites::common::check_named(format_args!($($call)+), $got, &[$want], $name)?
    };
}
pub(crate) use expect_named;

/// `expect_within!(timeout_us, cond, "what", args..)`: the closure `cond`
/// must come true within the timeout; otherwise the test fails with `what`.
macro_rules! expect_within {
    ($us:expr, $cond:expr, $($what:tt)+) => {
        guestlib::ensure!(guestlib::time::spin_until($us, $cond), $($what)+)
    };
}
pub(crate) use expect_within;

/// `expect_hex!(got, want, "what", args..)`: a value that is not a status
/// (a version, a flags word) must be `want`; shown in hex.
macro_rules! expect_hex {
    ($got:expr, $want:expr, $($what:tt)+) => {{
        let (got, want): (u64, u64) = ($got as u64, $want as u64);
        guestlib::ensure!(
            got == want,
            "{} = {:#x}, expected {:#x}",
            format_args!($($what)+),
            got,
            want
        );
    }};
}
pub(crate) use expect_hex;

/// The name of an AFFINITY_INFO answer: a state, or an error status.
pub fn aff_name(a: i32) -> &'static str {
    match a {
        AFF_ON => "ON",
        AFF_OFF => "OFF",
        AFF_ON_PENDING => "ON_PENDING",
        _ => status_name(a),
    }
}

/// Fails with `call = got (name), expected A (name) [or B (name) ..]`
/// unless `got` is one of `want`.
pub fn check_named(
    call: fmt::Arguments<'_>,
    got: i32,
    want: &[i32],
    name: fn(i32) -> &'static str,
) -> TestResult {
    if want.contains(&got) {
        return Ok(());
    }
    let mut expected = Msg::new();
    for (i, &w) in want.iter().enumerate() {
        let sep = if i > 0 { " or " } else { "" };
        let _ = fmt::Write::write_fmt(&mut expected, format_args!("{}{} ({})", sep, w, name(w)));
    }
    Err(msg!(
        "{} = {} ({}), expected {}",
        call,
        got,
        name(got),
        expected
    ))
}

/// CPU `idx`, whose entry count was `before`, must enter within
/// [`smp::ENTRY_TIMEOUT_US`]; the failure says what its slot recorded.
pub fn expect_entered(idx: usize, before: u64) -> TestResult {
    ensure!(
        smp::wait_entered(idx, before, smp::ENTRY_TIMEOUT_US),
        "{}",
        smp::no_entry_reason(idx)
    );
    Ok(())
}

/// CPU `idx` entered exactly `n` times since its entry count was `before`.
pub fn expect_entries(idx: usize, before: u64, n: u64) -> TestResult {
    let got = smp::slot(idx).entries() - before;
    ensure!(got == n, "cpu{} entered {} times, expected {}", idx, got, n);
    Ok(())
}
