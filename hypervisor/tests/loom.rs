//! Model-checked tests of the cross-CPU protocols (park / CPU_ON / CPU_OFF /
//! AFFINITY_INFO and FAST_STOP) with `loom`. See `docs/protocols.md`.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=/tmp/target-loom \
//!     cargo test -p parkvisor --test loom --release
//! ```
//!
//! Each physical CPU is a loom thread running the real portable protocol
//! code (`park::Parker`'s park loop and stop check, `vcpu`, `fast_stop`,
//! `psci`), whose atomics are loom's under `cfg(loom)`, on a model machine:
//! the `ParkPlatform` and `StopPlatform` below stand for `arch/park.rs` and
//! `arch/hypercall.rs`. "Executing guest code" is a per-CPU ghost flag. The physical
//! stop SGI is a per-CPU pending flag that the StopPlatform sets; a CPU
//! takes it (at EL2, whatever the guest's DAIF) whenever it runs guest code.
//! A CPU waiting in WFI (park loop) or spinning in the guest with DAIF masked
//! waits on a per-CPU loom `Notify`; an SGI (CPU_ON's kick, FAST_STOP's
//! broadcast) notifies it, with release/acquire ordering like the DSB that
//! precedes every SGI. Spurious wake-ups are explored too.
//!
//! `PARKVISOR_LOOM_BREAK=<name>` runs the same models against a deliberately
//! broken EL2 model, to show that the tests catch it (docs/protocols.md lists
//! which tests fail for which break):
//! * `no-post-check`: enter the guest without the stop check that follows
//!   `mark_on` (`Parker::park_until_boot`, through the platform's test seam);
//! * `off-before-leave`: publish OFF before leaving guest context;
//! * `count-after-publish`: CPU_ON counts the target live only after
//!   publishing its boot request and kicking it (`psci::cpu_on`, through the
//!   platform's test seam).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use loom::sync::{Arc, Notify};
use loom::thread;
use parkvisor::fast_stop::{FastStop, StopPlatform, StopReport};
use parkvisor::park::{Exit, ParkPlatform, ParkReason, Parker};
use parkvisor::psci::{self, CpuOnPlatform};
use parkvisor::vcpu::{BootRequest, LiveCount, PowerState, VcpuSlot, VcpuTable, Vcpus};
use std::cell::Cell;

const SUCCESS: i64 = 0;
const DENIED: i64 = -3;
const ALREADY_ON: i64 = -4;
const ON_PENDING: i64 = -5;
const INTERNAL_FAILURE: i64 = -6;

/// AFFINITY_INFO answers.
const AI_ON: i64 = 0;
const AI_OFF: i64 = 1;
const AI_PENDING: i64 = 2;

/// Fake clock: every reading advances it by this much.
const CLOCK_STEP_NS: u64 = 1_000;
/// FAST_STOP timeout for the runs that must succeed: the caller gives up
/// after this many polls. Far more than a correct run needs (each poll yields
/// to the other CPUs), so a `-6` there means a target never parked.
const GENEROUS_TIMEOUT_US: u64 = 40;

fn guest_ram(addr: u64) -> bool {
    (0x4400_0000..0x8000_0000).contains(&addr)
}

fn request(n: u64) -> BootRequest {
    BootRequest {
        entry: 0x4800_0000 + n * 0x1000,
        context_id: 100 + n,
        big_endian: n % 2 == 1,
    }
}

/// A deliberate protocol violation in the EL2 model (see the file header).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Break {
    None,
    NoPostCheck,
    OffBeforeLeave,
    CountAfterPublish,
}

fn sabotage() -> Break {
    match std::env::var("PARKVISOR_LOOM_BREAK").as_deref() {
        Err(_) | Ok("") => Break::None,
        Ok("no-post-check") => Break::NoPostCheck,
        Ok("off-before-leave") => Break::OffBeforeLeave,
        Ok("count-after-publish") => Break::CountAfterPublish,
        Ok(other) => panic!("unknown PARKVISOR_LOOM_BREAK={other}"),
    }
}

/// Everything the physical CPUs share: the real protocol state, the model's
/// hardware (stop SGI pending bits, WFI wake-ups) and ghost state.
struct Machine {
    /// vCPU i has MPIDR i.
    vcpus: Vcpus,
    stop: FastStop,
    /// The real live count (`psci::cpu_on` and `Parker::leave` keep it).
    live: LiveCount,
    /// Ghost: how often the park loop said every vCPU is OFF.
    all_off: AtomicUsize,
    /// Ghost: CPU i is executing guest code.
    in_guest: Vec<AtomicBool>,
    /// Hardware: SGI_STOP is pending at CPU i.
    sgi: Vec<AtomicBool>,
    /// Ghost: the fast-stop generation CPU i last acknowledged by parking.
    acked: Vec<AtomicU64>,
    /// Ghost: CPU i parked by its own CPU_OFF at least once.
    cpu_off: Vec<AtomicBool>,
    /// Guest programs (CPU_ON issuers, FAST_STOP callers) not yet finished
    /// or abandoned. At 0 no CPU_ON or FAST_STOP can come any more, so the
    /// bounded park and guest loops end.
    programs_left: AtomicUsize,
    /// Hardware: an SGI wakes CPU i from WFI (sticky, like a pending
    /// interrupt; ordered like the DSB that precedes every SGI).
    wfi: Vec<Notify>,
    brk: Break,
}

