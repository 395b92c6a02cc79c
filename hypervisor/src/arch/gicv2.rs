//! The GICv2 backend (`super::gic`), for GICv2s with the virtualization
//! extensions (GIC-400, QEMU virt `gic-version=2,virtualization=on`):
//! - the hypervisor's SGIs go through GICD_SGIR, to CPU interface masks
//!   learnt from each CPU's banked GICD_ITARGETSR0 (never `1 << index`);
//! - physical interrupts are acknowledged at the (banked) GICC with
//!   EOImode 1, so EL2's EOI only drops the priority;
//! - the list registers are GICH_LR<n> (MMIO, banked per CPU), converted
//!   from the bookkeeping's GICv3 format by `crate::gich_format`;
//! - stage 2 maps GICV at the guest's GICC address (`super::stage2`); GICD
//!   is trapped and mediated by `crate::gicd_v2_filter`; GICH and the real
//!   GICC are never mapped into the guest.

use super::gic::{Acknowledged, InterruptController, OWN, RESERVED, raw_access};
use crate::dtb::{GicV2Frames, Platform};
use crate::gic_filter::{ReadAction, WriteAction};
use crate::gicd_v2_filter::{DistributorFilter, DistributorWrite};
use crate::gich_format;
use crate::list_registers::{MAX_LRS, VirtualInterface};
use crate::mem_range::MemRange;
use crate::mmio::MmioAccess;
use alloc::vec::Vec;
use arm_sysregs::el2::registers::{IchHcrEl2, IchVmcrEl2};
use core::mem::offset_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};
use safe_mmio::fields::{ReadOnly, ReadPure, ReadPureWrite, WriteOnly};
use safe_mmio::{UniqueMmioPointer, field};
use spin::{Mutex, Once};

/// GICv2 distributor registers (IHI 0048B §4.3), the part the hypervisor
/// itself uses; the guest's filtered accesses reach the rest by offset.
#[repr(C, align(4))]
struct Distributor {
    ctlr: ReadPureWrite<u32>,
    typer: ReadPure<u32>,
    _reserved0: [u32; 0x3e],
    isenabler: [ReadPureWrite<u32>; 0x20],
    icenabler: [ReadPureWrite<u32>; 0x20],
    _reserved1: [u32; 0x80],
    ipriorityr: [ReadPureWrite<u8>; 0x400],
    itargetsr: [ReadPure<u8>; 0x400],
    _reserved2: [u32; 0xc0],
    sgir: WriteOnly<u32>,
    _reserved3: [u32; 0x3f],
}

const _: () = assert!(offset_of!(Distributor, isenabler) == 0x100);
const _: () = assert!(offset_of!(Distributor, icenabler) == 0x180);
const _: () = assert!(offset_of!(Distributor, ipriorityr) == 0x400);
const _: () = assert!(offset_of!(Distributor, itargetsr) == 0x800);
const _: () = assert!(offset_of!(Distributor, sgir) == 0xf00);
const _: () = assert!(size_of::<Distributor>() == 0x1000);

/// GICv2 CPU interface registers (§4.4), both pages (GICC_DIR is in the
/// second).
#[repr(C, align(4))]
struct CpuInterface {
    ctlr: ReadPureWrite<u32>,
    pmr: ReadPureWrite<u32>,
    _bpr: u32,
    iar: ReadOnly<u32>,
    eoir: WriteOnly<u32>,
    _reserved: [u32; 0x3fb],
    dir: WriteOnly<u32>,
}

const _: () = assert!(offset_of!(CpuInterface, iar) == 0xc);
const _: () = assert!(offset_of!(CpuInterface, dir) == 0x1000);

/// GICv2 virtual interface control registers (GICH, §5.3).
#[repr(C, align(4))]
struct HypInterface {
    hcr: ReadPureWrite<u32>,
    vtr: ReadPure<u32>,
    vmcr: ReadPureWrite<u32>,
    _reserved0: u32,
    _misr: ReadPure<u32>,
    _reserved1: [u32; 7],
    elrsr: [ReadPure<u32>; 2],
    _reserved2: [u32; 0x2e],
    apr: ReadPureWrite<u32>,
    _reserved3: [u32; 3],
    lr: [ReadPureWrite<u32>; 64],
}

