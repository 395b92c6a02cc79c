//! Calls to the real firmware (QEMU's PSCI, SMC conduit when EL2 is on).

use smccc::Smc;
use smccc::psci;

/// Powers the machine off; QEMU exits with status 0.
pub fn system_off() -> ! {
    let _ = psci::system_off::<Smc>();
    halt()
}

/// Resets the machine; with `-no-reboot` QEMU exits.
pub fn system_reset() -> ! {
    let _ = psci::system_reset::<Smc>();
    halt()
}

/// Last resort when the firmware call returned: stop this CPU quietly.
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfi();
    }
}
