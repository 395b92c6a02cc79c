//! `fast_stop`: the vendor FAST_STOP call (abi.md) and its discovery.
//!
//! * discovery: CALL_UID returns exactly the four UUID words (full 64-bit
//!   registers), FEATURES has bits 0..3;
//! * nothing running: x0 = 0, x1 = 0, x2 = 0;
//! * bad flags: x2 != 0 gives -2 and stops nobody (busy secondaries keep
//!   counting and stay ON);
//! * busy loops (interrupts unmasked) and DAIF-masked spins: x0 = 0, x1 =
//!   running secondaries, x2 = 0, AFFINITY_INFO and VCPU_STATE say OFF and
//!   every per-CPU counter stops advancing;
//! * overwrite-then-restart: secondaries run a loop copied into RAM on a RAM
//!   stack; after the stop the loop and stacks are overwritten with `udf`,
//!   caches cleaned, and each secondary is CPU_ON'd into freshly written code
//!   elsewhere: every one runs it, none advances the old counter (and the
//!   `udf` pattern would be reported as an unexpected exception);
//! * race: CPU0 and CPU1 call FAST_STOP together (several rounds): one returns
//!   0 with honest counts, the other gets DENIED or is stopped; if CPU1 wins
//!   it restarts CPU0, which resumes where it was stopped (setjmp/longjmp);
//! * timeout: a 1 µs deadline with every secondary running returns -6 with
//!   x1 + x2 = running (or 0 with x1 = running, x2 = 0); a normal FAST_STOP
//!   then cleans up;
//! * SAVE_REGS: FEATURES bit 4 and FAST_STOP_FLAGS = 1; a save area in
//!   hypervisor memory, outside RAM, misaligned or too small gives -2 and
//!   stops nobody; with every secondary spinning with DAIF masked, each
//!   entry holds the vCPU's MPIDR, status 1, a PC inside the spin, the
//!   spin's x19..x28 markers and its masked EL1h PSTATE; the caller's entry
//!   has status 0.

use super::busy::{self, entry_wait_us, start_long};
use super::common::{cookie, skip_plain};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::programs::{RamCpu, RamProgram, UDF, sync_code, write_program};
use guestlib::arch::resume::ResumePoint;
use guestlib::arch::smp;
use guestlib::arch::{FastStop, marked_spin, psci, time, vectors, vendor};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, MAX_CPUS, TestResult, ensure, gprintln, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "fast_stop",
    tests: &[
        Test::new("discovery", discovery).skip_if(skip_plain),
        Test::new("nothing_running", nothing_running).skip_if(skip_plain),
        Test::new("bad_flags", bad_flags).skip_if(skip_plain),
        Test::new("busy_loops", busy_loops)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("busy_daif_masked", busy_masked)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("overwrite_restart", overwrite_restart)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("race_two_callers", race)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("timeout_honest_counts", timeout)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("save_regs_rejects_bad_areas", save_regs_bad_areas).skip_if(skip_plain),
        Test::new("save_regs_masked_spinners", save_regs).skip_if(skip_plain),
        Test::new("after_all_nothing_running", nothing_running).skip_if(skip_plain),
    ],
};

/// The numbers of abi.md, written out here (not taken from guestlib) so a
/// wrong constant there cannot hide a wrong hypervisor.
const UID: [u64; 4] = [0xCD11_84F9, 0x9D4C_EA4D, 0x8E20_3E97, 0x9B8F_28EE];
const FID_FAST_STOP: u32 = 0xC600_0001;

/// FAST_STOP deadline for the "must succeed" calls: 30 s, asked for
/// explicitly. The ABI default (x1 = 0, 1 s) is too short for TCG when this
/// QEMU shares 2 host cores with another one running 32 busy vCPUs (a vCPU
/// thread can wait over a second for the host). The default itself is
/// exercised by `nothing_running` and `bad_flags`, the deadline path by
/// `timeout_honest_counts`.
pub fn deadline_us() -> u64 {
    30_000_000
}

/// On a failed test, stop whatever is still running (long deadline) so the
/// following tests start clean.
pub fn rescue<T>(r: Result<T, guestlib::Msg>) -> Result<T, guestlib::Msg> {
    if r.is_err() {
        let _ = fstop(60_000_000, 0);
    }
    r
}

