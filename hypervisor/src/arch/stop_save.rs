//! FAST_STOP's `SAVE_REGS` at EL2: each stopped vCPU records its own guest
//! registers in hypervisor memory as it parks; the caller copies the
//! confirmed ones into the guest's save area (see `crate::stop_context`).

use super::el2;
use super::hv;
use super::vectors::GuestFrame;
use crate::stop_context::{SaveArea, StopContext, UserRegs, entry_words};
use crate::vcpu::PowerState;
use aarch64_cpu::registers::{Readable, SP_EL0, SP_EL1};

/// Records what vCPU `index` leaves behind when it parks for stop
/// `generation`: its guest registers, or none when it never ran (`frame` is
/// `None` for a vCPU whose boot a stop cancelled). Runs on that vCPU's own
/// CPU, before the release store that acknowledges the stop, so the caller
/// sees it once it sees the acknowledgement.
pub fn record(index: usize, generation: u64, frame: Option<&GuestFrame>) {
    let sp_el0 = SP_EL0.get();
    let regs = frame.map(|f| UserRegs::new(&f.x, f.elr, f.spsr, sp_el0, SP_EL1.get()));
    *hv().vcpus[index].stop_context.lock() = StopContext {
        generation,
        regs,
        sp_el0,
    };
}

/// Writes every vCPU's entry into `area` after stop `generation` ended:
/// registers for each vCPU that this stop parked and that is still parked
/// with its acknowledgement, an empty entry for every other one.
pub fn copy_to_guest(area: &SaveArea, generation: u64) {
    let hv = hv();
    let table = hv.table();
    for index in 0..area.vcpus {
        let context = *hv.vcpus[index].stop_context.lock();
        let confirmed = table.slot(index).snapshot() == (PowerState::Off, generation)
            && context.generation == generation;
        let words = entry_words(
            table.mpidr(index),
            context
                .regs
                .as_ref()
                .filter(|_| confirmed)
                .map(|regs| (regs, context.sp_el0)),
        );
        let words = &words[..area.entry_words()];
        let addr = area.entry_addr(index);
        // SAFETY: `SaveArea::validate` put every entry inside one range of
        // guest RAM, which EL2 maps as normal memory and which is never the
        // hypervisor's own; the address is 8-byte aligned; no Rust reference
        // to guest memory exists, and only this CPU writes the area now.
        unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), addr as *mut u64, words.len()) };
    }
    // A guest reading with its MMU off sees memory, not this CPU's cache.
    el2::clean_dcache_range(area.base, area.entry_addr(area.vcpus) - area.base);
}
