//! `ipi`: trapped SGIs (`ICC_SGI1R_EL1` on GICv3, `GICD_SGIR` on GICv2)
//! become virtual SGIs on exactly the targeted vCPUs (target list, IRM=1 broadcast); an SGI to a parked vCPU is
//! dropped (traced as `ipi-drop`), does not hang the sender, and is not
//! delivered when that vCPU is started again; more pending SGIs than list
//! registers all arrive; the higher-priority SGI is acknowledged first.
//!
//! Each secondary runs a job that enables SGIs 0..15 (group 1, priority
//! 0x80) on its redistributor and its CPU interface, then unmasks IRQs; the
//! IRQ handler acknowledges with ICC_IAR1_EL1, counts per INTID and CPU,
//! records the order, and EOIs with ICC_EOIR1_EL1.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::smp::{self, job_wait};
use guestlib::arch::vectors::{Frame, set_irq_handler};
use guestlib::arch::{cpu, gic, psci, time};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, MAX_CPUS, TestResult, ensure, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "ipi",
    tests: &[
        Test::new("self_setup", self_setup),
        Test::new("target_list", target_list).cpus(2),
        Test::new("broadcast_irm", broadcast).cpus(2),
        Test::new("parked_target_dropped", parked).cpus(2),
        Test::new("priority_order", priority)
            .cpus(2)
            .skip_if(super::common::skip_gicv2),
        Test::new("four_sgis_while_masked", four).cpus(2),
        Test::new("more_than_list_regs", many).cpus(2),
    ],
};

const NSGI: usize = 16;
const ORDER_LEN: usize = 32;

static COUNTS: [[AtomicU32; NSGI]; MAX_CPUS] =
    [const { [const { AtomicU32::new(0) }; NSGI] }; MAX_CPUS];
/// IRQs other than SGIs, and spurious acknowledges, per CPU.
static OTHER: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static LAST_OTHER: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static ORDER: [[AtomicU32; ORDER_LEN]; MAX_CPUS] =
    [const { [const { AtomicU32::new(0xFFFF) }; ORDER_LEN] }; MAX_CPUS];
static ORDER_N: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Slot scratch words.
const S_READY: usize = 0;
const S_UNMASK: usize = 1;
const S_RELEASE: usize = super::common::S_RELEASE;

/// How long a "must not arrive" check waits.
const QUIET_US: u64 = 100_000;

fn arrive_wait_us() -> u64 {
    super::busy::entry_wait_us()
}

fn reset_counts() {
    for c in 0..MAX_CPUS {
        for s in &COUNTS[c] {
            s.store(0, SeqCst);
        }
        for o in &ORDER[c] {
            o.store(0xFFFF, SeqCst);
        }
        ORDER_N[c].store(0, SeqCst);
        OTHER[c].store(0, SeqCst);
    }
}

fn count(cpu: usize, sgi: u32) -> u32 {
    COUNTS[cpu][sgi as usize].load(Acquire)
}

fn irq_handler(cpu: usize, _f: &mut Frame) {
    let iar = gic::acknowledge();
    let intid = (iar & 0xFF_FFFF) as u32;
    if (1020..=1023).contains(&intid) {
        OTHER[cpu.min(MAX_CPUS - 1)].fetch_add(1, AcqRel);
        LAST_OTHER[cpu.min(MAX_CPUS - 1)].store(intid, Release);
        return;
    }
    if cpu < MAX_CPUS {
        if (intid as usize) < NSGI {
            let n = ORDER_N[cpu].fetch_add(1, AcqRel) as usize;
            if n < ORDER_LEN {
                ORDER[cpu][n].store(intid, Release);
            }
            COUNTS[cpu][intid as usize].fetch_add(1, AcqRel);
        } else {
            OTHER[cpu].fetch_add(1, AcqRel);
            LAST_OTHER[cpu].store(intid, Release);
        }
    }
    gic::end_of_interrupt(iar);
}

/// Enables SGIs 0..15 (group 1, priority 0x80) for the calling CPU and its
/// CPU interface (PMR 0xff, group 1 on). IRQs stay masked in DAIF.
fn setup_this_cpu(env: &Env, idx: usize) -> TestResult {
    ensure!(
        env.gicd != 0 && (env.gicr != 0 || env.is_gicv2()),
        "no GIC in the DTB"
    );
    gic::enable_private(env, env.mpidr(idx), 0xFFFF)
}

