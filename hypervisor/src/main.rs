//! The EL2 image. All of it lives in `parkvisor::arch`; this file only exists
//! so that a host build of the workspace explains itself.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use parkvisor as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("parkvisor runs at EL2: build it with --target aarch64-unknown-none-softfloat");
    std::process::exit(2);
}
