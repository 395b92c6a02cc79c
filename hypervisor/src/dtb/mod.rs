//! Device tree handling: read the machine from the boot DTB
//! ([`Platform::parse`]) and derive the guest's DTB from it
//! ([`build_guest_dtb`]). See `docs/dtb.md`.

mod cells;
mod devices;
mod error;
mod guest;
mod platform;
mod range;
mod writer;

#[cfg(test)]
mod tests;

pub use devices::{EMULATED, PASSTHROUGH};
pub use error::DtbError;
pub use guest::{GuestConfig, build_guest_dtb};
pub use platform::{Cpu, Gic, KernelModule, MAX_CPUS, MPIDR_AFFINITY_MASK, Platform, Timer, Uart};
pub use range::{MemRange, subtract};
