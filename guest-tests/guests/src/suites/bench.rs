//! `bench`: how long the boot vCPU needs to get every secondary out of the
//! guest with confirmed exit, three ways (see `docs/benchmarks.md`,
//! `scripts/bench-fast-stop.sh`):
//!
//! * `fast_stop`: one vendor FAST_STOP call (abi.md). Guest time around the
//!   HVC from CNTVCT_EL0, the hypervisor's own elapsed ns from x3.
//! * `serial_cpu_off`: what a stock kernel does (kexec, hotplug): secondary
//!   by secondary, set the secondary's flag (it calls PSCI CPU_OFF when it
//!   sees it), poll AFFINITY_INFO until OFF, then the next one.
//! * `parallel_cpu_off`: every flag set at once, then AFFINITY_INFO polled
//!   round-robin over the secondaries until all are OFF.
//! * `cpu_on_off` (the cost of the trace on the power calls): one
//!   secondary at a time, CPU_ON → ON latency (the boot vCPU's counter just
//!   before `smp::cpu_on` to the target's first counter read in its job,
//!   guestlib's entry trampoline included) and CPU_OFF → OFF latency (the
//!   target's counter as its job returns to the trampoline that calls
//!   CPU_OFF, to the boot vCPU's first AFFINITY_INFO that says OFF). Per run
//!   the median over the secondaries; printed as methods `cpu_on` and
//!   `cpu_off`.
//!
//! Before every measurement each secondary runs a busy loop (a counter store
//! and a plain load of its flag: no `yield`, no `wfe`, DAIF masked).
//! Each method is measured `reps=` times (default 5) per boot, fewer when
//! the method's guest time so far exceeds `budget_ms=` (default 20 000 ms of
//! guest virtual time; at least one run always happens). `methods=` (comma
//! list, default all three) selects methods.
//!
//! Output, one line per run and a summary with the medians:
//!
//! ```text
//! BENCH-RUN n=8 method=fast_stop run=0 guest_ns=41000 hv_ns=40100
//! BENCH n=8 method=fast_stop guest_ns=<median> hv_ns=<median> sgi_writes=1 rounds=5 calls=5
//! BENCH n=8 method=serial_cpu_off guest_ns=<median> rounds=5
//! ```
//!
//! `sgi_writes=1` is the protocol's guarantee (hypervisor/src/fast_stop.rs:
//! one broadcast SGI write and one wait phase per call), not something the
//! guest can observe; `calls=` is how many FAST_STOP calls this boot made, so
//! the host script can check one `fast-stop begin`/`end` trace pair per call.
//!
//! Sanity (a failed check is a `GUEST FAIL`, and no `BENCH` summary line is
//! printed for that method): FAST_STOP returns 0 with x1 = N-1 and x2 = 0;
//! afterwards AFFINITY_INFO and VCPU_STATE say OFF for every secondary and
//! the busy counters stand still; after the CPU_OFF methods AFFINITY_INFO is
//! OFF for every secondary and no CPU_OFF returned.

use super::busy;
use super::common::{cookie, expect_ret, skip_plain};
use core::sync::atomic::Ordering::*;
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::smp::{self, aborting};
use guestlib::arch::{cpu, psci, time, vendor};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, MAX_CPUS, Msg, TestResult, ensure, gprintln, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "bench",
    tests: &[
        Test::new("fast_stop", fast_stop)
            .cpus(2)
            .skip_if(skip_fast_stop),
        Test::new("serial_cpu_off", serial_cpu_off)
            .cpus(2)
            .skip_if(skip_serial),
        Test::new("parallel_cpu_off", parallel_cpu_off)
            .cpus(2)
            .skip_if(skip_parallel),
        Test::new("cpu_on_off", cpu_on_off)
            .cpus(2)
            .skip_if(skip_on_off),
    ],
};

/// FAST_STOP's function ID, written out (abi.md) rather than taken from
/// guestlib, as in the fast_stop suite.
const FID_FAST_STOP: u32 = 0xC600_0001;

/// Slot scratch words: the busy counter and the "call CPU_OFF now" flag.
const S_COUNT: usize = busy::S_COUNT;
const S_OFF: usize = 1;

const MAX_REPS: usize = 64;

