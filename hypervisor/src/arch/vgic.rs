//! This CPU's virtual CPU interface (the backend's, see `gic`): how
//! virtual interrupts reach the guest. Physical interrupts for the guest
//! arrive at EL2 (HCR_EL2.IMO) and are put in list registers
//! hardware-linked, so the guest's deactivation deactivates the physical
//! interrupt without an exit. Guest SGIs (trapped ICC_SGI1R_EL1 writes on
//! GICv3, GICD_SGIR writes on GICv2) become pending bits in the target
//! vCPU's mask, drained into its list registers on its own CPU.

use super::{emit_here, gic, hv};
use crate::list_registers::{self, VirtualInterface};
use crate::physical_irqs::Owners;
use crate::trace::Event;
use crate::vcpu::PowerState;
use crate::vgic::SgiRequest;
use core::sync::atomic::Ordering;

/// Hands a physical interrupt (already acknowledged and priority-dropped)
/// to the guest on this CPU.
pub fn inject_hw(cpu: usize, intid: u32) {
    let priority = gic::priority_of(cpu, intid);
    if !gic::with_virtual_interface(|vif| list_registers::place(vif, intid, priority, true)) {
        queue(cpu, intid);
    }
}

/// For each INTID, the CPU whose acknowledge activated it last for the
/// guest: the only one that may deactivate it on the guest's behalf.
static OWNERS: Owners = Owners::new();

/// Keeps `intid` (active at the GIC) for vCPU `cpu`: at most once per
/// INTID. One outside the set's range (no LPIs reach here) is ended now.
fn queue(cpu: usize, intid: u32) {
    let mut held = hv().vcpus[cpu].held_irqs.lock();
    let kept = held.insert(intid) || held.contains(intid);
    if !kept && OWNERS.release(intid, cpu) {
        gic::with_virtual_interface(|vif| vif.deactivate(intid));
    }
}

/// Takes every pending physical interrupt of this CPU: the hypervisor's own
/// (kick, stop, maintenance) are handled and deactivated here; each guest
/// interrupt, acknowledged and priority-dropped, goes to `for_guest`.
pub fn take_interrupts(mut for_guest: impl FnMut(u32)) {
    while let Some(irq) = gic::acknowledge() {
        let intid = irq.intid;
        if !gic::is_hypervisor_owned(intid) {
            // At once: the guest may clear this activation and another CPU
            // take the next one; that CPU's record must come later.
            OWNERS.acknowledged(u32::from(intid), super::cpu_index());
        }
        gic::end_of_interrupt(irq);
        if gic::is_hypervisor_owned(intid) {
            if intid == gic::MAINTENANCE {
                maintenance();
            }
            if intid == gic::TICK {
                super::trace_tick();
            }
            gic::deactivate(irq);
        } else {
            for_guest(u32::from(intid));
        }
    }
}

/// The maintenance interrupt: UIE off before it is deactivated (see
/// `list_registers::maintenance`).
fn maintenance() {
    let cpu = super::cpu_index();
    gic::with_virtual_interface(|vif| list_registers::maintenance(vif, &OWNERS, cpu));
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// An interrupt for the guest arrived while this vCPU is parked: keep it
/// active (so it cannot fire again and wake the park loop) until the vCPU's
/// next life, whose reset deactivates it.
pub fn hold(cpu: usize, intid: u32) {
    queue(cpu, intid);
}

/// Moves this vCPU's pending SGIs and queued interrupts into list registers
/// (see `list_registers::flush`).
pub fn flush(cpu: usize) {
    gic::with_virtual_interface(|vif| {
        list_registers::flush(
            vif,
            &hv().vcpus[cpu],
            &OWNERS,
            cpu,
            || gic::enabled_sgis(cpu),
            |intid| gic::priority_of(cpu, intid),
        );
    });
}

/// The guest wrote ICC_SGI1R_EL1: mark the SGI pending on
/// every targeted running vCPU and kick their CPUs. A target that is not
/// running (parked, or started but not yet in the guest) never gets it.
pub fn send_sgi(sender: usize, value: u64) {
    let table = hv().table();
    let request = SgiRequest::decode(value);
    deliver_sgi(sender, request.intid, request.targets(&table, sender));
}

/// Marks SGI `intid` pending on every running vCPU of `targets` and kicks
/// their CPUs; drops it (traced) for a target that is not running.
pub fn deliver_sgi(sender: usize, intid: u8, targets: impl Iterator<Item = usize>) {
    let table = hv().table();
    for target in targets {
        if table.slot(target).state() != PowerState::On {
            emit_here(&Event::IpiDrop { sgi: intid, target });
            continue;
        }
        let vcpu = table.vcpu(target);
        vcpu.pending_sgis.fetch_or(1 << intid, Ordering::Release);
        if target != sender {
            gic::kick(target);
        }
    }
}

/// Clears this CPU's virtual CPU interface and vCPU `cpu`'s queued and
/// pending interrupts: nothing virtual survives a park or CPU_ON (see
/// `list_registers::reset`).
pub fn reset_cpu(cpu: usize) {
    gic::with_virtual_interface(|vif| list_registers::reset(vif, &hv().vcpus[cpu], &OWNERS, cpu));
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Deactivates what vCPU `cpu` held while parked and drops SGIs that raced
/// its park (see `list_registers::release_parked`), as its new life starts.
pub fn release_parked(cpu: usize) {
    gic::with_virtual_interface(|vif| {
        list_registers::release_parked(vif, &hv().vcpus[cpu], &OWNERS, cpu)
    });
}
