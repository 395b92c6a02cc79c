//! `gic_off`: the guest wrecks its GIC state (distributor disabled, every
//! SGI/PPI disabled on every redistributor, GICR_WAKER.ProcessorSleep set),
//! then CPU_ON and FAST_STOP must still work: the hypervisor must not rely
//! on the guest's GIC configuration to start or stop vCPUs.
//! Stores the hypervisor refuses with an abort are tolerated (counted).

use super::common::skip_plain;
use core::sync::atomic::Ordering::*;
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::smp::{self, aborting};
use guestlib::arch::{expecting_abort, psci, time};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, TestResult, ensure, gprintln};

pub static SUITE: Suite<Env> = Suite {
    name: "gic_off",
    tests: &[
        Test::new("wreck_gic", wreck_gic).skip_if(skip_plain),
        Test::new("cpu_on_and_fast_stop", on_and_stop)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("again_masked", on_and_stop_masked)
            .cpus(2)
            .skip_if(skip_plain),
    ],
};

const GICR_STRIDE: u64 = 0x20000;
const SGI_FRAME: u64 = 0x10000;
const ICENABLER0: u64 = 0x180;
const WAKER: u64 = 0x14;

/// One 32-bit store; an abort is contained. Returns true if it aborted.
fn wr32(addr: u64, v: u32) -> bool {
    let ((), ab) = expecting_abort(|| {
        // SAFETY: MMIO store to the GIC; may abort (contained).
        unsafe {
            core::arch::asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack))
        };
    });
    ab.is_some()
}

fn wreck(env: &Env) -> TestResult {
    ensure!(env.gicd != 0 && env.gicr != 0, "no GICv3 in the DTB");
    let mut aborts = 0;
    aborts += wr32(env.gicd, 0) as u32; // GICD_CTLR = 0
    for i in 0..env.ncpus as u64 {
        let rd = env.gicr + i * GICR_STRIDE;
        aborts += wr32(rd + SGI_FRAME + ICENABLER0, 0xFFFF_FFFF) as u32;
        aborts += wr32(rd + WAKER, 2) as u32;
    }
    gprintln!(
        "gic_off: {} of {} GIC stores aborted",
        aborts,
        1 + 2 * env.ncpus
    );
    Ok(())
}

fn wreck_gic(env: &Env) -> TestResult {
    wreck(env)?;
    // The calling CPU still gets its hypercalls answered.
    let v = psci::hvc().version();
    ensure!(
        v == PSCI_VERSION_1_1,
        "PSCI_VERSION = {:#x} after GIC wreck",
        v
    );
    Ok(())
}

fn spin(idx: usize) {
    let s = smp::slot(idx);
    while !aborting() {
        let v = s.scratch[0].load(Relaxed);
        s.scratch[0].store(v + 1, Relaxed);
    }
}

fn spin_job(idx: usize, _ctx: u64) {
    // Each secondary also wrecks its own view before spinning.
    let env = guestlib::env();
    let rd = env.gicr + idx as u64 * GICR_STRIDE;
    wr32(rd + SGI_FRAME + ICENABLER0, 0xFFFF_FFFF);
    wr32(rd + WAKER, 2);
    // SAFETY: unmasking; the guest enabled no interrupt.
    unsafe { core::arch::asm!("msr daifclr, #0xf", options(nomem, nostack)) };
    spin(idx);
    // SAFETY: masking only.
    unsafe { core::arch::asm!("msr daifset, #0xf", options(nomem, nostack)) };
}

fn spin_masked_job(idx: usize, _ctx: u64) {
    spin(idx);
}

fn run(env: &Env, job: smp::Job) -> TestResult {
    wreck(env)?;
    for round in 0..2 {
        let mut n = 0;
        for idx in env.secondaries() {
            smp::slot(idx).clear_scratch();
            super::fast_stop::start_long(env, idx, job)?;
            n += 1;
        }
        for idx in env.secondaries() {
            let s = smp::slot(idx);
            ensure!(
                time::spin_until(super::fast_stop::entry_wait_us(), || s.scratch[0]
                    .load(Relaxed)
                    > 0),
                "round {}: cpu{} never ran after CPU_ON",
                round,
                idx
            );
        }
        let r = call(
            Conduit::Hvc,
            0xC600_0001,
            super::fast_stop::deadline_us(),
            0,
            0,
        );
        ensure!(
            status(r[0]) == SUCCESS && r[1] == n && r[2] == 0,
            "round {}: FAST_STOP with the GIC off: x0 {} x1 {} x2 {}, expected 0 {} 0",
            round,
            status(r[0]),
            r[1],
            r[2],
            n
        );
        for idx in env.secondaries() {
            let a = psci::hvc().affinity_info(env.mpidr(idx), 0);
            ensure!(
                a == AFF_OFF,
                "round {}: cpu{} AFFINITY_INFO {} after FAST_STOP",
                round,
                idx,
                a
            );
        }
        let before: [u64; 2] = [
            smp::slot(1).scratch[0].load(Relaxed),
            smp::slot(env.ncpus - 1).scratch[0].load(Relaxed),
        ];
        time::delay_us(20_000);
        ensure!(
            before[0] == smp::slot(1).scratch[0].load(Relaxed)
                && before[1] == smp::slot(env.ncpus - 1).scratch[0].load(Relaxed),
            "round {}: counters still advancing after FAST_STOP",
            round
        );
    }
    Ok(())
}

fn on_and_stop(env: &Env) -> TestResult {
    run(env, spin_job)
}

fn on_and_stop_masked(env: &Env) -> TestResult {
    run(env, spin_masked_job)
}
