//! The GICv3 backend (`super::gic`): distributor and redistributor setup,
//! the hypervisor's SGIs through the ICC system registers, the ICH_*_EL2
//! virtual interface (`super::ich`) and the guest's trapped GICD/GICR
//! accesses. The guest never sees the hypervisor's SGIs (physical IRQs are
//! routed to EL2 by HCR_EL2.IMO).

use super::gic::SGI_KICK;
use super::gic::SGI_STOP;
use super::gic::{Acknowledged, InterruptController, OWN, RESERVED, raw_access};
use crate::dtb::Platform;
use crate::gic_filter::{GicFilter, GicFrame, GicLayout, ReadAction, WriteAction};
use crate::list_registers::VirtualInterface;
use crate::mmio::MmioAccess;
use alloc::vec::Vec;
use arm_gic::gicv3::registers::{Gicd, GicrSgi, Sgi};
use arm_gic::gicv3::{
    GicCpuInterface, GicDistributor, GicRedistributor, SgiTarget, SgiTargetGroup,
};
use arm_gic::{InterruptGroup, UniqueMmioPointer};
use arm_sysregs::el1::accessors as sysregs;
use arm_sysregs::el1::registers::{IccCtlrEl1, IccDirEl1};
use core::mem::offset_of;
use core::ptr::NonNull;
use spin::{Mutex, MutexGuard, Once};

/// The decisions on guest GICD/GICR accesses.
pub static FILTER: GicFilter = GicFilter::new(RESERVED);

/// The distributor and every redistributor region, with the CPU count.
static LAYOUT: Once<GicLayout> = Once::new();

pub fn layout() -> &'static GicLayout {
    LAYOUT.get().expect("GIC not initialised")
}

/// The GIC's register frames. This module is their only user: the arm-gic
/// drivers, the priority look-ups and the guest's filtered pass-through
/// accesses all go through these pointers, each frame behind
/// its own lock, so each `UniqueMmioPointer` really is the only access to
/// its frame while it is used. The guest never maps them (stage 2).
struct Frames {
    distributor: Mutex<UniqueMmioPointer<'static, Gicd>>,
    /// Indexed by CPU; each CPU's own frame is uncontended except while
    /// the guest touches it from another CPU.
    redistributors: Vec<Mutex<UniqueMmioPointer<'static, GicrSgi>>>,
}

static FRAMES: Once<Frames> = Once::new();

fn frames() -> &'static Frames {
    FRAMES.get().expect("GIC not initialised")
}

impl Frames {
    /// Takes ownership of the frames of `layout` (every CPU's redistributor
    /// exists: `check_capacity` passed).
    fn new(layout: &GicLayout) -> Self {
        let gicd = NonNull::new(layout.distributor.base as *mut Gicd).expect("GICD at 0");
        let redistributors = (0..layout.cpus)
            .map(|cpu| {
                let base = layout.redistributor_base(cpu).expect("capacity checked");
                let regs = NonNull::new(base as *mut GicrSgi).expect("GICR at 0");
                // SAFETY: `cpu`'s redistributor frames (RD and SGI, the
                // GicrSgi pair) inside the DTB's GICR regions, identity
                // mapped as device memory at EL2 and never mapped into the
                // guest; the only pointer to them (see `Frames`).
                Mutex::new(unsafe { UniqueMmioPointer::new(regs) })
            })
            .collect();
        Self {
            // SAFETY: the DTB's distributor, identity mapped as device
            // memory at EL2 and never mapped into the guest; the only
            // pointer to it (see `Frames`).
            distributor: Mutex::new(unsafe { UniqueMmioPointer::new(gicd) }),
            redistributors,
        }
    }

    fn redistributor(&self, cpu: usize) -> MutexGuard<'_, UniqueMmioPointer<'static, GicrSgi>> {
        self.redistributors[cpu].lock()
    }
}

/// The SGI/PPI frame of a redistributor (the second half of `GicrSgi`).
fn sgi_frame<'a>(rd: &'a mut UniqueMmioPointer<'_, GicrSgi>) -> UniqueMmioPointer<'a, Sgi> {
    let sgi = rd
        .ptr_mut()
        .wrapping_byte_add(offset_of!(GicrSgi, sgi))
        .cast::<Sgi>();
    // SAFETY: a field of the `GicrSgi` that `rd` points to, so inside its
    // frames and aligned; borrowed from `rd` for as long as it is used
    // (what safe-mmio's `field!` does).
    unsafe { rd.child(NonNull::new(sgi).expect("inside a non-null frame")) }
}