fn fstop(timeout_us: u64, flags: u64) -> FastStop {
    let r = call(Conduit::Hvc, FID_FAST_STOP, timeout_us, flags, 0);
    FastStop {
        status: status(r[0]),
        stopped: r[1],
        missed: r[2],
        elapsed_ns: r[3],
    }
}

fn discovery(_env: &Env) -> TestResult {
    let r = call(Conduit::Hvc, 0x8600_FF01, 0, 0, 0);
    ensure!(
        r == UID,
        "CALL_UID = {:#x} {:#x} {:#x} {:#x}, expected {:#x} {:#x} {:#x} {:#x}",
        r[0],
        r[1],
        r[2],
        r[3],
        UID[0],
        UID[1],
        UID[2],
        UID[3]
    );
    let f = call(Conduit::Hvc, 0x8600_0000, 0, 0, 0)[0];
    ensure!(
        (f as i64) >= 0 && f & 0xF == 0xF,
        "FEATURES = {:#x}, expected bits 0..3 set",
        f
    );
    Ok(())
}

fn nothing_running(env: &Env) -> TestResult {
    for idx in env.secondaries() {
        let a = psci::hvc().affinity_info(env.mpidr(idx), 0);
        ensure!(
            a == AFF_OFF,
            "precondition: cpu{} AFFINITY_INFO = {}",
            idx,
            a
        );
    }
    let r = fstop(0, 0);
    ensure!(
        r.status == SUCCESS && r.stopped == 0 && r.missed == 0,
        "FAST_STOP with nothing running: x0={} x1={} x2={}, expected 0 0 0",
        r.status,
        r.stopped,
        r.missed
    );
    Ok(())
}

/// Every secondary except `except` is OFF by AFFINITY_INFO and VCPU_STATE.
fn check_all_off(env: &Env, except: Option<usize>) -> TestResult {
    for idx in 0..env.ncpus {
        if Some(idx) == except || idx == env.boot_idx && except.is_none() {
            continue;
        }
        let a = psci::hvc().affinity_info(env.mpidr(idx), 0);
        ensure!(
            a == AFF_OFF,
            "after FAST_STOP cpu{} AFFINITY_INFO = {}, expected OFF (1)",
            idx,
            a
        );
        let v = vendor::vcpu_state(env.mpidr(idx));
        ensure!(
            v == VCPU_OFF,
            "after FAST_STOP cpu{} VCPU_STATE = {}, expected OFF (1)",
            idx,
            v
        );
    }
    Ok(())
}

/// Every secondary's counter stays put over a delay.
fn check_frozen(env: &Env) -> TestResult {
    let mut before = [0u64; MAX_CPUS];
    for idx in env.secondaries() {
        before[idx] = busy::count(idx);
    }
    time::delay_us(50_000);
    for idx in env.secondaries() {
        let now = busy::count(idx);
        ensure!(
            now == before[idx],
            "cpu{} counter still advancing after FAST_STOP ({} -> {})",
            idx,
            before[idx],
            now
        );
    }
    Ok(())
}

fn check_success(r: &FastStop, n: u64) -> TestResult {
    ensure!(
        r.status == SUCCESS && r.stopped == n && r.missed == 0,
        "FAST_STOP = x0 {} ({}) x1 {} x2 {} x3 {} ns, expected 0, {}, 0",
        r.status,
        status_name(r.status),
        r.stopped,
        r.missed,
        r.elapsed_ns,
        n
    );
    Ok(())
}

/// FAST_STOP with `deadline_us` must stop exactly the `n` running
/// secondaries, which are then OFF by AFFINITY_INFO and VCPU_STATE (also
/// the last word of the isolation and fuzz suites).
pub fn stop_all_checked(env: &Env, n: u64, deadline_us: u64) -> TestResult {
    check_success(&fstop(deadline_us, 0), n)?;
    check_all_off(env, None)
}

fn stop_busy(env: &Env, job: smp::Job) -> TestResult {
    let n = busy::start_all(env, job, None)?;
    let r = fstop(deadline_us(), 0);
    check_success(&r, n)?;
    check_all_off(env, None)?;
    check_frozen(env)
}

fn busy_loops(env: &Env) -> TestResult {
    rescue(stop_busy(env, busy::unmasked_job))
}

fn busy_masked(env: &Env) -> TestResult {
    rescue(stop_busy(env, busy::masked_job))
}

