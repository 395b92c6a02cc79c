//! Stress, the way TF-A's TFTF "extensive" tests and kvm-unit-tests do it:
//! rounds of all-core CPU_OFF/CPU_ON, random hotplug operations,
//! the CPU_ON race, and FAST_STOP in the middle of CPU_ON/CPU_OFF storms.
//! Each test prints `GUEST STRESS <test> cycles=<n> lost=<n>`; a lost CPU
//! (one that never reaches OFF, or cannot be started again) fails the test.
//! Counts can be lowered with `stress_rounds=N` (default 1000) and
//! `stress_stops=N` (default 50) for quick runs.

use super::common::*;
use core::sync::atomic::{AtomicU64, Ordering::*};
use guestlib::abi::*;
use guestlib::arch::smp::{self, job_wait};
use guestlib::framework::{Suite, Test};
use guestlib::time::{now_ns, spin_until};
use guestlib::{Env, TestResult, ensure, gprintln, msg, psci};

pub static SUITE: Suite<Env> = Suite {
    name: "stress",
    tests: &TESTS,
};

static TESTS: [Test<Env>; 4] = [
    Test::new("all_core_off_on_rounds", all_core_off_on_rounds)
        .cpus(2)
        .skip_if(skip_plain),
    Test::new("random_hotplug", random_hotplug)
        .cpus(2)
        .skip_if(skip_plain),
    Test::new("cpu_on_race_one_success", cpu_on_race_one_success)
        .cpus(3)
        .skip_if(skip_plain),
    Test::new("fast_stop_during_storms", fast_stop_during_storms)
        .cpus(2)
        .skip_if(skip_plain),
];

fn rounds(env: &Env) -> u64 {
    env.opts().get_u64("stress_rounds").unwrap_or(1000)
}

fn report(name: &str, cycles: u64, lost: u64, started_ns: u64) {
    gprintln!(
        "GUEST STRESS {} cycles={} lost={} ms={}",
        name,
        cycles,
        lost,
        (now_ns() - started_ns) / 1_000_000
    );
}

/// After a phase: every secondary must reach OFF, then start and stop
/// again. Returns how many did not (lost CPUs).
fn count_lost(env: &Env) -> u64 {
    let mut lost = 0;
    for idx in env.secondaries() {
        if smp::wait_off(env, idx, smp::OFF_TIMEOUT_US).is_err()
            || smp::start(env, idx, nop_job, cookie()).is_err()
            || smp::wait_off(env, idx, smp::OFF_TIMEOUT_US).is_err()
        {
            gprintln!("GUEST STRESS lost cpu{}", idx);
            lost += 1;
        }
    }
    lost
}

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

/// N rounds: CPU_ON every secondary (each runs a job that just returns, so
/// it calls CPU_OFF at once), then wait until every one reads OFF.
fn all_core_off_on_rounds(env: &Env) -> TestResult {
    let t0 = now_ns();
    let n = rounds(env);
    let mut cycles = 0;
    for round in 0..n {
        for idx in env.secondaries() {
            let st = smp::cpu_on(env, idx, nop_job, cookie());
            ensure!(
                st == SUCCESS,
                "round {}: CPU_ON(cpu{}) = {} ({})",
                round,
                idx,
                st,
                status_name(st)
            );
        }
        for idx in env.secondaries() {
            smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
                .map_err(|e| msg!("round {}: {}", round, e))?;
            cycles += 1;
        }
    }
    let lost = count_lost(env);
    report("all_core_off_on_rounds", cycles, lost, t0);
    ensure!(lost == 0, "{} CPUs lost", lost);
    Ok(())
}

/// Scratch word: the controller tells a CPU started in generation `g`
/// (its context_id's cookie) to turn itself off by storing `g` here.
const S_OFF_GEN: usize = 0;

fn until_told_job(idx: usize, ctx: u64) {
    let s = smp::slot(idx);
    let generation = ctx >> 8;
    job_wait(smp::JOB_WAIT_US, || {
        s.scratch[S_OFF_GEN].load(Acquire) >= generation
    });
}