// The register structs put the priority bytes where the GICv3
// specification does (GICD_IPRIORITYR<n> at 0x400, GICR_IPRIORITYR<n> at
// SGI_base + 0x400) and the SGI frame at RD_base + 64 KiB, the layout the
// guest's filtered accesses (`crate::gic_filter`) are written against.
const _: () = assert!(offset_of!(Gicd, ipriorityr) == 0x400);
const _: () = assert!(offset_of!(Sgi, ipriorityr) == 0x400);
const _: () = assert!(offset_of!(GicrSgi, sgi) as u64 == crate::gic_filter::GICR_SGI_BASE);
const _: () = assert!(size_of::<GicrSgi>() as u64 == crate::gic_filter::GICR_FRAME);

/// Checks that the GICR regions hold a redistributor for every CPU of the
/// DTB; ends the boot with a clear message otherwise.
fn check_capacity(platform: &Platform, layout: &GicLayout) {
    if layout.capacity() < platform.cpus.len() {
        super::fatal(format_args!(
            "unsupported GIC layout: {} CPUs but the {} GICR region(s) hold only {} redistributors",
            platform.cpus.len(),
            layout.regions.len(),
            layout.capacity()
        ));
    }
}

/// Checks that every CPU of the DTB has its redistributor, in DT order, in
/// the GICR regions (QEMU virt puts CPUs 123 and up in a second region),
/// each a GICv3 one (two 64 KiB frames); ends the boot with a clear
/// message otherwise.
fn check_layout(platform: &Platform, layout: &GicLayout) {
    let fail = |args: core::fmt::Arguments<'_>| -> ! {
        super::fatal(format_args!("unsupported GIC layout: {args}"))
    };
    for (cpu, c) in platform.cpus.iter().enumerate() {
        let typer = GicRedistributor::new(frames().redistributor(cpu).reborrow()).typer();
        let base = layout.redistributor_base(cpu).unwrap_or(0);
        if typer.virtual_lpis_supported() {
            fail(format_args!(
                "GICv4 redistributors (4 frames per CPU) at {base:#x}"
            ));
        }
        // GICR_TYPER's affinity, laid out as in MPIDR.
        let affinity = typer.core_mpidr();
        if affinity != c.mpidr & crate::vcpu::MPIDR_AFF_MASK {
            fail(format_args!(
                "cpu{cpu} (mpidr {:#x}) found the redistributor of affinity {affinity:#x} at {base:#x}",
                c.mpidr
            ));
        }
    }
}

/// The GICv3 backend.
pub struct GicV3;

static BACKEND: GicV3 = GicV3;

/// Boot CPU: initialise distributor and every redistributor (the caller
/// then sets up this CPU).
pub fn init(platform: &Platform) -> &'static GicV3 {
    let layout = GicLayout {
        distributor: platform.gic.distributor,
        regions: platform.gic.redistributors.clone(),
        cpus: platform.cpus.len(),
    };
    check_capacity(platform, &layout);
    let frames = FRAMES.call_once(|| Frames::new(&layout));
    check_layout(platform, &layout);
    LAYOUT.call_once(|| layout);
    for cpu in 0..platform.cpus.len() {
        GicRedistributor::new(frames.redistributor(cpu).reborrow()).configure_default_settings();
    }
    GicDistributor::new(frames.distributor.lock().reborrow()).configure_default_settings();
    &BACKEND
}

/// Every CPU: wake its redistributor and enable the hypervisor SGIs.
fn init_cpu(index: usize) {
    GicCpuInterface::enable_system_register_el1();
    {
        let mut frame = frames().redistributor(index);
        let mut rd = GicRedistributor::new(frame.reborrow());
        // Already awake is fine.
        let _ = rd.mark_core_awake();
        for sgi in OWN {
            rd.set_interrupt_priority(sgi, 0x80).expect("SGI priority");
            rd.enable_interrupt(sgi, true).expect("SGI enable");
        }
    }
    // Let EL1 use the ICC system registers (it gets the virtual interface).
    GicCpuInterface::enable_system_register_el2(true);
    GicCpuInterface::set_priority_mask(0xff);
    GicCpuInterface::enable_group1(true);
    // ICC_CTLR_EL1: EOImode 1, the rest 0: EL2's EOI only drops priority;
    // the guest's virtual EOI of a hardware-linked interrupt deactivates it.
    sysregs::write_icc_ctlr_el1(IccCtlrEl1::EOIMODE);
    isb();
}

