//! The parkvisor vendor service (abi.md), apart from FAST_STOP itself:
//! discovery (CALL_UID, FEATURES), VCPU_STATE against AFFINITY_INFO, and
//! TRACE_MARK (the harness looks for its `mark` trace line).

use super::common::*;
use guestlib::abi::*;
use guestlib::arch::smp;
use guestlib::framework::{Suite, Test};
use guestlib::{Env, TestResult, ensure, psci, vendor};

pub static SUITE: Suite<Env> = Suite {
    name: "vendor",
    tests: &TESTS,
};

static TESTS: [Test<Env>; 5] = [
    Test::new("call_uid", call_uid),
    Test::new("features_bits", features_bits),
    Test::new("vcpu_state_unknown_mpidr", vcpu_state_unknown_mpidr),
    Test::new(
        "vcpu_state_tracks_power_state",
        vcpu_state_tracks_power_state,
    ),
    Test::new("trace_mark", trace_mark),
];

/// The value the harness expects in a `mark` trace line.
pub const MARK: u32 = 0x5E1F_7E57;

fn call_uid(_env: &Env) -> TestResult {
    let uid = vendor::call_uid();
    ensure!(
        uid == PARKVISOR_UID,
        "CALL_UID = {:08x} {:08x} {:08x} {:08x}, expected parkvisor's {:08x} {:08x} {:08x} {:08x}",
        uid[0],
        uid[1],
        uid[2],
        uid[3],
        PARKVISOR_UID[0],
        PARKVISOR_UID[1],
        PARKVISOR_UID[2],
        PARKVISOR_UID[3]
    );
    Ok(())
}

fn features_bits(_env: &Env) -> TestResult {
    let f = vendor::features();
    let want = VENDOR_FEAT_FEATURES
        | VENDOR_FEAT_FAST_STOP
        | VENDOR_FEAT_VCPU_STATE
        | VENDOR_FEAT_TRACE_MARK;
    ensure!(
        f & want == want,
        "FEATURES = {:#x}, expected bits {:#x} (FEATURES, FAST_STOP, VCPU_STATE, TRACE_MARK)",
        f,
        want
    );
    ensure!(status(f) >= 0, "FEATURES returned an error {}", status(f));
    Ok(())
}

fn vcpu_state_unknown_mpidr(env: &Env) -> TestResult {
    let bad = env.unknown_mpidr();
    let r = vendor::vcpu_state(bad);
    ensure!(
        r == INVALID_PARAMETERS,
        "VCPU_STATE({:#x}) = {}, expected -2",
        bad,
        r
    );
    Ok(())
}

fn vcpu_state_tracks_power_state(env: &Env) -> TestResult {
    let me = env.mpidr(env.boot_idx);
    ensure!(
        vendor::vcpu_state(me) == VCPU_ON,
        "VCPU_STATE(self) = {}",
        vendor::vcpu_state(me)
    );
    for idx in env.secondaries() {
        let m = env.mpidr(idx);
        let r = vendor::vcpu_state(m);
        ensure!(
            r == VCPU_OFF,
            "VCPU_STATE(cpu{}) = {} while OFF, expected 1",
            idx,
            r
        );
        start_held(env, idx)?;
        let r = vendor::vcpu_state(m);
        ensure!(
            r == VCPU_ON,
            "VCPU_STATE(cpu{}) = {} while it runs, expected 0",
            idx,
            r
        );
        let a = psci::hvc().affinity_info(m, 0);
        ensure!(
            a == AFF_ON,
            "AFFINITY_INFO(cpu{}) = {} while it runs",
            idx,
            a
        );
        release(idx);
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
        let r = vendor::vcpu_state(m);
        ensure!(
            r == VCPU_OFF,
            "VCPU_STATE(cpu{}) = {} after CPU_OFF, expected 1",
            idx,
            r
        );
    }
    Ok(())
}

fn trace_mark(_env: &Env) -> TestResult {
    let r = vendor::trace_mark(MARK);
    ensure!(r == SUCCESS, "TRACE_MARK = {}", r);
    Ok(())
}