fn bad_flags(env: &Env) -> TestResult {
    rescue(bad_flags_inner(env))
}

fn bad_flags_inner(env: &Env) -> TestResult {
    let n = if env.ncpus > 1 {
        busy::start_all(env, busy::unmasked_job, None)?
    } else {
        0
    };
    for flags in [1u64, 2, 0x8000_0000, 1 << 63, u64::MAX] {
        let r = fstop(0, flags);
        ensure!(
            r.status == INVALID_PARAMETERS,
            "FAST_STOP flags={:#x}: x0 = {} ({}), expected -2",
            flags,
            r.status,
            status_name(r.status)
        );
    }
    if n > 0 {
        // Nobody was stopped: every counter still moves and every CPU is ON.
        for idx in env.secondaries() {
            let a = busy::count(idx);
            ensure!(
                time::spin_until(2_000_000, || busy::count(idx) != a),
                "cpu{} stopped counting after a rejected FAST_STOP",
                idx
            );
            let st = vendor::vcpu_state(env.mpidr(idx));
            ensure!(
                st == VCPU_ON,
                "cpu{} VCPU_STATE = {} after a rejected FAST_STOP",
                idx,
                st
            );
        }
        let r = fstop(deadline_us(), 0);
        check_success(&r, n)?;
        check_all_off(env, None)?;
    }
    Ok(())
}

fn timeout(env: &Env) -> TestResult {
    rescue(timeout_inner(env))
}

fn timeout_inner(env: &Env) -> TestResult {
    let n = busy::start_all(env, busy::masked_job, None)?;
    let r = fstop(1, 0);
    match r.status {
        INTERNAL_FAILURE => ensure!(
            r.stopped + r.missed == n && r.missed >= 1,
            "1 µs FAST_STOP timed out with x1 {} + x2 {} != {} running (or x2 = 0)",
            r.stopped,
            r.missed,
            n
        ),
        SUCCESS => check_success(&r, n)?,
        s => {
            return Err(msg!(
                "1 µs FAST_STOP: x0 = {} ({}), expected -6 or 0",
                s,
                status_name(s)
            ));
        }
    }
    gprintln!(
        "fast_stop: 1 us deadline -> x0={} x1={} x2={} x3={}ns (n={})",
        r.status,
        r.stopped,
        r.missed,
        r.elapsed_ns,
        n
    );
    // A normal stop cleans up whatever is left.
    let r2 = fstop(deadline_us(), 0);
    ensure!(
        r2.status == SUCCESS && r2.missed == 0 && r2.stopped <= r.missed,
        "cleanup FAST_STOP after the timeout: x0 {} x1 {} x2 {} (first call left x2 = {})",
        r2.status,
        r2.stopped,
        r2.missed,
        r.missed
    );
    check_all_off(env, None)?;
    check_frozen(env)
}

// ---------------------------------------------------------------------------
// Overwrite, then restart into fresh code.

const CODE_WORDS: usize = 1024;
const STACK_WORDS: usize = 64;

/// The RAM the restarted secondaries run from: two code pages (old loop,
/// new code), their stacks and their [`RamCpu`] blocks.
#[repr(C, align(4096))]
struct Area {
    old_code: [AtomicU32; CODE_WORDS],
    new_code: [AtomicU32; CODE_WORDS],
    old_stacks: [[AtomicU64; STACK_WORDS]; MAX_CPUS],
    new_stacks: [[AtomicU64; STACK_WORDS]; MAX_CPUS],
    data: [RamCpu; MAX_CPUS],
}

static AREA: Area = Area {
    old_code: [const { AtomicU32::new(0) }; CODE_WORDS],
    new_code: [const { AtomicU32::new(0) }; CODE_WORDS],
    old_stacks: [const { [const { AtomicU64::new(0) }; STACK_WORDS] }; MAX_CPUS],
    new_stacks: [const { [const { AtomicU64::new(0) }; STACK_WORDS] }; MAX_CPUS],
    data: [const { RamCpu::new() }; MAX_CPUS],
};

fn fill_udf(code: &[AtomicU32]) {
    for w in code {
        w.store(UDF, Relaxed);
    }
}

fn stack_top(stack: &[AtomicU64; STACK_WORDS]) -> u64 {
    stack.as_ptr() as u64 + (STACK_WORDS * 8) as u64
}

fn overwrite_restart(env: &Env) -> TestResult {
    rescue(overwrite_restart_inner(env))
}

