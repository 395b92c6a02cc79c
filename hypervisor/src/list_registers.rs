//! The GICv3 virtual CPU interface of one CPU, portable and host-tested:
//! putting virtual interrupts into list registers, flushing a vCPU's
//! pending SGIs and queued interrupts into them at trap exit, and clearing
//! it all when the vCPU dies. Every access goes through
//! [`VirtualInterface`]: `arch::vgic` implements it with the ICH_*_EL2
//! registers, the host tests with arm-sysregs' fakes (`crate::test_cpu`).
//! Which register a value goes into is `crate::vgic`'s bookkeeping.

use crate::physical_irqs::Owners;
use crate::vcpu::Vcpu;
use crate::vgic::{self as book, LrSlot};
use arm_sysregs::el2::registers::{IchHcrEl2, IchVmcrEl2};
use core::sync::atomic::Ordering;

/// The most list registers the architecture allows (ICH_VTR_EL2.ListRegs
/// is 4 bits wide).
pub const MAX_LRS: usize = 16;

/// The accessor layer: this CPU's virtual interface registers.
pub trait VirtualInterface {
    /// How many list registers the CPU implements (at most [`MAX_LRS`]).
    fn list_register_count(&self) -> usize;
    fn lr(&self, n: usize) -> u64;
    fn set_lr(&mut self, n: usize, value: u64);
    /// ICH_ELRSR_EL2: bit n set when list register n holds nothing.
    fn empty_lrs(&self) -> u64;
    fn set_ich_hcr_el2(&mut self, value: IchHcrEl2);
    fn set_ich_vmcr_el2(&mut self, value: IchVmcrEl2);
    /// Zeroes the active-priority registers (ICH_AP0R0/AP1R0_EL2).
    fn clear_active_priorities(&mut self);
    /// Deactivates physical interrupt `intid` (ICC_DIR_EL1).
    fn deactivate(&mut self, intid: u32);
}

/// ICH_HCR_EL2 while nothing waits for a list register.
pub const ICH_HCR_IDLE: IchHcrEl2 = IchHcrEl2::EN;
/// ICH_HCR_EL2 while something waits: a maintenance interrupt (underflow)
/// when at most one list register is still in use.
pub const ICH_HCR_WAITING: IchHcrEl2 = IchHcrEl2::EN.union(IchHcrEl2::UIE);

/// Puts `vintid` in a list register. Returns false when all are busy.
pub fn place(vif: &mut impl VirtualInterface, vintid: u32, priority: u8, hw: bool) -> bool {
    let count = vif.list_register_count().min(MAX_LRS);
    let mut lrs = [0u64; MAX_LRS];
    for (n, lr) in lrs.iter_mut().enumerate().take(count) {
        *lr = vif.lr(n);
    }
    // A register whose physical interrupt still has to be deactivated
    // (`retire`) is not free yet.
    let mut empty = vif.empty_lrs();
    for (n, &lr) in lrs.iter().enumerate().take(count) {
        if book::lr_eoi_done(lr) {
            empty &= !(1 << n);
        }
    }
    match book::choose_lr(&lrs[..count], empty, vintid) {
        LrSlot::Coalesced => true,
        LrSlot::Reuse(n, value) => {
            vif.set_lr(n, value);
            true
        }
        LrSlot::Empty(n) => {
            vif.set_lr(n, book::lr_pending(vintid, priority, hw));
            true
        }
        LrSlot::Full => false,
    }
}

/// Moves `vcpu`'s pending SGIs and queued hardware interrupts into list
/// registers, each with the priority `priority_of` gives; asks for a
/// maintenance interrupt if something still has to wait.
pub fn flush(
    vif: &mut impl VirtualInterface,
    vcpu: &Vcpu,
    owners: &Owners,
    cpu: usize,
    enabled_sgis: impl FnOnce() -> u16,
    priority_of: impl Fn(u32) -> u8,
) {
    retire(vif, owners, cpu);
    let mut pending = vcpu.pending_sgis.swap(0, Ordering::Acquire);
    // A disabled SGI stays pending until the guest enables it (it waits
    // for no list register: no maintenance interrupt for it).
    let mut disabled = 0u32;
    if pending != 0 {
        disabled = pending & !u32::from(enabled_sgis());
        pending &= !disabled;
    }
    let mut left = 0u32;
    for sgi in (0..16).filter(|s| pending >> s & 1 == 1) {
        if !place(vif, sgi, priority_of(sgi), false) {
            left |= 1 << sgi;
        }
    }
    if left | disabled != 0 {
        vcpu.pending_sgis
            .fetch_or(left | disabled, Ordering::AcqRel);
    }
    let mut queued = vcpu.held_irqs.lock();
    queued.retain(|intid| !place(vif, intid, priority_of(intid), true));
    let waiting = left != 0 || !queued.is_empty();
    vif.set_ich_hcr_el2(if waiting {
        ICH_HCR_WAITING
    } else {
        ICH_HCR_IDLE
    });
}

