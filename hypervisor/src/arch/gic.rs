//! The physical GICv3 as the hypervisor uses it: distributor and
//! redistributor setup, and the two hypervisor-owned SGIs. The guest never
//! sees these SGIs (physical IRQs are routed to EL2 by HCR_EL2.IMO).

use crate::dtb::Platform;
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};
use core::ptr::NonNull;
use spin::{Mutex, Once};

/// Kick a CPU so it re-checks its pending work (virtual interrupts).
pub const SGI_KICK: IntId = IntId::sgi(8);
/// Ask every other CPU to leave the guest for FAST_STOP.
pub const SGI_STOP: IntId = IntId::sgi(9);
/// The virtual interface's maintenance interrupt (QEMU virt: PPI 9 = INTID 25).
pub const MAINTENANCE: IntId = IntId::ppi(9);

/// INTIDs 0..32 the guest may not disable or reconfigure (see `vgic::Reserved`).
pub const RESERVED: crate::vgic::Reserved =
    crate::vgic::Reserved(1 << 8 | 1 << 9 | 1 << 25);

/// Whether `intid` is one of the hypervisor's own interrupts.
pub fn is_hypervisor_owned(intid: IntId) -> bool {
    intid == SGI_KICK || intid == SGI_STOP || intid == MAINTENANCE
}

/// Frame addresses, kept for the raw register reads the driver has no API for.
static FRAMES: Once<(u64, u64)> = Once::new();

static GIC: Once<Mutex<GicV3<'static>>> = Once::new();

/// Boot CPU: initialise distributor and every redistributor, then this CPU.
pub fn init(platform: &Platform) {
    let gicd = NonNull::new(platform.gic.distributor.base as *mut Gicd).expect("GICD at 0");
    let gicr = platform.gic.redistributors.first().expect("no GIC redistributor");
    let gicr = NonNull::new(gicr.base as *mut GicrSgi).expect("GICR at 0");
    // SAFETY: the DTB's GIC frames, identity mapped as device memory at EL2
    // and never mapped into the guest; this is the only driver instance.
    let mut gic = unsafe {
        GicV3::new(UniqueMmioPointer::new(gicd), gicr, platform.cpus.len())
            .expect("GIC redistributor layout not understood")
    };
    gic.setup(0);
    GIC.call_once(|| Mutex::new(gic));
    FRAMES.call_once(|| (platform.gic.distributor.base, platform.gic.redistributors[0].base));
    init_cpu(0);
}

/// Every CPU: wake its redistributor and enable the hypervisor SGIs.
pub fn init_cpu(index: usize) {
    {
        let mut gic = GIC.get().expect("GIC not initialised").lock();
        gic.init_cpu(index);
        for sgi in [SGI_KICK, SGI_STOP, MAINTENANCE] {
            gic.set_interrupt_priority(sgi, Some(index), 0x80).expect("SGI priority");
            gic.enable_interrupt(sgi, Some(index), true).expect("SGI enable");
        }
    }
    // Let EL1 use the ICC system registers (it gets the virtual interface).
    GicCpuInterface::enable_system_register_el2(true);
    GicCpuInterface::set_priority_mask(0xff);
    GicCpuInterface::enable_group1(true);
    // EOImode 1: EL2's EOI only drops priority; the guest's virtual EOI of a
    // hardware-linked interrupt deactivates it. ICC_CTLR_EL1.EOImode = bit 1.
    // SAFETY: this CPU's physical CPU interface control register.
    unsafe {
        core::arch::asm!(
            "mrs {t}, S3_0_C12_C12_4",
            "orr {t}, {t}, #2",
            "msr S3_0_C12_C12_4, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        );
    }
}

/// Deactivates a physical interrupt (EOImode 1: after its priority drop).
pub fn deactivate(intid: u32) {
    // SAFETY: ICC_DIR_EL1 only deactivates the given interrupt on this CPU.
    unsafe { core::arch::asm!("msr S3_0_C12_C11_1, {}", "isb", in(reg) u64::from(intid), options(nostack)) };
}

/// The priority the guest gave `intid` (it programs the real GIC through the
/// trapped, filtered MMIO path), for the list register.
pub fn priority_of(cpu: usize, intid: u32) -> u8 {
    let (gicd, gicr) = *FRAMES.get().expect("GIC not initialised");
    let addr = if intid < 32 {
        gicr + cpu as u64 * crate::vgic::GICR_FRAME + crate::vgic::GICR_SGI_BASE + 0x400 + u64::from(intid)
    } else {
        gicd + 0x400 + u64::from(intid)
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
    GicCpuInterface::send_sgi(SGI_KICK, target, SgiTargetGroup::CurrentGroup1).expect("SGI_KICK is an SGI");
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
