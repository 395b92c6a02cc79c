//! FAST_STOP: take every other vCPU out of the guest in parallel and return
//! only once each one has provably parked (abi.md, vendor call 0xC6000001).
//!
//! Protocol, for caller C and generation G:
//! 1. C becomes the single owner (a second caller gets DENIED) and publishes
//!    `active = G` (SeqCst store, then a SeqCst fence that pairs with the one
//!    in `VcpuSlot::mark_on`).
//! 2. If any other vCPU is not OFF, C sends ONE physical SGI broadcast
//!    (IRM=1, "all but self"). Physical IRQs are routed to EL2, so the SGI
//!    lands even while the guest spins with DAIF masked.
//! 3. Each target, at EL2 (IRQ handler, park loop, or just before entering the
//!    guest), sees `pending_for(me) == Some(G)`, cleans its guest state and
//!    parks with the single release store `state = OFF | ack G`.
//! 4. C waits until two consecutive scans find every other vCPU OFF, or the
//!    deadline passes, then clears `active` and counts, one load per vCPU:
//!    stopped = vCPUs parked with acknowledgement G, unconfirmed = vCPUs
//!    not OFF. A vCPU is in at most one of the two.
//!
//! A vCPU that CPU_ON starts while a stop is active parks before it executes
//! a guest instruction (and is counted as stopped); one that parks by its own
//! CPU_OFF meanwhile keeps its old acknowledgement and is not counted.

use crate::smccc::ret;
use crate::smccc::vendor::FastStopFlags;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, fence, spin_hint};
use crate::vcpu::{PowerState, VcpuTable};

/// `timeout_us == 0` means this many microseconds.
pub use parkvisor_abi::vendor::fast_stop::DEFAULT_TIMEOUT_US;

const NO_OWNER: usize = usize::MAX;

/// What FAST_STOP returns in x0..x3, plus protocol counters for benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopReport {
    /// 0, -2 (bad flags), -3 (another FAST_STOP in progress), -6 (deadline).
    pub result: i64,
    /// vCPUs this call moved from ON/ON_PENDING to parked.
    pub stopped: u64,
    /// vCPUs not confirmed parked by the deadline.
    pub unconfirmed: u64,
    /// Nanoseconds from entry to the last acknowledgement.
    pub elapsed_ns: u64,
    /// Physical SGI writes issued (0 or 1).
    pub sgi_writes: u32,
    /// Generation number of this stop (0 if it never started).
    pub generation: u64,
}

impl StopReport {
    fn refused(result: i64) -> Self {
        Self {
            result,
            stopped: 0,
            unconfirmed: 0,
            elapsed_ns: 0,
            sgi_writes: 0,
            generation: 0,
        }
    }

    /// x0..x3 as abi.md defines them.
    pub fn registers(&self) -> [u64; 4] {
        [
            self.result as u64,
            self.stopped,
            self.unconfirmed,
            self.elapsed_ns,
        ]
    }
}

/// What the protocol needs from the machine.
pub trait StopPlatform {
    /// Monotonic nanoseconds.
    fn now_ns(&self) -> u64;
    /// One SGI broadcast to every physical CPU but the caller's.
    fn broadcast_stop_sgi(&self);
    /// Waits a little for targets to park. The default spins; on hardware
    /// the hypervisor waits for an event (parking CPUs signal one), which
    /// also lets an emulator run the targets instead of the spinning caller.
    fn relax(&self) {
        spin_hint();
    }
}

/// The global fast-stop coordinator.
pub struct FastStop {
    owner: AtomicUsize,
    active: AtomicU64,
    last_generation: AtomicU64,
}

impl Default for FastStop {
    fn default() -> Self {
        Self::new()
    }
}

impl FastStop {
    pub fn new() -> Self {
        Self {
            owner: AtomicUsize::new(NO_OWNER),
            active: AtomicU64::new(0),
            last_generation: AtomicU64::new(0),
        }
    }

