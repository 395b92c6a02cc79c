//! The GICv3 virtual CPU interface of one CPU, portable and host-tested:
//! putting virtual interrupts into list registers, flushing a vCPU's
//! pending SGIs and queued interrupts into them at trap exit, and clearing
//! it all when the vCPU dies. Every access goes through
//! [`VirtualInterface`]: `arch::vgic` implements it with the ICH_*_EL2
//! registers, the host tests with arm-sysregs' fakes (`crate::test_cpu`).
//! Which register a value goes into is `crate::vgic`'s bookkeeping.

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
    match book::choose_lr(&lrs[..count], vif.empty_lrs(), vintid) {
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
pub fn flush(vif: &mut impl VirtualInterface, vcpu: &Vcpu, priority_of: impl Fn(u32) -> u8) {
    let pending = vcpu.pending_sgis.swap(0, Ordering::Acquire);
    let mut left = 0u32;
    for sgi in (0..16).filter(|s| pending >> s & 1 == 1) {
        if !place(vif, sgi, priority_of(sgi), false) {
            left |= 1 << sgi;
        }
    }
    if left != 0 {
        vcpu.pending_sgis.fetch_or(left, Ordering::AcqRel);
    }
    let mut queued = vcpu.held_irqs.lock();
    queued.retain(|&intid| !place(vif, intid, priority_of(intid), true));
    let waiting = left != 0 || !queued.is_empty();
    vif.set_ich_hcr_el2(if waiting {
        ICH_HCR_WAITING
    } else {
        ICH_HCR_IDLE
    });
}

/// The maintenance interrupt (underflow) is level-triggered: it stays
/// asserted while UIE is set and the list registers are nearly empty. Turn
/// UIE off before deactivating it; the next [`flush`] refills the list
/// registers and sets UIE again only if something still waits.
pub fn maintenance(vif: &mut impl VirtualInterface) {
    vif.set_ich_hcr_el2(ICH_HCR_IDLE);
}

/// Clears every list register, queued interrupt, pending SGI and the
/// virtual CPU interface state of `vcpu`: nothing virtual survives a park
/// or CPU_ON. Hardware interrupts still in flight (in a list register or
/// queued) are active at the GIC and are deactivated, or they would never
/// fire again (the timer, say).
pub fn reset(vif: &mut impl VirtualInterface, vcpu: &Vcpu) {
    for n in 0..vif.list_register_count().min(MAX_LRS) {
        let lr = vif.lr(n);
        if book::lr_is_hw(lr) && book::lr_state(lr) != book::LrState::Invalid {
            vif.deactivate(book::lr_vintid(lr));
        }
        vif.set_lr(n, 0);
    }
    vif.clear_active_priorities();
    vif.set_ich_vmcr_el2(IchVmcrEl2::empty());
    vif.set_ich_hcr_el2(ICH_HCR_IDLE);
    for intid in vcpu.held_irqs.lock().drain(..) {
        vif.deactivate(intid);
    }
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
        vcpu.held_irqs.lock().push(27);
        flush(&mut cpu, vcpu, priority);
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
        flush(&mut cpu, vcpu, priority);
        assert_eq!(cpu.lrs, before);
    }

    #[test]
    fn flush_keeps_what_does_not_fit_and_asks_for_maintenance() {
        let mut cpu = TestCpu::new(2);
        let vcpus = one_vcpu();
        let vcpu = &vcpus[0];
        vcpu.pending_sgis.store(0b111, Ordering::Relaxed);
        vcpu.held_irqs.lock().push(30);
        flush(&mut cpu, vcpu, priority);
        assert_eq!(lr_vintid(cpu.lrs[0]), 0);
        assert_eq!(lr_vintid(cpu.lrs[1]), 1);
        assert_eq!(
            vcpu.pending_sgis.load(Ordering::Relaxed),
            0b100,
            "SGI 2 waits"
        );
        assert_eq!(*vcpu.held_irqs.lock(), vec![30], "INTID 30 waits");
        assert_eq!(
            el2::read_ich_hcr_el2(),
            IchHcrEl2::EN | IchHcrEl2::UIE,
            "underflow maintenance interrupt requested"
        );
        // The guest took both: the registers drained.
        cpu.set_lr(0, 0);
        cpu.set_lr(1, 0);
        maintenance(&mut cpu);
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN);
        flush(&mut cpu, vcpu, priority);
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
        flush(&mut cpu, vcpu, priority);
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
        vcpu.held_irqs.lock().push(33);
        vcpu.pending_sgis.store(0xffff, Ordering::Relaxed);
        EL2.lock().unwrap().ich_hcr_el2 = ICH_HCR_WAITING;
        el2::write_ich_vmcr_el2(IchVmcrEl2::VENG1 | IchVmcrEl2::VEOIM);
        reset(&mut cpu, vcpu);
        assert_eq!(cpu.deactivated, vec![27, 33], "in flight only, LR first");
        assert!(cpu.lrs.iter().all(|&lr| lr == 0));
        assert_eq!(cpu.empty, 0b1111);
        assert_eq!(cpu.active_priorities, [0, 0]);
        assert_eq!(el2::read_ich_vmcr_el2(), IchVmcrEl2::empty());
        assert_eq!(el2::read_ich_hcr_el2(), IchHcrEl2::EN);
        assert!(vcpu.held_irqs.lock().is_empty());
        assert_eq!(vcpu.pending_sgis.load(Ordering::Relaxed), 0);
    }
}