const _: () = assert!(offset_of!(HypInterface, elrsr) == 0x30);
const _: () = assert!(offset_of!(HypInterface, apr) == 0xf0);
const _: () = assert!(offset_of!(HypInterface, lr) == 0x100);

/// GICC_CTLR (no security extensions): EnableGrp0, EnableGrp1, EOImode.
const GICC_CTLR_ENABLE_EOIMODE: u32 = 1 | 1 << 1 | 1 << 9;
/// GICD_CTLR: forward group 0 and group 1.
const GICD_CTLR_ENABLE: u32 = 0b11;
/// GICD_SGIR TargetListFilter = 1: every CPU interface but the sender's.
const SGIR_ALL_BUT_SELF: u32 = 1 << 24;
/// GICC_IAR: the interrupt ID; 1020..1023 mean none.
const IAR_ID: u32 = 0x3ff;
/// The hypervisor's own interrupts' priority.
const OWN_PRIORITY: u8 = 0x80;

/// The decisions on guest GICD accesses.
static FILTER: DistributorFilter = DistributorFilter::new(RESERVED);

pub struct GicV2 {
    distributor_frame: MemRange,
    /// Where the guest finds its CPU interface (the real GICC address):
    /// GICV's two pages are mapped at its start, the rest is emulated
    /// as RAZ/WI.
    guest_cpu_interface: MemRange,
    cpu_interface: usize,
    hyp: usize,
    /// The distributor (banked registers: each CPU sees its own).
    distributor: Mutex<UniqueMmioPointer<'static, Distributor>>,
    /// CPU *i*'s interface mask (its banked GICD_ITARGETSR0).
    masks: Vec<AtomicU8>,
}

static BACKEND: Once<GicV2> = Once::new();

/// How much of GICV (and of the guest's GICC) is real: two 4 KiB pages.
pub const GICV_SIZE: u64 = 0x2000;

/// Boot CPU: takes the frames and sets up the distributor (the caller then
/// sets up this CPU).
pub fn init(platform: &Platform, frames: GicV2Frames) -> &'static GicV2 {
    if platform.cpus.len() > 8 {
        super::fatal(format_args!(
            "unsupported GIC layout: a GICv2 serves at most 8 CPUs, the DTB has {}",
            platform.cpus.len()
        ));
    }
    let gicd = NonNull::new(platform.gic.distributor.base as *mut Distributor).expect("GICD at 0");
    let backend = BACKEND.call_once(|| GicV2 {
        distributor_frame: platform.gic.distributor,
        guest_cpu_interface: frames.cpu_interface,
        cpu_interface: frames.cpu_interface.base as usize,
        hyp: frames.hyp.base as usize,
        // SAFETY: the DTB's distributor, identity mapped as device memory
        // at EL2 and never mapped into the guest; the only pointer to it
        // (every use goes through this lock).
        distributor: Mutex::new(unsafe { UniqueMmioPointer::new(gicd) }),
        masks: (0..platform.cpus.len()).map(|_| AtomicU8::new(0)).collect(),
    });
    {
        let mut gicd = backend.distributor.lock();
        // Every SPI off until the guest enables it.
        let mut icenabler = field!(*gicd, icenabler);
        for n in 1..0x20 {
            if let Some(mut r) = icenabler.get(n) {
                r.write(u32::MAX);
            }
        }
        field!(*gicd, ctlr).write(GICD_CTLR_ENABLE);
    }
    backend
}

