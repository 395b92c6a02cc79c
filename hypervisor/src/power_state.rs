//! The guest-visible PSCI power state of a vCPU, as the vCPU table keeps it
//! and the trace prints it. A leaf, so that the trace can name states
//! without importing the vCPU table that records into it.

use parkvisor_abi::psci::{AFFINITY_OFF, AFFINITY_ON, AFFINITY_ON_PENDING};

/// Guest-visible PSCI power state of one vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// Parked in EL2, outside guest memory.
    Off,
    /// CPU_ON accepted, not yet executing guest code.
    OnPending,
    /// Executing guest code (or trapped to EL2 on its behalf).
    On,
}

impl PowerState {
    /// Name used in trace lines and docs.
    pub const fn name(self) -> &'static str {
        match self {
            PowerState::Off => "OFF",
            PowerState::OnPending => "ON_PENDING",
            PowerState::On => "ON",
        }
    }

    /// Value returned by PSCI AFFINITY_INFO and the VCPU_STATE hypercall.
    pub const fn affinity_info(self) -> u64 {
        match self {
            PowerState::On => AFFINITY_ON as u64,
            PowerState::Off => AFFINITY_OFF as u64,
            PowerState::OnPending => AFFINITY_ON_PENDING as u64,
        }
    }

    /// The state whose [`PowerState::affinity_info`] is `value`.
    pub fn from_affinity_info(value: u64) -> Option<PowerState> {
        PowerState::ALL
            .into_iter()
            .find(|s| s.affinity_info() == value)
    }

    /// The state whose [`PowerState::name`] is `name`.
    pub fn from_name(name: &str) -> Option<PowerState> {
        PowerState::ALL.into_iter().find(|s| s.name() == name)
    }

    pub(crate) const ALL: [PowerState; 3] =
        [PowerState::Off, PowerState::OnPending, PowerState::On];
}