/// Sets the priority of SGI `sgi` in CPU `idx`'s SGI frame.
fn set_priority(env: &Env, idx: usize, sgi: u32, pri: u8) -> TestResult {
    let got = gic::set_priority(env, env.mpidr(idx), sgi, pri)?;
    ensure!(
        got == pri,
        "cpu{} GICR_IPRIORITYR for SGI {} reads {:#x} after writing {:#x}",
        idx,
        sgi,
        got,
        pri
    );
    Ok(())
}

/// Sends SGI `sgi` to the CPUs in `targets` (bit per linear index), one
/// ICC_SGI1R_EL1 write per (Aff3, Aff2, Aff1, RS) group.
fn send_sgi(env: &Env, sgi: u32, targets: u64) {
    if env.is_gicv2() {
        gic::send_sgi_v2(env, sgi, targets);
        return;
    }
    let mut left = targets;
    while left != 0 {
        let first = left.trailing_zeros() as usize;
        let m0 = env.mpidr(first);
        let key = |m: u64| (m & 0xFF_00FF_FF00) | ((m & 0xFF) >> 4);
        let mut list = 0u64;
        for i in 0..env.ncpus {
            if left & (1 << i) != 0 && key(env.mpidr(i)) == key(m0) {
                list |= 1 << (env.mpidr(i) & 0xF);
                left &= !(1 << i);
            }
        }
        let aff1 = (m0 >> 8) & 0xFF;
        let aff2 = (m0 >> 16) & 0xFF;
        let aff3 = (m0 >> 32) & 0xFF;
        let rs = (m0 & 0xFF) >> 4;
        let v = list | aff1 << 16 | (sgi as u64 & 0xF) << 24 | aff2 << 32 | rs << 44 | aff3 << 48;
        gic::write_sgi1r(v);
    }
}

fn send_broadcast(env: &Env, sgi: u32) {
    if env.is_gicv2() {
        gic::send_sgi_others_v2(env, sgi);
        return;
    }
    gic::write_sgi1r((sgi as u64 & 0xF) << 24 | 1 << 40);
}

/// Job: set up SGIs, report ready, wait for the unmask go-ahead (set
/// immediately for unmasked jobs), unmask, wait for release, mask.
fn sgi_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    let env = guestlib::env();
    if setup_this_cpu(env, idx).is_err() {
        s.scratch[S_READY].store(2, Release);
        return;
    }
    s.scratch[S_READY].store(1, Release);
    if !job_wait(smp::JOB_WAIT_US, || s.scratch[S_UNMASK].load(Acquire) != 0) {
        return;
    }
    cpu::unmask_irq();
    s.scratch[2].store(1, Release); // unmasked
    job_wait(smp::JOB_WAIT_US, || s.scratch[S_RELEASE].load(Acquire) != 0);
    cpu::mask_irq();
}

/// Starts `idx` with [`sgi_job`]; `unmasked` = unmask right away. Waits for
/// it to be ready (and unmasked, if asked).
fn start_sgi(env: &Env, idx: usize, unmasked: bool) -> TestResult {
    let s = smp::slot(idx);
    s.clear_scratch();
    if unmasked {
        s.scratch[S_UNMASK].store(1, Release);
    }
    super::busy::start_long(env, idx, sgi_job)?;
    ensure!(
        time::spin_until(arrive_wait_us(), || s.scratch[S_READY].load(Acquire) != 0),
        "cpu{} entered but its job never got ready",
        idx
    );
    ensure!(
        s.scratch[S_READY].load(Acquire) == 1,
        "cpu{}: GIC setup failed in the job",
        idx
    );
    if unmasked {
        ensure!(
            time::spin_until(arrive_wait_us(), || s.scratch[2].load(Acquire) != 0),
            "cpu{} never unmasked IRQs",
            idx
        );
    }
    Ok(())
}

fn release_all(env: &Env) {
    for idx in env.secondaries() {
        smp::slot(idx).scratch[S_RELEASE].store(1, Release);
    }
}

fn begin(env: &Env) -> TestResult {
    reset_counts();
    set_irq_handler(Some(irq_handler));
    setup_this_cpu(env, env.boot_idx)
}