fn isb() {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Deactivates a physical interrupt (EOImode 1: after its priority drop).
pub(super) fn deactivate(intid: u32) {
    sysregs::write_icc_dir_el1(IccDirEl1::empty().with_intid(intid));
    isb();
}

/// The priority the guest gave `intid` (it programs the real GIC through the
/// trapped, filtered MMIO path), for the list register: GICR_IPRIORITYR of
/// `cpu`'s redistributor for an SGI or PPI, GICD_IPRIORITYR for an SPI.
fn priority_of(cpu: usize, intid: u32) -> u8 {
    let frames = frames();
    let index = intid as usize;
    if intid < 32 {
        let mut rd = frames.redistributor(cpu);
        let mut sgi = sgi_frame(&mut rd);
        Sgi::ipriorityr_bytes(&mut sgi).get(index).map(|p| p.read())
    } else {
        let mut gicd = frames.distributor.lock();
        Gicd::ipriorityr_bytes(&mut gicd)
            .get(index)
            .map(|p| p.read())
    }
    .expect("INTID within the priority registers")
}

/// A guest access to a GIC register that `crate::gic_filter` let through
/// (see [`guest_mmio`]): performed on the real frame, at the guest's offset and
/// width, under the frame's lock; a write keeps the hardware's bits in
/// `keep` (one read-modify-write, atomic against other guest accesses).
fn guest_access(frame: GicFrame, size: u8, write: Option<(u64, u64)>) -> u64 {
    let frames = frames();
    match frame {
        GicFrame::Distributor(offset) => {
            raw_access(&mut frames.distributor.lock(), offset, size, write)
        }
        GicFrame::Redistributor { cpu, offset } => match frames.redistributors.get(cpu) {
            Some(rd) => raw_access(&mut rd.lock(), offset, size, write),
            None => 0,
        },
        GicFrame::NoCpu => 0,
    }
}

/// Guest accesses to the distributor and redistributors: not mapped in
/// stage 2, so every access traps here. `crate::gic_filter` decides
/// (allow-list of registers and widths); [`guest_access`] performs what it
/// allows, at the guest's offset and width.
fn guest_mmio(access: &MmioAccess, regs: &mut [u64; 31]) {
    let Some(frame) = layout().locate(access.ipa) else {
        return;
    };
    if access.write {
        let value = access.store_value_from(regs);
        if let WriteAction::Hardware { value, keep } = FILTER.write(frame, access.size, value) {
            guest_access(frame, access.size, Some((value, keep)));
        }
    } else {
        let value = match FILTER.read(frame, access.size) {
            ReadAction::Value(v) => v,
            ReadAction::Hardware { mask } => guest_access(frame, access.size, None) & mask,
        };
        access.apply_load(regs, value);
    }
}

impl InterruptController for GicV3 {
    fn init_cpu(&self, index: usize) {
        init_cpu(index);
    }

    /// Physical SGI to one CPU so it picks up new virtual interrupts.
    fn kick(&self, cpu: usize) {
        let mpidr = super::hv().vcpus[cpu].mpidr;
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        let target = SgiTarget::List {
            affinity3: (mpidr >> 32) as u8,
            affinity2: (mpidr >> 16) as u8,
            affinity1: (mpidr >> 8) as u8,
            target_list: 1 << (mpidr & 0xf),
        };
        GicCpuInterface::send_sgi(SGI_KICK, target, SgiTargetGroup::CurrentGroup1)
            .expect("SGI_KICK is an SGI");
    }

    /// One SGI write that reaches every CPU but this one (IRM=1).
    fn broadcast_stop(&self) {
        // The caller's preceding stores must be visible to the targets
        // before they take the interrupt.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        GicCpuInterface::send_sgi(SGI_STOP, SgiTarget::All, SgiTargetGroup::CurrentGroup1)
            .expect("SGI_STOP is an SGI");
    }

    fn acknowledge(&self) -> Option<Acknowledged> {
        GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map(|intid| {
            Acknowledged {
                intid,
                raw: u32::from(intid),
            }
        })
    }

    /// Priority drop (EOImode 1): the interrupt stays active until
    /// deactivated.
    fn end_of_interrupt(&self, irq: Acknowledged) {
        GicCpuInterface::end_interrupt(irq.intid, InterruptGroup::Group1);
    }

    fn deactivate(&self, irq: Acknowledged) {
        deactivate(irq.raw);
    }

    fn priority_of(&self, cpu: usize, intid: u32) -> u8 {
        priority_of(cpu, intid)
    }

    /// GICR_ISENABLER0 of `cpu`'s redistributor.
    fn enabled_sgis(&self, cpu: usize) -> u16 {
        let offset = crate::gic_filter::GICR_SGI_BASE + 0x100;
        guest_access(GicFrame::Redistributor { cpu, offset }, 4, None) as u16
    }

    fn with_virtual_interface(&self, f: &mut dyn FnMut(&mut dyn VirtualInterface)) {
        f(&mut super::ich::Interface);
    }

    fn owns(&self, ipa: u64) -> bool {
        layout().owns(ipa)
    }

    fn guest_access(&self, access: &MmioAccess, regs: &mut [u64; 31]) {
        guest_mmio(access, regs);
    }
}
