//! Starting the secondary CPUs: how depends on the firmware, and the
//! firmware's device tree says which (each CPU's `enable-method`).
//!
//! - PSCI: the firmware's CPU_ON (QEMU virt's built-in PSCI, SMC conduit).
//! - Spin table: the CPU waits in firmware code polling its release slot
//!   (`cpu-release-addr`) and jumps to the first non-zero value written
//!   there, with the MMU off (QEMU's raspi stub, a Raspberry Pi's armstub,
//!   any board whose DT says `spin-table`). Nothing board-specific.
//!
//! Both enter aarch64-rt's `secondary_entry` with the stack aarch64-rt's
//! `start_core` prepared. A spin-table CPU gets no argument register, so it
//! enters through [`spin_table_entry`], which loads the stack from
//! [`SPIN_HANDOFF`]: one CPU is released at a time.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::dtb::EnableMethod;

/// The per-CPU stack the boot CPU allocates for a secondary.
pub type Stack = aarch64_rt::Stack<{ super::STACK_PAGES }>;

/// A way to start a secondary CPU at EL2.
pub trait CpuBringUp: Sync {
    /// Starts physical CPU `mpidr` on `stack`, running `main(index)`.
    ///
    /// # Safety
    /// As `aarch64_rt::start_core`: the stack is this CPU's alone, mapped
    /// the same way in the initial page table.
    unsafe fn start(
        &self,
        mpidr: u64,
        stack: *mut Stack,
        index: usize,
        main: fn(usize) -> !,
    ) -> Result<(), smccc::psci::Error>;
}

/// The firmware's PSCI CPU_ON (SMC conduit).
pub struct PsciCpuOn;

/// A spin table: the CPU polls `release_addr` in firmware code.
pub struct SpinTable {
    pub release_addr: u64,
}

/// The backend for a CPU, by its DT `enable-method`.
pub fn for_cpu(enable: EnableMethod) -> alloc::boxed::Box<dyn CpuBringUp> {
    match enable {
        EnableMethod::Psci => alloc::boxed::Box::new(PsciCpuOn),
        EnableMethod::SpinTable { release_addr } => {
            alloc::boxed::Box::new(SpinTable { release_addr })
        }
    }
}

impl CpuBringUp for PsciCpuOn {
    unsafe fn start(
        &self,
        mpidr: u64,
        stack: *mut Stack,
        index: usize,
        main: fn(usize) -> !,
    ) -> Result<(), smccc::psci::Error> {
        // SAFETY: per the caller.
        unsafe { start_through::<smccc::Smc>(mpidr, stack, index, main) }
    }
}

impl CpuBringUp for SpinTable {
    unsafe fn start(
        &self,
        mpidr: u64,
        stack: *mut Stack,
        index: usize,
        main: fn(usize) -> !,
    ) -> Result<(), smccc::psci::Error> {
        RELEASE_ADDR.store(self.release_addr, Ordering::Relaxed);
        // SAFETY: per the caller; `SpinTableRelease` turns the CPU_ON that
        // start_core makes into a release through the slot.
        unsafe { start_through::<SpinTableRelease>(mpidr, stack, index, main) }
    }
}

/// aarch64-rt's `start_core` with PSCI conduit `C`: the firmware's, or one
/// that releases a spin table.
///
/// # Safety
/// As [`CpuBringUp::start`].
unsafe fn start_through<C: smccc::Call>(
    mpidr: u64,
    stack: *mut Stack,
    index: usize,
    main: fn(usize) -> !,
) -> Result<(), smccc::psci::Error> {
    // SAFETY: per the caller.
    unsafe {
        aarch64_rt::start_core::<C, _, { super::STACK_PAGES }>(mpidr, stack, move || main(index))
    }
}

/// The release slot of the CPU being started (one at a time: the boot CPU
/// waits for each to check in before the next).
static RELEASE_ADDR: AtomicU64 = AtomicU64::new(0);

/// What [`spin_table_entry`] reads with the MMU off: the stack top
/// (`context`) and aarch64-rt's entry, in this order.
#[repr(C, align(64))]
struct Handoff([u64; 2]);

#[unsafe(no_mangle)]
static mut SPIN_HANDOFF: Handoff = Handoff([0; 2]);

/// A PSCI conduit that serves CPU_ON (the only call `start_core` makes)
/// by writing the entry to the spin table.
struct SpinTableRelease;

impl smccc::Call for SpinTableRelease {
    fn call32(_function: u32, _args: [u32; 7]) -> [u32; 8] {
        [
            smccc::psci::error::NOT_SUPPORTED as u32,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]
    }

    fn call64(function: u32, args: [u64; 17]) -> [u64; 18] {
        let mut ret = [0u64; 18];
        if function != smccc::psci::PSCI_CPU_ON_64 {
            ret[0] = smccc::psci::error::NOT_SUPPORTED as u64;
            return ret;
        }
        let (entry, context) = (args[1], args[2]);
        let slot = RELEASE_ADDR.load(Ordering::Relaxed);
        let handoff = &raw mut SPIN_HANDOFF;
        // SAFETY: only the boot CPU writes the handoff, before it releases
        // the one CPU that reads it; the release slot is the firmware's
        // (identity mapped, outside guest RAM) and only this write changes
        // it. Each write is cleaned to the point of coherency because the
        // reader runs with its MMU (and so its caches) off.
        unsafe {
            handoff.write_volatile(Handoff([context, entry]));
            super::el2::clean_dcache_range(handoff as u64, 16);
            (slot as *mut u64).write_volatile(spin_table_entry as *const () as u64);
            super::el2::clean_dcache_range(slot, 8);
        }
        // The stub waits in WFE.
        super::el2::signal_event();
        ret
    }
}

unsafe extern "C" {
    /// Where a released spin-table CPU jumps (MMU off, x0 = 0): loads the
    /// stack from `SPIN_HANDOFF` into x0 and branches to the entry there.
    fn spin_table_entry() -> !;
}

core::arch::global_asm!(
    ".section .text.spin_table_entry, \"ax\"",
    ".global spin_table_entry",
    ".balign 8",
    "spin_table_entry:",
    "adrp x1, SPIN_HANDOFF",
    "add x1, x1, :lo12:SPIN_HANDOFF",
    "ldp x0, x2, [x1]",
    "br x2",
);