/// No CPU other than those in `allowed` got any SGI; `allowed` got `sgi`
/// exactly once and nothing else.
fn check_exact(env: &Env, sgi: u32, allowed: u64, what: &str) -> TestResult {
    for c in 0..env.ncpus {
        for i in 0..NSGI as u32 {
            let n = count(c, i);
            let want = u32::from(allowed & (1 << c) != 0 && i == sgi);
            ensure!(
                n == want,
                "{}: cpu{} counted SGI {} {} times, expected {}",
                what,
                c,
                i,
                n,
                want
            );
        }
        let o = OTHER[c].load(Acquire);
        ensure!(
            o == 0,
            "{}: cpu{} took {} non-SGI/spurious IRQs (last INTID {})",
            what,
            c,
            o,
            LAST_OTHER[c].load(Acquire)
        );
    }
    Ok(())
}

fn wait_count(cpu: usize, sgi: u32, n: u32) -> bool {
    time::spin_until(arrive_wait_us(), || count(cpu, sgi) >= n)
}

/// The boot CPU can set up its CPU interface and SGI frame, and an SGI to
/// itself is not required here (only a sanity check that nothing arrives
/// unasked).
fn self_setup(env: &Env) -> TestResult {
    begin(env)?;
    set_priority(env, env.boot_idx, 5, 0x80)?;
    cpu::unmask_irq();
    time::delay_us(10_000);
    cpu::mask_irq();
    check_exact(env, 0, 0, "idle")
}

pub(crate) fn target_list(env: &Env) -> TestResult {
    begin(env)?;
    for idx in env.secondaries() {
        start_sgi(env, idx, true)?;
    }
    // Odd-indexed secondaries get SGI 3; with 3+ secondaries the even ones
    // get SGI 6 afterwards.
    let sec: u64 = env.secondaries().fold(0, |m, i| m | 1 << i);
    let odd = sec & 0xAAAA_AAAA_AAAA_AAAA;
    let even = sec & !odd;
    send_sgi(env, 3, odd);
    for c in env.secondaries().filter(|c| odd & (1 << c) != 0) {
        ensure!(wait_count(c, 3, 1), "cpu{} (targeted) never got SGI 3", c);
    }
    time::delay_us(QUIET_US);
    check_exact(env, 3, odd, "SGI 3 to odd secondaries")?;
    if even != 0 {
        reset_counts();
        send_sgi(env, 6, even);
        for c in env.secondaries().filter(|c| even & (1 << c) != 0) {
            ensure!(wait_count(c, 6, 1), "cpu{} (targeted) never got SGI 6", c);
        }
        time::delay_us(QUIET_US);
        check_exact(env, 6, even, "SGI 6 to even secondaries")?;
    }
    release_all(env);
    Ok(())
}

fn broadcast(env: &Env) -> TestResult {
    begin(env)?;
    for idx in env.secondaries() {
        start_sgi(env, idx, true)?;
    }
    let sec: u64 = env.secondaries().fold(0, |m, i| m | 1 << i);
    send_broadcast(env, 5);
    for c in env.secondaries() {
        ensure!(wait_count(c, 5, 1), "cpu{} never got broadcast SGI 5", c);
    }
    time::delay_us(QUIET_US);
    // The sender must not get it either: unmask briefly on the boot CPU.
    cpu::unmask_irq();
    time::delay_us(10_000);
    cpu::mask_irq();
    check_exact(env, 5, sec, "IRM=1 broadcast of SGI 5")?;
    release_all(env);
    Ok(())
}

fn parked(env: &Env) -> TestResult {
    begin(env)?;
    let t = 1;
    let a = psci::hvc().affinity_info(env.mpidr(t), 0);
    ensure!(a == AFF_OFF, "cpu{} not OFF before the test ({})", t, a);
    let t0 = time::counter();
    send_sgi(env, 4, 1 << t);
    let took = time::ticks_to_ns(time::counter() - t0) / 1000;
    ensure!(
        took < 1_000_000,
        "ICC_SGI1R write to a parked vCPU took {} us",
        took
    );
    time::delay_us(10_000);
    start_sgi(env, t, true)?;
    time::delay_us(QUIET_US);
    ensure!(
        count(t, 4) == 0,
        "cpu{} got SGI 4 sent while it was OFF ({} times) after CPU_ON",
        t,
        count(t, 4)
    );
    check_exact(env, 0, 0, "after restart")?;
    // Positive control: a fresh SGI does arrive.
    send_sgi(env, 4, 1 << t);
    ensure!(
        wait_count(t, 4, 1),
        "cpu{} never got SGI 4 sent while it runs",
        t
    );
    time::delay_us(QUIET_US / 2);
    check_exact(env, 4, 1 << t, "SGI 4 after restart")?;
    release_all(env);
    Ok(())
}

