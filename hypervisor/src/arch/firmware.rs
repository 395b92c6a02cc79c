//! Calls to the real firmware (QEMU's PSCI, SMC conduit when EL2 is on).

use smccc::Smc;
use smccc::psci;

/// Powers the machine off; QEMU exits with status 0.
pub fn system_off() -> ! {
    super::last_words();
    let _ = psci::system_off::<Smc>();
    halt()
}

/// Resets the machine; with `-no-reboot` QEMU exits.
pub fn system_reset() -> ! {
    super::last_words();
    let _ = psci::system_reset::<Smc>();
    halt()
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