impl Machine {
    /// `on[i]`: vCPU i starts ON (in the guest) rather than parked OFF.
    /// `programs`: how many CPUs run a guest program that may CPU_ON or
    /// FAST_STOP (each calls `program_done` once).
    fn new(on: &[bool], programs: usize) -> Arc<Self> {
        let n = on.len();
        Arc::new(Self {
            vcpus: Vcpus::new(&(0..n as u64).collect::<Vec<_>>(), |i| on[i]),
            stop: FastStop::new(),
            live: LiveCount::new(on.iter().filter(|&&on| on).count()),
            all_off: AtomicUsize::new(0),
            in_guest: on.iter().map(|&on| AtomicBool::new(on)).collect(),
            sgi: (0..n).map(|_| AtomicBool::new(false)).collect(),
            acked: (0..n).map(|_| AtomicU64::new(0)).collect(),
            cpu_off: (0..n).map(|_| AtomicBool::new(false)).collect(),
            programs_left: AtomicUsize::new(programs),
            wfi: (0..n).map(|_| Notify::new()).collect(),
            brk: sabotage(),
        })
    }

    fn table(&self) -> VcpuTable<'_> {
        self.vcpus.table()
    }

    fn in_guest(&self, i: usize) -> bool {
        // Relaxed: the ghost adds no synchronisation of its own; what the
        // reader sees is only what the protocol's orderings guarantee.
        self.in_guest[i].load(Ordering::Relaxed)
    }

    /// An SGI wakes `cpu` from WFI.
    fn wake(&self, cpu: usize) {
        self.wfi[cpu].notify();
    }

    /// WFI on CPU `me`: until an SGI (or spuriously).
    fn sleep(&self, me: usize) {
        self.wfi[me].wait();
    }

    fn program_done(&self) {
        if self.programs_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // End of the scenario: let parked and spinning CPUs finish.
            for cpu in 0..self.vcpus.len() {
                self.wake(cpu);
            }
        }
    }

    fn quiescent(&self) -> bool {
        self.programs_left.load(Ordering::Acquire) == 0
    }
}