    /// The generation `me` must stop for, if a stop by another vCPU is active.
    /// Checked by every CPU at EL2 before it (re-)enters the guest.
    ///
    /// Deliberately not "unless `me` already acknowledged it": a vCPU that
    /// parked for this stop and was started again by a CPU_ON that raced
    /// with it must park again, or it would run guest code while (or after)
    /// the caller is told everyone stopped (checked by the loom model
    /// `fast_stop_vs_cpu_on_from_a_cpu_being_stopped`).
    pub fn pending_for(&self, me: usize) -> Option<u64> {
        let generation = self.active.load(Ordering::SeqCst);
        if generation == 0 || self.owner.load(Ordering::Acquire) == me {
            return None;
        }
        Some(generation)
    }

    /// Tests of other modules: a stop by `owner` with `generation` is active.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn begin_for_test(&self, owner: usize, generation: u64) {
        self.owner.store(owner, Ordering::SeqCst);
        self.active.store(generation, Ordering::SeqCst);
    }

    /// Runs FAST_STOP for vCPU `caller`. `entry_ns` is the hypercall's entry
    /// time on the platform clock.
    pub fn run(
        &self,
        table: &VcpuTable<'_>,
        caller: usize,
        timeout_us: u64,
        flags: u64,
        entry_ns: u64,
        platform: &impl StopPlatform,
    ) -> StopReport {
        // SAVE_SP_EL0 only qualifies SAVE_REGS.
        let valid = FastStopFlags::from_bits(flags).filter(|f| {
            !f.contains(FastStopFlags::SAVE_SP_EL0) || f.contains(FastStopFlags::SAVE_REGS)
        });
        if valid.is_none() {
            return StopReport::refused(ret::INVALID_PARAMETERS);
        }
        if self
            .owner
            .compare_exchange(NO_OWNER, caller, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return StopReport::refused(ret::DENIED);
        }
        let generation = self.last_generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.active.store(generation, Ordering::SeqCst);
        // Store-load ordering against `VcpuSlot::mark_on` (which has the
        // matching fence): either the scan below sees a vCPU that is entering
        // the guest as not OFF (and the SGI goes out), or that vCPU's check
        // after `mark_on` sees `active`. The scan's acquire loads alone do
        // not give this; without it a vCPU started by a CPU that then parked
        // could enter the guest with no SGI sent (loom model
        // `fast_stop_vs_cpu_on_then_cpu_off`).
        fence(Ordering::SeqCst);

        let others = || (0..table.len()).filter(move |&i| i != caller);
        let mut sgi_writes = 0;
        if others().any(|i| table.slot(i).state() != PowerState::Off) {
            platform.broadcast_stop_sgi();
            sgi_writes = 1;
        }

        // The targets get the whole timeout from the moment the SGI is out:
        // time the caller itself lost before sending it (say, behind a busy
        // console) must not turn into a deadline that passed before anyone
        // could acknowledge. Elapsed time is still counted from entry.
        let timeout_us = if timeout_us == 0 {
            DEFAULT_TIMEOUT_US
        } else {
            timeout_us
        };
        let deadline = platform
            .now_ns()
            .max(entry_ns)
            .saturating_add(timeout_us.saturating_mul(1000));
        // The time of the observation that found everyone parked (or the
        // deadline passed) is "the last acknowledgement" as the caller saw it.
        //
        // One scan that finds everyone OFF is not enough: it reads the slots
        // one after another, so it can find vCPU i OFF just before vCPU j > i,
        // not stopped yet, CPU_ONs i and then parks. Every CPU_ON issued
        // during the stop comes from a vCPU before it parks (a vCPU started
        // during the stop parks before running guest code), so a second scan
        // sees each such target (which parks again: `pending_for`); the loom
        // model `fast_stop_vs_cpu_on_from_a_cpu_being_stopped` checks it.
        let mut all_off_at = None;
        let observed = loop {
            let now = platform.now_ns();
            if others().all(|i| table.slot(i).state() == PowerState::Off) {
                match all_off_at {
                    Some(first) => break first,
                    None => {
                        all_off_at = Some(now);
                        continue;
                    }
                }
            }
            all_off_at = None;
            if now >= deadline {
                break now;
            }
            platform.relax();
        };
        self.active.store(0, Ordering::SeqCst);

        // One load per vCPU, so each lands in exactly one bucket even if it
        // parks (or is started again) while we count.
        let (mut stopped, mut unconfirmed) = (0, 0);
        for i in others() {
            match table.slot(i).snapshot() {
                (PowerState::Off, acked) if acked == generation => stopped += 1,
                (PowerState::Off, _) => {}
                _ => unconfirmed += 1,
            }
        }
        self.owner.store(NO_OWNER, Ordering::Release);
        StopReport {
            result: if unconfirmed == 0 {
                ret::SUCCESS
            } else {
                ret::INTERNAL_FAILURE
            },
            stopped,
            unconfirmed,
            elapsed_ns: observed.saturating_sub(entry_ns),
            sgi_writes,
            generation,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vcpu::{BootRequest, Vcpus};
    use core::cell::Cell;

    /// A platform whose clock advances 100 ns per reading and whose SGI makes
    /// every targeted vCPU in `responsive` park at once.
    struct Fake<'a> {
        clock: Cell<u64>,
        table: &'a VcpuTable<'a>,
        stop: &'a FastStop,
        responsive: Vec<usize>,
        sgis: Cell<u32>,
    }

    impl StopPlatform for Fake<'_> {
        fn now_ns(&self) -> u64 {
            self.clock.set(self.clock.get() + 100);
            self.clock.get()
        }
        fn broadcast_stop_sgi(&self) {
            self.sgis.set(self.sgis.get() + 1);
            for &i in &self.responsive {
                if let Some(generation) = self.stop.pending_for(i) {
                    self.table.slot(i).park(Some(generation));
                }
            }
        }
    }

    impl<'a> Fake<'a> {
        fn new(table: &'a VcpuTable<'a>, stop: &'a FastStop, responsive: Vec<usize>) -> Self {
            Self {
                clock: Cell::new(0),
                table,
                stop,
                responsive,
                sgis: Cell::new(0),
            }
        }
    }

    fn running(n: usize) -> Vcpus {
        let mpidrs: Vec<u64> = (0..n as u64).collect();
        Vcpus::new(&mpidrs, |_| true)
    }

    #[test]
    fn stops_every_running_vcpu_with_one_sgi() {
        let v = running(8);
        let table = v.table();
        let stop = FastStop::new();
        let fake = Fake::new(&table, &stop, (1..8).collect());
        let r = stop.run(&table, 0, 0, 0, 0, &fake);
        assert_eq!(
            (r.result, r.stopped, r.unconfirmed, r.sgi_writes),
            (0, 7, 0, 1)
        );
        assert!(r.elapsed_ns > 0);
        assert_eq!(fake.sgis.get(), 1);
        assert_eq!(
            v[0].slot.state(),
            PowerState::On,
            "the caller keeps running"
        );
        assert!((1..8).all(|i| v[i].slot.state() == PowerState::Off));
        // Nothing left running: 0 stopped, no SGI at all.
        let r = stop.run(&table, 0, 0, 0, 0, &fake);
        assert_eq!(
            (r.result, r.stopped, r.unconfirmed, r.sgi_writes),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn already_off_vcpus_count_in_neither_total() {
        let v = running(4);
        v[2].slot.park(None);
        let table = v.table();
        let stop = FastStop::new();
        let fake = Fake::new(&table, &stop, vec![1, 3]);
        let r = stop.run(&table, 0, 0, 0, 0, &fake);
        assert_eq!((r.result, r.stopped, r.unconfirmed), (0, 2, 0));
    }

    #[test]
    fn deadline_reports_honest_counts() {
        let v = running(4);
        let table = v.table();
        let stop = FastStop::new();
        let fake = Fake::new(&table, &stop, vec![1]);
        let r = stop.run(&table, 0, 5, 0, 0, &fake);
        assert_eq!((r.result, r.stopped, r.unconfirmed), (-6, 1, 2));
        assert!(
            r.elapsed_ns >= 5_000,
            "waited until the deadline: {}",
            r.elapsed_ns
        );
        // After the stop ended, the survivors are not asked to stop any more.
        assert_eq!(stop.pending_for(2), None);
    }

    /// Targets that park only after `delay` clock readings following the SGI.
    struct Slow<'a> {
        clock: Cell<u64>,
        table: &'a VcpuTable<'a>,
        stop: &'a FastStop,
        readings_left: Cell<Option<u32>>,
    }

    impl StopPlatform for Slow<'_> {
        fn now_ns(&self) -> u64 {
            self.clock.set(self.clock.get() + 100);
            if let Some(n) = self.readings_left.get() {
                if n == 0 {
                    for i in 1..self.table.len() {
                        if let Some(g) = self.stop.pending_for(i) {
                            self.table.slot(i).park(Some(g));
                        }
                    }
                }
                self.readings_left.set(n.checked_sub(1));
            }
            self.clock.get()
        }
        fn broadcast_stop_sgi(&self) {
            self.readings_left.set(Some(3));
        }
    }

    #[test]
    fn the_deadline_starts_when_the_sgi_is_out() {
        let v = running(4);
        let table = v.table();
        let stop = FastStop::new();
        // The call trapped 1 ms before the protocol ran (the caller was held
        // up at EL2); the guest asked for a 100 µs deadline.
        let slow = Slow {
            clock: Cell::new(1_000_000),
            table: &table,
            stop: &stop,
            readings_left: Cell::new(None),
        };
        let r = stop.run(&table, 0, 100, 0, 0, &slow);
        assert_eq!((r.result, r.stopped, r.unconfirmed), (0, 3, 0), "{r:?}");
        assert!(
            r.elapsed_ns > 1_000_000,
            "elapsed still counts from entry: {r:?}"
        );
    }

    #[test]
    fn bad_flags_and_concurrent_callers_are_refused() {
        let v = running(2);
        let table = v.table();
        let stop = FastStop::new();
        let fake = Fake::new(&table, &stop, vec![]);
        assert_eq!(
            stop.run(&table, 0, 0, 4, 0, &fake).result,
            -2,
            "unknown flag"
        );
        assert_eq!(
            stop.run(&table, 0, 0, 2, 0, &fake).result,
            -2,
            "SAVE_SP_EL0 without SAVE_REGS"
        );
        stop.owner.store(1, Ordering::SeqCst);
        assert_eq!(stop.run(&table, 0, 0, 0, 0, &fake).result, -3);
    }

    #[test]
    fn a_vcpu_started_during_a_stop_parks_before_entering() {
        let v = running(3);
        v[2].slot.park(None);
        let stop = FastStop::new();
        stop.owner.store(0, Ordering::SeqCst);
        stop.active.store(1, Ordering::SeqCst);
        // vCPU 1 (being stopped) issues CPU_ON for vCPU 2.
        v[2].slot.try_claim().unwrap();
        v[2].slot.publish_boot(BootRequest {
            entry: 0,
            context_id: 0,
            big_endian: false,
        });
        assert_eq!(stop.pending_for(2), Some(1));
        assert_eq!(stop.pending_for(0), None, "never the owner");
        v[2].slot.park(Some(1));
        // Started again while the same stop is active: it must park again.
        v[2].slot.try_claim().unwrap();
        v[2].slot.publish_boot(BootRequest {
            entry: 0,
            context_id: 0,
            big_endian: false,
        });
        assert_eq!(stop.pending_for(2), Some(1), "a restarted vCPU parks again");
    }
}
