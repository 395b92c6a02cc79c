//! Stage 2: the guest's view of physical memory. Identity map (IPA = PA) of
//! guest RAM and of the passed-through devices only (`Platform::passthrough`:
//! RTC, GPIO, flash; none can master memory), plus, on a GICv2, the virtual
//! CPU interface (GICV, both pages) at the guest's GICC address -- the one
//! frame not mapped at its own address, and the console UART read-only
//! (its writes trap and are emulated). Everything else is unmapped:
//! the hypervisor region, the emulated GIC (its accesses trap and
//! are emulated) and every withheld device (fw_cfg, virtio-mmio, PCIe, ...:
//! DMA masters without an IOMMU; a guest access is a contained fault).

use crate::dtb::Platform;
use crate::mem_range::MemRange;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, Readable, VTCR_EL2, VTTBR_EL2, Writeable};
use aarch64_paging::Mapping;
use aarch64_paging::descriptor::PhysicalAddress;
use aarch64_paging::descriptor::Stage2Attributes;
use aarch64_paging::idmap::IdTranslation;
use aarch64_paging::paging::{Constraints, MemoryRegion, Stage2};
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

/// The console UART for the guest's reads: they reach the PL011 directly
/// (no side effect but the guest's own RX FIFO pop, and no trap: half of a
/// polled console's accesses), while every write is a permission fault that
/// the console emulates (`console::guest_access`: filtered, after the
/// pending trace lines).
const DEVICE_READ_ONLY: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_DEVICE_nGnRE)
    .union(Stage2Attributes::S2AP_ACCESS_RO)
    .union(Stage2Attributes::ACCESS_FLAG)
    .union(Stage2Attributes::XN);

/// Builds the stage-2 tables (boot CPU, once) and installs them.
pub fn init(platform: &Platform, guest_ram: &[MemRange]) {
    let mut map = Mapping::new(IdTranslation::new(), root_level(), Stage2);
    let mut map_at = |r: MemRange, pa: u64, attributes, constraints| {
        map.map_range(
            &region(r),
            PhysicalAddress(pa as usize),
            attributes,
            constraints,
        )
    };
    let ram_constraints = ram_constraints(guest_ram);
    for r in guest_ram {
        map_at(*r, r.base, RAM, ram_constraints)
            .unwrap_or_else(|e| panic!("stage 2: cannot map guest RAM {r}: {e:?}"));
    }
    for d in &platform.passthrough {
        // Whole pages: QEMU virt's devices are 4 KiB aligned and padded.
        let r = MemRange::new(
            d.base & !0xfff,
            ((d.end() + 0xfff) & !0xfff) - (d.base & !0xfff),
        );
        map_at(r, r.base, DEVICE, Constraints::empty())
            .unwrap_or_else(|e| panic!("stage 2: cannot map MMIO {r}: {e:?}"));
    }
    if super::console::guest_reads_direct() {
        let uart = super::hv().uart;
        let page = MemRange::new(
            uart.base & !0xfff,
            ((uart.end() + 0xfff) & !0xfff) - (uart.base & !0xfff),
        );
        map_at(page, page.base, DEVICE_READ_ONLY, Constraints::empty())
            .unwrap_or_else(|e| panic!("stage 2: cannot map the console UART {page}: {e:?}"));
    }
    if let Some(v2) = platform.gic.v2 {
        let gicc = MemRange::new(v2.cpu_interface.base, super::gicv2::GICV_SIZE);
        map_at(gicc, v2.vcpu.base, DEVICE, Constraints::empty())
            .unwrap_or_else(|e| panic!("stage 2: cannot map GICV at {gicc}: {e:?}"));
    }
    map.mark_active();
    let root = map.root_address().0 as u64;
    // The table lives as long as the guest: forever.
    core::mem::forget(map);
    ROOT.call_once(|| root);
    init_cpu();
}

