//! Function IDs and return codes the guests use (PSCI 1.1, SMCCC 1.1 and the
//! parkvisor vendor service of `docs/abi.md`).

pub use smccc::psci::{
    PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_DEFAULT_SUSPEND_32,
    PSCI_CPU_DEFAULT_SUSPEND_64, PSCI_CPU_FREEZE, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MEM_PROTECT,
    PSCI_MEM_PROTECT_CHECK_RANGE_32, PSCI_MEM_PROTECT_CHECK_RANGE_64, PSCI_MIGRATE_32,
    PSCI_MIGRATE_64, PSCI_MIGRATE_INFO_TYPE, PSCI_MIGRATE_INFO_UP_CPU_32,
    PSCI_MIGRATE_INFO_UP_CPU_64, PSCI_NODE_HW_STATE_32, PSCI_NODE_HW_STATE_64,
    PSCI_SET_SUSPEND_MODE, PSCI_STAT_COUNT_32, PSCI_STAT_COUNT_64, PSCI_STAT_RESIDENCY_32,
    PSCI_STAT_RESIDENCY_64, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_SYSTEM_RESET2_32,
    PSCI_SYSTEM_RESET2_64, PSCI_SYSTEM_SUSPEND_32, PSCI_SYSTEM_SUSPEND_64, PSCI_VERSION,
};

use parkvisor_abi::{psci, ret, save_regs, vendor, version};

/// PSCI 1.3 SYSTEM_OFF2 (docs/abi.md): PSCI_FEATURES answers the bitmap
/// of supported off types, bit 0 = HIBERNATE_OFF.
pub const PSCI_SYSTEM_OFF2_32: u32 = psci::SYSTEM_OFF2_32;
pub const PSCI_SYSTEM_OFF2_64: u32 = psci::SYSTEM_OFF2_64;
/// SYSTEM_OFF2 type HIBERNATE_OFF.
pub const PSCI_OFF_TYPE_HIBERNATE_OFF: u32 = psci::OFF_TYPE_HIBERNATE_OFF;
/// CPU_SUSPEND power_state bits that are reserved in the original format.
pub const POWER_STATE_RESERVED: u32 = psci::POWER_STATE_RESERVED;

/// SMCCC architecture calls.
pub use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1, SMCCC_VERSION};

/// parkvisor vendor hypervisor service (abi.md).
pub const VENDOR_CALL_UID: u32 = vendor::CALL_UID;
pub const VENDOR_FEATURES: u32 = vendor::FEATURES;
pub const VENDOR_FAST_STOP: u32 = vendor::FAST_STOP;
pub const VENDOR_VCPU_STATE: u32 = vendor::VCPU_STATE;
pub const VENDOR_TRACE_MARK: u32 = vendor::TRACE_MARK;
pub const VENDOR_FAST_STOP_FLAGS: u32 = vendor::FAST_STOP_FLAGS;
/// FAST_STOP flag: save each stopped vCPU's registers (x3 = area, x4 = size).
pub const FAST_STOP_SAVE_REGS: u64 = vendor::fast_stop::SAVE_REGS;
/// FAST_STOP flag, with SAVE_REGS: entries also carry SP_EL0.
pub const FAST_STOP_SAVE_SP_EL0: u64 = vendor::fast_stop::SAVE_SP_EL0;
/// FAST_STOP's deadline when x1 = 0.
pub const FAST_STOP_DEFAULT_TIMEOUT_US: u64 = vendor::fast_stop::DEFAULT_TIMEOUT_US;
/// One entry of the SAVE_REGS area: mpidr, status, x0..x30, sp, pc, pstate.
pub const SAVE_ENTRY_WORDS: usize = (save_regs::ENTRY_BYTES / 8) as usize;
/// CALL_UID result words (x0..x3).
pub const PARKVISOR_UID: [u32; 4] = vendor::UID;
/// FEATURES bits.
pub const VENDOR_FEAT_FEATURES: u64 = vendor::feature::FEATURES;
pub const VENDOR_FEAT_FAST_STOP: u64 = vendor::feature::FAST_STOP;
pub const VENDOR_FEAT_VCPU_STATE: u64 = vendor::feature::VCPU_STATE;
pub const VENDOR_FEAT_TRACE_MARK: u64 = vendor::feature::TRACE_MARK;
pub const VENDOR_FEAT_FAST_STOP_FLAGS: u64 = vendor::feature::FAST_STOP_FLAGS;
/// VCPU_STATE results.
pub const VCPU_ON: i32 = vendor::vcpu_state::ON as i32;
pub const VCPU_OFF: i32 = vendor::vcpu_state::OFF as i32;
pub const VCPU_ON_PENDING: i32 = vendor::vcpu_state::ON_PENDING as i32;

