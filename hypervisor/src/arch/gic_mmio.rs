//! Guest accesses to the GIC distributor and redistributors. They are not
//! mapped in stage 2, so every access traps here; the guest's configuration
//! is passed to the hardware, minus what would take the hypervisor's own
//! SGIs, maintenance interrupt or group/enable state away (see `crate::vgic`).

use super::hv;
use crate::mmio::MmioAccess;
use crate::vgic::{self as book, GicWrite};

/// Whether `ipa` is a GIC register frame.
pub fn owns(ipa: u64) -> bool {
    let hv = hv();
    hv.gicd.contains(ipa) || hv.gicr.iter().any(|r| r.contains(ipa))
}

/// Performs the guest's access against the real GIC.
pub fn access(access: &MmioAccess, regs: &mut [u64; 31]) {
    let hv = hv();
    let ipa = access.ipa;
    if access.write {
        let value = access.store_value_from(regs);
        let decision = if hv.gicd.contains(ipa) {
            book::gicd_write(ipa - hv.gicd.base, value)
        } else {
            let frame_offset = redistributor_offset(ipa);
            book::gicr_write(frame_offset, access.size, value, super::gic::RESERVED, || read(ipa, access.size))
        };
        if let GicWrite::Write(v) = decision {
            write(ipa, access.size, v);
        }
    } else {
        let value = if !hv.gicd.contains(ipa) && redistributor_offset(ipa) == book::GICR_WAKER {
            book::GICR_WAKER_AWAKE
        } else {
            read(ipa, access.size)
        };
        access.apply_load(regs, value);
    }
}

/// Offset of `ipa` within its CPU's pair of redistributor frames.
fn redistributor_offset(ipa: u64) -> u64 {
    let region = hv().gicr.iter().find(|r| r.contains(ipa)).expect("not a GICR address");
    (ipa - region.base) % book::GICR_FRAME
}

fn read(ipa: u64, size: u8) -> u64 {
    // SAFETY: `ipa` lies in a GIC frame from the DTB, identity mapped as
    // device memory at EL2; the access has the guest's own width.
    unsafe {
        match size {
            1 => u64::from((ipa as *const u8).read_volatile()),
            2 => u64::from((ipa as *const u16).read_volatile()),
            4 => u64::from((ipa as *const u32).read_volatile()),
            _ => (ipa as *const u64).read_volatile(),
        }
    }
}

fn write(ipa: u64, size: u8, value: u64) {
    // SAFETY: as in `read`; the value was filtered by `crate::vgic`.
    unsafe {
        match size {
            1 => (ipa as *mut u8).write_volatile(value as u8),
            2 => (ipa as *mut u16).write_volatile(value as u16),
            4 => (ipa as *mut u32).write_volatile(value as u32),
            _ => (ipa as *mut u64).write_volatile(value),
        }
    }
}
