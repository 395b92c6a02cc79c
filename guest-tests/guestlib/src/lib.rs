//! EL1 runtime for parkvisor's bare-metal test guests.
//!
//! The portable parts (boot option parsing, the device-tree reader, the test
//! framework, fixed-size messages, PSCI/vendor numbers) build and are unit
//! tested on the host. Everything that touches the CPU (entry trampolines,
//! exception vectors, UART, HVC/SMC, secondary-CPU management, timer, GIC)
//! lives in [`arch`] and is only compiled for bare metal
//! (`target_os = "none"`).
//!
//! Guest program shape (see `guest-tests/guests`):
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! #[unsafe(no_mangle)]
//! fn guest_main(env: &'static guestlib::Env) -> ! { ... }
//! ```
//!
//! `guest_main` is called on the boot CPU with the MMU off, DAIF masked,
//! a valid stack, exception vectors installed and `.bss` zeroed.
#![cfg_attr(target_os = "none", no_std)]
// Every unsafe block says why it is sound (all of them are in `arch`).
#![deny(clippy::undocumented_unsafe_blocks)]
// Failure messages are fixed-size buffers on purpose (no allocator).
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod abi;
pub mod env;
pub mod framework;
pub mod msg;
pub mod options;

#[cfg(target_os = "none")]
pub mod arch;

pub use env::{Env, MAX_CPUS, Machine};
pub use framework::{Summary, Test, TestResult};
pub use msg::Msg;
pub use options::Options;

#[cfg(target_os = "none")]
pub use arch::*;