/// Runs one closure per CPU, each on its own loom thread (the model's main
/// thread only starts and joins them), and returns their results.
fn run_cpus<T: Send + 'static>(
    m: &Arc<Machine>,
    cpus: Vec<Box<dyn FnOnce(Cpu<'_>) -> T + Send>>,
) -> Vec<T> {
    let handles: Vec<_> = cpus
        .into_iter()
        .enumerate()
        .map(|(me, f)| {
            let m = m.clone();
            thread::spawn(move || f(Cpu { m: &m, me }))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

type CpuFn<T> = Box<dyn FnOnce(Cpu<'_>) -> T + Send>;

/// The StopPlatform of the model: a clock that advances per reading and an
/// SGI that makes SGI_STOP pending at every other CPU.
struct Platform<'a> {
    m: &'a Machine,
    me: usize,
    clock: Cell<u64>,
}

impl StopPlatform for Platform<'_> {
    fn now_ns(&self) -> u64 {
        self.clock.set(self.clock.get() + CLOCK_STEP_NS);
        self.clock.get()
    }

    fn broadcast_stop_sgi(&self) {
        // gic::broadcast_stop: DSB ISHST, then one SGI to all but self.
        for (j, pending) in self.m.sgi.iter().enumerate() {
            if j != self.me {
                pending.store(true, Ordering::Release);
                self.m.wake(j);
            }
        }
    }
}

/// One physical CPU running the EL2 model.
struct Cpu<'a> {
    m: &'a Machine,
    me: usize,
}

impl Cpu<'_> {
    fn slot(&self) -> &VcpuSlot {
        &self.m.vcpus[self.me].slot
    }

    /// The real park-loop code for this vCPU.
    fn parker(&self) -> Parker<'_> {
        Parker {
            me: self.me,
            slot: self.slot(),
            stop: &self.m.stop,
            live: &self.m.live,
        }
    }

    /// PSCI CPU_OFF or a stop from a trap: the trap entry leaves the guest
    /// (`Parker::leave`, as the machine's park does first).
    fn leave_guest(&self, reason: ParkReason) {
        self.parker().leave(reason, self);
    }

    /// `Parker::park_until_boot` with no reason (already parked), bounded:
    /// the boot request the vCPU entered the guest with, or `None` once no
    /// CPU_ON can come.
    fn park_loop(&self) -> Option<BootRequest> {
        let req = self.parker().park_until_boot(None, self)?;
        assert_eq!(self.slot().state(), PowerState::On);
        self.m.in_guest[self.me].store(true, Ordering::Relaxed);
        Some(req)
    }

    /// The trap exit after a handler that resumes (`traps::handle_lower`'s
    /// `Parker::trap_exit`). True if the vCPU parked.
    fn stop_if_requested(&self) -> bool {
        match self.parker().trap_exit(Exit::Resume) {
            Exit::Park(reason) => {
                self.leave_guest(reason);
                true
            }
            Exit::Resume => false,
        }
    }

    /// The guest executes an instruction: a pending SGI_STOP is taken first
    /// (physical IRQs go to EL2, so guest DAIF does not matter) and the trap
    /// exit checks for a stop. True if the vCPU parked.
    fn guest_step(&self) -> bool {
        assert!(
            self.m.in_guest(self.me),
            "cpu{} runs guest code while not in the guest",
            self.me
        );
        // gic::acknowledge reads and clears the pending SGI. (A load and a
        // store: loom 0.7's swap misbehaves next to Notify.)
        if self.m.sgi[self.me].load(Ordering::Acquire) {
            self.m.sgi[self.me].store(false, Ordering::Relaxed);
            // traps::interrupt acknowledged it; then stop_if_requested.
            return self.stop_if_requested();
        }
        false
    }

    /// A hypercall from the guest: trap, `handle`, then stop_if_requested.
    /// `None` if the vCPU parked instead (before or after the call).
    fn hypercall<R>(&self, handle: impl FnOnce() -> R) -> Option<R> {
        if self.guest_step() {
            return None;
        }
        let r = handle();
        if self.stop_if_requested() {
            None
        } else {
            Some(r)
        }
    }

    /// The guest spins with DAIF masked: only SGI_STOP brings it to EL2. True
    /// if it parked; false if it is still in the guest once no guest program
    /// can start a stop any more.
    fn spin_in_guest(&self) -> bool {
        loop {
            if self.guest_step() {
                return true;
            }
            if self.m.quiescent() && !self.m.sgi[self.me].load(Ordering::Acquire) {
                return false;
            }
            self.m.sleep(self.me);
        }
    }

    /// A secondary's whole life: (if it starts ON) spin in the guest until
    /// stopped, then park until booted, spin again, ...; ends once nothing
    /// can boot or stop it any more.
    fn secondary(&self) {
        if self.m.in_guest(self.me) && !self.spin_in_guest() {
            return;
        }
        while self.park_loop().is_some() {
            if !self.spin_in_guest() {
                return;
            }
        }
    }

    /// The real `psci::cpu_on`, with this CPU as its platform.
    fn cpu_on(&self, target: usize, req: BootRequest) -> i64 {
        let table = self.m.table();
        let mpidr = self.m.vcpus[target].mpidr;
        match psci::cpu_on(&table, &self.m.live, mpidr, req, guest_ram, self) {
            Ok(t) => {
                assert_eq!(t, target);
                SUCCESS
            }
            Err(e) => e,
        }
    }

    fn affinity_info(&self, target: usize) -> i64 {
        psci::affinity_info(&self.m.table(), self.m.vcpus[target].mpidr, 0)
    }

    fn fast_stop(&self, timeout_us: u64) -> StopReport {
        let platform = Platform {
            m: self.m,
            me: self.me,
            clock: Cell::new(0),
        };
        let entry_ns = platform.now_ns();
        self.m
            .stop
            .run(&self.m.table(), self.me, timeout_us, 0, entry_ns, &platform)
    }

    /// What FAST_STOP returning 0 promises: no other vCPU is in the guest.
    fn assert_alone_in_guest(&self, report: &StopReport) {
        for j in (0..self.m.vcpus.len()).filter(|&j| j != self.me) {
            assert!(
                !self.m.in_guest(j),
                "FAST_STOP returned {report:?} with cpu{j} in the guest"
            );
            assert_eq!(
                self.m.vcpus[j].slot.state(),
                PowerState::Off,
                "cpu{j} after {report:?}"
            );
        }
    }
}