impl GicV2 {
    /// This CPU's banked GICC.
    fn cpu_interface(&self) -> UniqueMmioPointer<'_, CpuInterface> {
        let regs = NonNull::new(self.cpu_interface as *mut CpuInterface).expect("GICC at 0");
        // SAFETY: the DTB's GICC (both pages), identity mapped as device
        // memory at EL2 and never mapped into the guest. Banked: each CPU
        // reaches its own interface there, and only this CPU, from EL2
        // with interrupts masked and never re-entered, uses this pointer
        // while it lives.
        unsafe { UniqueMmioPointer::new(regs) }
    }

    /// This CPU's banked GICH.
    fn hyp_interface(&self) -> UniqueMmioPointer<'_, HypInterface> {
        let regs = NonNull::new(self.hyp as *mut HypInterface).expect("GICH at 0");
        // SAFETY: the DTB's GICH, identity mapped as device memory at EL2
        // and never mapped into the guest; banked per CPU, used by this
        // CPU only, from EL2 with interrupts masked and not re-entered
        // (see `with_virtual_interface`).
        unsafe { UniqueMmioPointer::new(regs) }
    }

    fn send_sgi(&self, value: u32) {
        // The caller's preceding stores must be visible to the target
        // before it takes the interrupt.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        let mut gicd = self.distributor.lock();
        field!(*gicd, sgir).write(value);
    }

    fn guest_distributor(&self, offset: u64, access: &MmioAccess, regs: &mut [u64; 31]) {
        if access.write {
            let value = access.store_value_from(regs);
            match FILTER.write(offset, access.size, value) {
                DistributorWrite::Filtered(WriteAction::Ignore) => {}
                DistributorWrite::Filtered(WriteAction::Hardware { value, keep }) => {
                    raw_access(
                        &mut *self.distributor.lock(),
                        offset,
                        access.size,
                        Some((value, keep)),
                    );
                }
                DistributorWrite::Sgi(sgi) => {
                    // A GICv2 has at most 8 CPU interfaces (checked at
                    // boot): no allocation on this guest-driven path.
                    let mut masks = [0u8; 8];
                    for (m, learnt) in masks.iter_mut().zip(&self.masks) {
                        *m = learnt.load(Ordering::Relaxed);
                    }
                    let masks = &masks[..self.masks.len().min(8)];
                    let me = super::cpu_index();
                    super::vgic::deliver_sgi(me, sgi.intid, sgi.targets(me, masks));
                }
            }
        } else {
            let value = match FILTER.read(offset, access.size) {
                ReadAction::Value(v) => v,
                ReadAction::Hardware { mask } => {
                    raw_access(&mut *self.distributor.lock(), offset, access.size, None) & mask
                }
            };
            access.apply_load(regs, value);
        }
    }
}

impl InterruptController for GicV2 {
    /// Learns this CPU's interface mask, enables the hypervisor's
    /// interrupts in its banked distributor registers and turns on its CPU
    /// interface with EOImode 1.
    fn init_cpu(&self, index: usize) {
        {
            let mut gicd = self.distributor.lock();
            let mask = field!(*gicd, itargetsr).get(0).map_or(0, |r| r.read());
            self.masks[index].store(mask, Ordering::Relaxed);
            let mut enable = 0u32;
            for intid in OWN {
                let n = u32::from(intid);
                if let Some(mut p) = field!(*gicd, ipriorityr).get(n as usize) {
                    p.write(OWN_PRIORITY);
                }
                enable |= 1 << n;
            }
            if let Some(mut r) = field!(*gicd, isenabler).get(0) {
                r.write(enable);
            }
        }
        let mut gicc = self.cpu_interface();
        field!(gicc, pmr).write(0xff);
        field!(gicc, ctlr).write(GICC_CTLR_ENABLE_EOIMODE);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    fn kick(&self, cpu: usize) {
        let mask = self.masks[cpu].load(Ordering::Relaxed);
        self.send_sgi(u32::from(mask) << 16 | u32::from(super::gic::SGI_KICK));
    }

    fn broadcast_stop(&self) {
        self.send_sgi(SGIR_ALL_BUT_SELF | u32::from(super::gic::SGI_STOP));
    }

    fn acknowledge(&self) -> Option<Acknowledged> {
        let mut gicc = self.cpu_interface();
        let iar = field!(gicc, iar).read();
        let intid = iar & IAR_ID;
        (intid < 1020).then(|| Acknowledged::new(intid, iar))
    }

    fn end_of_interrupt(&self, irq: Acknowledged) {
        let mut gicc = self.cpu_interface();
        field!(gicc, eoir).write(irq.raw);
    }

    fn deactivate(&self, irq: Acknowledged) {
        let mut gicc = self.cpu_interface();
        field!(gicc, dir).write(irq.raw);
    }

    /// GICD_IPRIORITYR: banked for SGIs and PPIs, so `cpu` must be this
    /// CPU (it always is: list registers are filled on their own CPU).
    fn priority_of(&self, _cpu: usize, intid: u32) -> u8 {
        let mut gicd = self.distributor.lock();
        field!(*gicd, ipriorityr)
            .get(intid as usize)
            .map_or(0xff, |p| p.read())
    }

    /// This CPU's banked GICD_ISENABLER0.
    fn enabled_sgis(&self, _cpu: usize) -> u16 {
        raw_access(&mut *self.distributor.lock(), 0x100, 4, None) as u16
    }

    fn with_virtual_interface(&self, f: &mut dyn FnMut(&mut dyn VirtualInterface)) {
        let mut vif = Gich {
            regs: self.hyp_interface(),
            cpu: self.cpu_interface(),
        };
        f(&mut vif);
    }

    fn owns(&self, ipa: u64) -> bool {
        self.distributor_frame.contains(ipa) || self.guest_cpu_interface.contains(ipa)
    }

    fn guest_access(&self, access: &MmioAccess, regs: &mut [u64; 31]) {
        if self.distributor_frame.contains(access.ipa) {
            let offset = access.ipa - self.distributor_frame.base;
            self.guest_distributor(offset, access, regs);
        } else if !access.write {
            // The guest's CPU interface past GICV's two pages: RAZ/WI.
            access.apply_load(regs, 0);
        }
    }
}

/// This CPU's GICH as the list-register code's `VirtualInterface` (values
/// in the GICv3 format, converted by `crate::gich_format`).
struct Gich<'a> {
    regs: UniqueMmioPointer<'a, HypInterface>,
    cpu: UniqueMmioPointer<'a, CpuInterface>,
}