fn enabled(env: &Env, method: &str) -> bool {
    match env.opts().get("methods") {
        None | Some("") | Some("all") => true,
        Some(list) => list.split(',').any(|m| m == method),
    }
}

fn not_selected(env: &Env, method: &str) -> Option<Msg> {
    (!enabled(env, method)).then(|| msg!("not selected by methods="))
}

fn skip_fast_stop(env: &Env) -> Option<Msg> {
    skip_plain(env).or_else(|| not_selected(env, "fast_stop"))
}

fn skip_serial(env: &Env) -> Option<Msg> {
    not_selected(env, "serial_cpu_off")
}

fn skip_parallel(env: &Env) -> Option<Msg> {
    not_selected(env, "parallel_cpu_off")
}

fn skip_on_off(env: &Env) -> Option<Msg> {
    not_selected(env, "cpu_on_off")
}

fn reps(env: &Env) -> usize {
    (env.opts().get_u64("reps").unwrap_or(5) as usize).clamp(1, MAX_REPS)
}

fn budget_ns(env: &Env) -> u64 {
    env.opts().get_u64("budget_ms").unwrap_or(20_000) * 1_000_000
}

/// Generous waits: with icount, every busy vCPU keeps the host for a whole
/// slice, and on MTTCG 64 vCPU threads share 2 host cores.
fn wait_us(env: &Env) -> u64 {
    30_000_000 * (1 + env.ncpus as u64 / 8)
}

/// The secondaries' busy loop: count, and leave (to the CPU_OFF that the
/// guestlib trampoline issues after every job) when the flag is set.
fn busy_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    let mut n = 0u64;
    loop {
        n += 1;
        s.scratch[S_COUNT].store(n, Relaxed);
        if s.scratch[S_OFF].load(Relaxed) != 0 || aborting() {
            break;
        }
    }
}

/// CPU_ONs every secondary into [`busy_job`] and waits until every counter
/// moves. Not timed.
fn start_all(env: &Env) -> TestResult {
    for idx in env.secondaries() {
        smp::slot(idx).off_returned.store(0, SeqCst);
    }
    busy::start_all_within(env, busy_job, None, wait_us(env))?;
    Ok(())
}

fn aff(env: &Env, idx: usize) -> i32 {
    psci::hvc().affinity_info(env.mpidr(idx), 0)
}

