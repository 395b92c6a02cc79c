//! Guest accesses to the GIC's emulated frames (GICD/GICR on GICv3, GICD
//! on GICv2). They are not mapped in stage 2, so every access traps here;
//! the board's backend (`gic`) filters and performs it.

use super::gic;
use crate::mmio::MmioAccess;

/// Whether `ipa` is an emulated GIC register address.
pub fn owns(ipa: u64) -> bool {
    gic::owns(ipa)
}

/// Emulates the guest's access (the caller steps the PC).
pub fn access(access: &MmioAccess, regs: &mut [u64; 31]) {
    gic::guest_access(access, regs);
}
