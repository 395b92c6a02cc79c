//! The interrupt controller as the rest of the hypervisor uses it, whatever
//! the board has: a GICv3 (`gicv3`) or a GICv2 with virtualization
//! extensions (`gicv2`), chosen at boot from the firmware's device tree.
//! Both keep the same interrupts for the hypervisor and give the guest the
//! same guarantees (see `docs/gic-mediation.md`).

use super::{gicv2, gicv3};
use crate::dtb::Platform;
use crate::gic_filter::Reserved;
use crate::list_registers::VirtualInterface;
use crate::mmio::MmioAccess;
use arm_gic::IntId;
use arm_sysregs::el2::registers::{IchHcrEl2, IchVmcrEl2};
use spin::Once;

/// Kick a CPU so it re-checks its pending work (virtual interrupts).
pub const SGI_KICK: IntId = IntId::sgi(8);
/// Ask every other CPU to leave the guest for FAST_STOP.
pub const SGI_STOP: IntId = IntId::sgi(9);
/// The virtual interface's maintenance interrupt (QEMU virt: PPI 9 = INTID 25).
pub const MAINTENANCE: IntId = IntId::ppi(9);
/// The EL2 physical timer (QEMU virt: PPI 10 = INTID 26): the trace tick.
pub const TICK: IntId = IntId::ppi(10);

/// The hypervisor's own interrupts, in the order they are set up.
pub const OWN: [IntId; 4] = [SGI_KICK, SGI_STOP, MAINTENANCE, TICK];

/// INTIDs 0..32 the guest may not touch (see `gic_filter::Reserved`).
pub const RESERVED: Reserved = Reserved(1 << 8 | 1 << 9 | 1 << 25 | 1 << 26);

/// Whether `intid` is one of the hypervisor's own interrupts.
pub fn is_hypervisor_owned(intid: IntId) -> bool {
    OWN.contains(&intid)
}

/// A physical interrupt taken by [`acknowledge`]: its INTID and what the
/// CPU interface returned (a GICv2 SGI carries its source CPU, which the
/// end of interrupt and the deactivation must repeat).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged {
    pub intid: IntId,
    pub raw: u32,
}

impl Acknowledged {
    pub fn new(intid: u32, raw: u32) -> Self {
        let intid = match intid {
            0..16 => IntId::sgi(intid),
            16..32 => IntId::ppi(intid - 16),
            _ => IntId::spi(intid - 32),
        };
        Self { intid, raw }
    }
}

/// What the hypervisor needs from an interrupt controller.
pub trait InterruptController: Sync {
    /// This CPU's part of the set-up (after the boot CPU's `init`).
    fn init_cpu(&self, index: usize);
    /// The kick SGI to CPU `cpu`.
    fn kick(&self, cpu: usize);
    /// The stop SGI to every CPU but this one, in one write.
    fn broadcast_stop(&self);
    /// The highest-priority pending physical interrupt, acknowledged.
    fn acknowledge(&self) -> Option<Acknowledged>;
    /// Priority drop only (EOImode 1): it stays active until deactivated.
    fn end_of_interrupt(&self, irq: Acknowledged);
    /// Deactivates an interrupt this CPU acknowledged.
    fn deactivate(&self, irq: Acknowledged);
    /// The priority the guest gave `intid` (as this CPU sees it).
    fn priority_of(&self, cpu: usize, intid: u32) -> u8;
    /// The SGIs the guest has enabled for CPU `cpu`, which must be this
    /// CPU (a GICv2 banks the register): the guest programs the real enable
    /// register through the filtered MMIO path; its SGIs stay virtual.
    fn enabled_sgis(&self, cpu: usize) -> u16;
    /// Runs `f` on this CPU's virtual interface (list registers).
    fn with_virtual_interface(&self, f: &mut dyn FnMut(&mut dyn VirtualInterface));
    /// Whether `ipa` is an emulated GIC register address.
    fn owns(&self, ipa: u64) -> bool;
    /// Emulates a guest access to an address it [`owns`](Self::owns)
    /// (the caller steps the PC).
    fn guest_access(&self, access: &MmioAccess, regs: &mut [u64; 31]);
}

static BACKEND: Once<&'static dyn InterruptController> = Once::new();

fn backend() -> &'static dyn InterruptController {
    *BACKEND.get().expect("GIC not initialised")
}

/// Boot CPU: sets up the board's GIC (distributor, every CPU's private
/// part), then this CPU.
pub fn init(platform: &Platform) {
    let chosen: &'static dyn InterruptController = match platform.gic.v2 {
        Some(frames) => gicv2::init(platform, frames),
        None => gicv3::init(platform),
    };
    BACKEND.call_once(|| chosen);
    init_cpu(0);
}

