//! Stage 2: the guest's view of physical memory. Identity map (IPA = PA) of
//! guest RAM and of the passed-through devices only (`Platform::passthrough`:
//! RTC, GPIO, flash; none can master memory), plus, on a GICv2, the virtual
//! CPU interface (GICV, both pages) at the guest's GICC address -- the one
//! frame not mapped at its own address, and the console UART read-only
//! (its writes trap and are emulated). Everything else is unmapped:
//! the hypervisor region, the emulated GIC (its accesses trap and
//! are emulated) and every withheld device (fw_cfg, virtio-mmio, PCIe, ...:
//! DMA masters without an IOMMU; a guest access is a contained fault).

use crate::dtb::{MemRange, Platform};
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, Readable, VTCR_EL2, VTTBR_EL2, Writeable};
use aarch64_paging::descriptor::Stage2Attributes;
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
    let granule = ram_granule(guest_ram);
    let mut tables = Tables::new();
    for r in guest_ram {
        tables.map(*r, r.base, RAM, granule);
    }
    for d in &platform.passthrough {
        // Whole pages: QEMU virt's devices are 4 KiB aligned and padded.
        let r = MemRange::new(
            d.base & !0xfff,
            ((d.end() + 0xfff) & !0xfff) - (d.base & !0xfff),
        );
        tables.map(r, r.base, DEVICE, PAGE);
    }
    if super::console::guest_reads_direct() {
        let uart = super::hv().uart;
        let page = MemRange::new(
            uart.base & !0xfff,
            ((uart.end() + 0xfff) & !0xfff) - (uart.base & !0xfff),
        );
        tables.map(page, page.base, DEVICE_READ_ONLY, PAGE);
    }
    if let Some(v2) = platform.gic.v2 {
        let gicc = MemRange::new(v2.cpu_interface.base, super::gicv2::GICV_SIZE);
        tables.map(gicc, v2.vcpu.base, DEVICE, PAGE);
    }
    // The tables live as long as the guest: forever.
    let root = tables.root as *const Table as u64;
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
/// budget, else in 2 MiB blocks.
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
fn ram_granule(guest_ram: &[MemRange]) -> u64 {
    let tables: u64 = guest_ram
        .iter()
        .map(|r| r.size.div_ceil(BLOCK_2M) * PAGE)
        .sum();
    if tables <= PAGE_TABLES_BUDGET {
        PAGE
    } else {
        BLOCK_2M
    }
}

/// Descriptor bits (Arm ARM D8.3): valid, and "table" at levels 0..2 /
/// "page" at level 3; a block has the second bit clear.
const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Output address bits 47:12 of a descriptor.
const OUTPUT_ADDRESS: u64 = 0x0000_ffff_ffff_f000;

/// One translation table: 512 descriptors, 4 KiB aligned.
#[repr(C, align(4096))]
struct Table([u64; 512]);

impl Table {
    fn new_leaked() -> &'static mut Table {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(Table([0; 512])))
    }
}

/// A four-level stage-2 table tree under construction (48-bit IPA, 4 KiB
/// granule, starting at level 0). Tables are heap memory, identity mapped
/// at EL2, so a descriptor's output address is also the child's pointer.
struct Tables {
    root: &'static mut Table,
}

impl Tables {
    fn new() -> Self {
        Tables {
            root: Table::new_leaked(),
        }
    }

    /// The table at `level` (1..=3) that translates `ipa`, created on the way.
    fn table_at(&mut self, ipa: u64, level: u32) -> &mut Table {
        let mut table: *mut Table = &mut *self.root;
        for l in 0..level {
            let index = ((ipa >> (39 - 9 * l)) & 511) as usize;
            // SAFETY: `table` is the root or a table this builder leaked
            // (found through a table descriptor it wrote); nothing else
            // references it while the builder runs.
            let entry = unsafe { &mut (*table).0[index] };
            if *entry & VALID == 0 {
                *entry = Table::new_leaked() as *mut Table as u64 | VALID | TABLE_OR_PAGE;
            }
            assert!(
                *entry & TABLE_OR_PAGE != 0,
                "stage 2: {ipa:#x} already lies in a block"
            );
            table = (*entry & OUTPUT_ADDRESS) as *mut Table;
        }
        // SAFETY: as above: a table of this builder, uniquely borrowed via `self`.
        unsafe { &mut *table }
    }

    /// Maps `r` to `pa` onwards with `attributes`, in 2 MiB blocks where
    /// `granule` allows and both addresses are aligned, else in pages.
    fn map(&mut self, r: MemRange, pa: u64, attributes: Stage2Attributes, granule: u64) {
        assert!(
            r.base.is_multiple_of(PAGE) && r.size.is_multiple_of(PAGE) && pa.is_multiple_of(PAGE),
            "stage 2: {r} is not page aligned"
        );
        let attributes = attributes.bits() as u64;
        let (mut ipa, mut pa, end) = (r.base, pa, r.end());
        while ipa < end {
            let block = granule == BLOCK_2M
                && ipa.is_multiple_of(BLOCK_2M)
                && pa.is_multiple_of(BLOCK_2M)
                && end - ipa >= BLOCK_2M;
            if block {
                let table = self.table_at(ipa, 2);
                table.0[((ipa >> 21) & 511) as usize] = pa | attributes;
                ipa += BLOCK_2M;
                pa += BLOCK_2M;
                continue;
            }
            // The rest of this level-3 table in one go.
            let table = self.table_at(ipa, 3);
            let first = ((ipa >> 12) & 511) as usize;
            let n = (512 - first).min(((end - ipa) / PAGE) as usize);
            for (i, entry) in table.0[first..first + n].iter_mut().enumerate() {
                *entry = (pa + i as u64 * PAGE) | attributes | TABLE_OR_PAGE;
            }
            ipa += n as u64 * PAGE;
            pa += n as u64 * PAGE;
        }
    }
}

/// Installs stage 2 on this CPU: VTCR for a 48-bit IPA space starting at
/// level 0 with 4 KiB granules, and VTTBR with the guest's VMID.
pub fn init_cpu() {
    let root = *ROOT.get().expect("stage 2 not built");
    // PARange: at least 48 bits, the IPA size the tables are built for.
    let parange = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    assert!(
        parange >= 0b101,
        "stage 2 needs a 48-bit physical address space (PARange {parange:#x})"
    );
    VTCR_EL2.write(
        VTCR_EL2::RES1::SET
            + VTCR_EL2::PS::PA_48B_256TB
            + VTCR_EL2::TG0::Granule4KB
            + VTCR_EL2::SH0::Inner
            + VTCR_EL2::ORGN0::NormalWBRAWA
            + VTCR_EL2::IRGN0::NormalWBRAWA
            + VTCR_EL2::SL0::Granule4KBLevel0
            + VTCR_EL2::T0SZ.val(16), // 48-bit IPA
    );
    // BADDR is bits 47:1 (CnP, bit 0, stays 0); the root is 4 KiB aligned.
    VTTBR_EL2.write(VTTBR_EL2::VMID.val(VMID) + VTTBR_EL2::BADDR.val(root >> 1));
    // SAFETY: make the boot CPU's table writes visible to this CPU's table
    // walker, then invalidate stale stage-1+2 entries for this VMID on this
    // CPU before the guest first runs here.
    unsafe {
        asm!(
            "dsb ish",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            options(nostack)
        )
    };
}
