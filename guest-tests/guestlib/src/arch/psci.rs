//! Typed PSCI, SMCCC-arch and parkvisor vendor calls.

use super::call::{Conduit, call};
use crate::abi::*;

/// PSCI through one conduit.
#[derive(Clone, Copy, Debug)]
pub struct Psci(pub Conduit);

/// PSCI through HVC (what the guest DTB says).
pub const fn hvc() -> Psci {
    Psci(Conduit::Hvc)
}

/// PSCI through SMC (parkvisor traps it and treats it like HVC).
pub const fn smc() -> Psci {
    Psci(Conduit::Smc)
}

impl Psci {
    pub fn raw(self, fid: u32, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
        call(self.0, fid, a1, a2, a3)
    }

    fn st(self, fid: u32, a1: u64, a2: u64, a3: u64) -> i32 {
        status(self.raw(fid, a1, a2, a3)[0])
    }

    /// PSCI_VERSION: major << 16 | minor.
    pub fn version(self) -> u32 {
        self.raw(PSCI_VERSION, 0, 0, 0)[0] as u32
    }

    pub fn features(self, fid: u32) -> i32 {
        self.st(PSCI_FEATURES, fid as u64, 0, 0)
    }

    pub fn cpu_on(self, mpidr: u64, entry: u64, ctx: u64) -> i32 {
        self.st(PSCI_CPU_ON_64, mpidr, entry, ctx)
    }

    pub fn cpu_on32(self, mpidr: u32, entry: u32, ctx: u32) -> i32 {
        self.st(PSCI_CPU_ON_32, mpidr as u64, entry as u64, ctx as u64)
    }

    pub fn cpu_off(self) -> i32 {
        self.st(PSCI_CPU_OFF, 0, 0, 0)
    }

    pub fn affinity_info(self, mpidr: u64, level: u64) -> i32 {
        self.st(PSCI_AFFINITY_INFO_64, mpidr, level, 0)
    }

    pub fn affinity_info32(self, mpidr: u32, level: u32) -> i32 {
        self.st(PSCI_AFFINITY_INFO_32, mpidr as u64, level as u64, 0)
    }

    pub fn cpu_suspend(self, power_state: u32, entry: u64, ctx: u64) -> i32 {
        self.st(PSCI_CPU_SUSPEND_64, power_state as u64, entry, ctx)
    }

    pub fn cpu_suspend32(self, power_state: u32, entry: u32, ctx: u32) -> i32 {
        self.st(
            PSCI_CPU_SUSPEND_32,
            power_state as u64,
            entry as u64,
            ctx as u64,
        )
    }

    pub fn migrate_info_type(self) -> i32 {
        self.st(PSCI_MIGRATE_INFO_TYPE, 0, 0, 0)
    }

    /// SYSTEM_OFF; returns only if the call failed.
    pub fn system_off(self) -> i32 {
        self.st(PSCI_SYSTEM_OFF, 0, 0, 0)
    }

    /// SYSTEM_RESET; returns only if the call failed.
    pub fn system_reset(self) -> i32 {
        self.st(PSCI_SYSTEM_RESET, 0, 0, 0)
    }

    pub fn system_reset2(self, reset_type: u32, cookie: u64) -> i32 {
        self.st(PSCI_SYSTEM_RESET2_64, reset_type as u64, cookie, 0)
    }

    pub fn smccc_version(self) -> i32 {
        self.st(SMCCC_VERSION, 0, 0, 0)
    }

    pub fn smccc_arch_features(self, fid: u32) -> i32 {
        self.st(SMCCC_ARCH_FEATURES, fid as u64, 0, 0)
    }
}

/// Result of the vendor FAST_STOP call.
#[derive(Clone, Copy, Debug)]
pub struct FastStop {
    pub status: i32,
    pub stopped: u64,
    pub missed: u64,
    pub elapsed_ns: u64,
}

/// The parkvisor vendor hypervisor service (abi.md), via HVC.
pub mod vendor {
    use super::*;

    pub fn call_uid() -> [u32; 4] {
        let r = call(Conduit::Hvc, VENDOR_CALL_UID, 0, 0, 0);
        [r[0] as u32, r[1] as u32, r[2] as u32, r[3] as u32]
    }

    /// FEATURES bitmap (or a negative status in the low 32 bits).
    pub fn features() -> u64 {
        call(Conduit::Hvc, VENDOR_FEATURES, 0, 0, 0)[0]
    }

    pub fn fast_stop(timeout_us: u64, flags: u64) -> FastStop {
        let r = call(Conduit::Hvc, VENDOR_FAST_STOP, timeout_us, flags, 0);
        FastStop {
            status: status(r[0]),
            stopped: r[1],
            missed: r[2],
            elapsed_ns: r[3],
        }
    }

    /// FAST_STOP with SAVE_REGS: the stopped vCPUs' registers go to the
    /// `area` (`SAVE_ENTRY_WORDS` words per vCPU).
    pub fn fast_stop_save(timeout_us: u64, area: &mut [u64]) -> FastStop {
        let bytes = core::mem::size_of_val(area) as u64;
        fast_stop_save_at(timeout_us, area.as_mut_ptr() as u64, bytes)
    }

    /// FAST_STOP with SAVE_REGS into `bytes` of guest memory at `addr`
    /// (any address, for areas the guest has no Rust object for).
    pub fn fast_stop_save_at(timeout_us: u64, addr: u64, bytes: u64) -> FastStop {
        let r = crate::arch::call::hvc5(
            VENDOR_FAST_STOP,
            timeout_us,
            FAST_STOP_SAVE_REGS,
            addr,
            bytes,
        );
        FastStop {
            status: status(r[0]),
            stopped: r[1],
            missed: r[2],
            elapsed_ns: r[3],
        }
    }

    /// FAST_STOP_FLAGS: the flags FAST_STOP accepts.
    pub fn fast_stop_flags() -> u64 {
        call(Conduit::Hvc, VENDOR_FAST_STOP_FLAGS, 0, 0, 0)[0]
    }

    pub fn vcpu_state(mpidr: u64) -> i32 {
        status(call(Conduit::Hvc, VENDOR_VCPU_STATE, mpidr, 0, 0)[0])
    }

    pub fn trace_mark(value: u32) -> i32 {
        status(call(Conduit::Hvc, VENDOR_TRACE_MARK, value as u64, 0, 0)[0])
    }

    /// Whether CALL_UID names parkvisor.
    pub fn is_parkvisor() -> bool {
        call_uid() == PARKVISOR_UID
    }
}