pub fn init_cpu(index: usize) {
    backend().init_cpu(index);
}

/// Physical SGI to CPU `cpu` so it picks up new virtual interrupts.
pub fn kick(cpu: usize) {
    backend().kick(cpu);
}

/// One SGI write that reaches every CPU but this one.
pub fn broadcast_stop() {
    backend().broadcast_stop();
}

pub fn acknowledge() -> Option<Acknowledged> {
    backend().acknowledge()
}

pub fn end_of_interrupt(irq: Acknowledged) {
    backend().end_of_interrupt(irq);
}

pub fn deactivate(irq: Acknowledged) {
    backend().deactivate(irq);
}

pub fn priority_of(cpu: usize, intid: u32) -> u8 {
    backend().priority_of(cpu, intid)
}

/// The SGIs the guest has enabled on this CPU, `cpu`.
pub fn enabled_sgis(cpu: usize) -> u16 {
    backend().enabled_sgis(cpu)
}

/// Whether `ipa` is an emulated GIC register address.
pub fn owns(ipa: u64) -> bool {
    backend().owns(ipa)
}

/// Emulates the guest's access to a GIC register (the caller steps the PC).
pub fn guest_access(access: &MmioAccess, regs: &mut [u64; 31]) {
    backend().guest_access(access, regs);
}

/// Runs `f` on this CPU's virtual interface.
pub fn with_virtual_interface<R>(f: impl FnOnce(&mut Vif<'_>) -> R) -> R {
    let mut f = Some(f);
    let mut out = None;
    backend().with_virtual_interface(&mut |vif| {
        if let Some(f) = f.take() {
            out = Some(f(&mut Vif(vif)));
        }
    });
    out.expect("the backend runs the closure")
}

/// A backend's virtual interface, as the (generic) list-register code
/// takes it.
pub struct Vif<'a>(&'a mut dyn VirtualInterface);

impl VirtualInterface for Vif<'_> {
    fn list_register_count(&self) -> usize {
        self.0.list_register_count()
    }
    fn lr(&self, n: usize) -> u64 {
        self.0.lr(n)
    }
    fn set_lr(&mut self, n: usize, value: u64) {
        self.0.set_lr(n, value);
    }
    fn empty_lrs(&self) -> u64 {
        self.0.empty_lrs()
    }
    fn set_ich_hcr_el2(&mut self, value: IchHcrEl2) {
        self.0.set_ich_hcr_el2(value);
    }
    fn set_ich_vmcr_el2(&mut self, value: IchVmcrEl2) {
        self.0.set_ich_vmcr_el2(value);
    }
    fn clear_active_priorities(&mut self) {
        self.0.clear_active_priorities();
    }
    fn deactivate(&mut self, intid: u32) {
        self.0.deactivate(intid);
    }
}

/// The one access the register structs cannot express: any register a
/// filter allows, chosen by the guest at run time, at its width (8, 32 or
/// 64 bits), on the frame `regs` points to; a write keeps the hardware's
/// bits under `keep` (one read-modify-write, atomic against other guest
/// accesses since the caller holds the frame's lock).
pub(super) fn raw_access<T>(
    regs: &mut safe_mmio::UniqueMmioPointer<'_, T>,
    offset: u64,
    size: u8,
    write: Option<(u64, u64)>,
) -> u64 {
    let (offset, width) = (offset as usize, usize::from(size));
    let inside =
        matches!(width, 1 | 4 | 8) && offset % width == 0 && offset + width <= size_of::<T>();
    if !inside {
        return 0;
    }
    let addr = regs.ptr_mut().wrapping_byte_add(offset);
    // SAFETY: `addr` is inside the frame `regs` points to (checked above)
    // and naturally aligned; the caller holds the frame's lock, so this is
    // its only user; a filter (`crate::gic_filter`,
    // `crate::gicd_v2_filter`) allowed this register and width
    // (architected, no side effect on read) and filtered the value.
    unsafe {
        let read = |a: *mut T| match width {
            1 => u64::from(a.cast::<u8>().read_volatile()),
            4 => u64::from(a.cast::<u32>().read_volatile()),
            _ => a.cast::<u64>().read_volatile(),
        };
        let Some((value, keep)) = write else {
            return read(addr);
        };
        let value = if keep == 0 {
            value
        } else {
            crate::gic_filter::merge(value, keep, read(addr))
        };
        match width {
            1 => addr.cast::<u8>().write_volatile(value as u8),
            4 => addr.cast::<u32>().write_volatile(value as u32),
            _ => addr.cast::<u64>().write_volatile(value),
        }
        0
    }
}