impl Gich<'_> {
    /// The same registers through a shared borrow (the trait's readers
    /// take `&self`; MMIO reads of these status registers have no side
    /// effect).
    fn read_lr(&self, n: usize) -> u32 {
        let base = self.regs.ptr().cast::<u8>();
        let lr = base.wrapping_add(offset_of!(HypInterface, lr) + 4 * n);
        // SAFETY: list register `n` (< 64, checked by the caller) inside
        // the GICH frame `self.regs` points to; a pure read.
        unsafe { lr.cast::<u32>().read_volatile() }
    }

    fn read_word(&self, offset: usize) -> u32 {
        let base = self.regs.ptr().cast::<u8>();
        // SAFETY: a status register (VTR, ELRSR0) inside the GICH frame
        // `self.regs` points to; a pure read.
        unsafe { base.wrapping_add(offset).cast::<u32>().read_volatile() }
    }
}

impl VirtualInterface for Gich<'_> {
    fn list_register_count(&self) -> usize {
        (self.read_word(offset_of!(HypInterface, vtr)) as usize & 0x3f) + 1
    }

    fn lr(&self, n: usize) -> u64 {
        assert!(
            n < self.list_register_count().min(MAX_LRS),
            "list register {n}"
        );
        gich_format::lr_from_gich(self.read_lr(n))
    }

    fn set_lr(&mut self, n: usize, value: u64) {
        let mut lr = field!(self.regs, lr);
        lr.get(n)
            .expect("list register exists")
            .write(gich_format::lr_to_gich(value));
    }

    fn empty_lrs(&self) -> u64 {
        u64::from(self.read_word(offset_of!(HypInterface, elrsr)))
    }

    fn set_ich_hcr_el2(&mut self, value: IchHcrEl2) {
        field!(self.regs, hcr).write(gich_format::hcr_to_gich(value));
    }

    fn set_ich_vmcr_el2(&mut self, value: IchVmcrEl2) {
        field!(self.regs, vmcr).write(gich_format::vmcr_to_gich(value));
    }

    fn clear_active_priorities(&mut self) {
        field!(self.regs, apr).write(0);
    }

    fn deactivate(&mut self, intid: u32) {
        field!(self.cpu, dir).write(intid);
    }
}
