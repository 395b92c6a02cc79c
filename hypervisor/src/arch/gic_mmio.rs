//! Guest accesses to the GIC distributor and redistributors. They are not
//! mapped in stage 2, so every access traps here. `crate::gic_filter`
//! decides (allow-list of registers and widths); this module only performs
//! the hardware accesses it allows, at the guest's address and width.

use super::gic;
use crate::gic_filter::{self, ReadAction, WriteAction};
use crate::mmio::MmioAccess;

/// Whether `ipa` is a GIC register frame.
pub fn owns(ipa: u64) -> bool {
    gic::layout().owns(ipa)
}

/// Emulates the guest's access (the caller steps the PC).
pub fn access(access: &MmioAccess, regs: &mut [u64; 31]) {
    let ipa = access.ipa;
    let Some(frame) = gic::layout().locate(ipa) else {
        return;
    };
    if access.write {
        let value = access.store_value_from(regs);
        if let WriteAction::Hardware { value, keep } = gic::FILTER.write(frame, access.size, value)
        {
            let value = if keep == 0 {
                value
            } else {
                gic_filter::merge(value, keep, read(ipa, access.size))
            };
            write(ipa, access.size, value);
        }
    } else {
        let value = match gic::FILTER.read(frame, access.size) {
            ReadAction::Value(v) => v,
            ReadAction::Hardware { mask } => read(ipa, access.size) & mask,
        };
        access.apply_load(regs, value);
    }
}

// The filter only lets through accesses to architected registers of a frame
// with a CPU behind it, at a width the architecture allows there, aligned.

fn read(ipa: u64, size: u8) -> u64 {
    // SAFETY: `ipa` is an allowed register (see above) in a GIC frame from
    // the DTB, identity mapped as device memory at EL2.
    unsafe {
        match size {
            1 => u64::from((ipa as *const u8).read_volatile()),
            4 => u64::from((ipa as *const u32).read_volatile()),
            _ => (ipa as *const u64).read_volatile(),
        }
    }
}

fn write(ipa: u64, size: u8, value: u64) {
    // SAFETY: as in `read`; the value was filtered by `crate::gic_filter`.
    unsafe {
        match size {
            1 => (ipa as *mut u8).write_volatile(value as u8),
            4 => (ipa as *mut u32).write_volatile(value as u32),
            _ => (ipa as *mut u64).write_volatile(value),
        }
    }
}
