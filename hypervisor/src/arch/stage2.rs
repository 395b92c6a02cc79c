//! Stage 2: the guest's view of physical memory. Identity map (IPA = PA) of
//! guest RAM and of passthrough MMIO; the hypervisor region, the GIC and the
//! UART are left unmapped so every guest access to them traps to EL2.

use crate::dtb::{MemRange, Platform};
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, Readable, VTCR_EL2, VTTBR_EL2, Writeable};
use aarch64_paging::descriptor::Stage2Attributes;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{MemoryRegion, Stage2};
use core::arch::asm;
use spin::Once;

/// The guest's only VMID.
pub const VMID: u64 = 1;

static ROOT: Once<u64> = Once::new();

const RAM: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_NORMAL_INNER_WB)
    .union(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB)
    .union(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::SH_INNER)
    .union(Stage2Attributes::ACCESS_FLAG);

const DEVICE: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_DEVICE_nGnRE)
    .union(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::ACCESS_FLAG)
    .union(Stage2Attributes::XN);

/// QEMU virt's MMIO windows: the low one (flash, RTC, GPIO, virtio-mmio,
/// PCIe PIO/MMIO), the high PCIe ECAM at 256 GiB and the high PCIe MMIO at
/// 512 GiB. Everything in them but the trapped devices is passed through.
const MMIO_WINDOWS: [MemRange; 3] = [
    MemRange { base: 0, size: 0x4000_0000 },
    MemRange { base: 0x40_0000_0000, size: 0x40_0000_0000 },
    MemRange { base: 0x80_0000_0000, size: 0x80_0000_0000 },
];

/// Builds the stage-2 tables (boot CPU, once) and installs them.
pub fn init(platform: &Platform, guest_ram: &[MemRange]) {
    let mut map = IdMap::new(0, Stage2);
    for r in guest_ram {
        map.map_range(&region(*r), RAM)
            .unwrap_or_else(|e| panic!("stage 2: cannot map guest RAM {r}: {e:?}"));
    }
    let mut trapped = alloc::vec![platform.gic.distributor];
    trapped.extend(platform.gic.redistributors.iter().copied());
    if let Some(uart) = &platform.uart {
        trapped.push(uart.regs);
    }
    let mut passthrough = MMIO_WINDOWS.to_vec();
    for t in &trapped {
        let page_aligned = MemRange::new(t.base & !0xfff, (t.end() + 0xfff & !0xfff) - (t.base & !0xfff));
        passthrough = crate::dtb::subtract(&passthrough, page_aligned);
    }
    for r in passthrough.iter().filter(|r| !r.is_empty()) {
        map.map_range(&region(*r), DEVICE)
            .unwrap_or_else(|e| panic!("stage 2: cannot map MMIO {r}: {e:?}"));
    }
    map.mark_active();
    let root = map.root_address().0 as u64;
    // The table lives as long as the guest: forever.
    core::mem::forget(map);
    ROOT.call_once(|| root);
    init_cpu();
}

fn region(r: MemRange) -> MemoryRegion {
    MemoryRegion::new(r.base as usize, r.end() as usize)
}

/// Installs stage 2 on this CPU: VTCR for a 48-bit IPA space starting at
/// level 0 with 4 KiB granules, and VTTBR with the guest's VMID.
pub fn init_cpu() {
    let root = *ROOT.get().expect("stage 2 not built");
    let ps = (ID_AA64MMFR0_EL1.get() & 0xf).min(0b101);
    assert!(ps == 0b101, "stage 2 needs a 48-bit physical address space (PARange {ps:#x})");
    let vtcr = 1 << 31          // RES1
        | ps << 16              // PS: physical address size
        | 0b00 << 14            // TG0: 4 KiB
        | 0b11 << 12            // SH0: inner shareable
        | 0b01 << 10            // ORGN0: write-back
        | 0b01 << 8             // IRGN0: write-back
        | 0b10 << 6             // SL0: start at level 0
        | 16;                   // T0SZ: 48-bit IPA
    VTCR_EL2.set(vtcr);
    VTTBR_EL2.set(VMID << 48 | root);
    // SAFETY: invalidate stale stage-1+2 entries for this VMID on this CPU
    // before the guest first runs here.
    unsafe { asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
}
