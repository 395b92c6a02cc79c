//! The physical GICv3 as the hypervisor uses it: distributor and
//! redistributor setup, and the two hypervisor-owned SGIs. The guest never
//! sees these SGIs (physical IRQs are routed to EL2 by HCR_EL2.IMO).

use crate::dtb::Platform;
use crate::gic_filter::{GicFilter, GicLayout, Reserved};
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{
    GicCpuInterface, GicDistributor, GicRedistributor, SgiTarget, SgiTargetGroup,
};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};
use core::ptr::NonNull;
use spin::Once;

/// Kick a CPU so it re-checks its pending work (virtual interrupts).
pub const SGI_KICK: IntId = IntId::sgi(8);
/// Ask every other CPU to leave the guest for FAST_STOP.
pub const SGI_STOP: IntId = IntId::sgi(9);
/// The virtual interface's maintenance interrupt (QEMU virt: PPI 9 = INTID 25).
pub const MAINTENANCE: IntId = IntId::ppi(9);

/// The EL2 physical timer (QEMU virt: PPI 10 = INTID 26): the trace tick.
pub const TICK: IntId = IntId::ppi(10);

/// INTIDs 0..32 the guest may not touch (see `gic_filter::Reserved`).
pub const RESERVED: Reserved = Reserved(1 << 8 | 1 << 9 | 1 << 25 | 1 << 26);

/// The decisions on guest GICD/GICR accesses.
pub static FILTER: GicFilter = GicFilter::new(RESERVED);

/// Whether `intid` is one of the hypervisor's own interrupts.
pub fn is_hypervisor_owned(intid: IntId) -> bool {
    intid == SGI_KICK || intid == SGI_STOP || intid == MAINTENANCE || intid == TICK
}

/// GICR_TYPER (RD_base + 0x8): Affinity_Value in bits 63:32; VLPIS, bit 1,
/// says the redistributor has the two extra GICv4 frames.
const GICR_TYPER: u64 = 0x8;
const GICR_TYPER_VLPIS: u64 = 1 << 1;

/// The distributor and every redistributor region, with the CPU count.
static LAYOUT: Once<GicLayout> = Once::new();

pub fn layout() -> &'static GicLayout {
    LAYOUT.get().expect("GIC not initialised")
}

/// Checks that every CPU of the DTB has a redistributor, in DT order, in
/// the GICR regions (QEMU virt puts CPUs 123 and up in a second region);
/// ends the boot with a clear message otherwise.
fn check_layout(platform: &Platform, layout: &GicLayout) {
    let fail = |args: core::fmt::Arguments<'_>| -> ! {
        super::fatal(format_args!("unsupported GIC layout: {args}"))
    };
    if layout.capacity() < platform.cpus.len() {
        fail(format_args!(
            "{} CPUs but the {} GICR region(s) hold only {} redistributors",
            platform.cpus.len(),
            layout.regions.len(),
            layout.capacity()
        ));
    }
    for (cpu, c) in platform.cpus.iter().enumerate() {
        let Some(base) = layout.redistributor_base(cpu) else {
            unreachable!("capacity checked")
        };
        // SAFETY: a redistributor frame inside the DTB's GICR regions and
        // within the CPU count, identity mapped as device memory at EL2;
        // reading GICR_TYPER has no side effects.
        let typer = unsafe { ((base + GICR_TYPER) as *const u64).read_volatile() };
        if typer & GICR_TYPER_VLPIS != 0 {
            fail(format_args!(
                "GICv4 redistributors (4 frames per CPU) at {base:#x}"
            ));
        }
        let affinity = typer >> 32;
        // Affinity_Value is Aff3.Aff2.Aff1.Aff0; MPIDR has Aff3 at 39:32.
        let want = c.mpidr & 0xff_ffff | (c.mpidr >> 32 & 0xff) << 24;
        if affinity != want {
            fail(format_args!(
                "cpu{cpu} (mpidr {:#x}) found the redistributor of affinity {affinity:#x} at {base:#x}",
                c.mpidr
            ));
        }
    }
}

/// The redistributor driver for `cpu`'s frames.
///
/// # Safety
/// Only CPU `cpu` itself, or the boot CPU before the others run, may use it:
/// no two drivers for one frame at once.
unsafe fn redistributor(cpu: usize) -> GicRedistributor<'static> {
    let base = layout()
        .redistributor_base(cpu)
        .expect("CPU without redistributor");
    let regs = NonNull::new(base as *mut GicrSgi).expect("GICR at 0");
    // SAFETY: `base` is `cpu`'s redistributor (checked at boot), identity
    // mapped as device memory at EL2 and never mapped into the guest; the
    // caller keeps it unaliased.
    GicRedistributor::new(unsafe { UniqueMmioPointer::new(regs) })
}

