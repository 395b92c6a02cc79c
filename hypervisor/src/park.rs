//! The park loop's decisions: what an OFF vCPU does between leaving the guest
//! and entering it again. Portable, so the loom models (`tests/loom.rs`) run
//! exactly this code; `arch/park.rs` supplies the machine through
//! [`ParkPlatform`], as `StopPlatform` does for FAST_STOP.
//!
//! The order matters (see `docs/protocols.md`): a boot request is taken only
//! after checking for a fast-stop, `mark_on` publishes ON with a fence, and
//! the stop is checked once more after it, so a FAST_STOP that starts
//! concurrently either sees the vCPU ON (and its SGI reaches it) or is seen
//! here before any guest instruction runs.

use crate::fast_stop::FastStop;
use crate::vcpu::{BootRequest, LiveCount, VcpuSlot};

/// Why a vCPU leaves the guest (or a pending boot) for the park loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkReason {
    /// PSCI CPU_OFF (or CPU_SUSPEND powerdown's equivalent).
    CpuOff,
    /// The guest faulted where it cannot handle the fault.
    Fault,
    /// Acknowledging FAST_STOP generation `n`, leaving a running guest context.
    FastStop(u64),
    /// Acknowledging FAST_STOP generation `n` with a CPU_ON's boot still
    /// pending: the vCPU parks again before running any guest code.
    BootCancelled(u64),
}

impl ParkReason {
    /// The fast-stop generation this park acknowledges, if any.
    pub fn acknowledges(self) -> Option<u64> {
        match self {
            ParkReason::FastStop(g) | ParkReason::BootCancelled(g) => Some(g),
            ParkReason::CpuOff | ParkReason::Fault => None,
        }
    }
}

/// What a trap handler decided: the guest goes on, or this vCPU leaves it
/// for the park loop. Handlers return it; only the trap entry acts on a park,
/// so a parked vCPU never sits inside a handler, and its next life starts on
/// a fresh EL2 stack instead of returning through the old call's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Return to the guest (with whatever the handler put in its frame).
    Resume,
    /// Leave the guest for the park loop.
    Park(ParkReason),
}

/// What the park loop needs from the machine.
pub trait ParkPlatform {
    /// Leaves guest context for good (list registers, timers, TLBs) and then
    /// publishes OFF with `VcpuSlot::park(reason.acknowledges())`.
    fn leave_guest(&self, reason: ParkReason);
    /// Publishes ON by calling `mark_on` (the platform may trace the change
    /// in the same critical section) just before the vCPU enters the guest
    /// with `request`.
    fn enter(&self, request: &BootRequest, mark_on: &dyn Fn());
    /// Waits for CPU_ON's kick. False when no kick can ever come (only the
    /// bounded models end that way; the machine waits forever).
    fn wait(&self) -> bool;
    /// This vCPU was the last live one: no vCPU can ever CPU_ON another
    /// again (the machine says so and powers off).
    fn all_off(&self);
    /// Models only: skip the stop check after `mark_on`, to show that the
    /// models catch the missing check.
    #[cfg(loom)]
    fn skip_post_entry_check(&self) -> bool {
        false
    }
}

/// vCPU `me`'s view of the protocols it takes part in while parked.
pub struct Parker<'a> {
    pub me: usize,
    pub slot: &'a VcpuSlot,
    pub stop: &'a FastStop,
    /// Live vCPUs (ON or ON_PENDING); `psci::cpu_on` counts them in.
    pub live: &'a LiveCount,
}

