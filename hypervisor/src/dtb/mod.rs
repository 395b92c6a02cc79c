//! Device tree handling: read the machine from the boot DTB
//! ([`Platform::parse`]) and derive the guest's DTB from it
//! ([`build_guest_dtb`]). See `docs/dtb.md`.

mod cells;
mod devices;
mod error;
mod guest;
mod platform;
mod writer;

#[cfg(test)]
mod tests;

pub use error::DtbError;
// Used by `arch` alone, which the host build does not have.
pub use crate::mem_range::{MemRange, subtract};
#[cfg_attr(not(target_os = "none"), allow(unused_imports))]
pub use guest::{GuestConfig, build_guest_dtb};
#[cfg(target_os = "none")]
pub use platform::GicV2Frames;
#[cfg_attr(not(target_os = "none"), allow(unused_imports))]
pub use platform::{Cpu, EnableMethod, Platform};
