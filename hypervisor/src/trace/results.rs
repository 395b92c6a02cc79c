//! The names a call line prints for a call's result (x0): state names,
//! versions, MIGRATE_INFO_TYPE answers and the error names. Trace text, so
//! it lives with the trace, not with the decoding in `smccc`.

use crate::power_state::PowerState;
use crate::smccc::{ArchCall, Call, PsciCall, VendorCall, ret};

/// The name printed for return value `ret` (x0) of this call:
/// state names for AFFINITY_INFO / VCPU_STATE, `v<major>.<minor>` for
/// versions, `TOS_NOT_PRESENT` etc. for MIGRATE_INFO_TYPE, `SUCCESS` for 0
/// and error names for negative values; `None` for a plain non-negative
/// value (printed in hex).
pub fn result_name(call: &Call, ret: i64) -> Option<&'static str> {
    match *call {
        Call::Psci(PsciCall::AffinityInfo { .. }) | Call::Vendor(VendorCall::VcpuState { .. })
            if ret >= 0 =>
        {
            return PowerState::from_affinity_info(ret as u64).map(PowerState::name);
        }
        Call::Psci(PsciCall::MigrateInfoType) if ret >= 0 => {
            return match ret {
                0 => Some("TOS_UP_MIGRATE"),
                1 => Some("TOS_UP_NO_MIGRATE"),
                v if v == i64::from(parkvisor_abi::psci::MIGRATE_INFO_TYPE_NONE) => {
                    Some("TOS_NOT_PRESENT")
                }
                _ => None,
            };
        }
        Call::Psci(PsciCall::Version) if ret == i64::from(parkvisor_abi::version::PSCI) => {
            return Some("v1.1");
        }
        Call::Arch(ArchCall::Version) if ret == i64::from(parkvisor_abi::version::SMCCC) => {
            return Some("v1.1");
        }
        Call::Arch(_) if ret == ret::NOT_REQUIRED => return Some("NOT_REQUIRED"),
        Call::Arch(_) if ret == ret::ARCH_INVALID_PARAMETER => {
            return Some("INVALID_PARAMETER");
        }
        _ => {}
    }
    default_result_name(ret)
}

/// Result names shared by every call: `SUCCESS` for 0, the PSCI error names
/// for -1..=-9, `None` otherwise.
fn default_result_name(ret: i64) -> Option<&'static str> {
    Some(match ret {
        ret::SUCCESS => "SUCCESS",
        ret::NOT_SUPPORTED => "NOT_SUPPORTED",
        ret::INVALID_PARAMETERS => "INVALID_PARAMETERS",
        ret::DENIED => "DENIED",
        ret::ALREADY_ON => "ALREADY_ON",
        ret::ON_PENDING => "ON_PENDING",
        ret::INTERNAL_FAILURE => "INTERNAL_FAILURE",
        ret::NOT_PRESENT => "NOT_PRESENT",
        ret::DISABLED => "DISABLED",
        ret::INVALID_ADDRESS => "INVALID_ADDRESS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smccc::decode;

    #[test]
    fn result_names() {
        let on = decode(0xC400_0003, 1, 2, 3);
        assert_eq!(result_name(&on, 0), Some("SUCCESS"));
        assert_eq!(result_name(&on, -4), Some("ALREADY_ON"));
        assert_eq!(result_name(&on, -2), Some("INVALID_PARAMETERS"));
        assert_eq!(result_name(&on, -9), Some("INVALID_ADDRESS"));
        assert_eq!(result_name(&on, -10), None);
        let aff = decode(0xC400_0004, 1, 0, 0);
        assert_eq!(result_name(&aff, 0), Some("ON"));
        assert_eq!(result_name(&aff, 1), Some("OFF"));
        assert_eq!(result_name(&aff, 2), Some("ON_PENDING"));
        assert_eq!(result_name(&aff, -2), Some("INVALID_PARAMETERS"));
        let vs = decode(0xC600_0002, 1, 0, 0);
        assert_eq!(result_name(&vs, 1), Some("OFF"));
        assert_eq!(
            result_name(&decode(0x8400_0000, 0, 0, 0), 0x10001),
            Some("v1.1")
        );
        assert_eq!(
            result_name(&decode(0x8000_0000, 0, 0, 0), 0x10001),
            Some("v1.1")
        );
        assert_eq!(
            result_name(&decode(0x8400_0006, 0, 0, 0), 2),
            Some("TOS_NOT_PRESENT")
        );
        assert_eq!(
            result_name(&decode(0x8000_0001, 0, 0, 0), -2),
            Some("NOT_REQUIRED")
        );
        assert_eq!(result_name(&decode(0x8600_0000, 0, 0, 0), 0xF), None);
    }
}
