//! Calls to the real firmware, and the machine's power control: the
//! firmware's PSCI (QEMU virt, SMC conduit when EL2 is on) or, on a board
//! without PSCI firmware, the BCM2835 power-management watchdog (BCM283x,
//! BCM2711), driven as Linux's `bcm2835_wdt` does. [`init_power`] picks one
//! from the firmware's device tree.

use smccc::Smc;
use smccc::psci;
use spin::Once;

use crate::dtb::Platform;

/// A way to power the machine off or reset it.
pub trait PowerControl: Sync {
    /// Powers off; QEMU exits with status 0 (with `-no-reboot` where the
    /// backend's power-off is a reset).
    fn off(&self) -> !;
    /// Resets; with `-no-reboot` QEMU exits.
    fn reset(&self) -> !;
    /// For the boot banner.
    fn name(&self) -> &'static str;
}

/// The firmware's PSCI SYSTEM_OFF/SYSTEM_RESET (SMC conduit).
struct PsciFirmware;

/// The BCM2835 PM watchdog at `base`.
struct Bcm2835PmWatchdog {
    base: u64,
}

static POWER: Once<&'static dyn PowerControl> = Once::new();

/// Chooses the power backend: PSCI when the firmware DT has a `/psci` node,
/// else the PM watchdog if the DT has one (else PSCI all the same: the
/// calls then fail and the CPU halts).
pub fn init_power(platform: &Platform) {
    POWER.call_once(|| match platform.pm_watchdog {
        Some(wdt) if !platform.psci_firmware => {
            alloc::boxed::Box::leak(alloc::boxed::Box::new(Bcm2835PmWatchdog { base: wdt.base }))
        }
        _ => &PsciFirmware,
    });
}

fn power() -> &'static dyn PowerControl {
    // Before the DTB is read only PSCI can be tried.
    POWER.get().copied().unwrap_or(&PsciFirmware)
}

/// Which power backend [`init_power`] chose (for the boot banner).
pub fn power_backend() -> &'static str {
    power().name()
}

impl PowerControl for PsciFirmware {
    fn off(&self) -> ! {
        let _ = psci::system_off::<Smc>();
        halt()
    }
    fn reset(&self) -> ! {
        let _ = psci::system_reset::<Smc>();
        halt()
    }
    fn name(&self) -> &'static str {
        "psci"
    }
}

impl PowerControl for Bcm2835PmWatchdog {
    /// A reset into the halt partition (the Pi's boot code then halts).
    fn off(&self) -> ! {
        pm_reset(self.base, true)
    }
    fn reset(&self) -> ! {
        pm_reset(self.base, false)
    }
    fn name(&self) -> &'static str {
        "bcm2835-pm-watchdog"
    }
}

/// BCM2835 PM watchdog registers and values (Linux's bcm2835_wdt.c).
mod pm {
    pub const RSTC: u64 = 0x1c;
    pub const RSTS: u64 = 0x20;
    pub const WDOG: u64 = 0x24;
    /// Every write carries it in bits 31:24, or the block ignores it.
    pub const PASSWORD: u32 = 0x5a00_0000;
    pub const RSTC_WRCFG_CLR: u32 = 0xffff_ffcf;
    pub const RSTC_WRCFG_FULL_RESET: u32 = 0x20;
    /// Boot partition 63 (its bits spread over RSTS 10:0): the Raspberry Pi
    /// boot code halts instead of booting after such a reset.
    pub const RSTS_PARTITION_HALT: u32 = 0x555;
    /// Watchdog ticks (~16 us each) before the reset.
    pub const RESET_TICKS: u32 = 10;
}

/// Reads a PM register.
///
/// # Safety
/// `base` is the PM block, identity mapped as device memory at EL2.
unsafe fn pm_read(base: u64, reg: u64) -> u32 {
    // SAFETY: per the caller; an aligned 32-bit register.
    unsafe { ((base + reg) as *const u32).read_volatile() }
}

/// Writes a PM register (the password is added).
///
/// # Safety
/// As [`pm_read`].
unsafe fn pm_write(base: u64, reg: u64, value: u32) {
    // SAFETY: per the caller; an aligned 32-bit register.
    unsafe { ((base + reg) as *mut u32).write_volatile(pm::PASSWORD | (value & 0x00ff_ffff)) }
}

/// A full reset through the watchdog, as `__bcm2835_restart`.
fn pm_reset(base: u64, into_halt_partition: bool) -> ! {
    // SAFETY: the base came from the firmware DT's watchdog node, which the
    // hypervisor maps as device memory and never gives the guest.
    unsafe {
        if into_halt_partition {
            let rsts = pm_read(base, pm::RSTS);
            pm_write(base, pm::RSTS, rsts | pm::RSTS_PARTITION_HALT);
        }
        pm_write(base, pm::WDOG, pm::RESET_TICKS);
        let rstc = pm_read(base, pm::RSTC) & pm::RSTC_WRCFG_CLR;
        pm_write(base, pm::RSTC, rstc | pm::RSTC_WRCFG_FULL_RESET);
    }
    halt()
}

/// Powers the machine off (see [`PowerControl::off`]).
pub fn system_off() -> ! {
    super::last_words();
    power().off()
}

/// Resets the machine; with `-no-reboot` QEMU exits.
pub fn system_reset() -> ! {
    super::last_words();
    power().reset()
}

static SEMIHOSTING_EXIT: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// From now on `exit_failure` ends QEMU through semihosting (hypervisor
/// option `panic-exit=semihosting`, for test runs that enable semihosting).
pub fn exit_failure_by_semihosting() {
    SEMIHOSTING_EXIT.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Ends the run after a hypervisor failure that has already been reported on
/// the console: with semihosting (when asked for) QEMU exits with status 1;
/// otherwise the machine is powered off, and the `panic` trace line is what
/// marks the run as failed (scripts/run.sh exits 3 on it).
pub fn exit_failure() -> ! {
    if SEMIHOSTING_EXIT.load(core::sync::atomic::Ordering::Relaxed) {
        // SYS_EXIT_EXTENDED (0x20) with ADP_Stopped_ApplicationExit and
        // exit code 1.
        let block: [u64; 2] = [0x20026, 1];
        // SAFETY: the semihosting call reads the two-word block and ends
        // QEMU; it is only made when the user enabled semihosting.
        unsafe {
            core::arch::asm!("hlt #0xf000", in("x0") 0x20u64, in("x1") block.as_ptr(), options(nostack));
        }
    }
    system_off()
}

/// Last resort when the firmware call returned: stop this CPU quietly.
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfi();
    }
}