/// PSCI return codes.
pub use ret::{
    ALREADY_ON, DENIED, DISABLED, INTERNAL_FAILURE, INVALID_ADDRESS, INVALID_PARAMETERS,
    NOT_PRESENT, NOT_SUPPORTED, ON_PENDING, SUCCESS,
};

/// AFFINITY_INFO results.
pub const AFF_ON: i32 = psci::AFFINITY_ON as i32;
pub const AFF_OFF: i32 = psci::AFFINITY_OFF as i32;
pub const AFF_ON_PENDING: i32 = psci::AFFINITY_ON_PENDING as i32;

/// PSCI 1.1 as returned by PSCI_VERSION (major << 16 | minor).
pub const PSCI_VERSION_1_1: u32 = version::PSCI;
/// SMCCC 1.1 as returned by SMCCC_VERSION.
pub const SMCCC_VERSION_1_1: u32 = version::SMCCC;

/// The PSCI/SMCCC functions parkvisor implements (abi.md); PSCI_FEATURES
/// must report each of them as present.
pub const PSCI_IMPLEMENTED: &[(&str, u32)] = &[
    ("PSCI_VERSION", PSCI_VERSION),
    ("PSCI_FEATURES", PSCI_FEATURES),
    ("CPU_ON_32", PSCI_CPU_ON_32),
    ("CPU_ON_64", PSCI_CPU_ON_64),
    ("CPU_OFF", PSCI_CPU_OFF),
    ("CPU_SUSPEND_32", PSCI_CPU_SUSPEND_32),
    ("CPU_SUSPEND_64", PSCI_CPU_SUSPEND_64),
    ("AFFINITY_INFO_32", PSCI_AFFINITY_INFO_32),
    ("AFFINITY_INFO_64", PSCI_AFFINITY_INFO_64),
    ("MIGRATE_INFO_TYPE", PSCI_MIGRATE_INFO_TYPE),
    ("SYSTEM_OFF", PSCI_SYSTEM_OFF),
    ("SYSTEM_RESET", PSCI_SYSTEM_RESET),
    ("SYSTEM_RESET2_32", PSCI_SYSTEM_RESET2_32),
    ("SYSTEM_RESET2_64", PSCI_SYSTEM_RESET2_64),
    ("SMCCC_VERSION", SMCCC_VERSION),
];

