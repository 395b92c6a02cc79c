//! Parking at EL2: the machine side of `crate::park`. An OFF vCPU waits in
//! WFI on hypervisor memory until CPU_ON publishes a boot request for it.
//! Nothing of the guest is touched while parked, so the guest may overwrite
//! all of its memory.
//!
//! Only the trap entry (`traps::handle_lower`) and the boot path park; every
//! new life starts on a fresh EL2 stack (`vectors::enter_guest`).

use super::vectors::{self, GuestFrame};
use super::{el2, emit_before, hv, stop_save};
use crate::park::{ParkPlatform, ParkReason, Parker};
use crate::trace::{Event, Reason};
use crate::vcpu::{BootRequest, PowerState};
use core::sync::atomic::Ordering;

/// This CPU's vCPU, parking.
struct Machine<'a> {
    index: usize,
    /// The guest registers it leaves with (none at boot).
    trapped: Option<&'a GuestFrame>,
}

impl ParkPlatform for Machine<'_> {
    /// Leaves guest context for good: forget the guest's translations on
    /// this CPU, then publish OFF (acknowledging a fast-stop in the same store).
    fn leave_guest(&self, reason: ParkReason) {
        let index = self.index;
        let slot = hv().table().slot(index);
        let from = slot.state();
        // SAVE_REGS: recorded before the store that acknowledges the stop.
        match reason {
            ParkReason::FastStop(generation) => stop_save::record(index, generation, self.trapped),
            // It never ran guest code in this life: no registers to report.
            ParkReason::BootCancelled(generation) => stop_save::record(index, generation, None),
            ParkReason::CpuOff | ParkReason::Fault => {}
        }
        // Nothing virtual of this life stays behind (interrupts it had
        // active are deactivated for the other vCPUs).
        super::vgic::reset_cpu(index);
        el2::stop_guest_timers();
        el2::forget_guest_translations();
        let why = match reason {
            ParkReason::CpuOff => Reason::CpuOff,
            ParkReason::Fault => Reason::Other("guest fault"),
            ParkReason::FastStop(_) | ParkReason::BootCancelled(_) => Reason::FastStop,
        };
        emit_before(
            index,
            &Event::State {
                from,
                to: PowerState::Off,
                reason: why,
            },
            || slot.park(reason.acknowledges()),
        );
        // A FAST_STOP caller may be waiting for this in WFE.
        el2::signal_event();
    }

    /// Only a running vCPU can CPU_ON another: once none is, none ever runs
    /// again. Say so and end, rather than idle silently forever.
    fn all_off(&self) {
        log::error!("every vCPU is OFF; nothing can run any more: powering off");
        super::firmware::system_off();
    }

    fn enter(&self, request: &BootRequest, mark_on: &dyn Fn()) {
        // What reached it while parked does not reach the new life; done
        // before it turns ON, so an SGI sent to it once ON is kept.
        super::vgic::release_parked(self.index);
        let entered = Event::State {
            from: PowerState::OnPending,
            to: PowerState::On,
            reason: Reason::EnteredGuest(request.entry),
        };
        emit_before(self.index, &entered, mark_on);
    }

    /// Waits for an interrupt with IRQs masked at EL2 (WFI wakes on a pending
    /// interrupt all the same). CPU_ON kicks the target with an SGI after
    /// publishing, and the pending state is sticky, so no wake-up is lost; WFI,
    /// unlike WFE, also lets an emulator stop running a parked CPU.
    fn wait(&self) -> bool {
        aarch64_cpu::asm::wfi();
        super::vgic::take_interrupts(|intid| super::vgic::hold(self.index, intid));
        true
    }
}

/// vCPU `index`'s parker.
pub fn parker(index: usize) -> Parker<'static> {
    let hv = hv();
    Parker {
        me: index,
        slot: hv.table().slot(index),
        stop: &hv.fast_stop,
        live: &hv.live,
    }
}

/// Parks vCPU `index` for `reason` (the trap entry's decision), leaving the
/// guest with the registers in `trapped`, and enters the guest again on this
/// CPU's fresh EL2 stack when a CPU_ON boots it.
pub fn park(index: usize, reason: ParkReason, trapped: &GuestFrame) -> ! {
    let frame = next_life(index, Some(reason), Some(trapped));
    let stack_top = hv().vcpus[index].stack_top.load(Ordering::Relaxed);
    // SAFETY: `stack_top` is this CPU's EL2 stack top; this call discards
    // everything on that stack (the trapped frame and the handler's frames),
    // none of which the new life needs: `frame` is copied into the registers
    // before anything is pushed again.
    unsafe { vectors::enter_guest(&frame, stack_top) }
}

/// A secondary's first park, at boot (no guest context to leave): returns
/// the cold-boot frame of its first CPU_ON.
pub fn park_until_boot(index: usize, reason: Option<ParkReason>) -> GuestFrame {
    next_life(index, reason, None)
}

/// Parks until a CPU_ON boots this vCPU; the frame its new life starts with.
fn next_life(index: usize, reason: Option<ParkReason>, trapped: Option<&GuestFrame>) -> GuestFrame {
    let machine = Machine { index, trapped };
    let Some(request) = parker(index).park_until_boot(reason, &machine) else {
        unreachable!("the machine's wait never gives up")
    };
    el2::reset_guest_el1(request.big_endian);
    GuestFrame::cold_boot(request.entry, request.context_id)
}