fn many(env: &Env) -> TestResult {
    masked_burst(env, 8)
}

fn four(env: &Env) -> TestResult {
    masked_burst(env, 4)
}

/// The target masks IRQs, the boot CPU sends SGIs 0..n, the target unmasks
/// and must take each exactly once.
pub(crate) fn masked_burst(env: &Env, n: u32) -> TestResult {
    begin(env)?;
    let t = env.ncpus - 1;
    start_sgi(env, t, false)?;
    for sgi in 0..n {
        send_sgi(env, sgi, 1 << t);
    }
    time::delay_us(10_000);
    ensure!(
        ORDER_N[t].load(Acquire) == 0,
        "cpu{} took an IRQ while masked",
        t
    );
    smp::slot(t).scratch[S_UNMASK].store(1, Release);
    for sgi in 0..n {
        if !wait_count(t, sgi, 1) {
            // Is the target still alive? Its job polls `aborting()`; a
            // FAST_STOP (2 s deadline) tells whether its vCPU still answers
            // the hypervisor, and puts it OFF for the next tests.
            let r = call(Conduit::Hvc, 0xC600_0001, 2_000_000, 0, 0);
            return Err(msg!(
                "cpu{} never got SGI {} of {} sent while masked (got {} in all, order {}; {} spurious/other IRQs, last INTID {}); FAST_STOP then: x0 {} x1 {} x2 {}",
                t,
                sgi,
                n,
                ORDER_N[t].load(Acquire),
                Order(t),
                OTHER[t].load(Acquire),
                LAST_OTHER[t].load(Acquire),
                status(r[0]),
                r[1],
                r[2]
            ));
        }
    }
    time::delay_us(QUIET_US);
    for sgi in 0..NSGI as u32 {
        let want = u32::from(sgi < n);
        ensure!(
            count(t, sgi) == want,
            "cpu{} counted SGI {} {} times, expected {}",
            t,
            sgi,
            count(t, sgi),
            want
        );
    }
    release_all(env);
    Ok(())
}

fn priority(env: &Env) -> TestResult {
    begin(env)?;
    let t = 1;
    // Not 8/9: parkvisor reserves those SGIs' physical configuration.
    let (lo, hi) = (12u32, 13u32);
    start_sgi(env, t, false)?;
    set_priority(env, t, lo, 0xC0)?;
    set_priority(env, t, hi, 0x40)?;
    send_sgi(env, lo, 1 << t);
    send_sgi(env, hi, 1 << t);
    time::delay_us(10_000);
    smp::slot(t).scratch[S_UNMASK].store(1, Release);
    ensure!(
        time::spin_until(arrive_wait_us(), || ORDER_N[t].load(Acquire) >= 2),
        "cpu{} got {} of 2 SGIs",
        t,
        ORDER_N[t].load(Acquire)
    );
    time::delay_us(QUIET_US / 2);
    let (a, b) = (ORDER[t][0].load(Acquire), ORDER[t][1].load(Acquire));
    ensure!(
        ORDER_N[t].load(Acquire) == 2,
        "cpu{} took {} SGIs, expected 2",
        t,
        ORDER_N[t].load(Acquire)
    );
    ensure!(
        a == hi && b == lo,
        "cpu{} acknowledged SGI {} then {}; expected {} (prio 0x40) before {} (prio 0xc0)",
        t,
        a,
        b,
        hi,
        lo
    );
    release_all(env);
    Ok(())
}

/// Displays the INTIDs CPU `.0` acknowledged, in order.
struct Order(usize);

impl core::fmt::Display for Order {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = (ORDER_N[self.0].load(Acquire) as usize).min(ORDER_LEN);
        f.write_str("[")?;
        for (i, o) in ORDER[self.0][..n].iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", o.load(Acquire))?;
        }
        f.write_str("]")
    }
}
