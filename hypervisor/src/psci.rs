//! PSCI 1.1 semantics (plus PSCI 1.3's SYSTEM_OFF2) for the guest: which functions exist, what each answers,
//! and the CPU_ON / AFFINITY_INFO rules over the vCPU table. Decoding of the
//! raw call lives in `smccc`; acting on the hardware (parking, waking, calling
//! the firmware) lives in `arch`, behind [`CpuOnPlatform`] for CPU_ON.
//! Everything here is portable and host-tested, and CPU_ON is model-checked
//! with the park loop (`tests/loom.rs`).

use crate::smccc::ret;
use crate::vcpu::{BootRequest, LiveCount, PowerState, VcpuTable};

/// PSCI_VERSION answer: major 1, minor 1.
pub const VERSION: u64 = parkvisor_abi::version::PSCI as u64;

/// MIGRATE_INFO_TYPE answer: no Trusted OS, nothing to migrate.
pub const MIGRATE_INFO_TYPE_NONE: u64 = parkvisor_abi::psci::MIGRATE_INFO_TYPE_NONE as u64;

/// SYSTEM_OFF2 type HIBERNATE_OFF (DEN0022F.b): bit 0 of the PSCI_FEATURES
/// answer says it is supported; as a type argument, 0 means the same.
pub const OFF_TYPE_HIBERNATE_OFF: u32 = parkvisor_abi::psci::OFF_TYPE_HIBERNATE_OFF;

/// PSCI_FEATURES(function_id). The function ID is the 32-bit `w1` (SMCCC: a
/// function ID is a uint32), so the upper half of x1 plays no part.
pub fn features(function_id: u32) -> i64 {
    // The functions parkvisor implements: `smccc::FUNCTIONS` marks them.
    if !crate::smccc::psci_feature(function_id) {
        return ret::NOT_SUPPORTED;
    }
    match function_id {
        // The supported off types, as KVM answers.
        crate::smccc::PSCI_SYSTEM_OFF2_32 | crate::smccc::PSCI_SYSTEM_OFF2_64 => {
            OFF_TYPE_HIBERNATE_OFF.into()
        }
        // For CPU_SUSPEND the flags are 0: bit 1 clear = original
        // power_state format (see `POWER_STATE_RESERVED`), bit 0 clear = no
        // OS-initiated mode. Everything else: SUCCESS.
        _ => 0,
    }
}

/// What CPU_SUSPEND asks for, decoded from `power_state` (original format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suspend {
    /// Wait for a wake-up event, then return SUCCESS with state retained.
    Standby,
    /// Context is lost; on wake-up the CPU restarts at `entry` with x0 =
    /// `context_id`, as after CPU_ON.
    Powerdown(BootRequest),
}

const POWER_STATE_TYPE_POWERDOWN: u64 = 1 << 16;

/// Bits of an original-format power_state that must be zero (DEN0022 5.4.2:
/// StateID 15:0, StateType 16, PowerLevel 25:24; the rest is reserved). The
/// original format is what PSCI_FEATURES(CPU_SUSPEND) reports (bit 1 clear).
pub const POWER_STATE_RESERVED: u64 = parkvisor_abi::psci::POWER_STATE_RESERVED as u64;

/// Decodes CPU_SUSPEND's arguments; `Err` is the PSCI error to return.
/// A powerdown resumes with the caller's endianness (`big_endian`).
pub fn suspend(
    power_state: u64,
    entry: u64,
    context_id: u64,
    big_endian: bool,
    is_guest_ram: impl Fn(u64) -> bool,
) -> Result<Suspend, i64> {
    if power_state & POWER_STATE_RESERVED != 0 || power_state > u64::from(u32::MAX) {
        return Err(ret::INVALID_PARAMETERS);
    }
    if power_state & POWER_STATE_TYPE_POWERDOWN == 0 {
        return Ok(Suspend::Standby);
    }
    if !is_guest_ram(entry) {
        return Err(ret::INVALID_ADDRESS);
    }
    Ok(Suspend::Powerdown(BootRequest {
        entry,
        context_id,
        big_endian,
    }))
}