impl Parker<'_> {
    /// The fast-stop this vCPU must acknowledge now, checked at every trap
    /// exit (`Some(g)`: leave with [`ParkReason::FastStop`]).
    pub fn stop_requested(&self) -> Option<u64> {
        self.stop.pending_for(self.me)
    }

    /// The trap exit's decision: a handler's park stands; otherwise a
    /// fast-stop that wants this vCPU parks it instead of resuming.
    pub fn trap_exit(&self, handled: Exit) -> Exit {
        match handled {
            Exit::Resume => self
                .stop_requested()
                .map_or(Exit::Resume, |g| Exit::Park(ParkReason::FastStop(g))),
            park => park,
        }
    }

    /// Leaves the guest for `reason` and publishes OFF; the last live vCPU
    /// to do so tells the platform that nothing can run any more.
    pub fn leave(&self, reason: ParkReason, platform: &impl ParkPlatform) {
        platform.leave_guest(reason);
        if self.live.parked() {
            platform.all_off();
        }
    }

    /// Parks (first leaving the guest for `reason`, if given) until a CPU_ON
    /// boots this vCPU; returns the boot request it enters the guest with.
    /// `None` only when the platform says no CPU_ON can come.
    pub fn park_until_boot(
        &self,
        reason: Option<ParkReason>,
        platform: &impl ParkPlatform,
    ) -> Option<BootRequest> {
        if let Some(reason) = reason {
            self.leave(reason, platform);
        }
        loop {
            if let Some(request) = self.slot.boot_request() {
                // A fast-stop in progress cancels the boot before any guest code runs.
                if let Some(generation) = self.stop_requested() {
                    self.leave(ParkReason::BootCancelled(generation), platform);
                    continue;
                }
                platform.enter(&request, &|| self.slot.mark_on());
                if let Some(generation) = self.post_entry_check(platform) {
                    self.leave(ParkReason::BootCancelled(generation), platform);
                    continue;
                }
                return Some(request);
            }
            if !platform.wait() {
                return None;
            }
        }
    }

    /// The check after `mark_on` (its fence pairs with FAST_STOP's).
    fn post_entry_check(&self, _platform: &impl ParkPlatform) -> Option<u64> {
        #[cfg(loom)]
        if _platform.skip_post_entry_check() {
            return None;
        }
        self.stop_requested()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vcpu::PowerState;
    use core::cell::{Cell, RefCell};

    /// Records what the loop asked of the machine; `boot_on_wait` is what a
    /// CPU_ON does while this vCPU sleeps.
    struct Fake<'a> {
        slot: &'a VcpuSlot,
        log: RefCell<Vec<&'static str>>,
        waits_left: Cell<u32>,
        on_wait: &'a dyn Fn(),
    }

    impl ParkPlatform for Fake<'_> {
        fn leave_guest(&self, reason: ParkReason) {
            self.log.borrow_mut().push(match reason {
                ParkReason::CpuOff => "leave cpu_off",
                ParkReason::Fault => "leave fault",
                ParkReason::FastStop(_) => "leave fast_stop",
                ParkReason::BootCancelled(_) => "leave boot_cancelled",
            });
            self.slot.park(reason.acknowledges());
        }
        fn enter(&self, _: &BootRequest, mark_on: &dyn Fn()) {
            self.log.borrow_mut().push("enter");
            mark_on();
        }
        fn wait(&self) -> bool {
            self.log.borrow_mut().push("wait");
            if self.waits_left.get() == 0 {
                return false;
            }
            self.waits_left.set(self.waits_left.get() - 1);
            (self.on_wait)();
            true
        }
        fn all_off(&self) {
            self.log.borrow_mut().push("all off");
        }
    }

    const REQ: BootRequest = BootRequest {
        entry: 0x4800_0000,
        context_id: 9,
        big_endian: false,
    };

    fn cpu_on(slot: &VcpuSlot) {
        slot.try_claim().unwrap();
        slot.publish_boot(REQ);
    }

    #[test]
    fn cpu_off_then_cpu_on_enters_with_the_published_request() {
        let slot = VcpuSlot::new_on();
        let stop = FastStop::new();
        let fake = Fake {
            slot: &slot,
            log: RefCell::new(vec![]),
            waits_left: Cell::new(1),
            on_wait: &|| cpu_on(&slot),
        };
        // CPU0 stays on.
        let live = LiveCount::new(2);
        let parker = Parker {
            me: 1,
            slot: &slot,
            stop: &stop,
            live: &live,
        };
        assert_eq!(
            parker.park_until_boot(Some(ParkReason::CpuOff), &fake),
            Some(REQ)
        );
        assert_eq!(*fake.log.borrow(), ["leave cpu_off", "wait", "enter"]);
        assert_eq!(slot.state(), PowerState::On);
    }

    #[test]
    fn nothing_to_boot_waits_until_the_platform_gives_up() {
        let slot = VcpuSlot::new();
        let stop = FastStop::new();
        let fake = Fake {
            slot: &slot,
            log: RefCell::new(vec![]),
            waits_left: Cell::new(2),
            on_wait: &|| {},
        };
        let live = LiveCount::new(1);
        let parker = Parker {
            me: 1,
            slot: &slot,
            stop: &stop,
            live: &live,
        };
        assert_eq!(parker.park_until_boot(None, &fake), None);
        assert_eq!(*fake.log.borrow(), ["wait", "wait", "wait"]);
        assert_eq!(slot.state(), PowerState::Off);
    }

    #[test]
    fn a_boot_pending_during_a_fast_stop_is_cancelled_before_guest_code() {
        let slots = [VcpuSlot::new_on(), VcpuSlot::new()];
        let stop = FastStop::new();
        // CPU0 owns an active stop (generation 1) while CPU_ON(1) is pending.
        stop.begin_for_test(0, 1);
        cpu_on(&slots[1]);
        let fake = Fake {
            slot: &slots[1],
            log: RefCell::new(vec![]),
            waits_left: Cell::new(0),
            on_wait: &|| {},
        };
        let live = LiveCount::new(2);
        let parker = Parker {
            me: 1,
            slot: &slots[1],
            stop: &stop,
            live: &live,
        };
        assert_eq!(parker.park_until_boot(None, &fake), None);
        assert_eq!(*fake.log.borrow(), ["leave boot_cancelled", "wait"]);
        assert_eq!(
            slots[1].snapshot(),
            (PowerState::Off, 1),
            "parked with the acknowledgement"
        );
    }

    #[test]
    fn the_last_live_vcpu_to_park_says_nothing_can_run() {
        let slot = VcpuSlot::new_on();
        let stop = FastStop::new();
        let fake = Fake {
            slot: &slot,
            log: RefCell::new(vec![]),
            waits_left: Cell::new(0),
            on_wait: &|| {},
        };
        let live = LiveCount::new(1);
        let parker = Parker {
            me: 0,
            slot: &slot,
            stop: &stop,
            live: &live,
        };
        assert_eq!(parker.park_until_boot(Some(ParkReason::Fault), &fake), None);
        assert_eq!(*fake.log.borrow(), ["leave fault", "all off", "wait"]);
    }

    #[test]
    fn a_trap_exit_parks_for_the_handler_or_for_a_pending_stop() {
        let slots = [VcpuSlot::new_on(), VcpuSlot::new_on()];
        let stop = FastStop::new();
        let live = LiveCount::new(2);
        let parker = Parker {
            me: 1,
            slot: &slots[1],
            stop: &stop,
            live: &live,
        };
        let off = Exit::Park(ParkReason::CpuOff);
        assert_eq!(parker.trap_exit(Exit::Resume), Exit::Resume);
        assert_eq!(parker.trap_exit(off), off);
        stop.begin_for_test(0, 3);
        assert_eq!(
            parker.trap_exit(Exit::Resume),
            Exit::Park(ParkReason::FastStop(3))
        );
        assert_eq!(parker.trap_exit(off), off, "the handler's park stands");
    }
}