/// The model machine under the real park loop (arch/park.rs's `Machine`).
impl ParkPlatform for Cpu<'_> {
    /// Leave guest context, then publish OFF (with the fast-stop
    /// acknowledgement in the same store).
    fn leave_guest(&self, reason: ParkReason) {
        match reason {
            ParkReason::CpuOff | ParkReason::Fault => {
                self.m.cpu_off[self.me].store(true, Ordering::Relaxed)
            }
            ParkReason::FastStop(g) | ParkReason::BootCancelled(g) => {
                self.m.acked[self.me].store(g, Ordering::Relaxed)
            }
        }
        if self.m.brk == Break::OffBeforeLeave {
            self.slot().park(reason.acknowledges());
            self.m.in_guest[self.me].store(false, Ordering::Relaxed);
        } else {
            self.m.in_guest[self.me].store(false, Ordering::Relaxed);
            self.slot().park(reason.acknowledges());
        }
    }

    fn enter(&self, request: &BootRequest, mark_on: &dyn Fn()) {
        assert_eq!(self.slot().boot_request(), Some(*request));
        mark_on();
    }

    /// WFI until CPU_ON's kick, or `false` at the end of the scenario.
    fn wait(&self) -> bool {
        if self.m.quiescent() && self.slot().boot_request().is_none() {
            return false;
        }
        self.m.sleep(self.me);
        true
    }

    fn skip_post_entry_check(&self) -> bool {
        self.m.brk == Break::NoPostCheck
    }

    /// The last live vCPU parked: from here on no vCPU may be live, and
    /// none may ever be again (checked at the end of each model).
    fn all_off(&self) {
        self.m.all_off.fetch_add(1, Ordering::Relaxed);
        for (j, vcpu) in (0..self.m.vcpus.len()).map(|j| (j, &self.m.vcpus[j])) {
            assert_eq!(
                vcpu.slot.state(),
                PowerState::Off,
                "cpu{} says every vCPU is OFF, but cpu{j} is live",
                self.me
            );
        }
    }
}

/// The model machine under the real CPU_ON (arch/hypercall.rs's `CpuOnCaller`).
impl CpuOnPlatform for Cpu<'_> {
    /// The trace line goes out here: the target must not be able to start.
    fn claimed(&self, target: usize) {
        assert_eq!(self.m.vcpus[target].slot.boot_request(), None);
        assert!(!self.m.in_guest(target));
    }

    /// gic::kick: DSB, then an SGI that wakes the target's WFI.
    fn kick(&self, target: usize) {
        self.m.wake(target);
    }

    fn count_after_publish(&self) -> bool {
        self.m.brk == Break::CountAfterPublish
    }
}

