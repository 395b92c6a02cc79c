//! The GICv3 virtual CPU interface (ICH_*_EL2) of this CPU, behind
//! `crate::list_registers::VirtualInterface`.

use super::gicv3;
use crate::list_registers::{MAX_LRS, VirtualInterface};
use aarch64_cpu::registers::*;
use arm_sysregs::el2::accessors as sysregs;
use arm_sysregs::el2::registers::{IchHcrEl2, IchVmcrEl2};
use core::arch::asm;

/// This CPU's virtual CPU interface. ICH_HCR/VMCR_EL2 and ICC_DIR_EL1
/// through arm-sysregs (which the host tests fake); the list registers,
/// ICH_VTR and the active-priority registers through aarch64-cpu, the only
/// crate with accessors for them; ICH_ELRSR_EL2 has none in either.
pub struct Interface;

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
        gicv3::deactivate(intid);
    }
}
