//! The GICv3 virtual CPU interface (ICH_*_EL2) of this CPU: how virtual
//! interrupts reach the guest.

use aarch64_cpu::registers::*;

const ICH_HCR_EN: u64 = 1 << 0;

/// Number of list registers this CPU implements (ICH_VTR_EL2.ListRegs + 1).
pub fn list_register_count() -> usize {
    (ICH_VTR_EL2.get() & 0x1f) as usize + 1
}

/// Writes list register `n` (0..16).
pub fn write_lr(n: usize, value: u64) {
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

/// Clears every list register and active-priority register and enables the
/// virtual interface: no virtual interrupt state survives a park or CPU_ON.
pub fn reset_cpu() {
    for n in 0..list_register_count().min(16) {
        write_lr(n, 0);
    }
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    ICH_HCR_EL2.set(ICH_HCR_EN);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
