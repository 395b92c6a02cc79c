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
    init_cpu(0);
}

/// Every CPU: wake its redistributor and enable the hypervisor SGIs.
pub fn init_cpu(index: usize) {
    {
        let mut gic = GIC.get().expect("GIC not initialised").lock();
        gic.init_cpu(index);
        for sgi in [SGI_KICK, SGI_STOP] {
            gic.set_interrupt_priority(sgi, Some(index), 0x80).expect("SGI priority");
            gic.enable_interrupt(sgi, Some(index), true).expect("SGI enable");
        }
    }
    // Let EL1 use the ICC system registers (it gets the virtual interface).
    GicCpuInterface::enable_system_register_el2(true);
    GicCpuInterface::set_priority_mask(0xff);
    GicCpuInterface::enable_group1(true);
}

/// Acknowledges the highest-priority pending physical interrupt.
pub fn acknowledge() -> Option<IntId> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
}

pub fn end_of_interrupt(intid: IntId) {
    GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
}

/// One SGI write that reaches every CPU but this one (IRM=1).
pub fn broadcast_stop() {
    // SAFETY (ordering): the caller's preceding stores must be visible to the
    // targets before they take the interrupt.
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
    GicCpuInterface::send_sgi(SGI_STOP, SgiTarget::All, SgiTargetGroup::CurrentGroup1)
        .expect("SGI_STOP is an SGI");
}
