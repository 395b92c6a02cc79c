//! `fuzz`: every vCPU issues random function IDs and arguments through HVC
//! and SMC (xorshift64, seeded per CPU), avoiding only the calls that end or
//! suspend the caller or the system (SYSTEM_OFF/RESET/RESET2, CPU_OFF,
//! CPU_SUSPEND and friends, CPU_ON, FAST_STOP) and TRACE_MARK (serial volume).
//!
//! Checks: every CPU finishes its calls and reports; every ID of an owner
//! parkvisor does not implement (anything but arch 0, standard 4/5 and vendor
//! hyp 6) returns NOT_SUPPORTED (-1); afterwards PSCI, CPU_ON and FAST_STOP
//! still work.

use super::common::{skip_plain, skip_plain_or_gicv2};
use core::sync::atomic::{AtomicU64, Ordering::*};
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::smp::{self, aborting};
use guestlib::arch::{psci, time};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, MAX_CPUS, TestResult, ensure, gprintln, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "fuzz",
    tests: &[
        Test::new("fuzz_all_cpus", fuzz_all).skip_if(skip_plain),
        Test::new("gic_and_calls", super::fuzz_gic::gic_and_calls).skip_if(skip_plain_or_gicv2),
        Test::new("still_works_after_fuzz", still_works).skip_if(skip_plain),
    ],
};

const CALLS: u64 = 5000;

/// Per-CPU results: done flag, calls made, wrong answers, first wrong one.
static DONE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static BAD: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static BAD_FID: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static BAD_X0: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

/// Calls that would end, suspend or restart a CPU or the system (checked on
/// the owner and the low 16 bits, whatever bits 31/30 say).
pub(super) fn forbidden(fid: u32) -> bool {
    let owner = (fid >> 24) & 0x3F;
    let num = fid & 0xFFFF;
    match owner {
        // PSCI: CPU_SUSPEND 1, CPU_OFF 2, CPU_ON 3, SYSTEM_OFF 8,
        // SYSTEM_RESET 9, CPU_FREEZE 0xB, CPU_DEFAULT_SUSPEND 0xC,
        // SYSTEM_SUSPEND 0xE, SYSTEM_RESET2 0x12, SYSTEM_OFF2 0x15.
        4 => matches!(num, 1 | 2 | 3 | 8 | 9 | 0xB | 0xC | 0xE | 0x12 | 0x15),
        // Vendor hyp: FAST_STOP 1, TRACE_MARK 3.
        6 => matches!(num, 1 | 3),
        _ => false,
    }
}

fn random_fid(s: &mut u64) -> u32 {
    let r = xorshift(s);
    let hi = (r >> 32) as u32;
    match r % 8 {
        0 | 1 => hi, // anything
        // Fast calls of the implemented services, random numbers.
        2 => 0x8400_0000 | (hi & 0x4000_001F),
        3 => 0x8600_0000 | (hi & 0x4000_00FF),
        4 => 0x8600_FF00 | (hi & 0x4000_00FF),
        5 => 0x8000_0000 | (hi & 0x4000_FFFF),
        // Fast calls of other owners.
        6 => 0x8000_0000 | (hi & 0x7F00_FFFF),
        _ => 0x8500_0000 | (hi & 0x4000_00FF),
    }
}

fn fuzz(idx: usize) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ ((idx as u64 + 1) * 0x10_0000_01B3);
    let mut bad = 0u64;
    for i in 0..CALLS {
        if aborting() {
            break;
        }
        let mut fid = random_fid(&mut s);
        while forbidden(fid) {
            fid = random_fid(&mut s);
        }
        let (a1, a2, a3) = (xorshift(&mut s), xorshift(&mut s), xorshift(&mut s));
        let conduit = if i & 1 == 0 {
            Conduit::Hvc
        } else {
            Conduit::Smc
        };
        let r = call(conduit, fid, a1, a2, a3);
        let owner = (fid >> 24) & 0x3F;
        if !matches!(owner, 0 | 4 | 5 | 6) && status(r[0]) != NOT_SUPPORTED {
            if bad == 0 {
                BAD_FID[idx].store(fid as u64, Relaxed);
                BAD_X0[idx].store(r[0], Relaxed);
            }
            bad += 1;
        }
    }
    BAD[idx].store(bad, Relaxed);
    DONE[idx].store(1, Release);
}

fn fuzz_job(idx: usize, _ctx: u64) {
    fuzz(idx);
}

fn fuzz_all(env: &Env) -> TestResult {
    for i in 0..env.ncpus {
        DONE[i].store(0, SeqCst);
        BAD[i].store(0, SeqCst);
    }
    for idx in env.secondaries() {
        super::busy::start_long(env, idx, fuzz_job)?;
    }
    let t0 = time::now_ns();
    fuzz(env.boot_idx);
    for (idx, done) in DONE.iter().enumerate().take(env.ncpus) {
        ensure!(
            time::spin_until(240_000_000, || done.load(Acquire) != 0),
            "cpu{} never finished its {} calls",
            idx,
            CALLS
        );
    }
    gprintln!(
        "fuzz: {} CPUs x {} calls in {} ms",
        env.ncpus,
        CALLS,
        (time::now_ns() - t0) / 1_000_000
    );
    for idx in 0..env.ncpus {
        let b = BAD[idx].load(Relaxed);
        ensure!(
            b == 0,
            "cpu{}: {} unknown-owner IDs did not return -1, first {:#x} -> x0 {:#x}",
            idx,
            b,
            BAD_FID[idx].load(Relaxed),
            BAD_X0[idx].load(Relaxed)
        );
    }
    for idx in env.secondaries() {
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    Ok(())
}

/// The hypervisor is still in one piece: PSCI answers, CPU_ON and FAST_STOP
/// work on every secondary.
fn still_works(env: &Env) -> TestResult {
    let v = psci::hvc().version();
    ensure!(
        v == PSCI_VERSION_1_1,
        "PSCI_VERSION = {:#x} after fuzzing",
        v
    );
    let n = super::busy::start_all(env, super::busy::masked_job, None)
        .map_err(|e| msg!("after fuzzing: {}", e))?;
    super::fast_stop::stop_all_checked(env, n, super::fast_stop::deadline_us())
}
