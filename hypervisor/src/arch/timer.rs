//! The hypervisor clock: the physical counter (CNTPCT_EL0), which the guest
//! cannot change, converted with CNTFRQ_EL0.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};
use arm_sysregs::el2::accessors as sysregs;
use arm_sysregs::el2::registers::{CnthpCtlEl2, CnthpTvalEl2};

use crate::trace::{self, Timestamp};

/// How often the trace tick looks for lines no guest UART access has printed.
const TICK_MS: u64 = 20;

/// Raw counter ticks (ordered after earlier instructions by an ISB).
pub fn ticks() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

pub fn frequency() -> u64 {
    CNTFRQ_EL0.get().max(1)
}

/// Nanoseconds since the counter started (the tested `trace::ticks_to_ns`).
pub fn now_ns() -> u64 {
    trace::ticks_to_ns(ticks(), frequency())
}

/// The trace timestamp of now (the tested `trace::format_timestamp`).
pub fn timestamp() -> Timestamp {
    trace::format_timestamp(ticks(), frequency())
}

/// The trace tick's period (when it has nothing left to print), in ticks.
pub fn tick_period() -> u64 {
    frequency() * TICK_MS / 1000
}

/// (Re)arms this CPU's EL2 physical timer (CNTHP) to fire `ticks` from now.
/// Its interrupt is the hypervisor's (`gic::TICK`); EL1 cannot reach CNTHP.
pub fn arm_tick(ticks: u64) {
    // TVAL is a signed 32-bit down-counter.
    let ticks = ticks.min(i32::MAX as u64);
    sysregs::write_cnthp_tval_el2(CnthpTvalEl2::from_bits_retain(ticks));
    sysregs::write_cnthp_ctl_el2(CnthpCtlEl2::ENABLE);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