/// PSCI functions parkvisor does not implement: PSCI_FEATURES must say
/// NOT_SUPPORTED for each.
pub const PSCI_UNIMPLEMENTED: &[(&str, u32)] = &[
    ("MIGRATE_32", PSCI_MIGRATE_32),
    ("MIGRATE_64", PSCI_MIGRATE_64),
    ("MIGRATE_INFO_UP_CPU_32", PSCI_MIGRATE_INFO_UP_CPU_32),
    ("MIGRATE_INFO_UP_CPU_64", PSCI_MIGRATE_INFO_UP_CPU_64),
    ("CPU_FREEZE", PSCI_CPU_FREEZE),
    ("CPU_DEFAULT_SUSPEND_32", PSCI_CPU_DEFAULT_SUSPEND_32),
    ("CPU_DEFAULT_SUSPEND_64", PSCI_CPU_DEFAULT_SUSPEND_64),
    ("NODE_HW_STATE_32", PSCI_NODE_HW_STATE_32),
    ("NODE_HW_STATE_64", PSCI_NODE_HW_STATE_64),
    ("SYSTEM_SUSPEND_32", PSCI_SYSTEM_SUSPEND_32),
    ("SYSTEM_SUSPEND_64", PSCI_SYSTEM_SUSPEND_64),
    ("PSCI_SET_SUSPEND_MODE", PSCI_SET_SUSPEND_MODE),
    ("PSCI_STAT_RESIDENCY_32", PSCI_STAT_RESIDENCY_32),
    ("PSCI_STAT_RESIDENCY_64", PSCI_STAT_RESIDENCY_64),
    ("PSCI_STAT_COUNT_32", PSCI_STAT_COUNT_32),
    ("PSCI_STAT_COUNT_64", PSCI_STAT_COUNT_64),
    ("MEM_PROTECT", PSCI_MEM_PROTECT),
    (
        "MEM_PROTECT_CHECK_RANGE_32",
        PSCI_MEM_PROTECT_CHECK_RANGE_32,
    ),
    (
        "MEM_PROTECT_CHECK_RANGE_64",
        PSCI_MEM_PROTECT_CHECK_RANGE_64,
    ),
];

/// Function IDs that are not valid/allocated: PSCI_FEATURES must say
/// NOT_SUPPORTED and a direct call must return NOT_SUPPORTED.
pub const INVALID_IDS: &[u32] = &[
    1337,
    0x0000_0000,
    0xFFFF_FFFF,
    0x8400_001F, // unallocated PSCI number
    0xC400_001F,
    0x8600_0042, // unused vendor-hyp number
    0xC600_00FF,
    0x8000_7FFF, // unallocated SMCCC arch number
    0xC300_0000, // SiP range
    0x8100_0000, // CPU service range
];

/// Interprets the low 32 bits of a result register as a signed PSCI status
/// (PSCI statuses are int32; the upper half of x0 is not looked at).
pub const fn status(x0: u64) -> i32 {
    x0 as u32 as i32
}

/// Name of a PSCI status for messages.
pub fn status_name(s: i32) -> &'static str {
    match s {
        SUCCESS => "SUCCESS",
        NOT_SUPPORTED => "NOT_SUPPORTED",
        INVALID_PARAMETERS => "INVALID_PARAMETERS",
        DENIED => "DENIED",
        ALREADY_ON => "ALREADY_ON",
        ON_PENDING => "ON_PENDING",
        INTERNAL_FAILURE => "INTERNAL_FAILURE",
        NOT_PRESENT => "NOT_PRESENT",
        DISABLED => "DISABLED",
        INVALID_ADDRESS => "INVALID_ADDRESS",
        _ => "?",
    }
}

/// MPIDR affinity fields (Aff3..Aff0) of an MPIDR_EL1 value.
pub const fn mpidr_aff(mpidr: u64) -> u64 {
    mpidr & 0xFF_00FF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sign() {
        assert_eq!(status(0xFFFF_FFFF), -1);
        assert_eq!(status(0xFFFF_FFFF_FFFF_FFF7), INVALID_ADDRESS);
        assert_eq!(status(0), SUCCESS);
        assert_eq!(status_name(-4), "ALREADY_ON");
    }

    #[test]
    fn tables_disjoint() {
        for (_, id) in PSCI_IMPLEMENTED {
            assert!(PSCI_UNIMPLEMENTED.iter().all(|(_, u)| u != id));
            assert!(!INVALID_IDS.contains(id));
        }
    }

    #[test]
    fn aff_mask() {
        assert_eq!(mpidr_aff(0x8000_0003), 3);
        assert_eq!(mpidr_aff(0x01_8100_0102), 0x01_0000_0102);
    }
}