/// What CPU_ON needs from the machine.
pub trait CpuOnPlatform {
    /// The target is claimed (and counted live) but cannot start yet, so a
    /// trace line printed here precedes anything the target prints.
    fn claimed(&self, target: usize);
    /// Wakes the target's physical CPU; its boot request is published.
    fn kick(&self, target: usize);
    /// Models only: count the target live after publishing its request
    /// instead of before, to show that the models catch it.
    #[cfg(loom)]
    fn count_after_publish(&self) -> bool {
        false
    }
}

/// CPU_ON(target, request). On success the target is claimed, counted in
/// `live` before it can run (only a live vCPU can CPU_ON another, so the
/// caller is still counted: the count cannot reach zero in between), told to
/// the platform, then its request is published and its CPU kicked; returns
/// the target's index.
pub fn cpu_on(
    table: &VcpuTable<'_>,
    live: &LiveCount,
    target_mpidr: u64,
    request: BootRequest,
    is_guest_ram: impl Fn(u64) -> bool,
    platform: &impl CpuOnPlatform,
) -> Result<usize, i64> {
    let Some(target) = table.index_of(target_mpidr) else {
        return Err(ret::INVALID_PARAMETERS);
    };
    if target_mpidr & !crate::vcpu::MPIDR_AFF_MASK != 0 {
        // Only affinity fields may be set in the target argument.
        return Err(ret::INVALID_PARAMETERS);
    }
    if !is_guest_ram(request.entry) {
        return Err(ret::INVALID_ADDRESS);
    }
    let slot = table.slot(target);
    match slot.try_claim() {
        Ok(()) => {
            #[cfg(loom)]
            let late = platform.count_after_publish();
            #[cfg(not(loom))]
            let late = false;
            if !late {
                live.claimed();
            }
            platform.claimed(target);
            slot.publish_boot(request);
            platform.kick(target);
            if late {
                live.claimed();
            }
            Ok(target)
        }
        Err(PowerState::On) => Err(ret::ALREADY_ON),
        Err(_) => Err(ret::ON_PENDING),
    }
}

/// AFFINITY_INFO(target_affinity, lowest_affinity_level).
/// Level 0 answers for one vCPU; higher levels for every vCPU sharing the
/// affinity fields above that level: ON if any is ON, else ON_PENDING if any
/// is pending, else OFF.
pub fn affinity_info(table: &VcpuTable<'_>, target_affinity: u64, level: u64) -> i64 {
    if level > 3 || target_affinity & !crate::vcpu::MPIDR_AFF_MASK != 0 {
        return ret::INVALID_PARAMETERS;
    }
    let mut any = false;
    let mut aggregate = PowerState::Off;
    for index in table.matching(target_affinity, level as u32) {
        any = true;
        match table.slot(index).state() {
            PowerState::On => return PowerState::On.affinity_info() as i64,
            PowerState::OnPending => aggregate = PowerState::OnPending,
            PowerState::Off => {}
        }
    }
    if !any {
        return ret::INVALID_PARAMETERS;
    }
    aggregate.affinity_info() as i64
}

/// SYSTEM_RESET2 reset types parkvisor accepts: architectural warm reset (0).
/// Vendor-specific types (bit 31 set) and other architectural types are not
/// supported.
pub fn system_reset2(reset_type: u64) -> Result<(), i64> {
    match reset_type as u32 {
        0 => Ok(()),
        t if t & 0x8000_0000 != 0 => Err(ret::NOT_SUPPORTED),
        _ => Err(ret::INVALID_PARAMETERS),
    }
}

