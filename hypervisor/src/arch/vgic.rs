//! The GICv3 virtual CPU interface (ICH_*_EL2) of this CPU: how virtual
//! interrupts reach the guest. Physical interrupts for the guest arrive at
//! EL2 (HCR_EL2.IMO) and are put in list registers hardware-linked, so the
//! guest's deactivation deactivates the physical interrupt without an exit.
//! Guest SGIs are trapped writes to ICC_SGI1R_EL1 and become pending bits in
//! the target vCPU's mask, drained into its list registers on its own CPU.

use super::{emit_here, gic, hv};
use crate::trace::Event;
use crate::vcpu::PowerState;
use crate::vgic::{self as book, LrSlot, SgiRequest};
use aarch64_cpu::registers::*;
use core::arch::asm;
use core::sync::atomic::Ordering;

const ICH_HCR_EN: u64 = 1 << 0;
/// Maintenance interrupt when at most one list register is in use.
const ICH_HCR_UIE: u64 = 1 << 1;
const MAX_LRS: usize = 16;

/// Number of list registers this CPU implements (ICH_VTR_EL2.ListRegs + 1).
pub fn list_register_count() -> usize {
    ((ICH_VTR_EL2.get() & 0x1f) as usize + 1).min(MAX_LRS)
}

fn read_lr(n: usize) -> u64 {
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

fn write_lr(n: usize, value: u64) {
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

/// ICH_ELRSR_EL2: bit n set when list register n holds nothing.
fn empty_lrs() -> u64 {
    let v: u64;
    // SAFETY: reading an EL2 status register has no side effects.
    unsafe { asm!("mrs {}, S3_4_C12_C11_5", out(reg) v, options(nomem, nostack)) };
    v
}

/// Puts `vintid` in a list register. Returns false when all are busy.
fn place(vintid: u32, priority: u8, hw: bool) -> bool {
    let count = list_register_count();
    let mut lrs = [0u64; MAX_LRS];
    for (n, lr) in lrs.iter_mut().enumerate().take(count) {
        *lr = read_lr(n);
    }
    match book::choose_lr(&lrs[..count], empty_lrs(), vintid) {
        LrSlot::Coalesced => true,
        LrSlot::Reuse(n, value) => {
            write_lr(n, value);
            true
        }
        LrSlot::Empty(n) => {
            write_lr(n, book::lr_pending(vintid, priority, hw));
            true
        }
        LrSlot::Full => false,
    }
}

/// Hands a physical interrupt (already acknowledged and priority-dropped)
/// to the guest on this CPU.
pub fn inject_hw(cpu: usize, intid: u32) {
    let priority = gic::priority_of(cpu, intid);
    if !place(intid, priority, true) {
        hv().vcpus[cpu].held_irqs.lock().push(intid);
    }
}

/// Takes every pending physical interrupt of this CPU: the hypervisor's own
/// (kick, stop, maintenance) are handled and deactivated here; each guest
/// interrupt, acknowledged and priority-dropped, goes to `for_guest`.
pub fn take_interrupts(mut for_guest: impl FnMut(u32)) {
    while let Some(intid) = gic::acknowledge() {
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

/// The maintenance interrupt (underflow) is level-triggered: it stays
/// asserted while UIE is set and the list registers are nearly empty. Turn
/// UIE off before deactivating it; the `flush` at trap exit refills the list
/// registers and sets UIE again only if something still waits.
fn maintenance() {
    ICH_HCR_EL2.set(ICH_HCR_EN);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// An interrupt for the guest arrived while this vCPU is parked: keep it
/// active (so it cannot fire again and wake the park loop) until the vCPU's
/// next life, whose reset deactivates it.
pub fn hold(cpu: usize, intid: u32) {
    hv().vcpus[cpu].held_irqs.lock().push(intid);
}

/// Moves this vCPU's pending SGIs and queued interrupts into list registers;
/// asks for a maintenance interrupt if something still has to wait.
pub fn flush(cpu: usize) {
    let vcpu = &hv().vcpus[cpu];
    let pending = vcpu.pending_sgis.swap(0, Ordering::Acquire);
    let mut left = 0u32;
    for sgi in (0..16).filter(|s| pending >> s & 1 == 1) {
        if !place(sgi, gic::priority_of(cpu, sgi), false) {
            left |= 1 << sgi;
        }
    }
    if left != 0 {
        vcpu.pending_sgis.fetch_or(left, Ordering::AcqRel);
    }
    let mut q = vcpu.held_irqs.lock();
    q.retain(|&intid| !place(intid, gic::priority_of(cpu, intid), true));
    let waiting = left != 0 || !q.is_empty();
    ICH_HCR_EL2.set(ICH_HCR_EN | if waiting { ICH_HCR_UIE } else { 0 });
}

/// The guest wrote ICC_SGI1R_EL1 (or SGI0R/ASGI1R): mark the SGI pending on
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

/// Clears every list register, queued interrupt, pending SGI and the
/// virtual CPU interface state: nothing virtual survives a park or CPU_ON.
pub fn reset_cpu(cpu: usize) {
    for n in 0..list_register_count() {
        let lr = read_lr(n);
        // A hardware-linked interrupt still in flight is active at the GIC:
        // deactivate it, or it would never fire again (the timer, say).
        if lr >> 61 & 1 == 1 && book::lr_state(lr) != book::LrState::Invalid {
            gic::deactivate(book::lr_vintid(lr));
        }
        write_lr(n, 0);
    }
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    ICH_VMCR_EL2.set(0);
    ICH_HCR_EL2.set(ICH_HCR_EN);
    let vcpu = &hv().vcpus[cpu];
    // Queued hardware interrupts are active at the GIC: deactivate them.
    for intid in vcpu.held_irqs.lock().drain(..) {
        gic::deactivate(intid);
    }
    vcpu.pending_sgis.store(0, Ordering::Release);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