/// N random operations on random secondaries, none waiting for the last
/// to finish: CPU_ON (SUCCESS, or ALREADY_ON / ON_PENDING while the CPU's
/// previous life is still ending), or telling a CPU started earlier to
/// CPU_OFF. At the end every CPU must have entered exactly once per
/// successful CPU_ON, and every CPU must still work (none lost).
fn random_hotplug(env: &Env) -> TestResult {
    let t0 = now_ns();
    let n = rounds(env);
    let nsec = (env.ncpus - 1) as u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ env.ncpus as u64;
    let mut generation = [0u64; guestlib::MAX_CPUS];
    let mut on = [false; guestlib::MAX_CPUS];
    let mut base = [0u64; guestlib::MAX_CPUS];
    for idx in env.secondaries() {
        smp::slot(idx).clear_scratch();
        base[idx] = smp::slot(idx).entries();
    }
    let (mut started, mut stopped, mut busy) = (0u64, 0u64, 0u64);
    let deadline = now_ns() + 600_000_000_000;
    let mut op = 0;
    while op < n {
        ensure!(
            now_ns() < deadline,
            "only {} of {} operations in 600 s",
            op,
            n
        );
        let pick = (xorshift(&mut seed) % nsec) as usize;
        let idx = env.secondaries().nth(pick).unwrap_or(1);
        let s = smp::slot(idx);
        if on[idx] {
            if xorshift(&mut seed).is_multiple_of(2) {
                s.scratch[S_OFF_GEN].store(generation[idx], Release);
                on[idx] = false;
                stopped += 1;
                op += 1;
            }
            continue;
        }
        // A CPU that reads OFF must accept CPU_ON; one still ending its
        // previous life may answer ALREADY_ON or ON_PENDING.
        let was_off = psci::hvc().affinity_info(env.mpidr(idx), 0) == AFF_OFF;
        match smp::cpu_on(env, idx, until_told_job, generation[idx] + 1) {
            SUCCESS => {
                generation[idx] += 1;
                on[idx] = true;
                started += 1;
                op += 1;
            }
            ALREADY_ON | ON_PENDING if !was_off => busy += 1,
            st => {
                return Err(msg!(
                    "op {}: CPU_ON(cpu{}) = {} ({}){}",
                    op,
                    idx,
                    st,
                    status_name(st),
                    if was_off {
                        " right after it read OFF"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    for idx in env.secondaries() {
        smp::slot(idx).scratch[S_OFF_GEN].store(u64::MAX, Release);
    }
    for idx in env.secondaries() {
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
        let entered = smp::slot(idx).entries() - base[idx];
        ensure!(
            entered == generation[idx],
            "cpu{}: {} successful CPU_ONs but {} entries",
            idx,
            generation[idx],
            entered
        );
    }
    let lost = count_lost(env);
    gprintln!(
        "GUEST STRESS random_hotplug on={} off={} busy={}",
        started,
        stopped,
        busy
    );
    report("random_hotplug", n, lost, t0);
    ensure!(lost == 0, "{} CPUs lost", lost);
    Ok(())
}

static RACE_ROUND: AtomicU64 = AtomicU64::new(0);
static RACE_TARGET: AtomicU64 = AtomicU64::new(0);
const S_READY: usize = 1;
const S_RESULT: usize = 2;
const S_DONE: usize = 3;
const S_ROUND: usize = 4;

fn racer_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    let round = s.scratch[S_ROUND].load(Acquire);
    s.scratch[S_READY].store(1, Release);
    if !job_wait(smp::JOB_WAIT_US, || RACE_ROUND.load(Acquire) == round) {
        return;
    }
    let target = RACE_TARGET.load(Relaxed) as usize;
    let c = smp::ctx(target, cookie());
    let st = psci::hvc().cpu_on(guestlib::env().mpidr(target), guestlib::entry_point(), c);
    s.scratch[S_RESULT].store(st as i64 as u64, Release);
    s.scratch[S_DONE].store(1, Release);
}

/// Every secondary but one races CPU_ON of the remaining OFF one, many
/// rounds: exactly one SUCCESS, the others ALREADY_ON or ON_PENDING
/// (docs/psci-conformance.md says which and why), and the target enters once.
fn cpu_on_race_one_success(env: &Env) -> TestResult {
    let t0 = now_ns();
    let n = (rounds(env) / 50).max(3);
    let nsec = env.ncpus - 1;
    let mut cycles = 0;
    for round in 0..n {
        let target = env.secondaries().nth(round as usize % nsec).unwrap_or(1);
        let tag = 0x1000 + round;
        let ts = smp::slot(target);
        ts.clear_scratch();
        ts.set_job(hold_job);
        ts.off_conduit.store(0, Release);
        RACE_TARGET.store(target as u64, Relaxed);
        for h in env.secondaries().filter(|&i| i != target) {
            let s = smp::slot(h);
            s.clear_scratch();
            s.scratch[S_ROUND].store(tag, Release);
            smp::start(env, h, racer_job, cookie())?;
        }
        for h in env.secondaries().filter(|&i| i != target) {
            ensure!(
                spin_until(smp::ENTRY_TIMEOUT_US, || smp::slot(h).scratch[S_READY]
                    .load(Acquire)
                    != 0),
                "round {}: racer cpu{} not ready",
                round,
                h
            );
        }
        let before = ts.entries();
        RACE_ROUND.store(tag, Release);
        let mut wins = 0;
        let mut bad = None;
        for h in env.secondaries().filter(|&i| i != target) {
            let s = smp::slot(h);
            ensure!(
                spin_until(smp::ENTRY_TIMEOUT_US, || s.scratch[S_DONE].load(Acquire)
                    != 0),
                "round {}: racer cpu{} never returned from CPU_ON",
                round,
                h
            );
            match s.scratch[S_RESULT].load(Acquire) as i64 as i32 {
                SUCCESS => wins += 1,
                ALREADY_ON | ON_PENDING => {}
                other => bad = Some((h, other)),
            }
        }
        ensure!(bad.is_none(), "round {}: a racer got {:?}", round, bad);
        ensure!(
            wins == 1,
            "round {}: {} racers got SUCCESS for cpu{}",
            round,
            wins,
            target
        );
        ensure!(
            smp::wait_entered(target, before, smp::ENTRY_TIMEOUT_US),
            "round {}: target cpu{} never entered",
            round,
            target
        );
        ts.scratch[S_RELEASE].store(1, Release);
        for idx in env.secondaries() {
            smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
                .map_err(|e| msg!("round {}: {}", round, e))?;
        }
        ensure!(
            ts.entries() == before + 1,
            "round {}: target entered {} times",
            round,
            ts.entries() - before
        );
        cycles += 1;
    }
    let lost = count_lost(env);
    report("cpu_on_race_one_success", cycles, lost, t0);
    ensure!(lost == 0, "{} CPUs lost", lost);
    Ok(())
}

/// How many CPU_ONs a storming CPU issues before it turns itself off.
const STORM_LEN: u64 = 64;

/// A storming CPU: CPU_ON of random other secondaries (which storm too),
/// then CPU_OFF. Results are ignored: most targets are already ON.
fn storm_job(idx: usize, ctx: u64) {
    let env = guestlib::env();
    let nsec = (env.ncpus - 1) as u64;
    let mut seed = ctx | 1;
    for _ in 0..STORM_LEN {
        if smp::aborting() {
            return;
        }
        let pick = (xorshift(&mut seed) % nsec) as usize;
        if let Some(t) = env.secondaries().nth(pick)
            && t != idx
        {
            smp::cpu_on(env, t, storm_job, cookie());
        }
    }
}

/// Rounds of: start a CPU_ON/CPU_OFF storm on the secondaries, wait a
/// random while, FAST_STOP. FAST_STOP must succeed with every other vCPU
/// OFF (none ON or pending, none running a job), then every CPU must start
/// and stop normally again.
fn fast_stop_during_storms(env: &Env) -> TestResult {
    let t0 = now_ns();
    let n = env.opts().get_u64("stress_stops").unwrap_or(50);
    let mut seed = 0x51ED_270B ^ env.ncpus as u64;
    let mut stopped_total = 0;
    for round in 0..n {
        for idx in env.secondaries() {
            smp::slot(idx).clear_scratch();
        }
        let first = env.secondaries().next().unwrap_or(1);
        smp::start(env, first, storm_job, cookie())?;
        guestlib::time::delay_us(xorshift(&mut seed) % 3000);
        // The fast_stop suite's deadline: 32 TCG vCPUs on a small shared
        // host can take seconds to all take the stop SGI.
        let r = psci::vendor::fast_stop(30_000_000, 0);
        ensure!(
            r.status == SUCCESS,
            "round {}: FAST_STOP = {} ({}), {} stopped, {} not confirmed",
            round,
            r.status,
            status_name(r.status),
            r.stopped,
            r.missed
        );
        stopped_total += r.stopped;
        for idx in env.secondaries() {
            let a = psci::hvc().affinity_info(env.mpidr(idx), 0);
            ensure!(
                a == AFF_OFF,
                "round {}: cpu{} reads {} right after FAST_STOP, expected OFF",
                round,
                idx,
                a
            );
        }
        let lost = count_lost(env);
        ensure!(
            lost == 0,
            "round {}: {} CPUs lost after FAST_STOP",
            round,
            lost
        );
    }
    report("fast_stop_during_storms", n, 0, t0);
    gprintln!(
        "GUEST STRESS fast_stop_during_storms stopped_vcpus={}",
        stopped_total
    );
    Ok(())
}
