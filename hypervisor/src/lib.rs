//! parkvisor: a thin AArch64 EL2 hypervisor that manages a guest's secondary
//! CPUs. This library is the portable core (host unit-tested); everything that
//! touches AArch64 hardware lives in `arch`, built only for bare metal.
#![cfg_attr(not(test), no_std)]
// `unsafe` lives in `arch` only, where each block carries its argument.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
// Most of the core is used by `arch` alone, which only the EL2 build has:
// that build is the one that finds dead code.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

// Public: what the host tools and tests outside this crate use (trace-plot,
// the harness, tests/loom.rs). Everything else is crate-internal so that the
// compiler reports what nothing uses.
pub mod fast_stop;
pub mod park;
pub mod physical_irqs;
pub mod power_state;
pub mod psci;
pub mod smccc;
pub mod trace;
pub mod trace_buffer;
pub mod vcpu;

mod dtb;
mod el2_map;
mod el2_state;
mod esr;
mod exception;
mod gic_filter;
mod gicd_v2_filter;
mod gich_format;
mod image;
mod list_registers;
mod mem_range;
mod mmio;
mod stop_context;
mod sync;
#[cfg(test)]
mod test_cpu;
#[cfg(any(test, feature = "uart-model"))]
mod uart_model;
mod vgic;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
