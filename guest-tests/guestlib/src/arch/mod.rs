//! Bare-metal (EL1) part of the runtime.

pub mod aarch32;
pub mod call;
pub mod cpu;
pub mod entry;
pub mod gic;
pub mod icc;
pub mod marked_spin;
pub mod programs;
pub mod psci;
pub mod pstate;
pub mod resume;
pub mod smp;
pub mod spi;
pub mod stub;
pub mod time;
pub mod uart;
pub mod vectors;

pub use call::Conduit;
pub use entry::{TAG_ENTRY, TAG_ENTRY_ALT, entry_point, entry_point_alt};
pub use psci::{FastStop, Psci, vendor};
pub use smp::{Job, Slot, slot, this_cpu};
pub use vectors::{
    Abort, expecting_abort, probe_exec, probe_ld1, probe_ldadd, probe_ldp, probe_ldxr, probe_read,
    probe_stp, probe_write,
};

use crate::env::Env;
use crate::framework::{Host, Suite, Summary, TestResult, run_suite};
use crate::gprintln;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering::*};
use dtoolkit::fdt::Fdt;

/// Where QEMU puts the DTB for an ELF `-kernel` (x0 = 0 then).
pub const FALLBACK_DTB: u64 = 0x4000_0000;

unsafe extern "Rust" {
    /// Provided by the guest program.
    fn guest_main(env: &'static Env) -> !;
}

static ENV: spin::Once<Env> = spin::Once::new();
/// The DTB `ENV` was read from, validated at boot.
static FDT: spin::Once<Fdt<'static>> = spin::Once::new();

/// The environment parsed at boot.
pub fn env() -> &'static Env {
    ENV.get().expect("env not initialised")
}

/// The device tree the guest booted with (validated at boot; it stays where
/// it is, in guest RAM, untouched).
pub fn boot_fdt() -> Fdt<'static> {
    *FDT.get().expect("DTB not read yet")
}

/// The guest image in memory: `[start, end)` from the linker script.
pub fn image_range() -> (u64, u64) {
    unsafe extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    (
        &raw const __image_start as u64,
        &raw const __image_end as u64,
    )
}

/// Name of the test running now (for failure lines from exceptions/panics).
static CURRENT_TEST_STORE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

pub fn set_current_test(name: &'static str) {
    CURRENT_TEST_STORE[0].store(name.as_ptr() as usize, Relaxed);
    CURRENT_TEST_STORE[1].store(name.len(), Release);
}

fn current_test() -> &'static str {
    let len = CURRENT_TEST_STORE[1].load(Acquire);
    let ptr = CURRENT_TEST_STORE[0].load(Relaxed);
    if ptr == 0 {
        return "boot";
    }
    // SAFETY: the pair always comes from one `&'static str`.
    unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr as *const u8, len)) }
}

#[unsafe(no_mangle)]
extern "C" fn guest_boot_rust(x0: u64) -> ! {
    smp::set_this_cpu(0);
    let dtb = if x0 == 0 { FALLBACK_DTB } else { x0 };
    // SAFETY: the boot protocol passes a DTB address in x0 (or QEMU put it
    // at the start of RAM); the header is validated before use.
    let fdt = match unsafe { Fdt::from_raw(dtb as *const u8) } {
        Ok(f) => f,
        Err(e) => fail_and_power_off(format_args!("bad DTB at {dtb:#x} (x0 = {x0:#x}): {e}")),
    };
    FDT.call_once(|| fdt);
    let mut env = match Env::from_fdt(fdt, dtb) {
        Ok(e) => e,
        Err(e) => fail_and_power_off(format_args!("unusable DTB at {dtb:#x}: {e:?}")),
    };
    if env.uart != 0 {
        uart::set_base(env.uart as usize);
    }
    let mpidr = cpu::mpidr();
    env.boot_idx = env.index_of(mpidr).unwrap_or(0);
    smp::set_this_cpu(env.boot_idx);
    let env = ENV.call_once(|| env);
    gprintln!(
        "GUEST boot cpu{} mpidr={:#x} ncpus={}{} dtb={:#x} args=\"{}\"",
        env.boot_idx,
        mpidr,
        env.ncpus,
        if env.cpus_truncated {
            " (truncated)"
        } else {
            ""
        },
        dtb,
        env.bootargs()
    );
    // SAFETY: provided by the guest binary with this exact signature.
    unsafe { guest_main(env) }
}

/// Prints `GUEST FAIL <test>: <why>` and powers the system off.
pub fn fail_and_power_off(why: fmt::Arguments<'_>) -> ! {
    gprintln!("GUEST FAIL {}: {}", current_test(), why);
    power_off()
}

/// PSCI SYSTEM_OFF. If it returns, says so and parks.
pub fn power_off() -> ! {
    let st = psci::hvc().system_off();
    gprintln!("GUEST FAIL system_off: SYSTEM_OFF returned {st}");
    loop {
        // SAFETY: just waits.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // One line: the harness reads line by line.
    match info.location() {
        Some(loc) => gprintln!(
            "GUEST FAIL panic: cpu{} in {}: {} (at {}:{})",
            this_cpu(),
            current_test(),
            info.message(),
            loc.file(),
            loc.line()
        ),
        None => gprintln!(
            "GUEST FAIL panic: cpu{} in {}: {}",
            this_cpu(),
            current_test(),
            info.message()
        ),
    }
    power_off()
}

struct GuestHost;

impl Host<Env> for GuestHost {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        uart::print_line(args);
    }
    fn ncpus(&self, env: &Env) -> usize {
        env.ncpus
    }
    fn before_test(&mut self, name: &'static str) {
        set_current_test(name);
    }
    fn after_test(&mut self, env: &Env) -> TestResult {
        smp::cleanup(env)
    }
}

/// Runs a suite on the boot CPU (honouring `only=`), with every secondary
/// put back to OFF after each test.
pub fn run(suite: &Suite<Env>, env: &Env) -> Summary {
    let s = run_suite(suite, env, env.opts().only(), &mut GuestHost);
    set_current_test("end");
    s
}

/// Runs a suite and then powers off.
pub fn run_and_power_off(suite: &Suite<Env>, env: &Env) -> ! {
    run(suite, env);
    power_off()
}