/// Explores `f` exhaustively with at most `max_preemptions` preemptions.
/// `LOOM_MAX_PREEMPTIONS` can lower that bound, not raise it (the three-CPU
/// fast-stop models take many minutes at 2); `PARKVISOR_LOOM_PREEMPTIONS`
/// sets it outright, for a deeper run.
fn model(max_preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    let forced = std::env::var("PARKVISOR_LOOM_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok());
    b.preemption_bound = Some(match forced {
        Some(bound) => bound,
        None => b
            .preemption_bound
            .map_or(max_preemptions, |env| env.min(max_preemptions)),
    });
    b.max_branches = 100_000;
    b.check(f);
}

/// Position of an AFFINITY_INFO answer in one power cycle after CPU_ON.
fn phase(ai: i64) -> u8 {
    match ai {
        AI_PENDING => 0,
        AI_ON => 1,
        AI_OFF => 2,
        other => panic!("AFFINITY_INFO answered {other}"),
    }
}

/// CPU0 boots CPU1 twice (CPU_ON, then AFFINITY_INFO until OFF); CPU1 enters
/// the guest with what was published, then CPU_OFFs itself.
#[test]
fn park_cpu_on_cpu_off_affinity_info() {
    const ROUNDS: u64 = 2;
    model(3, || {
        let m = Machine::new(&[true, false], 1);
        let cpu0: CpuFn<()> = Box::new(|cpu| {
            for round in 0..ROUNDS {
                assert_eq!(
                    cpu.hypercall(|| cpu.cpu_on(1, request(round))),
                    Some(SUCCESS)
                );
                let mut seen = 0;
                loop {
                    let ai = cpu.hypercall(|| cpu.affinity_info(1)).unwrap();
                    // Only OFF -> ON_PENDING -> ON -> OFF, never backwards.
                    assert!(
                        phase(ai) >= seen,
                        "AFFINITY_INFO went back: phase {seen} -> {ai}"
                    );
                    seen = phase(ai);
                    if ai == AI_OFF {
                        assert!(
                            !cpu.m.in_guest(1),
                            "AFFINITY_INFO says OFF while cpu1 is in the guest"
                        );
                        break;
                    }
                    thread::yield_now();
                }
            }
            cpu.m.program_done();
        });
        let cpu1: CpuFn<()> = Box::new(|cpu| {
            for round in 0..ROUNDS {
                let req = cpu.park_loop().expect("CPU0 boots me ROUNDS times");
                assert_eq!(req, request(round), "entry/context_id exactly as published");
                // The guest runs, then calls CPU_OFF (trap -> park).
                assert!(!cpu.guest_step());
                cpu.leave_guest(ParkReason::CpuOff);
                // OFF, or already claimed by CPU0's next CPU_ON.
                assert_ne!(cpu.slot().state(), PowerState::On);
            }
            assert_eq!(cpu.park_loop(), None);
        });
        run_cpus(&m, vec![cpu0, cpu1]);
        assert_eq!(m.vcpus[1].slot.state(), PowerState::Off);
    });
}

/// CPU_ON's power decision: CPU0 CPU_ONs the parked CPU1 and then CPU_OFFs
/// itself while CPU1 boots and CPU_OFFs too. Whichever parks last, and only
/// it, finds that nothing can run any more, and then every vCPU is OFF: the
/// target counts as live from its claim on, before it can start and park.
#[test]
fn cpu_on_then_both_cpu_off_ends_exactly_once() {
    model(3, || {
        let m = Machine::new(&[true, false], 1);
        let cpu0: CpuFn<()> = Box::new(|cpu| {
            assert_eq!(cpu.hypercall(|| cpu.cpu_on(1, request(1))), Some(SUCCESS));
            cpu.leave_guest(ParkReason::CpuOff);
            cpu.m.program_done();
            assert_eq!(cpu.park_loop(), None);
        });
        let cpu1: CpuFn<()> = Box::new(|cpu| {
            let req = cpu.park_loop().expect("CPU0 boots me");
            assert_eq!(req, request(1), "the whole request, endianness included");
            assert!(!cpu.guest_step());
            cpu.leave_guest(ParkReason::CpuOff);
            assert_eq!(cpu.park_loop(), None);
        });
        run_cpus(&m, vec![cpu0, cpu1]);
        assert_eq!(
            m.all_off.load(Ordering::Relaxed),
            1,
            "exactly the last park finds every vCPU OFF"
        );
    });
}

/// CPU0 and CPU2 race to CPU_ON the parked CPU1.
#[test]
fn cpu_on_race() {
    model(3, || {
        let m = Machine::new(&[true, false, true], 2);
        let caller = |n: u64| -> CpuFn<i64> {
            Box::new(move |cpu| {
                let r = cpu.hypercall(|| cpu.cpu_on(1, request(n))).unwrap();
                cpu.m.program_done();
                r
            })
        };
        let target: CpuFn<i64> = Box::new(|cpu| {
            let req = cpu.park_loop().expect("one CPU_ON wins");
            req.context_id as i64
        });
        let r = run_cpus(&m, vec![caller(0), target, caller(2)]);
        let winner = match (r[0], r[2]) {
            (SUCCESS, ALREADY_ON | ON_PENDING) => 0,
            (ALREADY_ON | ON_PENDING, SUCCESS) => 2,
            other => panic!("exactly one CPU_ON must succeed: {other:?}"),
        };
        assert_eq!(
            r[1] as u64,
            request(winner).context_id,
            "boots with the winner's request"
        );
        assert_eq!(m.vcpus[1].slot.boot_request(), None);
        assert_eq!(m.vcpus[1].slot.state(), PowerState::On);
        assert!(m.in_guest(1));
    });
}

/// CPU0 calls FAST_STOP while CPU1 runs the guest with DAIF masked (after
/// one hypercall, so the stop may also find it at EL2).
#[test]
fn fast_stop_vs_running_target() {
    model(3, || {
        let m = Machine::new(&[true, true], 1);
        let caller: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            let r = cpu.fast_stop(GENEROUS_TIMEOUT_US);
            assert_eq!(
                (r.result, r.stopped, r.unconfirmed, r.sgi_writes),
                (0, 1, 0, 1),
                "{r:?}"
            );
            cpu.assert_alone_in_guest(&r);
            cpu.m.program_done();
            Some(r)
        });
        let target: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            if cpu.hypercall(|| ()).is_some() {
                assert!(cpu.spin_in_guest(), "the stop SGI always lands");
            }
            assert_eq!(cpu.park_loop(), None);
            None
        });
        let r = run_cpus(&m, vec![caller, target])[0].unwrap();
        assert_eq!(m.vcpus[1].slot.acked_generation(), r.generation);
        assert_eq!(m.acked[1].load(Ordering::Relaxed), r.generation);
    });
}