/// Boot CPU: initialise distributor and every redistributor, then this CPU.
pub fn init(platform: &Platform) {
    let layout = GicLayout {
        distributor: platform.gic.distributor,
        regions: platform.gic.redistributors.clone(),
        cpus: platform.cpus.len(),
    };
    check_layout(platform, &layout);
    LAYOUT.call_once(|| layout);
    for cpu in 0..platform.cpus.len() {
        // SAFETY: the boot CPU, before any other CPU runs.
        unsafe { redistributor(cpu) }.configure_default_settings();
    }
    let gicd = NonNull::new(platform.gic.distributor.base as *mut Gicd).expect("GICD at 0");
    // SAFETY: the DTB's distributor, identity mapped as device memory at
    // EL2 and never mapped into the guest; only this boot-time driver.
    let mut distributor = GicDistributor::new(unsafe { UniqueMmioPointer::new(gicd) });
    distributor.configure_default_settings();
    init_cpu(0);
}

/// Every CPU: wake its redistributor and enable the hypervisor SGIs.
pub fn init_cpu(index: usize) {
    GicCpuInterface::enable_system_register_el1();
    {
        // SAFETY: this CPU's own redistributor.
        let mut rd = unsafe { redistributor(index) };
        // Already awake is fine.
        let _ = rd.mark_core_awake();
        for sgi in [SGI_KICK, SGI_STOP, MAINTENANCE, TICK] {
            rd.set_interrupt_priority(sgi, 0x80).expect("SGI priority");
            rd.enable_interrupt(sgi, true).expect("SGI enable");
        }
    }
    // Let EL1 use the ICC system registers (it gets the virtual interface).
    GicCpuInterface::enable_system_register_el2(true);
    GicCpuInterface::set_priority_mask(0xff);
    GicCpuInterface::enable_group1(true);
    // ICC_CTLR_EL1 = EOImode 1 (bit 1), the rest 0: EL2's EOI only drops
    // priority; the guest's virtual EOI of a hardware-linked interrupt
    // deactivates it.
    // SAFETY: this CPU's physical CPU interface control register.
    unsafe {
        core::arch::asm!("msr S3_0_C12_C12_4, {t}", "isb", t = in(reg) 2u64, options(nostack))
    };
}

/// Deactivates a physical interrupt (EOImode 1: after its priority drop).
pub fn deactivate(intid: u32) {
    // SAFETY: ICC_DIR_EL1 only deactivates the given interrupt on this CPU.
    unsafe {
        core::arch::asm!("msr S3_0_C12_C11_1, {}", "isb", in(reg) u64::from(intid), options(nostack))
    };
}

/// The priority the guest gave `intid` (it programs the real GIC through the
/// trapped, filtered MMIO path), for the list register.
pub fn priority_of(cpu: usize, intid: u32) -> u8 {
    let layout = layout();
    let addr = if intid < 32 {
        let rd = layout
            .redistributor_base(cpu)
            .expect("CPU without redistributor");
        rd + crate::gic_filter::GICR_SGI_BASE + 0x400 + u64::from(intid)
    } else {
        layout.distributor.base + 0x400 + u64::from(intid)
    };
    // SAFETY: a byte of GICD_IPRIORITYR / GICR_IPRIORITYR, device memory
    // identity mapped at EL2; reading it has no side effects.
    unsafe { (addr as *const u8).read_volatile() }
}

/// Physical SGI to one CPU so it picks up new virtual interrupts.
pub fn kick(mpidr: u64) {
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

/// Acknowledges the highest-priority pending physical interrupt.
pub fn acknowledge() -> Option<IntId> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
}

/// Priority drop (EOImode 1): the interrupt stays active until deactivated.
pub fn end_of_interrupt(intid: IntId) {
    GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
}

/// One SGI write that reaches every CPU but this one (IRM=1).
pub fn broadcast_stop() {
    // The caller's preceding stores must be visible to the targets before
    // they take the interrupt.
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
    GicCpuInterface::send_sgi(SGI_STOP, SgiTarget::All, SgiTargetGroup::CurrentGroup1)
        .expect("SGI_STOP is an SGI");
}
