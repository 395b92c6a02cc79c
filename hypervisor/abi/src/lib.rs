//! parkvisor's guest-visible ABI (`docs/abi.md`): every number of the vendor
//! hypervisor service, the return codes, the versions parkvisor reports and
//! the layout of FAST_STOP's register save area.
//!
//! This crate is the one definition. The hypervisor and the test guests use
//! it directly; the Linux guest module includes
//! `guest-tests/linux/module/parkvisor_abi.h`, which the `c_header` test
//! generates from these constants and checks for staleness (rewrite it with
//! `PARKVISOR_ABI_WRITE_HEADER=1 cargo test -p parkvisor-abi`).
//!
//! The standard PSCI and SMCCC function IDs come from the `smccc` crate; only
//! the ones it lacks are here.

#![cfg_attr(not(test), no_std)]

/// Return codes in x0 (PSCI statuses are int32; SMCCC arch calls share the
/// numbers for SUCCESS and NOT_SUPPORTED).
pub mod ret {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// Function not implemented / not supported.
    pub const NOT_SUPPORTED: i32 = -1;
    /// Bad argument.
    pub const INVALID_PARAMETERS: i32 = -2;
    /// Operation refused (FAST_STOP: another one is in progress).
    pub const DENIED: i32 = -3;
    /// CPU_ON of a CPU that is already on.
    pub const ALREADY_ON: i32 = -4;
    /// CPU_ON of a CPU that is being turned on.
    pub const ON_PENDING: i32 = -5;
    /// Internal failure (FAST_STOP: the deadline passed first).
    pub const INTERNAL_FAILURE: i32 = -6;
    /// Trusted OS not present on the target.
    pub const NOT_PRESENT: i32 = -7;
    /// CPU disabled.
    pub const DISABLED: i32 = -8;
    /// Bad entry point address.
    pub const INVALID_ADDRESS: i32 = -9;
    /// SMCCC_ARCH_FEATURES of a workaround: firmware does not need it.
    pub const ARCH_NOT_REQUIRED: i32 = -2;
    /// SMCCC arch calls: bad argument.
    pub const ARCH_INVALID_PARAMETER: i32 = -3;
}

/// The versions parkvisor reports (major << 16 | minor).
pub mod version {
    /// SMCCC_VERSION: 1.1.
    pub const SMCCC: u32 = 0x0001_0001;
    /// PSCI_VERSION: 1.1.
    pub const PSCI: u32 = 0x0001_0001;
}

/// PSCI numbers beyond the `smccc` crate's.
pub mod psci {
    /// PSCI 1.3 SYSTEM_OFF2, SMC32 variant (DEN0022F.b 5.21).
    pub const SYSTEM_OFF2_32: u32 = 0x8400_0015;
    /// PSCI 1.3 SYSTEM_OFF2, SMC64 variant.
    pub const SYSTEM_OFF2_64: u32 = 0xC400_0015;
    /// SYSTEM_OFF2 type HIBERNATE_OFF; PSCI_FEATURES(SYSTEM_OFF2) answers
    /// the bitmap of supported types, bit 0 = this one.
    pub const OFF_TYPE_HIBERNATE_OFF: u32 = 1;
    /// CPU_SUSPEND power_state bits that must be zero in the original format
    /// (DEN0022 5.4.2: StateID 15:0, StateType 16, PowerLevel 25:24; the
    /// rest is reserved), the format PSCI_FEATURES(CPU_SUSPEND) reports.
    pub const POWER_STATE_RESERVED: u32 = 0xFCFE_0000;
    /// MIGRATE_INFO_TYPE answer: no Trusted OS, nothing to migrate.
    pub const MIGRATE_INFO_TYPE_NONE: u32 = 2;
    /// AFFINITY_INFO answer: the CPU is on.
    pub const AFFINITY_ON: u32 = 0;
    /// AFFINITY_INFO answer: the CPU is off.
    pub const AFFINITY_OFF: u32 = 1;
    /// AFFINITY_INFO answer: the CPU is being turned on.
    pub const AFFINITY_ON_PENDING: u32 = 2;
}

/// parkvisor's vendor hypervisor service (SMCCC owner 6).
pub mod vendor {
    /// The SMCCC owning entity number of the service.
    pub const OWNER: u32 = 6;

    /// Returns the service UUID in x0..x3 (SMC32).
    pub const CALL_UID: u32 = 0x8600_FF01;
    /// Returns the bitmap of implemented function numbers in x0 (SMC32).
    pub const FEATURES: u32 = 0x8600_0000;
    /// Stops every other vCPU (SMC64).
    pub const FAST_STOP: u32 = 0xC600_0001;
    /// Power state of one vCPU by MPIDR (SMC64).
    pub const VCPU_STATE: u32 = 0xC600_0002;
    /// Prints a `mark` trace line with a 32-bit value (SMC32).
    pub const TRACE_MARK: u32 = 0x8600_0003;
    /// Returns the FAST_STOP flags this hypervisor accepts (SMC32).
    pub const FAST_STOP_FLAGS: u32 = 0x8600_0004;