fn check_all_off(env: &Env, what: &str) -> TestResult {
    for idx in env.secondaries() {
        let a = aff(env, idx);
        ensure!(
            a == AFF_OFF,
            "after {}: cpu{} AFFINITY_INFO = {}, expected OFF (1)",
            what,
            idx,
            a
        );
        let r = smp::slot(idx).off_returned.load(Acquire);
        ensure!(r == 0, "after {}: CPU_OFF returned on cpu{}", what, idx);
    }
    Ok(())
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// One timed run: returns (guest ns, hypervisor ns or 0).
type RunFn = fn(&Env) -> Result<(u64, u64), Msg>;

/// Runs `run` up to `reps` times (each after a fresh [`start_all`]) and
/// prints the per-run lines; returns the guest and hypervisor times.
fn measure(
    env: &Env,
    method: &str,
    run: RunFn,
    g: &mut [u64; MAX_REPS],
    h: &mut [u64; MAX_REPS],
) -> Result<usize, Msg> {
    let n = env.ncpus;
    let (want, budget) = (reps(env), budget_ns(env));
    let t_begin = time::counter();
    let mut done = 0;
    while done < want {
        start_all(env)?;
        let (gns, hns) = run(env)?;
        gprintln!(
            "BENCH-RUN n={} method={} run={} guest_ns={} hv_ns={}",
            n,
            method,
            done,
            gns,
            hns
        );
        g[done] = gns;
        h[done] = hns;
        done += 1;
        if time::ticks_to_ns(time::counter() - t_begin) > budget {
            break;
        }
    }
    Ok(done)
}

// ---------------------------------------------------------------------------
// (a) FAST_STOP

/// FAST_STOP deadline: long enough for 64 busy vCPUs on 2 host cores.
const FS_TIMEOUT_US: u64 = 60_000_000;

fn fast_stop_once(env: &Env) -> Result<(u64, u64), Msg> {
    let t0 = time::counter();
    let r = call(Conduit::Hvc, FID_FAST_STOP, FS_TIMEOUT_US, 0, 0);
    let t1 = time::counter();
    let (st, stopped, missed, hv_ns) = (status(r[0]), r[1], r[2], r[3]);
    let want = env.ncpus as u64 - 1;
    ensure!(
        st == SUCCESS && stopped == want && missed == 0,
        "FAST_STOP = x0 {} ({}) x1 {} x2 {} x3 {} ns, expected 0, {}, 0",
        st,
        status_name(st),
        stopped,
        missed,
        hv_ns,
        want
    );
    for idx in env.secondaries() {
        let v = vendor::vcpu_state(env.mpidr(idx));
        ensure!(
            v == VCPU_OFF,
            "after FAST_STOP cpu{} VCPU_STATE = {}",
            idx,
            v
        );
    }
    check_all_off(env, "FAST_STOP")?;
    // Confirmed exit: no counter moves any more.
    let mut before = [0u64; MAX_CPUS];
    for idx in env.secondaries() {
        before[idx] = smp::slot(idx).scratch[S_COUNT].load(Relaxed);
    }
    time::delay_us(1_000);
    for idx in env.secondaries() {
        let now = smp::slot(idx).scratch[S_COUNT].load(Relaxed);
        ensure!(
            now == before[idx],
            "cpu{} still counting after FAST_STOP returned 0 ({} -> {})",
            idx,
            before[idx],
            now
        );
    }
    Ok((time::ticks_to_ns(t1 - t0), hv_ns))
}

fn fast_stop(env: &Env) -> TestResult {
    let (mut g, mut h) = ([0u64; MAX_REPS], [0u64; MAX_REPS]);
    let r = measure(env, "fast_stop", fast_stop_once, &mut g, &mut h);
    let done = match r {
        Ok(d) => d,
        Err(e) => {
            // Leave nothing running for the framework's cleanup.
            let _ = call(Conduit::Hvc, FID_FAST_STOP, FS_TIMEOUT_US, 0, 0);
            return Err(e);
        }
    };
    gprintln!(
        "BENCH n={} method=fast_stop guest_ns={} hv_ns={} sgi_writes=1 rounds={} calls={}",
        env.ncpus,
        median(&mut g[..done]),
        median(&mut h[..done]),
        done,
        done
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// (b) serial CPU_OFF, (c) parallel CPU_OFF

fn tell_off(idx: usize) {
    smp::slot(idx).scratch[S_OFF].store(1, Release);
}

fn serial_once(env: &Env) -> Result<(u64, u64), Msg> {
    let limit = time::us_to_ticks(wait_us(env));
    let t0 = time::counter();
    for idx in env.secondaries() {
        tell_off(idx);
        loop {
            let a = aff(env, idx);
            if a == AFF_OFF {
                break;
            }
            ensure!(
                time::counter() - t0 < limit,
                "serial: cpu{} not OFF in time (AFFINITY_INFO {})",
                idx,
                a
            );
        }
    }
    let t1 = time::counter();
    check_all_off(env, "serial CPU_OFF")?;
    Ok((time::ticks_to_ns(t1 - t0), 0))
}

fn parallel_once(env: &Env) -> Result<(u64, u64), Msg> {
    let limit = time::us_to_ticks(wait_us(env));
    let t0 = time::counter();
    for idx in env.secondaries() {
        tell_off(idx);
    }
    let mut off = [false; MAX_CPUS];
    let mut left = env.ncpus - 1;
    while left > 0 {
        for idx in env.secondaries() {
            if !off[idx] && aff(env, idx) == AFF_OFF {
                off[idx] = true;
                left -= 1;
            }
        }
        ensure!(
            left == 0 || time::counter() - t0 < limit,
            "parallel: {} secondaries not OFF in time",
            left
        );
    }
    let t1 = time::counter();
    check_all_off(env, "parallel CPU_OFF")?;
    Ok((time::ticks_to_ns(t1 - t0), 0))
}

fn cpu_off_method(env: &Env, method: &str, run: RunFn) -> TestResult {
    let (mut g, mut h) = ([0u64; MAX_REPS], [0u64; MAX_REPS]);
    let done = measure(env, method, run, &mut g, &mut h)?;
    gprintln!(
        "BENCH n={} method={} guest_ns={} rounds={}",
        env.ncpus,
        method,
        median(&mut g[..done]),
        done
    );
    Ok(())
}

fn serial_cpu_off(env: &Env) -> TestResult {
    cpu_off_method(env, "serial_cpu_off", serial_once)
}

fn parallel_cpu_off(env: &Env) -> TestResult {
    cpu_off_method(env, "parallel_cpu_off", parallel_once)
}

// ---------------------------------------------------------------------------
// (d) CPU_ON -> ON and CPU_OFF -> OFF latency

/// Scratch words of the latency job: its first counter read, and its last.
const S_ON_AT: usize = 2;
const S_OFF_AT: usize = 3;

/// Stamps the time it started running and the time it leaves; the guestlib
/// trampoline then calls CPU_OFF.
fn stamp_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[S_ON_AT].store(time::counter(), Release);
    s.scratch[S_OFF_AT].store(time::counter(), Release);
}

/// Spins (yielding) until `f` or `timeout_us`; false on timeout.
fn wait_yielding(timeout_us: u64, mut f: impl FnMut() -> bool) -> bool {
    let t0 = time::counter();
    let limit = time::us_to_ticks(timeout_us);
    while !f() {
        if time::counter() - t0 > limit {
            return false;
        }
        cpu::yield_now();
    }
    true
}

/// One run: every secondary in turn. Returns the medians (on ns, off ns).
fn on_off_once(env: &Env) -> Result<(u64, u64), Msg> {
    let (mut on, mut off) = ([0u64; MAX_CPUS], [0u64; MAX_CPUS]);
    let mut k = 0;
    for idx in env.secondaries() {
        let s = smp::slot(idx);
        s.clear_scratch();
        s.off_returned.store(0, SeqCst);
        let t0 = time::counter();
        let st = smp::cpu_on(env, idx, stamp_job, cookie());
        expect_ret!(st, SUCCESS, "CPU_ON(cpu{})", idx);
        ensure!(
            wait_yielding(wait_us(env), || s.scratch[S_OFF_AT].load(Acquire) != 0),
            "cpu{} never ran its job",
            idx
        );
        let limit = time::us_to_ticks(wait_us(env));
        loop {
            let a = aff(env, idx);
            if a == AFF_OFF {
                break;
            }
            ensure!(
                time::counter() - t0 < limit,
                "cpu{} not OFF in time (AFFINITY_INFO {})",
                idx,
                a
            );
            cpu::yield_now();
        }
        let t1 = time::counter();
        let (on_at, off_at) = (
            s.scratch[S_ON_AT].load(Acquire),
            s.scratch[S_OFF_AT].load(Acquire),
        );
        on[k] = time::ticks_to_ns(on_at.saturating_sub(t0));
        off[k] = time::ticks_to_ns(t1.saturating_sub(off_at));
        k += 1;
    }
    check_all_off(env, "CPU_ON/CPU_OFF")?;
    Ok((median(&mut on[..k]), median(&mut off[..k])))
}

fn cpu_on_off(env: &Env) -> TestResult {
    let n = env.ncpus;
    let (want, budget) = (reps(env), budget_ns(env));
    let (mut on, mut off) = ([0u64; MAX_REPS], [0u64; MAX_REPS]);
    let t_begin = time::counter();
    let mut done = 0;
    while done < want {
        let (on_ns, off_ns) = on_off_once(env)?;
        gprintln!(
            "BENCH-RUN n={} method=cpu_on_off run={} on_ns={} off_ns={}",
            n,
            done,
            on_ns,
            off_ns
        );
        on[done] = on_ns;
        off[done] = off_ns;
        done += 1;
        if time::ticks_to_ns(time::counter() - t_begin) > budget {
            break;
        }
    }
    gprintln!(
        "BENCH n={} method=cpu_on guest_ns={} rounds={}",
        n,
        median(&mut on[..done]),
        done
    );
    gprintln!(
        "BENCH n={} method=cpu_off guest_ns={} rounds={}",
        n,
        median(&mut off[..done]),
        done
    );
    Ok(())
}
