//! Parking: a vCPU that is OFF waits here, in an EL2 loop on hypervisor
//! memory, until CPU_ON publishes a boot request for it. Nothing of the guest
//! is touched while parked, so the guest may overwrite all of its memory.

use super::vectors::GuestFrame;
use super::{el2, emit_after, gic, hv};
use crate::trace::{Event, Reason};
use crate::vcpu::PowerState;

/// Why a running vCPU leaves the guest for the park loop.
#[derive(Clone, Copy, Debug)]
pub enum ParkReason {
    CpuOff,
    /// The guest faulted where it cannot handle the fault.
    Fault,
    /// Acknowledging FAST_STOP generation `n`.
    FastStop(u64),
}

/// Leaves guest context for good: forget the guest's translations on this
/// CPU, then publish OFF (acknowledging a fast-stop in the same store).
fn leave_guest(index: usize, reason: ParkReason) {
    let slot = hv().table().slot(index);
    let from = slot.state();
    super::vgic::reset_cpu(index);
    el2::stop_guest_timers();
    el2::forget_guest_translations();
    let (generation, why) = match reason {
        ParkReason::CpuOff => (None, Reason::CpuOff),
        ParkReason::Fault => (None, Reason::Other("guest fault")),
        ParkReason::FastStop(g) => (Some(g), Reason::FastStop),
    };
    emit_after(index, &Event::State { from, to: PowerState::Off, reason: why }, || {
        slot.park(generation)
    });
    // A FAST_STOP caller may be waiting for this in WFE.
    el2::signal_event();
    // Only a running vCPU can CPU_ON another: once none is, none ever runs
    // again. Say so and end, rather than idle silently forever.
    if hv().live.parked() {
        log::error!("every vCPU is OFF; nothing can run any more: powering off");
        super::firmware::system_off();
    }
}

/// Parks vCPU `index` (first leaving the guest if `reason` is given) and
/// returns the cold-boot frame of the next CPU_ON.
pub fn park_until_boot(index: usize, reason: Option<ParkReason>) -> GuestFrame {
    let hv = hv();
    let table = hv.table();
    let slot = table.slot(index);
    if let Some(reason) = reason {
        leave_guest(index, reason);
    }
    loop {
        if let Some(request) = slot.boot_request() {
            // A fast-stop in progress cancels the boot before any guest code runs.
            if let Some(generation) = hv.fast_stop.pending_for(&table, index) {
                super::stop_save::record(index, generation, None);
                leave_guest(index, ParkReason::FastStop(generation));
                continue;
            }
            let entered = Event::State {
                from: PowerState::OnPending,
                to: PowerState::On,
                reason: Reason::EnteredGuest(request.entry),
            };
            emit_after(index, &entered, || slot.mark_on());
            if let Some(generation) = hv.fast_stop.pending_for(&table, index) {
                super::stop_save::record(index, generation, None);
                leave_guest(index, ParkReason::FastStop(generation));
                continue;
            }
            el2::reset_guest_el1();
            super::vgic::reset_cpu(index);
            return GuestFrame::cold_boot(request.entry, request.context_id);
        }
        sleep(index);
    }
}

/// Waits for an interrupt with IRQs masked at EL2 (WFI wakes on a pending
/// interrupt all the same). CPU_ON kicks the target with an SGI after
/// publishing, and the pending state is sticky, so no wake-up is lost; WFI,
/// unlike WFE, also lets an emulator stop running a parked CPU.
fn sleep(index: usize) {
    aarch64_cpu::asm::wfi();
    while let Some(intid) = gic::acknowledge() {
        gic::end_of_interrupt(intid);
        if gic::is_hypervisor_owned(intid) {
            gic::deactivate(u32::from(intid));
        } else {
            super::vgic::hold(index, u32::from(intid));
        }
    }
}