    /// The four result words of CALL_UID: UUID
    /// f98411cd-4dea-4c9d-973e-208eee288f9b in SMCCC byte order.
    pub const UID: [u32; 4] = [0xCD11_84F9, 0x9D4C_EA4D, 0x8E20_3E97, 0x9B8F_28EE];

    /// The FEATURES answer: bit n set when function number n (the low 16
    /// bits of its ID) is implemented.
    pub mod feature {
        const fn bit(function_id: u32) -> u64 {
            1 << (function_id & 0xFFFF)
        }
        /// FEATURES itself.
        pub const FEATURES: u64 = bit(super::FEATURES);
        /// FAST_STOP.
        pub const FAST_STOP: u64 = bit(super::FAST_STOP);
        /// VCPU_STATE.
        pub const VCPU_STATE: u64 = bit(super::VCPU_STATE);
        /// TRACE_MARK.
        pub const TRACE_MARK: u64 = bit(super::TRACE_MARK);
        /// FAST_STOP_FLAGS.
        pub const FAST_STOP_FLAGS: u64 = bit(super::FAST_STOP_FLAGS);
        /// Every implemented function: what FEATURES answers.
        pub const ALL: u64 = FEATURES | FAST_STOP | VCPU_STATE | TRACE_MARK | FAST_STOP_FLAGS;
    }

    /// FAST_STOP's arguments.
    pub mod fast_stop {
        /// x2 bit 0: record each stopped vCPU's guest registers into the
        /// save area at x3 (size in bytes in x4), see [`crate::save_regs`].
        pub const SAVE_REGS: u64 = 1 << 0;
        /// x2 bit 1, with SAVE_REGS: each entry also carries the stopped
        /// context's SP_EL0. Refused without SAVE_REGS.
        pub const SAVE_SP_EL0: u64 = 1 << 1;
        /// Every flag: what FAST_STOP_FLAGS answers.
        pub const ALL_FLAGS: u64 = SAVE_REGS | SAVE_SP_EL0;
        /// The deadline when x1 = 0, in µs (1 s).
        pub const DEFAULT_TIMEOUT_US: u64 = 1_000_000;
    }

    /// VCPU_STATE's answers (the same as AFFINITY_INFO's).
    pub mod vcpu_state {
        /// The vCPU is on.
        pub const ON: u32 = crate::psci::AFFINITY_ON;
        /// The vCPU is off (parked).
        pub const OFF: u32 = crate::psci::AFFINITY_OFF;
        /// The vCPU is being turned on.
        pub const ON_PENDING: u32 = crate::psci::AFFINITY_ON_PENDING;
    }
}

/// One entry of FAST_STOP's SAVE_REGS area, little-endian u64s. Entry i
/// belongs to vCPU i (the order of the cpu nodes in the guest DTB).
pub mod save_regs {
    /// Byte offset of the MPIDR (Aff fields).
    pub const MPIDR_OFFSET: u64 = 0;
    /// Byte offset of the status word ([`STATUS_EMPTY`] or [`STATUS_SAVED`]).
    pub const STATUS_OFFSET: u64 = 8;
    /// Byte offset of the registers, Linux arm64's `struct user_pt_regs`:
    /// x0..x30, sp, pc, pstate.
    pub const REGS_OFFSET: u64 = 16;
    /// u64 words of the registers.
    pub const REGS_WORDS: u64 = 34;
    /// Size of one entry without SAVE_SP_EL0.
    pub const ENTRY_BYTES: u64 = REGS_OFFSET + REGS_WORDS * 8;
    /// Byte offset of SP_EL0 (with SAVE_SP_EL0), right after the registers.
    pub const SP_EL0_OFFSET: u64 = ENTRY_BYTES;
    /// Size of one entry with SAVE_SP_EL0.
    pub const ENTRY_BYTES_SP_EL0: u64 = SP_EL0_OFFSET + 8;
    /// Status: no registers (already OFF, never ran, the caller, or not
    /// confirmed by the deadline).
    pub const STATUS_EMPTY: u64 = 0;
    /// Status: the registers are those the vCPU had when it stopped.
    pub const STATUS_SAVED: u64 = 1;

    const _: () = assert!(ENTRY_BYTES == 288 && ENTRY_BYTES_SP_EL0 == 296);
}

#[cfg(test)]
mod c_header;
