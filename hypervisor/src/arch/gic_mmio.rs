//! Guest accesses to the GIC distributor and redistributors. They are not
//! mapped in stage 2, so every access traps here. `crate::gic_filter`
//! decides (allow-list of registers and widths); `gic`, the frames' only
//! owner, performs the hardware accesses it allows, at the guest's offset
//! and width.

use super::gic;
use crate::gic_filter::{ReadAction, WriteAction};
use crate::mmio::MmioAccess;

/// Whether `ipa` is a GIC register frame.
pub fn owns(ipa: u64) -> bool {
    gic::layout().owns(ipa)
}

/// Emulates the guest's access (the caller steps the PC).
pub fn access(access: &MmioAccess, regs: &mut [u64; 31]) {
    let Some(frame) = gic::layout().locate(access.ipa) else {
        return;
    };
    if access.write {
        let value = access.store_value_from(regs);
        if let WriteAction::Hardware { value, keep } = gic::FILTER.write(frame, access.size, value)
        {
            gic::guest_access(frame, access.size, Some((value, keep)));
        }
    } else {
        let value = match gic::FILTER.read(frame, access.size) {
            ReadAction::Value(v) => v,
            ReadAction::Hardware { mask } => gic::guest_access(frame, access.size, None) & mask,
        };
        access.apply_load(regs, value);
    }
}
