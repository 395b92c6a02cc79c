//! A CPU for host tests: arm-sysregs' fake registers (process-wide, so one
//! test at a time holds them) behind `el2_state::Registers`, plus the
//! virtual CPU interface's registers, which arm-sysregs does not model,
//! behind `list_registers::VirtualInterface`.

use crate::el2_state::Registers;
use crate::list_registers::VirtualInterface;
use arm_sysregs::el1::accessors as el1;
use arm_sysregs::el1::fake::SYSREGS as EL1;
use arm_sysregs::el1::registers::*;
use arm_sysregs::el2::accessors as el2;
use arm_sysregs::el2::fake::SYSREGS as EL2;
use arm_sysregs::el2::registers::{HcrEl2, IchHcrEl2, IchVmcrEl2, VsesrEl2};
use std::sync::{Mutex, MutexGuard};

static FAKES: Mutex<()> = Mutex::new(());

pub struct TestCpu {
    _fakes: MutexGuard<'static, ()>,
    pub lrs: Vec<u64>,
    /// ICH_ELRSR_EL2 as the hardware would compute it is the test's
    /// choice: bit n set means list register n is free.
    pub empty: u64,
    pub active_priorities: [u64; 2],
    /// Every ICC_DIR_EL1 write, in order.
    pub deactivated: Vec<u32>,
}

impl TestCpu {
    /// Fresh fake registers, `lrs` list registers, all empty.
    pub fn new(lrs: usize) -> Self {
        let guard = FAKES.lock().unwrap_or_else(|e| e.into_inner());
        // A failed test may have panicked holding a fake: start clean.
        EL1.clear_poison();
        EL2.clear_poison();
        EL1.lock().unwrap().reset();
        EL2.lock().unwrap().reset();
        Self {
            _fakes: guard,
            lrs: vec![0; lrs],
            empty: (1 << lrs) - 1,
            active_priorities: [0; 2],
            deactivated: Vec::new(),
        }
    }
}

// Reads through arm-sysregs' accessors, which read the fakes on the
// host; writes that the accessors only offer as `unsafe` go straight
// into the fake registers.
impl Registers for TestCpu {
    fn hcr_el2(&self) -> HcrEl2 {
        el2::read_hcr_el2()
    }
    fn set_hcr_el2(&mut self, value: HcrEl2) {
        EL2.lock().unwrap().hcr_el2 = value;
    }
    fn set_vsesr_el2(&mut self, value: VsesrEl2) {
        el2::write_vsesr_el2(value);
    }
    fn sctlr_el1(&self) -> SctlrEl1 {
        el1::read_sctlr_el1()
    }
    fn set_sctlr_el1(&mut self, value: SctlrEl1) {
        EL1.lock().unwrap().sctlr_el1 = value;
    }
    fn vbar_el1(&self) -> VbarEl1 {
        el1::read_vbar_el1()
    }
    fn set_vbar_el1(&mut self, value: VbarEl1) {
        EL1.lock().unwrap().vbar_el1 = value;
    }
    fn set_esr_el1(&mut self, value: EsrEl1) {
        el1::write_esr_el1(value);
    }
    fn set_far_el1(&mut self, value: FarEl1) {
        EL1.lock().unwrap().far_el1 = value;
    }
    fn set_elr_el1(&mut self, value: ElrEl1) {
        EL1.lock().unwrap().elr_el1 = value;
    }
    fn set_spsr_el1(&mut self, value: SpsrEl1) {
        EL1.lock().unwrap().spsr_el1 = value;
    }
    fn id_aa64pfr0_el1(&self) -> IdAa64pfr0El1 {
        el1::read_id_aa64pfr0_el1()
    }
    fn id_aa64pfr1_el1(&self) -> IdAa64pfr1El1 {
        el1::read_id_aa64pfr1_el1()
    }
    fn id_aa64mmfr1_el1(&self) -> IdAa64mmfr1El1 {
        el1::read_id_aa64mmfr1_el1()
    }
}

impl VirtualInterface for TestCpu {
    fn list_register_count(&self) -> usize {
        self.lrs.len()
    }
    fn lr(&self, n: usize) -> u64 {
        self.lrs[n]
    }
    fn set_lr(&mut self, n: usize, value: u64) {
        self.lrs[n] = value;
        if crate::vgic::lr_state(value) == crate::vgic::LrState::Invalid {
            self.empty |= 1 << n;
        } else {
            self.empty &= !(1 << n);
        }
    }
    fn empty_lrs(&self) -> u64 {
        self.empty
    }
    fn set_ich_hcr_el2(&mut self, value: IchHcrEl2) {
        EL2.lock().unwrap().ich_hcr_el2 = value;
    }
    fn set_ich_vmcr_el2(&mut self, value: IchVmcrEl2) {
        el2::write_ich_vmcr_el2(value);
    }
    fn clear_active_priorities(&mut self) {
        self.active_priorities = [0; 2];
    }
    fn deactivate(&mut self, intid: u32) {
        el1::write_icc_dir_el1(IccDirEl1::empty().with_intid(intid));
        self.deactivated.push(intid);
    }
}