fn overwrite_restart_inner(env: &Env) -> TestResult {
    let area = &AREA;
    let vbar = vectors::table_address();
    // Fill both code pages with the trap pattern, then the old loop.
    fill_udf(&area.old_code);
    fill_udf(&area.new_code);
    write_program(&area.old_code, RamProgram::CountingLoop);
    sync_code(area);
    let old_entry = area.old_code.as_ptr() as u64;
    let new_entry = area.new_code.as_ptr() as u64;
    let mut n = 0;
    for idx in env.secondaries() {
        let d = &area.data[idx];
        d.counter.store(0, Relaxed);
        d.flag.store(0, Relaxed);
        d.off_ret.store(0, Relaxed);
        d.idx.store(idx as u64, Relaxed);
        d.vbar.store(vbar, Relaxed);
        d.stack_top.store(stack_top(&area.old_stacks[idx]), Relaxed);
        d.new_stack.store(stack_top(&area.new_stacks[idx]), SeqCst);
        let st = psci::hvc().cpu_on(env.mpidr(idx), old_entry, d as *const RamCpu as u64);
        ensure!(st == SUCCESS, "CPU_ON(cpu{}) into RAM loop = {}", idx, st);
        n += 1;
    }
    for idx in env.secondaries() {
        let d = &area.data[idx];
        ensure!(
            time::spin_until(entry_wait_us(), || d.counter.load(Relaxed) > 0),
            "cpu{} never ran the RAM loop",
            idx
        );
    }
    let r = fstop(deadline_us(), 0);
    check_success(&r, n)?;
    check_all_off(env, None)?;
    // Overwrite the old loop and every stack it used, write the new code.
    fill_udf(&area.old_code);
    for w in area.old_stacks.iter().flatten() {
        w.store((UDF as u64) << 32 | UDF as u64, Relaxed);
    }
    write_program(&area.new_code, RamProgram::MarkAndOff);
    sync_code(area);
    let mut frozen = [0u64; MAX_CPUS];
    for idx in env.secondaries() {
        frozen[idx] = area.data[idx].counter.load(SeqCst);
    }
    for idx in env.secondaries() {
        let d = &area.data[idx];
        let st = psci::hvc().cpu_on(env.mpidr(idx), new_entry, d as *const RamCpu as u64);
        ensure!(
            st == SUCCESS,
            "CPU_ON(cpu{}) into the new code = {} ({})",
            idx,
            st,
            status_name(st)
        );
    }
    for idx in env.secondaries() {
        let d = &area.data[idx];
        ensure!(
            time::spin_until(entry_wait_us(), || d.flag.load(Acquire) == 1),
            "cpu{} never ran the freshly written code",
            idx
        );
    }
    for idx in env.secondaries() {
        smp::wait_aff(env, idx, AFF_OFF, smp::OFF_TIMEOUT_US).map_err(|a| {
            msg!(
                "cpu{} not OFF after the new code's CPU_OFF (AFFINITY_INFO {})",
                idx,
                a
            )
        })?;
    }
    time::delay_us(20_000);
    for idx in env.secondaries() {
        let d = &area.data[idx];
        ensure!(
            d.off_ret.load(Acquire) == 0,
            "CPU_OFF returned on cpu{}",
            idx
        );
        let c = d.counter.load(SeqCst);
        ensure!(
            c == frozen[idx],
            "cpu{} executed the old loop after the restart (counter {} -> {})",
            idx,
            frozen[idx],
            c
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Two callers at once.

/// Where the boot CPU carries on when CPU1 wins and restarts it.
static RESUME: ResumePoint = ResumePoint::new();
static GO: AtomicU64 = AtomicU64::new(0);
/// Result words per racer (0 = boot CPU, 1 = CPU1): RET = 1 + returned.
static RET: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static ST: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static X1: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static X2: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
/// CPU1's verdict when it won: 1 = consistent and CPU0 restarted, 2 = a CPU
/// other than CPU1 was not OFF, 3 = CPU_ON of CPU0 failed.
static VERDICT: AtomicU64 = AtomicU64::new(0);
static VERDICT_CPU: AtomicU64 = AtomicU64::new(0);
static VERDICT_VAL: AtomicU64 = AtomicU64::new(0);
static BOOT_IDX: AtomicU64 = AtomicU64::new(0);
static NCPUS: AtomicU64 = AtomicU64::new(0);
static PEER: AtomicU64 = AtomicU64::new(1);
/// Start offsets (counter ticks) after the common start time, per round.
static BOOT_DELAY: AtomicU64 = AtomicU64::new(0);
static PEER_DELAY: AtomicU64 = AtomicU64::new(0);

fn record(who: usize, r: &FastStop) {
    ST[who].store(r.status as i64 as u64, Relaxed);
    X1[who].store(r.stopped, Relaxed);
    X2[who].store(r.missed, Relaxed);
    RET[who].store(1, Release);
}

fn resume_job(_idx: usize, _ctx: u64) {
    RESUME.resume()
}

fn racer_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[1].store(1, Release);
    if !smp::job_wait(10_000_000, || GO.load(Acquire) != 0) {
        return;
    }
    let at = GO.load(Acquire) + PEER_DELAY.load(Relaxed);
    while time::counter() < at {}
    let r = fstop(deadline_us(), 0);
    record(1, &r);
    if r.status == SUCCESS {
        // Every other vCPU must be parked now, CPU0 included.
        let env = guestlib::env();
        let mut verdict = 1;
        for c in 0..NCPUS.load(Relaxed) as usize {
            if c == idx {
                continue;
            }
            let a = psci::hvc().affinity_info(env.mpidr(c), 0);
            if a != AFF_OFF {
                VERDICT_CPU.store(c as u64, Relaxed);
                VERDICT_VAL.store(a as i64 as u64, Relaxed);
                verdict = 2;
                break;
            }
        }
        if verdict == 1 {
            let b = BOOT_IDX.load(Relaxed) as usize;
            let st = smp::cpu_on(env, b, resume_job, cookie());
            if st != SUCCESS {
                VERDICT_VAL.store(st as i64 as u64, Relaxed);
                verdict = 3;
            }
        }
        VERDICT.store(verdict, Release);
    } else {
        // Loser (-3): stay ON until stopped or the test ends.
        smp::job_wait(10_000_000, || false);
    }
}

/// The boot CPU's side: true if it was stopped and restarted by CPU1.
#[inline(never)]
fn boot_race() -> bool {
    RESUME.run(|| {
        let go = time::counter() + time::us_to_ticks(20_000);
        GO.store(go, Release);
        let at = go + BOOT_DELAY.load(Relaxed);
        while time::counter() < at {}
        let r = fstop(deadline_us(), 0);
        record(0, &r);
        if r.status != SUCCESS {
            // Lost: CPU1 will stop (and restart) us, or report.
            time::spin_until(10_000_000, || VERDICT.load(Acquire) != 0);
        }
    })
}

fn race_round(env: &Env, round: usize, wins: &mut [u32; 2]) -> TestResult {
    let peer = env.secondaries().next().unwrap();
    PEER.store(peer as u64, Relaxed);
    BOOT_IDX.store(env.boot_idx as u64, Relaxed);
    NCPUS.store(env.ncpus as u64, Relaxed);
    GO.store(0, SeqCst);
    VERDICT.store(0, SeqCst);
    // Rounds alternate who starts first (and by how much), so both orders
    // and the truly simultaneous case are tried.
    let (bd, pd) = match round % 4 {
        0 => (0, 0),
        1 => (time::us_to_ticks(10_000), 0),
        2 => (0, time::us_to_ticks(50)),
        _ => (time::us_to_ticks(1_000), 0),
    };
    BOOT_DELAY.store(bd, SeqCst);
    PEER_DELAY.store(pd, SeqCst);
    for w in [&RET, &ST, &X1, &X2] {
        for v in w {
            v.store(0, SeqCst);
        }
    }
    let others = busy::start_all(env, busy::masked_job, Some(peer))?;
    let s = smp::slot(peer);
    s.clear_scratch();
    start_long(env, peer, racer_job)?;
    ensure!(
        time::spin_until(entry_wait_us(), || s.scratch[1].load(Acquire) != 0),
        "racer cpu{} never got ready",
        peer
    );
    let n = others + 1; // every vCPU other than the winner
    let resumed = boot_race();
    if resumed {
        // CPU1 restarts us and only then records its verdict: wait for it.
        time::spin_until(entry_wait_us(), || VERDICT.load(Acquire) != 0);
    }
    let ret0 = RET[0].load(Acquire) != 0;
    let st0 = ST[0].load(Relaxed) as i64 as i32;
    // Give a losing CPU1 a moment to record (it may also be stopped).
    time::delay_us(20_000);
    let ret1 = RET[1].load(Acquire) != 0;
    let st1 = ST[1].load(Relaxed) as i64 as i32;
    let verdict = VERDICT.load(Acquire);
    if resumed {
        // CPU1 won and restarted us.
        ensure!(
            verdict == 1,
            "round {}: restarted but verdict {}",
            round,
            verdict
        );
        ensure!(
            ret1 && st1 == SUCCESS,
            "round {}: cpu0 was stopped but cpu{} did not get 0 (ret {} st {})",
            round,
            peer,
            ret1,
            st1
        );
        ensure!(
            !ret0 || st0 == DENIED,
            "round {}: cpu0 returned {} before being stopped (expected -3)",
            round,
            st0
        );
        ensure!(
            X1[1].load(Relaxed) == n && X2[1].load(Relaxed) == 0,
            "round {}: winner cpu{} x1 {} x2 {}, expected {} 0",
            round,
            peer,
            X1[1].load(Relaxed),
            X2[1].load(Relaxed),
            n
        );
        wins[1] += 1;
        // CPU1 finishes its job (CPU_OFF); everybody else stays stopped.
        smp::wait_off(env, peer, smp::OFF_TIMEOUT_US)?;
        check_all_off(env, None)?;
        return Ok(());
    }
    ensure!(ret0, "round {}: boot CPU returned without a record", round);
    if st0 == SUCCESS {
        wins[0] += 1;
        ensure!(
            X1[0].load(Relaxed) == n && X2[0].load(Relaxed) == 0,
            "round {}: winner cpu0 x1 {} x2 {}, expected {} 0",
            round,
            X1[0].load(Relaxed),
            X2[0].load(Relaxed),
            n
        );
        ensure!(
            !ret1 || st1 == DENIED,
            "round {}: both callers returned: cpu0 0 and cpu{} {} ({})",
            round,
            peer,
            st1,
            status_name(st1)
        );
        check_all_off(env, None)?;
        check_frozen(env)?;
        return Ok(());
    }
    // The boot CPU lost and kept running: only legal if it was DENIED and
    // CPU1's success then stops (and restarts) it, which would have come
    // back through `resumed`.
    Err(msg!(
        "round {}: cpu0 got {} ({}) and was never stopped; cpu{} ret {} st {} verdict {} (cpu{} aff {})",
        round,
        st0,
        status_name(st0),
        peer,
        ret1,
        st1,
        verdict,
        VERDICT_CPU.load(Relaxed),
        VERDICT_VAL.load(Relaxed) as i64
    ))
}

fn race(env: &Env) -> TestResult {
    rescue(race_inner(env))
}

fn race_inner(env: &Env) -> TestResult {
    let mut wins = [0u32; 2];
    // Each round restarts every busy secondary: keep it short when TCG has
    // many more vCPUs than host cores.
    let rounds = if env.ncpus <= 8 { 8 } else { 2 };
    for round in 0..rounds {
        race_round(env, round, &mut wins)?;
        // Between rounds every secondary must be OFF again.
        smp::cleanup(env)?;
    }
    gprintln!("fast_stop: race wins cpu0={} cpu1={}", wins[0], wins[1]);
    Ok(())
}

/// A save area for every vCPU the guest can have.
static SAVE_AREA: ::spin::Mutex<[u64; MAX_CPUS * SAVE_ENTRY_WORDS]> =
    ::spin::Mutex::new([0; MAX_CPUS * SAVE_ENTRY_WORDS]);

/// Tells the caller it is about to spin, then spins in `marked_spin`.
fn marked_spin_job(idx: usize, _ctx: u64) {
    smp::slot(idx).scratch[busy::S_COUNT].store(1, Release);
    marked_spin::spin(idx)
}

fn start_marked_spinners(env: &Env) -> Result<u64, guestlib::Msg> {
    let n = busy::start_all(env, marked_spin_job, None)?;
    // The flag is set just before the spin loads its markers.
    time::delay_us(10_000);
    Ok(n)
}

fn save_regs_bad_areas(env: &Env) -> TestResult {
    rescue(save_regs_bad_areas_inner(env))
}

fn save_regs_bad_areas_inner(env: &Env) -> TestResult {
    let f = vendor::features();
    ensure!(
        f & VENDOR_FEAT_FAST_STOP_FLAGS != 0,
        "FEATURES = {:#x}: no FAST_STOP_FLAGS (bit 4)",
        f
    );
    let flags = vendor::fast_stop_flags();
    ensure!(
        flags == FAST_STOP_SAVE_REGS | FAST_STOP_SAVE_SP_EL0,
        "FAST_STOP_FLAGS = {:#x}, expected SAVE_REGS | SAVE_SP_EL0 (3)",
        flags
    );
    let n = start_marked_spinners(env)?;
    let words = env.ncpus * SAVE_ENTRY_WORDS;
    let bytes = (words * 8) as u64;
    let mut area = SAVE_AREA.lock();
    let good = area.as_mut_ptr() as u64;
    let bad = [
        (0x4000_0000, bytes, "hypervisor memory"),
        (
            0x4400_0000 - 8,
            bytes,
            "straddling the end of hypervisor memory",
        ),
        (guestlib::arch::uart::base() as u64, bytes, "the UART"),
        (good + 4, bytes, "misaligned"),
        (good, bytes - 8, "one word too small"),
        (u64::MAX - 7, bytes, "wrapping"),
    ];
    for (addr, len, what) in bad {
        let r = guestlib::arch::call::hvc5(
            VENDOR_FAST_STOP,
            deadline_us(),
            FAST_STOP_SAVE_REGS,
            addr,
            len,
        );
        ensure!(
            status(r[0]) == INVALID_PARAMETERS,
            "SAVE_REGS with an area {} ({:#x}, {} bytes): x0 = {}, expected -2",
            what,
            addr,
            len,
            status(r[0])
        );
    }
    drop(area);
    for idx in env.secondaries() {
        let st = vendor::vcpu_state(env.mpidr(idx));
        ensure!(
            st == VCPU_ON,
            "cpu{} VCPU_STATE = {} after rejected SAVE_REGS calls",
            idx,
            st
        );
    }
    let r = fstop(deadline_us(), 0);
    check_success(&r, n)
}

fn save_regs(env: &Env) -> TestResult {
    rescue(save_regs_inner(env))
}

fn save_regs_inner(env: &Env) -> TestResult {
    let n = start_marked_spinners(env)?;
    let mut area = SAVE_AREA.lock();
    area.fill(u64::MAX);
    let r = vendor::fast_stop_save(deadline_us(), &mut area[..env.ncpus * SAVE_ENTRY_WORDS]);
    check_success(&r, n)?;
    check_all_off(env, None)?;
    let (lo, hi) = marked_spin::range();
    for idx in 0..env.ncpus {
        let e = &area[idx * SAVE_ENTRY_WORDS..(idx + 1) * SAVE_ENTRY_WORDS];
        let (mpidr, status, x, sp, pc, pstate) = (e[0], e[1], &e[2..33], e[33], e[34], e[35]);
        ensure!(
            mpidr == mpidr_aff(env.mpidr(idx)),
            "entry {}: mpidr {:#x}, expected {:#x}",
            idx,
            mpidr,
            mpidr_aff(env.mpidr(idx))
        );
        if idx == env.boot_idx {
            ensure!(
                status == 0 && pc == 0,
                "the caller's entry: status {} pc {:#x}, expected 0 0",
                status,
                pc
            );
            continue;
        }
        ensure!(
            status == 1,
            "cpu{}: status {}, expected 1 (saved)",
            idx,
            status
        );
        ensure!(
            (lo..hi).contains(&pc),
            "cpu{}: saved pc {:#x} outside the spin [{:#x}, {:#x})",
            idx,
            pc,
            lo,
            hi
        );
        for (n, &v) in x[19..29].iter().enumerate() {
            ensure!(
                v == marked_spin::marker(idx, n as u64),
                "cpu{}: saved x{} = {:#x}, expected {:#x}",
                idx,
                19 + n,
                v,
                marked_spin::marker(idx, n as u64)
            );
        }
        ensure!(
            pstate & 0x3cf == 0x3c5,
            "cpu{}: saved pstate {:#x}, expected EL1h with DAIF masked",
            idx,
            pstate
        );
        ensure!(sp != 0 && sp % 16 == 0, "cpu{}: saved sp {:#x}", idx, sp);
    }
    Ok(())
}
