//! `gic_off`: the guest wrecks its GIC state (distributor disabled, every
//! SGI/PPI disabled on every redistributor, GICR_WAKER.ProcessorSleep set),
//! then CPU_ON and FAST_STOP must still work: the hypervisor must not rely
//! on the guest's GIC configuration to start or stop vCPUs.
//! Stores the hypervisor refuses with an abort are tolerated (counted).
//! On a GICv2 the SGI/PPI enables are banked in the distributor: each CPU
//! disables its own (GICD_ICENABLER0), and there is no WAKER.

use super::busy;
use super::common::skip_plain;
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::smp;
use guestlib::arch::vectors::probe_store;
use guestlib::arch::{psci, time};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, TestResult, ensure, gprintln, msg};

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
    probe_store(addr, 4, v.into()).is_err()
}

/// GICv2 GICD_ICENABLER0 (banked: the calling CPU's SGIs and PPIs).
const GICD_ICENABLER0: u64 = 0x180;

fn wreck(env: &Env) -> TestResult {
    if env.is_gicv2() {
        let aborts =
            wr32(env.gicd, 0) as u32 + wr32(env.gicd + GICD_ICENABLER0, 0xFFFF_FFFF) as u32;
        gprintln!("gic_off: {} of 2 GIC stores aborted", aborts);
        return Ok(());
    }
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

/// Each secondary also wrecks its own view, then counts with interrupts
/// unmasked.
fn spin_job(idx: usize, ctx: u64) {
    let env = guestlib::env();
    if env.is_gicv2() {
        wr32(env.gicd + GICD_ICENABLER0, 0xFFFF_FFFF);
    } else {
        let rd = env.gicr + idx as u64 * GICR_STRIDE;
        wr32(rd + SGI_FRAME + ICENABLER0, 0xFFFF_FFFF);
        wr32(rd + WAKER, 2);
    }
    busy::unmasked_job(idx, ctx);
}

fn run(env: &Env, job: smp::Job) -> TestResult {
    wreck(env)?;
    for round in 0..2 {
        let n = busy::start_all(env, job, None).map_err(|e| msg!("round {}: {}", round, e))?;
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
        let before = [busy::count(1), busy::count(env.ncpus - 1)];
        time::delay_us(20_000);
        ensure!(
            before == [busy::count(1), busy::count(env.ncpus - 1)],
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
    run(env, busy::masked_job)
}