/// CPU0 calls FAST_STOP while CPU1 calls CPU_OFF (CPU2 is OFF all along).
#[test]
fn fast_stop_vs_cpu_off() {
    model(3, || {
        let m = Machine::new(&[true, true, false], 1);
        let caller: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            let r = cpu.fast_stop(GENEROUS_TIMEOUT_US);
            assert_eq!((r.result, r.unconfirmed), (0, 0), "{r:?}");
            cpu.assert_alone_in_guest(&r);
            cpu.m.program_done();
            Some(r)
        });
        let off: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            if cpu.hypercall(|| ()).is_some() {
                // PSCI CPU_OFF: parks; never returns to this guest code.
                cpu.leave_guest(ParkReason::CpuOff);
            }
            assert_eq!(cpu.park_loop(), None);
            None
        });
        let r = run_cpus(&m, vec![caller, off])[0].unwrap();
        // Every vCPU accounted for exactly once: this stop parked it (and it
        // is counted), or its own CPU_OFF did, or it was OFF all along (and
        // it is not).
        let by_stop = m.acked[1].load(Ordering::Relaxed) == r.generation;
        let by_off = m.cpu_off[1].load(Ordering::Relaxed);
        assert!(by_stop != by_off, "cpu1 stopped={by_stop} cpu_off={by_off}");
        assert_eq!(r.stopped, u64::from(by_stop), "{r:?}");
        assert_eq!(
            m.acked[2].load(Ordering::Relaxed),
            0,
            "cpu2 was never running"
        );
    });
}

/// CPU0 calls FAST_STOP while CPU2, itself being stopped, CPU_ONs the parked
/// CPU1 twice (the second may find CPU1 already parked by the stop). CPU1 has
/// the lower index, so CPU0 may look at it before it looks at CPU2.
#[test]
fn fast_stop_vs_cpu_on_from_a_cpu_being_stopped() {
    model(1, || {
        let m = Machine::new(&[true, false, true], 2);
        let caller: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            let r = cpu.fast_stop(GENEROUS_TIMEOUT_US);
            assert_eq!(r.result, 0, "{r:?}");
            cpu.assert_alone_in_guest(&r);
            cpu.m.program_done();
            Some(r)
        });
        let target: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            cpu.secondary();
            None
        });
        let issuer: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            let stopped = cpu.hypercall(|| cpu.cpu_on(1, request(1))).is_none()
                || cpu.hypercall(|| cpu.cpu_on(1, request(2))).is_none();
            cpu.m.program_done();
            if !stopped {
                assert!(cpu.spin_in_guest(), "the stop SGI always lands");
            }
            None
        });
        let r = run_cpus(&m, vec![caller, target, issuer])[0].unwrap();
        // Nobody is left ON that the stop should have parked.
        for j in 1..3 {
            assert_eq!(m.vcpus[j].slot.state(), PowerState::Off, "cpu{j}");
            assert!(!m.in_guest(j), "cpu{j}");
        }
        let by_stop = (1..3)
            .filter(|&j| m.acked[j].load(Ordering::Relaxed) == r.generation)
            .count();
        assert_eq!(r.stopped, by_stop as u64, "{r:?}");
    });
}

/// CPU0 calls FAST_STOP while CPU2 CPU_ONs the parked CPU1 and then CPU_OFFs
/// itself, so CPU0 may find every other vCPU OFF and send no SGI at all.
#[test]
fn fast_stop_vs_cpu_on_then_cpu_off() {
    model(1, || {
        let m = Machine::new(&[true, false, true], 2);
        let caller: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            let r = cpu.fast_stop(GENEROUS_TIMEOUT_US);
            assert_eq!(r.result, 0, "{r:?}");
            cpu.assert_alone_in_guest(&r);
            cpu.m.program_done();
            Some(r)
        });
        let target: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            cpu.secondary();
            None
        });
        let issuer: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            if cpu.hypercall(|| cpu.cpu_on(1, request(1))).is_some() {
                cpu.leave_guest(ParkReason::CpuOff);
            }
            cpu.m.program_done();
            assert_eq!(cpu.park_loop(), None);
            None
        });
        run_cpus(&m, vec![caller, target, issuer]);
        for j in 1..3 {
            assert_eq!(m.vcpus[j].slot.state(), PowerState::Off, "cpu{j}");
            assert!(!m.in_guest(j), "cpu{j}");
        }
    });
}

