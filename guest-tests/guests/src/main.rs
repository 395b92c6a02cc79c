//! parkvisor's bare-metal test guests: one image, the suite is chosen by the
//! guest bootargs `test=<suite>` (and optionally `only=<test>`).
//!
//! Build: `cargo build --release -p guests --target aarch64-unknown-none`,
//! then `aarch64-linux-gnu-objcopy -O binary` the ELF (the harness does it).
//! On the host this binary is an empty stub.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![allow(clippy::result_large_err)]

// The suites are safe code: what needs `unsafe` or `asm!` goes into
// `guestlib::arch`, behind a safe function with its SAFETY argument.
#[cfg(target_os = "none")]
#[deny(unsafe_code)]
mod suites;

#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
fn guest_main(env: &'static guestlib::Env) -> ! {
    let name = env.opts().suite().unwrap_or("");
    match suites::find(name) {
        Some(entry) => suites::run_entry(entry, env),
        None => {
            guestlib::gprintln!(
                "GUEST FAIL boot: unknown suite {:?}; known: {}",
                name,
                suites::Names
            );
            guestlib::power_off()
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the test guests are built for aarch64-unknown-none; see guest-tests/harness");
}
