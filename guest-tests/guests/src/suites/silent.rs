//! `silent`: a guest that stops touching the UART for good after a few
//! traced events, as a hung guest would. Not a harness suite: run by
//! scripts/test.sh, which lets it time out and checks that the trace lines
//! still reached the serial port (the hypervisor's trace tick printed them;
//! no guest UART access ever asked for them).

use super::common::cookie;
use guestlib::arch::{smp, time, vendor};
use guestlib::{Env, gprintln};

/// The mark the test looks for.
pub const MARK: u32 = 0x5113_0001;

fn returns_at_once(_idx: usize, _ctx: u64) {}

pub fn run(env: &'static Env) -> ! {
    gprintln!("GUEST silent: traced events follow, then no more UART output");
    let _ = vendor::trace_mark(MARK);
    if let Some(idx) = env.secondaries().next() {
        // CPU_ON, then the job's return parks it again: three state lines.
        let _ = smp::cpu_on(env, idx, returns_at_once, cookie());
    }
    loop {
        time::delay_us(1_000_000);
    }
}
