//! A short show for the trace: every CPU comes up, then two rounds of
//! CPU_OFF / CPU_ON over all secondaries, then SYSTEM_OFF.

use super::common::*;
use guestlib::arch::smp;
use guestlib::framework::{Suite, Test};
use guestlib::{Env, TestResult, ensure, vendor};

pub static SUITE: Suite<Env> = Suite {
    name: "demo",
    tests: &TESTS,
};
static TESTS: [Test<Env>; 1] = [Test::new("demo", demo)];

fn demo(env: &Env) -> TestResult {
    // Marks are visible in the trace under parkvisor (harmless elsewhere).
    let _ = vendor::trace_mark(0xDE30_0000);
    start_all_held(env)?;
    for round in 1..=2u32 {
        let _ = vendor::trace_mark(0xDE30_0000 | round);
        release_all_and_wait_off(env)?;
        guestlib::time::delay_us(5_000);
        start_all_held(env)?;
    }
    for idx in env.secondaries() {
        ensure!(
            smp::slot(idx)
                .off_returned
                .load(core::sync::atomic::Ordering::Acquire)
                == 0,
            "CPU_OFF returned on cpu{}",
            idx
        );
    }
    release_all_and_wait_off(env)
}