/// CPU0 and CPU1 both call FAST_STOP (CPU2 is OFF all along).
#[test]
fn two_concurrent_fast_stops() {
    model(3, || {
        let m = Machine::new(&[true, true, false], 2);
        let caller = || -> CpuFn<Option<i64>> {
            Box::new(
                |cpu| match cpu.hypercall(|| cpu.fast_stop(GENEROUS_TIMEOUT_US)) {
                    Some(r) if r.result == 0 => {
                        assert_eq!((r.stopped, r.unconfirmed), (1, 0), "{r:?}");
                        cpu.assert_alone_in_guest(&r);
                        cpu.m.program_done();
                        Some(0)
                    }
                    Some(r) => {
                        assert_eq!(r.result, DENIED, "{r:?}");
                        cpu.m.program_done();
                        assert!(cpu.spin_in_guest(), "the winner's SGI lands");
                        assert_eq!(cpu.park_loop(), None);
                        Some(r.result)
                    }
                    None => {
                        // Stopped before its own call (or right after DENIED).
                        cpu.m.program_done();
                        assert_eq!(cpu.park_loop(), None);
                        None
                    }
                },
            )
        };
        let r = run_cpus(&m, vec![caller(), caller()]);
        let winners: Vec<usize> = (0..2).filter(|&i| r[i] == Some(0)).collect();
        assert_eq!(winners.len(), 1, "exactly one FAST_STOP succeeds: {r:?}");
        let w = winners[0];
        assert!(matches!(r[1 - w], Some(DENIED) | None), "{r:?}");
        // Consistent afterwards: the winner alone is ON and in the guest.
        for j in 0..3 {
            let on = j == w;
            assert_eq!(m.vcpus[j].slot.state() == PowerState::On, on, "cpu{j}");
            assert_eq!(m.in_guest(j), on, "cpu{j}");
        }
    });
}

/// CPU0 calls FAST_STOP with a short deadline; CPU1 is wedged (ON, never
/// takes the SGI, no thread), CPU2 is responsive.
#[test]
fn fast_stop_timeout_reports_honest_counts() {
    const TIMEOUT_US: u64 = 4;
    model(3, || {
        let m = Machine::new(&[true, true, true], 1);
        let caller: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            let r = cpu.fast_stop(TIMEOUT_US);
            assert_eq!(r.result, INTERNAL_FAILURE, "{r:?}");
            assert!(r.elapsed_ns >= TIMEOUT_US * 1000, "{r:?}");
            // Every vCPU that was running is in exactly one of the counts.
            assert_eq!(r.stopped + r.unconfirmed, 2, "{r:?}");
            assert!(
                r.unconfirmed >= 1,
                "the wedged cpu1 is never confirmed: {r:?}"
            );
            // Once the call returned, nobody is asked to stop any more.
            assert_eq!(cpu.m.stop.pending_for(1), None);
            cpu.m.program_done();
            Some(r)
        });
        let wedged: CpuFn<Option<StopReport>> = Box::new(|_| None);
        let target: CpuFn<Option<StopReport>> = Box::new(|cpu| {
            cpu.secondary();
            None
        });
        let r = run_cpus(&m, vec![caller, wedged, target])[0].unwrap();
        // Counted as stopped only if it really acknowledged this generation.
        let cpu2_acked = m.acked[2].load(Ordering::Relaxed) == r.generation;
        assert!(r.stopped == 0 || cpu2_acked, "{r:?}");
        assert_eq!(m.vcpus[1].slot.state(), PowerState::On);
    });
}

// ---------------------------------------------------------------------------
// Trace rings (`parkvisor::trace_buffer`): per-CPU records, merged by number
// ---------------------------------------------------------------------------

use parkvisor::trace::{Event, Reason};
use parkvisor::trace_buffer::{Merger, Record, Sequencer, TraceRing};

/// Two recording CPUs, their rings, and a clock.
struct TraceMachine {
    rings: Vec<TraceRing>,
    seq: Sequencer,
    /// What cpu0 publishes after recording its cause line.
    published: AtomicBool,
    clock: AtomicU64,
}

