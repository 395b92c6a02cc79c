//! The GICv3 virtual CPU interface (ICH_*_EL2) of this CPU: how virtual
//! interrupts reach the guest. Physical interrupts for the guest arrive at
//! EL2 (HCR_EL2.IMO) and are put in list registers hardware-linked, so the
//! guest's deactivation deactivates the physical interrupt without an exit.
//! Guest SGIs are trapped writes to ICC_SGI1R_EL1 and become pending bits in
//! the target vCPU's mask, drained into its list registers on its own CPU.

use super::{emit_here, gic, hv};
use crate::list_registers::{self, MAX_LRS, VirtualInterface};
use crate::physical_irqs::Owners;
use crate::trace::Event;
use crate::vcpu::PowerState;
use crate::vgic::SgiRequest;
use aarch64_cpu::registers::*;
use arm_sysregs::el2::accessors as sysregs;
use arm_sysregs::el2::registers::{IchHcrEl2, IchVmcrEl2};
use core::arch::asm;
use core::sync::atomic::Ordering;

/// This CPU's virtual CPU interface. ICH_HCR/VMCR_EL2 and ICC_DIR_EL1
/// through arm-sysregs (which the host tests fake); the list registers,
/// ICH_VTR and the active-priority registers through aarch64-cpu, the only
/// crate with accessors for them; ICH_ELRSR_EL2 has none in either.
struct Interface;

impl VirtualInterface for Interface {
    fn list_register_count(&self) -> usize {
        (ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1).min(MAX_LRS)
    }

    fn lr(&self, n: usize) -> u64 {
        match n {
            0 => ICH_LR0_EL2.get(),
            1 => ICH_LR1_EL2.get(),
            2 => ICH_LR2_EL2.get(),
            3 => ICH_LR3_EL2.get(),
            4 => ICH_LR4_EL2.get(),
            5 => ICH_LR5_EL2.get(),
            6 => ICH_LR6_EL2.get(),
            7 => ICH_LR7_EL2.get(),
            8 => ICH_LR8_EL2.get(),
            9 => ICH_LR9_EL2.get(),
            10 => ICH_LR10_EL2.get(),
            11 => ICH_LR11_EL2.get(),
            12 => ICH_LR12_EL2.get(),
            13 => ICH_LR13_EL2.get(),
            14 => ICH_LR14_EL2.get(),
            15 => ICH_LR15_EL2.get(),
            _ => panic!("list register {n} does not exist"),
        }
    }

    fn set_lr(&mut self, n: usize, value: u64) {
        match n {
            0 => ICH_LR0_EL2.set(value),
            1 => ICH_LR1_EL2.set(value),
            2 => ICH_LR2_EL2.set(value),
            3 => ICH_LR3_EL2.set(value),
            4 => ICH_LR4_EL2.set(value),
            5 => ICH_LR5_EL2.set(value),
            6 => ICH_LR6_EL2.set(value),
            7 => ICH_LR7_EL2.set(value),
            8 => ICH_LR8_EL2.set(value),
            9 => ICH_LR9_EL2.set(value),
            10 => ICH_LR10_EL2.set(value),
            11 => ICH_LR11_EL2.set(value),
            12 => ICH_LR12_EL2.set(value),
            13 => ICH_LR13_EL2.set(value),
            14 => ICH_LR14_EL2.set(value),
            15 => ICH_LR15_EL2.set(value),
            _ => panic!("list register {n} does not exist"),
        }
    }

    fn empty_lrs(&self) -> u64 {
        let v: u64;
        // SAFETY: reading ICH_ELRSR_EL2, an EL2 status register, has no side
        // effects (neither aarch64-cpu nor arm-sysregs has an accessor).
        unsafe { asm!("mrs {}, S3_4_C12_C11_5", out(reg) v, options(nomem, nostack)) };
        v
    }