/// Stage-2 page and block sizes (4 KiB granule).
const PAGE: u64 = 1 << 12;
const BLOCK_2M: u64 = 1 << 21;
/// The most heap that page-granular RAM tables may take (4 KiB of level-3
/// table per 2 MiB of RAM: up to 8 GiB of guest RAM).
const PAGE_TABLES_BUDGET: u64 = 16 << 20;

/// How guest RAM is mapped: in 4 KiB pages while their tables fit the
/// budget, else in blocks.
///
/// Pages, not blocks, because of the emulator the hypervisor runs on:
/// QEMU's software TLB files a two-stage translation under the larger of
/// its stage-1 and stage-2 page sizes, and invalidating one page of a
/// "large page" flushes that guest's whole TLB. With blocks, each of the
/// guest kernel's page TLBIs (about 78 000 in a Linux boot) became a full
/// flush on every vCPU, and the QEMU process filled its TLB 2.9x as often
/// as without the hypervisor; with pages as often as without it
/// (docs/benchmarks.md, "Linux overhead vs plain QEMU"). On hardware,
/// blocks would give a larger TLB reach.
fn ram_constraints(guest_ram: &[MemRange]) -> Constraints {
    let tables: u64 = guest_ram
        .iter()
        .map(|r| r.size.div_ceil(BLOCK_2M) * PAGE)
        .sum();
    if tables <= PAGE_TABLES_BUDGET {
        Constraints::NO_BLOCK_MAPPINGS
    } else {
        Constraints::empty()
    }
}

fn region(r: MemRange) -> MemoryRegion {
    MemoryRegion::new(r.base as usize, r.end() as usize)
}

/// PARange (ID_AA64MMFR0_EL1) of a 48-bit physical address space.
const PA_48_BITS: u64 = 0b101;

/// The stage-2 tables' root level: 0 for a 48-bit IPA space where the CPU
/// has 48 physical address bits (QEMU `max`), else 1 for a 39-bit one
/// (512 GiB: a Cortex-A72 has 44 bits, so a 48-bit IPA is not allowed).
fn root_level() -> usize {
    if ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) >= PA_48_BITS {
        0
    } else {
        1
    }
}

/// Installs stage 2 on this CPU: VTCR for the IPA space of [`root_level`]
/// with 4 KiB granules, and VTTBR with the guest's VMID.
pub fn init_cpu() {
    let root = *ROOT.get().expect("stage 2 not built");
    let parange = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    assert!(
        parange >= 0b001,
        "stage 2 needs at least a 36-bit physical address space for a 39-bit IPA (PARange {parange:#x})"
    );
    let common = VTCR_EL2::RES1::SET
        + VTCR_EL2::TG0::Granule4KB
        + VTCR_EL2::SH0::Inner
        + VTCR_EL2::ORGN0::NormalWBRAWA
        + VTCR_EL2::IRGN0::NormalWBRAWA;
    if root_level() == 0 {
        VTCR_EL2.write(
            common
                + VTCR_EL2::PS::PA_48B_256TB
                + VTCR_EL2::SL0::Granule4KBLevel0
                + VTCR_EL2::T0SZ.val(16), // 48-bit IPA
        );
    } else {
        // PS: the CPU's own physical address size (same encoding).
        VTCR_EL2.write(
            common
                + VTCR_EL2::PS.val(parange.min(PA_48_BITS))
                + VTCR_EL2::SL0::Granule4KBLevel1
                + VTCR_EL2::T0SZ.val(25), // 39-bit IPA
        );
    }
    // BADDR is bits 47:1 (CnP, bit 0, stays 0); the root is 4 KiB aligned.
    VTTBR_EL2.write(VTTBR_EL2::VMID.val(VMID) + VTTBR_EL2::BADDR.val(root >> 1));
    // SAFETY: invalidate stale stage-1+2 entries for this VMID on this CPU
    // before the guest first runs here.
    unsafe { asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
}
