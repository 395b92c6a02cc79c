//! SYSTEM_OFF and SYSTEM_RESET: they must not return. Each suite starts every
//! secondary spinning (as Linux leaves them), runs its checks, prints DONE,
//! then makes the call; if the call returns, `GUEST FAIL` is printed and the
//! harness fails the run. The harness also requires QEMU to exit (0) by
//! itself; SYSTEM_RESET runs with `-no-reboot` so the reset ends QEMU.

use super::common::*;
use guestlib::abi::*;
use guestlib::framework::{Suite, Test};
use guestlib::{Env, TestResult, ensure, gprintln, psci};

fn off_supported(_env: &Env) -> TestResult {
    let r = psci::hvc().features(PSCI_SYSTEM_OFF);
    ensure!(r == SUCCESS, "PSCI_FEATURES(SYSTEM_OFF) = {}", r);
    Ok(())
}

fn reset_supported(_env: &Env) -> TestResult {
    let r = psci::hvc().features(PSCI_SYSTEM_RESET);
    ensure!(r == SUCCESS, "PSCI_FEATURES(SYSTEM_RESET) = {}", r);
    Ok(())
}

static OFF_TESTS: [Test<Env>; 1] = [Test::new("system_off_supported", off_supported)];
static RESET_TESTS: [Test<Env>; 1] = [Test::new("system_reset_supported", reset_supported)];
fn reset2_supported(_env: &Env) -> TestResult {
    let r = psci::hvc().features(PSCI_SYSTEM_RESET2_64);
    ensure!(r == SUCCESS, "PSCI_FEATURES(SYSTEM_RESET2_64) = {}", r);
    Ok(())
}

static RESET2_TESTS: [Test<Env>; 1] = [Test::new("system_reset2_supported", reset2_supported)];
static RESET2_SUITE: Suite<Env> = Suite {
    name: "system_reset2",
    tests: &RESET2_TESTS,
};
static OFF_SUITE: Suite<Env> = Suite {
    name: "system_off",
    tests: &OFF_TESTS,
};
static RESET_SUITE: Suite<Env> = Suite {
    name: "system_reset",
    tests: &RESET_TESTS,
};

fn secondaries_busy(env: &Env) {
    if let Err(e) = start_all_held(env) {
        gprintln!("GUEST FAIL secondaries: {}", e);
    }
}

pub fn system_off(env: &'static Env) -> ! {
    guestlib::run(&OFF_SUITE, env);
    secondaries_busy(env);
    gprintln!("GUEST calling SYSTEM_OFF");
    let st = psci::hvc().system_off();
    gprintln!("GUEST FAIL system_off: SYSTEM_OFF returned {}", st);
    guestlib::power_off()
}

pub fn system_reset(env: &'static Env) -> ! {
    guestlib::run(&RESET_SUITE, env);
    secondaries_busy(env);
    gprintln!("GUEST calling SYSTEM_RESET");
    let st = psci::hvc().system_reset();
    gprintln!("GUEST FAIL system_reset: SYSTEM_RESET returned {}", st);
    guestlib::power_off()
}

/// SYSTEM_RESET2 with SYSTEM_WARM_RESET (type 0).
pub fn system_reset2(env: &'static Env) -> ! {
    guestlib::run(&RESET2_SUITE, env);
    secondaries_busy(env);
    gprintln!("GUEST calling SYSTEM_RESET2(SYSTEM_WARM_RESET)");
    let st = psci::hvc().system_reset2(0, 0);
    gprintln!("GUEST FAIL system_reset2: SYSTEM_RESET2 returned {}", st);
    guestlib::power_off()
}

fn off2_supported(_env: &Env) -> TestResult {
    let r = psci::hvc().features(PSCI_SYSTEM_OFF2_64);
    ensure!(
        r == PSCI_OFF_TYPE_HIBERNATE_OFF as i32,
        "PSCI_FEATURES(SYSTEM_OFF2) = {}, expected 1 (HIBERNATE_OFF)",
        r
    );
    Ok(())
}

static OFF2_TESTS: [Test<Env>; 1] = [Test::new("system_off2_supported", off2_supported)];
static OFF2_SUITE: Suite<Env> = Suite {
    name: "system_off2",
    tests: &OFF2_TESTS,
};

/// SYSTEM_OFF2(HIBERNATE_OFF, cookie 0): powers off like SYSTEM_OFF.
pub fn system_off2(env: &'static Env) -> ! {
    guestlib::run(&OFF2_SUITE, env);
    secondaries_busy(env);
    gprintln!("GUEST calling SYSTEM_OFF2(HIBERNATE_OFF)");
    let st = psci::hvc().raw(
        PSCI_SYSTEM_OFF2_64,
        PSCI_OFF_TYPE_HIBERNATE_OFF.into(),
        0,
        0,
    )[0];
    gprintln!(
        "GUEST FAIL system_off2: SYSTEM_OFF2 returned {}",
        status(st)
    );
    guestlib::power_off()
}