    fn set_ich_hcr_el2(&mut self, value: IchHcrEl2) {
        // SAFETY: ICH_HCR_EL2 controls this CPU's virtual CPU interface,
        // which only the guest's EL1 uses; the values written enable it and
        // at most ask for the underflow maintenance interrupt.
        unsafe { sysregs::write_ich_hcr_el2(value) }
    }

    fn set_ich_vmcr_el2(&mut self, value: IchVmcrEl2) {
        sysregs::write_ich_vmcr_el2(value);
    }

    fn clear_active_priorities(&mut self) {
        ICH_AP0R0_EL2.set(0);
        ICH_AP1R0_EL2.set(0);
    }

    fn deactivate(&mut self, intid: u32) {
        gic::deactivate(intid);
    }
}

/// Hands a physical interrupt (already acknowledged and priority-dropped)
/// to the guest on this CPU.
pub fn inject_hw(cpu: usize, intid: u32) {
    let priority = gic::priority_of(cpu, intid);
    if !list_registers::place(&mut Interface, intid, priority, true) {
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
        gic::deactivate(intid);
    }
}

/// Takes every pending physical interrupt of this CPU: the hypervisor's own
/// (kick, stop, maintenance) are handled and deactivated here; each guest
/// interrupt, acknowledged and priority-dropped, goes to `for_guest`.
pub fn take_interrupts(mut for_guest: impl FnMut(u32)) {
    while let Some(intid) = gic::acknowledge() {
        if !gic::is_hypervisor_owned(intid) {
            // At once: the guest may clear this activation and another CPU
            // take the next one; that CPU's record must come later.
            OWNERS.acknowledged(u32::from(intid), super::cpu_index());
        }
        gic::end_of_interrupt(intid);
        if gic::is_hypervisor_owned(intid) {
            if intid == gic::MAINTENANCE {
                maintenance();
            }
            if intid == gic::TICK {
                super::trace_tick();
            }
            gic::deactivate(u32::from(intid));
        } else {
            for_guest(u32::from(intid));
        }
    }
}

/// The maintenance interrupt: UIE off before it is deactivated (see
/// `list_registers::maintenance`).
fn maintenance() {
    list_registers::maintenance(&mut Interface, &OWNERS, super::cpu_index());
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
    list_registers::flush(
        &mut Interface,
        &hv().vcpus[cpu],
        &OWNERS,
        cpu,
        || enabled_sgis(cpu),
        |intid| gic::priority_of(cpu, intid),
    );
}

/// The SGIs the guest has enabled in `cpu`'s GICR_ISENABLER0 (it programs
/// the real register through the filtered MMIO path; the SGIs themselves
/// stay virtual).
fn enabled_sgis(cpu: usize) -> u16 {
    let isenabler0 = crate::gic_filter::GICR_SGI_BASE + 0x100;
    let frame = crate::gic_filter::GicFrame::Redistributor {
        cpu,
        offset: isenabler0,
    };
    gic::guest_access(frame, 4, None) as u16
}

/// The guest wrote ICC_SGI1R_EL1: mark the SGI pending on
/// every targeted running vCPU and kick their CPUs. A target that is not
/// running (parked, or started but not yet in the guest) never gets it.
pub fn send_sgi(sender: usize, value: u64) {
    let hv = hv();
    let table = hv.table();
    let request = SgiRequest::decode(value);
    for target in request.targets(&table, sender) {
        if table.slot(target).state() != PowerState::On {
            emit_here(&Event::IpiDrop {
                sgi: request.intid,
                target,
            });
            continue;
        }
        let vcpu = table.vcpu(target);
        vcpu.pending_sgis
            .fetch_or(1 << request.intid, Ordering::Release);
        if target != sender {
            gic::kick(vcpu.mpidr);
        }
    }
}

/// Clears this CPU's virtual CPU interface and vCPU `cpu`'s queued and
/// pending interrupts: nothing virtual survives a park or CPU_ON (see
/// `list_registers::reset`).
pub fn reset_cpu(cpu: usize) {
    list_registers::reset(&mut Interface, &hv().vcpus[cpu], &OWNERS, cpu);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