/// The maintenance interrupt is level-triggered: underflow stays asserted
/// while UIE is set and the list registers are nearly empty, EOI while a
/// register the guest deactivated still asks for it. Turn UIE off and
/// retire those registers before deactivating it; the next [`flush`]
/// refills the list registers and sets UIE again only if something still
/// waits.
pub fn maintenance(vif: &mut impl VirtualInterface, owners: &Owners, cpu: usize) {
    vif.set_ich_hcr_el2(ICH_HCR_IDLE);
    retire(vif, owners, cpu);
}

/// Ends the physical activations whose second-activation register (see
/// `vgic::choose_lr`) the guest has deactivated, and frees the registers.
/// Only the owner deactivates: if the guest cleared the interrupt and
/// another CPU took it since, that activation is the other CPU's.
pub fn retire(vif: &mut impl VirtualInterface, owners: &Owners, cpu: usize) {
    for n in 0..vif.list_register_count().min(MAX_LRS) {
        let lr = vif.lr(n);
        if book::lr_eoi_done(lr) {
            let intid = book::lr_vintid(lr);
            if owners.release(intid, cpu) {
                vif.deactivate(intid);
            }
            vif.set_lr(n, 0);
        }
    }
}

/// Clears every list register, queued interrupt, pending SGI and the
/// virtual CPU interface state of `vcpu`: nothing virtual survives a park
/// or CPU_ON. Hardware interrupts still in flight (in a list register or
/// queued) are active at the GIC and are deactivated, or they would never
/// fire again (the timer, say).
///
/// Only what this CPU still owns is deactivated (`physical_irqs`): a held
/// INTID the guest has since cleared and taken on another CPU is that
/// CPU's to end.
pub fn reset(vif: &mut impl VirtualInterface, vcpu: &Vcpu, owners: &Owners, cpu: usize) {
    for n in 0..vif.list_register_count().min(MAX_LRS) {
        let lr = vif.lr(n);
        if book::lr_holds_physical(lr) && owners.release(book::lr_vintid(lr), cpu) {
            vif.deactivate(book::lr_vintid(lr));
        }
        vif.set_lr(n, 0);
    }
    vif.clear_active_priorities();
    vif.set_ich_vmcr_el2(IchVmcrEl2::empty());
    vif.set_ich_hcr_el2(ICH_HCR_IDLE);
    release_parked(vif, vcpu, owners, cpu);
}

