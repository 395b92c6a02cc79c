//! parkvisor: a thin AArch64 EL2 hypervisor that manages a guest's secondary
//! CPUs. This library is the portable core (host unit-tested); everything that
//! touches AArch64 hardware lives in `arch`, built only for bare metal.
#![cfg_attr(not(test), no_std)]
// `unsafe` lives in `arch` only, where each block carries its argument.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod dtb;
pub mod el2_state;
pub mod exception;
pub mod fast_stop;
pub mod gic_filter;
pub mod image;
pub mod list_registers;
pub mod mmio;
pub mod park;
pub mod psci;
pub mod smccc;
pub mod stop_context;
pub mod sync;
#[cfg(test)]
mod test_cpu;
pub mod trace;
pub mod trace_buffer;
pub mod uart_model;
pub mod vcpu;
pub mod vgic;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
pub mod arch;