impl TraceMachine {
    fn new(ring_words: usize) -> Arc<Self> {
        Arc::new(Self {
            rings: (0..2).map(|_| TraceRing::new(ring_words)).collect(),
            seq: Sequencer::new(),
            published: AtomicBool::new(false),
            clock: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn record(&self, me: usize, text: &str) -> bool {
        self.rings[me].record(&self.seq, me, me, || self.now(), text.as_bytes())
    }

    /// A hot event, through the inlined packed path the hypervisor runs.
    fn record_event(&self, me: usize, event: &Event<'_>) -> bool {
        self.rings[me].record_event(&self.seq, me, me, || self.now(), event)
    }

    /// Every line the merger can print now, as `cpu<N> <text>`.
    fn drain(&self, merger: &mut Merger, out: &mut Vec<String>) {
        let mut r = Record::new();
        while merger.pop(&self.rings, &mut r) {
            out.push(format!("cpu{} {}", r.cpu, r.body.as_str()));
        }
    }
}

/// A printer on its own thread (the console's drain): `passes` drains.
fn spawn_printer(
    m: &Arc<TraceMachine>,
    passes: usize,
) -> thread::JoinHandle<(Merger, Vec<String>)> {
    let m = m.clone();
    thread::spawn(move || {
        let mut merger = Merger::new();
        let mut out = Vec::new();
        for _ in 0..passes {
            m.drain(&mut merger, &mut out);
        }
        (merger, out)
    })
}

fn position(lines: &[String], line: &str) -> Option<usize> {
    let all: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == line).collect();
    assert!(all.len() <= 1, "{line:?} printed twice: {lines:?}");
    all.first().copied()
}

/// cpu0 records a cause and then publishes it; cpu1 records a consequence
/// only if it saw the publication; a third CPU prints concurrently (the
/// console's drain), and the rest is printed at the end. Every line comes
/// out once and intact, each CPU's lines in program order, and the
/// consequence never before its cause.
#[test]
fn trace_lines_print_causes_before_consequences() {
    model(2, || {
        let m = TraceMachine::new(0);
        let cause = {
            let m = m.clone();
            thread::spawn(move || {
                assert!(m.record_event(0, &Event::Mark { value: 0xa1 }));
                assert!(m.record_event(
                    0,
                    &Event::State {
                        from: PowerState::On,
                        to: PowerState::Off,
                        reason: Reason::FastStop,
                    }
                ));
                m.published.store(true, Ordering::Release);
            })
        };
        let effect = {
            let m = m.clone();
            thread::spawn(move || {
                assert!(m.record(1, "mark 0x000000b1"));
                let saw = m.published.load(Ordering::Acquire);
                if saw {
                    assert!(m.record_event(
                        1,
                        &Event::FastStopEnd {
                            result: 0,
                            stopped: 1,
                            unconfirmed: 0,
                            elapsed_ns: 7,
                        }
                    ));
                }
                saw
            })
        };
        let printer = spawn_printer(&m, 2);
        cause.join().unwrap();
        let saw = effect.join().unwrap();
        let (mut merger, mut out) = printer.join().unwrap();
        m.drain(&mut merger, &mut out);
        assert_eq!(out.len(), if saw { 4 } else { 3 }, "{out:?}");
        let a1 = position(&out, "cpu0 mark 0x000000a1").expect("a1");
        let a2 = position(&out, "cpu0 state ON -> OFF (fast-stop)").expect("a2");
        let b1 = position(&out, "cpu1 mark 0x000000b1").expect("b1");
        assert!(a1 < a2, "{out:?}");
        if saw {
            let b2 = position(
                &out,
                "cpu1 fast-stop end result=0 stopped=1 unconfirmed=0 elapsed_ns=7",
            )
            .expect("b2");
            assert!(b1 < b2 && a2 < b2, "consequence before its cause: {out:?}");
        }
        assert!(!merger.any_pending(&m.rings));
    });
}

/// A small ring filled by its CPU while another prints: whatever does not
/// fit is counted, and the CPU's next record that fits is preceded by a line
/// that says how many were lost; nothing is lost silently.
#[test]
fn trace_drops_are_reported_in_order() {
    const RECORDS: usize = 4;
    model(2, || {
        // The smallest ring: 32 words, three of these 9-word records.
        let m = TraceMachine::new(0);
        let producer = {
            let m = m.clone();
            thread::spawn(move || {
                let mut kept = 0;
                for i in 0..RECORDS {
                    kept += m.record(0, &format!("mark 0x0000000{i} {}", "p".repeat(30))) as usize;
                }
                kept
            })
        };
        let printer = spawn_printer(&m, 1);
        let kept = producer.join().unwrap();
        let (mut merger, mut out) = printer.join().unwrap();
        m.drain(&mut merger, &mut out);
        // cpu0 again (after the join): one more record, which must fit now.
        assert!(m.record(0, "mark 0x000000ff"));
        m.drain(&mut merger, &mut out);
        let marks: Vec<&String> = out.iter().filter(|l| l.contains(" mark ")).collect();
        assert_eq!(marks.len(), kept + 1, "{out:?}");
        let mut sorted = marks.clone();
        sorted.sort();
        assert_eq!(marks, sorted, "program order: {out:?}");
        let lost = RECORDS - kept;
        let notes: Vec<&String> = out.iter().filter(|l| l.contains("dropped")).collect();
        if lost == 0 {
            assert!(notes.is_empty(), "{out:?}");
        } else {
            assert_eq!(notes.len(), 1, "{out:?}");
            assert!(
                notes[0].starts_with(&format!("cpu0 log WARN trace buffer full: {lost} ")),
                "{out:?}"
            );
            assert_eq!(
                out[out.len() - 2],
                *notes[0],
                "the note comes just before the next line"
            );
        }
        assert_eq!(m.rings[0].take_dropped(), 0);
    });
}