/// What reached vCPU `cpu` after `reset` (while it was parked): interrupts
/// held active are deactivated, and SGIs a sender marked pending just as it
/// parked are dropped, so its next life starts with none of them.
pub fn release_parked(vif: &mut impl VirtualInterface, vcpu: &Vcpu, owners: &Owners, cpu: usize) {
    vcpu.held_irqs.lock().drain(|intid| {
        if owners.release(intid, cpu) {
            vif.deactivate(intid);
        }
    });
    vcpu.pending_sgis.store(0, Ordering::Release);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_cpu::TestCpu;
    use crate::vcpu::Vcpus;
    use crate::vgic::{LrState, lr_pending, lr_state, lr_vintid};
    use arm_sysregs::el2::accessors as el2;
    use arm_sysregs::el2::fake::SYSREGS as EL2;

    fn priority(intid: u32) -> u8 {
        0x80 | intid as u8
    }

    fn one_vcpu() -> Vcpus {
        Vcpus::new(&[0], |_| true)
    }

    #[test]
    fn flush_places_pending_sgis_and_queued_interrupts() {
        let mut cpu = TestCpu::new(4);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        vcpu.pending_sgis.store(1 << 1 | 1 << 5, Ordering::Relaxed);
        vcpu.held_irqs.lock().insert(27);
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 0xffff, priority);
        assert_eq!(cpu.lrs[0], lr_pending(1, 0x81, false));
        assert_eq!(cpu.lrs[1], lr_pending(5, 0x85, false));
        assert_eq!(
            cpu.lrs[2],
            lr_pending(27, 0x80 | 27, true),
            "hardware-linked"
        );
        assert_eq!(cpu.lrs[3], 0);
        assert_eq!(vcpu.pending_sgis.load(Ordering::Relaxed), 0);
        assert!(vcpu.held_irqs.lock().is_empty());
        assert_eq!(
            el2::read_ich_hcr_el2(),
            IchHcrEl2::EN,
            "nothing waits: no UIE"
        );
        // Flushing again with nothing new changes nothing.
        let before = cpu.lrs.clone();
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 0xffff, priority);
        assert_eq!(cpu.lrs, before);
    }

    #[test]
    fn flush_keeps_what_does_not_fit_and_asks_for_maintenance() {
        let mut cpu = TestCpu::new(2);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        vcpu.pending_sgis.store(0b111, Ordering::Relaxed);
        vcpu.held_irqs.lock().insert(30);
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 0xffff, priority);
        assert_eq!(lr_vintid(cpu.lrs[0]), 0);
        assert_eq!(lr_vintid(cpu.lrs[1]), 1);
        assert_eq!(
            vcpu.pending_sgis.load(Ordering::Relaxed),
            0b100,
            "SGI 2 waits"
        );
        assert!(vcpu.held_irqs.lock().contains(30), "INTID 30 waits");
        assert_eq!(
            el2::read_ich_hcr_el2(),
            IchHcrEl2::EN | IchHcrEl2::UIE,
            "underflow maintenance interrupt requested"
        );
        // The guest took both: the registers drained.
        cpu.set_lr(0, 0);
        cpu.set_lr(1, 0);
        maintenance(&mut cpu, &Owners::new(), 0);
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN);
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 0xffff, priority);
        assert_eq!(lr_vintid(cpu.lrs[0]), 2);
        assert_eq!(lr_vintid(cpu.lrs[1]), 30);
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN);
    }

    #[test]
    fn an_sgi_already_pending_coalesces() {
        let mut cpu = TestCpu::new(4);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        assert!(place(&mut cpu, 3, 0x80, false));
        vcpu.pending_sgis.store(1 << 3, Ordering::Relaxed);
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 0xffff, priority);
        assert_eq!(lr_state(cpu.lrs[0]), LrState::Pending);
        assert_eq!(cpu.empty, 0b1110, "one register used, not two");
        assert_eq!(vcpu.pending_sgis.load(Ordering::Relaxed), 0, "delivered");
    }

    #[test]
    fn reset_deactivates_hardware_interrupts_and_clears_everything() {
        let mut cpu = TestCpu::new(4);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        cpu.set_lr(0, lr_pending(27, 0x80, true));
        cpu.set_lr(1, lr_pending(3, 0x80, false));
        // A stale hardware-linked value the guest already deactivated.
        let stale = lr_pending(30, 0x80, true) & !(3 << 62);
        cpu.lrs[2] = stale;
        cpu.active_priorities = [1, 1 << 31];
        vcpu.held_irqs.lock().insert(33);
        vcpu.pending_sgis.store(0xffff, Ordering::Relaxed);
        EL2.lock().unwrap().ich_hcr_el2 = ICH_HCR_WAITING;
        el2::write_ich_vmcr_el2(IchVmcrEl2::VENG1 | IchVmcrEl2::VEOIM);
        let owners = Owners::new();
        for intid in [27, 30, 33] {
            owners.acknowledged(intid, 0);
        }
        reset(&mut cpu, vcpu, &owners, 0);
        assert_eq!(cpu.deactivated, vec![27, 33], "in flight only, LR first");
        assert!(cpu.lrs.iter().all(|&lr| lr == 0));
        assert_eq!(cpu.empty, 0b1111);
        assert_eq!(cpu.active_priorities, [0, 0]);
        assert_eq!(el2::read_ich_vmcr_el2(), IchVmcrEl2::empty());
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN);
        assert!(vcpu.held_irqs.lock().is_empty());
        assert_eq!(vcpu.pending_sgis.load(Ordering::Relaxed), 0);
    }

    /// Finding: a guest that clears an active HW-linked interrupt through
    /// ICACTIVER and pends it again had it wait for a free register with UIE
    /// set while the register stayed in use: a maintenance interrupt on
    /// every return to the guest.
    #[test]
    fn a_second_activation_waits_behind_the_first_without_uie() {
        let mut cpu = TestCpu::new(4);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        let owners = Owners::new();
        owners.acknowledged(40, 0);
        assert!(place(&mut cpu, 40, 0xa0, true));
        // The guest acknowledged it: active, HW-linked.
        cpu.lrs[0] = cpu.lrs[0] & !(3 << 62) | 2 << 62;
        // Cleared through ICACTIVER, pended, taken again by this CPU.
        owners.acknowledged(40, 0);
        assert!(place(&mut cpu, 40, 0xa0, true), "no queueing");
        assert_eq!(lr_state(cpu.lrs[0]), LrState::PendingActive);
        assert!(!crate::vgic::lr_is_hw(cpu.lrs[0]));
        flush(&mut cpu, vcpu, &owners, 0, || 0xffff, priority);
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN, "no UIE");
        assert!(cpu.deactivated.is_empty());
        // The guest ends the first activation, takes the second, ends it.
        let lr = cpu.lrs[0] & !(3 << 62);
        cpu.set_lr(0, lr | 2 << 62);
        cpu.set_lr(0, lr);
        assert!(place(&mut cpu, 41, 0xa0, true));
        assert_eq!(cpu.lrs[0], lr, "not reused before it is retired");
        maintenance(&mut cpu, &owners, 0);
        assert_eq!(cpu.deactivated, vec![40], "the EOI maintenance ends it");
        assert_eq!(cpu.lrs[0], 0);
    }

    /// Finding: CPU 1's reset deactivated a held INTID the guest had since
    /// taken on CPU 0, ending CPU 0's activation.
    #[test]
    fn reset_leaves_another_cpus_activation_alone() {
        let mut cpu = TestCpu::new(4);
        let vcpus = Vcpus::new(&[0, 1], |_| true);
        let owners = Owners::new();
        // CPU 1 (parked) held SPI 40, and took SPI 41 into a register.
        owners.acknowledged(40, 1);
        vcpus[1].held_irqs.lock().insert(40);
        owners.acknowledged(41, 1);
        cpu.set_lr(0, lr_pending(41, 0x80, true));
        owners.acknowledged(42, 1);
        vcpus[1].held_irqs.lock().insert(42);
        // The guest cleared both and took them on CPU 0.
        owners.acknowledged(40, 0);
        owners.acknowledged(41, 0);
        reset(&mut cpu, &vcpus[1], &owners, 1);
        assert_eq!(cpu.deactivated, vec![42], "only what CPU 1 still owns");
        assert_eq!(owners.owner(40), Some(0));
        assert_eq!(owners.owner(41), Some(0));
    }

    /// Finding: every activation of an INTID held for a parked vCPU added
    /// an entry (the guest cleared and pended it in a loop).
    #[test]
    fn holding_the_same_intid_again_adds_nothing() {
        let vcpus = one_vcpu();
        let mut held = vcpus[0].held_irqs.lock();
        for _ in 0..100_000 {
            held.insert(40);
        }
        let mut n = 0;
        held.drain(|_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn a_disabled_sgi_stays_pending() {
        let mut cpu = TestCpu::new(4);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        vcpu.pending_sgis.store(1 << 2 | 1 << 3, Ordering::Relaxed);
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 1 << 3, priority);
        assert_eq!(lr_vintid(cpu.lrs[0]), 3);
        assert_eq!(cpu.empty, 0b1110, "SGI 2 (disabled) not placed");
        assert_eq!(vcpu.pending_sgis.load(Ordering::Relaxed), 1 << 2);
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN, "no UIE for it");
        flush(&mut cpu, vcpu, &Owners::new(), 0, || 0xffff, priority);
        assert_eq!(lr_vintid(cpu.lrs[1]), 2, "delivered once enabled");
        assert_eq!(vcpu.pending_sgis.load(Ordering::Relaxed), 0);
    }
}