/// SYSTEM_OFF2(type, cookie): type 0 or HIBERNATE_OFF is accepted (and
/// powers off like SYSTEM_OFF, as KVM does: there is no hibernation image to
/// keep); any other type, or a non-zero cookie, is INVALID_PARAMETERS.
pub fn system_off2(off_type: u32, cookie: u64) -> Result<(), i64> {
    if (off_type == 0 || off_type == OFF_TYPE_HIBERNATE_OFF) && cookie == 0 {
        Ok(())
    } else {
        Err(ret::INVALID_PARAMETERS)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vcpu::Vcpus;
    use smccc::psci as ids;

    fn ram(addr: u64) -> bool {
        (0x4400_0000..0x8000_0000).contains(&addr)
    }

    /// Records what CPU_ON asked of the machine, and whether the target
    /// could already start when it was told of the claim.
    #[derive(Default)]
    struct Fake {
        log: std::cell::RefCell<Vec<String>>,
    }

    impl CpuOnPlatform for Fake {
        fn claimed(&self, target: usize) {
            self.log.borrow_mut().push(format!("claimed {target}"));
        }
        fn kick(&self, target: usize) {
            self.log.borrow_mut().push(format!("kick {target}"));
        }
    }

    fn req(entry: u64, context_id: u64) -> BootRequest {
        BootRequest {
            entry,
            context_id,
            big_endian: false,
        }
    }

    /// CPU_ON with a fresh live count of 1 and a platform that records.
    fn on(t: &VcpuTable<'_>, mpidr: u64, entry: u64, context_id: u64) -> Result<usize, i64> {
        cpu_on(
            t,
            &LiveCount::new(1),
            mpidr,
            req(entry, context_id),
            ram,
            &Fake::default(),
        )
    }

    /// `n` vCPUs in clusters of 4, vCPU 0 ON.
    fn vcpus(n: usize) -> Vcpus {
        let mpidrs: Vec<u64> = (0..n as u64).map(|i| (i / 4) << 8 | (i % 4)).collect();
        Vcpus::new(&mpidrs, |i| i == 0)
    }

    #[test]
    fn features_of_implemented_and_unknown_functions() {
        for id in crate::smccc::FUNCTIONS
            .iter()
            .filter(|f| f.psci_feature)
            .map(|f| f.id)
        {
            let want = if id & 0xFF == 0x15 { 1 } else { 0 };
            assert_eq!(features(id), want, "{id:#x}");
        }
        for id in [
            1337u32,
            0x8400_000E,
            0xC400_000E,
            0x8600_0000,
            0xC400_0002,
            u32::MAX,
        ] {
            assert_eq!(features(id), -1, "{id:#x}");
        }
        assert_eq!(
            features(ids::PSCI_SYSTEM_RESET2_32),
            0,
            "both SYSTEM_RESET2 variants are implemented"
        );
    }

    #[test]
    fn cpu_on_rules() {
        let v = vcpus(4);
        let t = v.table();
        assert_eq!(on(&t, 0, 0x4800_0000, 0), Err(-4), "boot CPU is on");
        assert_eq!(on(&t, 0x7, 0x4800_0000, 0), Err(-2), "no such CPU");
        assert_eq!(on(&t, 1 << 40, 0x4800_0000, 0), Err(-2));
        assert_eq!(on(&t, 1, 0x4000_0000, 0), Err(-9), "hypervisor memory");
        assert_eq!(on(&t, 1, 0, 0), Err(-9));
        assert_eq!(
            v[1].slot.state(),
            PowerState::Off,
            "failed calls change nothing"
        );
        assert_eq!(on(&t, 1, 0x4800_0000, 42), Ok(1));
        assert_eq!(on(&t, 1, 0x4800_0000, 43), Err(-5));
        assert_eq!(
            v[1].slot.boot_request(),
            Some(req(0x4800_0000, 42)),
            "the losing call must not overwrite the winner's request"
        );
        v[1].slot.mark_on();
        assert_eq!(on(&t, 1, 0x4800_0000, 0), Err(-4));
    }

    #[test]
    fn cpu_on_counts_the_target_live_and_announces_it_before_it_can_start() {
        let v = vcpus(2);
        let t = v.table();
        let live = LiveCount::new(1);
        /// Sees the target's slot when CPU_ON talks to the machine.
        struct Watch<'a> {
            slot: &'a crate::vcpu::VcpuSlot,
            log: std::cell::RefCell<Vec<(&'static str, Option<BootRequest>)>>,
        }
        impl CpuOnPlatform for Watch<'_> {
            fn claimed(&self, _: usize) {
                self.log
                    .borrow_mut()
                    .push(("claimed", self.slot.boot_request()));
            }
            fn kick(&self, _: usize) {
                self.log
                    .borrow_mut()
                    .push(("kick", self.slot.boot_request()));
            }
        }
        let watch = Watch {
            slot: &v[1].slot,
            log: Default::default(),
        };
        let big = BootRequest {
            entry: 0x4800_0000,
            context_id: 5,
            big_endian: true,
        };
        assert_eq!(cpu_on(&t, &live, 1, big, ram, &watch), Ok(1));
        assert_eq!(
            *watch.log.borrow(),
            [("claimed", None), ("kick", Some(big))],
            "announced while it cannot start; kicked once the whole request is out"
        );
        assert!(!live.parked(), "the caller parks: the target still counts");
        assert!(live.parked(), "the target parks: nobody is left");
        assert_eq!(cpu_on(&t, &live, 1, big, ram, &watch), Err(-5));
        assert_eq!(
            watch.log.borrow().len(),
            2,
            "a lost race tells the machine nothing"
        );
    }

    #[test]
    fn affinity_info_levels() {
        let v = vcpus(8);
        let t = v.table();
        assert_eq!(affinity_info(&t, 0, 0), 0);
        assert_eq!(affinity_info(&t, 1, 0), 1);
        assert_eq!(affinity_info(&t, 0x100, 0), 1);
        assert_eq!(affinity_info(&t, 0x100, 1), 1, "cluster 1 is all off");
        assert_eq!(affinity_info(&t, 0x3, 1), 0, "cluster 0 has CPU0 on");
        on(&t, 0x102, 0x4800_0000, 0).unwrap();
        assert_eq!(affinity_info(&t, 0x102, 0), 2);
        assert_eq!(affinity_info(&t, 0x100, 1), 2);
        assert_eq!(affinity_info(&t, 0, 2), 0);
        assert_eq!(affinity_info(&t, 0, 4), -2, "invalid level");
        assert_eq!(affinity_info(&t, 0x200, 0), -2, "unknown MPIDR");
        assert_eq!(affinity_info(&t, 0x200, 1), -2, "unknown cluster");
        assert_eq!(affinity_info(&t, 1 << 41, 0), -2, "non-affinity bits");
    }

    #[test]
    fn suspend_and_reset2_arguments() {
        assert_eq!(suspend(0, 0, 0, false, ram), Ok(Suspend::Standby));
        assert_eq!(
            suspend(1 << 16, 0x4800_0000, 9, true, ram),
            Ok(Suspend::Powerdown(BootRequest {
                entry: 0x4800_0000,
                context_id: 9,
                big_endian: true,
            }))
        );
        assert_eq!(suspend(1 << 16, 0x100, 9, false, ram), Err(-9));
        assert_eq!(
            suspend(3 << 24 | 0xFFFF, 0, 0, false, ram),
            Ok(Suspend::Standby),
            "power level and state id are valid"
        );
        for bit in (17..24).chain(26..32) {
            assert_eq!(
                suspend(1 << bit, 0x4800_0000, 0, false, ram),
                Err(-2),
                "reserved bit {bit}"
            );
            assert_eq!(
                suspend(1 << 16 | 1 << bit, 0x4800_0000, 0, false, ram),
                Err(-2),
                "reserved bit {bit}"
            );
        }
        assert_eq!(system_off2(0, 0), Ok(()));
        assert_eq!(system_off2(1, 0), Ok(()));
        assert_eq!(system_off2(1, 1), Err(-2), "cookie must be 0");
        assert_eq!(system_off2(2, 0), Err(-2));
        assert_eq!(system_off2(0x8000_0000, 0), Err(-2));
        assert_eq!(system_reset2(0), Ok(()));
        assert_eq!(system_reset2(0x8000_0000), Err(-1));
        assert_eq!(system_reset2(1), Err(-2));
    }
}
