//! Containment: guest loads/stores to hypervisor memory and to unmapped
//! space abort at EL1 (the guest's vector records the abort and skips the
//! instruction), the hypervisor keeps serving every CPU, and (checked by the
//! harness) it traces a line with `fault` in it.

use super::common::*;
use core::sync::atomic::{AtomicU64, Ordering::*};
use guestlib::abi::*;
use guestlib::arch::smp;
use guestlib::framework::{Suite, Test};
use guestlib::time::spin_until;
use guestlib::{
    Abort, Env, TestResult, ensure, msg, probe_exec, probe_ld1, probe_ldadd, probe_ldp, probe_ldxr,
    probe_read, probe_stp, probe_write, psci,
};

pub static SUITE: Suite<Env> = Suite {
    name: "containment",
    tests: &TESTS,
};

static TESTS: [Test<Env>; 11] = [
    Test::new("ram_access_not_aborted", ram_access_not_aborted),
    Test::new("hv_image_read", hv_image_read).skip_if(skip_plain),
    Test::new("hv_image_write", hv_image_write).skip_if(skip_plain),
    Test::new("hv_region_edges", hv_region_edges).skip_if(skip_plain),
    Test::new("unmapped_read_write", unmapped_read_write),
    Test::new("hv_image_other_access_kinds", hv_image_other_access_kinds).skip_if(skip_plain),
    Test::new("unmapped_other_access_kinds", unmapped_other_access_kinds),
    Test::new("exec_outside_ram", exec_outside_ram),
    Test::new("mmio_pair_access", mmio_pair_access).skip_if(skip_plain),
    Test::new("faults_on_every_cpu", faults_on_every_cpu)
        .cpus(2)
        .skip_if(skip_plain),
    Test::new("others_served_during_faults", others_served_during_faults)
        .cpus(2)
        .skip_if(skip_plain),
];

/// parkvisor's image (linked at 0x4020_0000).
const HV_IMAGE: u64 = 0x4020_0000;
const HV_START: u64 = 0x4000_0000;
const HV_END: u64 = 0x4400_0000;

fn check_abort(what: &str, addr: u64, ab: Abort) -> TestResult {
    ensure!(
        ab.is_data_abort_same_el(),
        "{} {:#x}: exception class {:#x} (ESR {:#x}), expected a data abort (0x25)",
        what,
        addr,
        ab.ec(),
        ab.esr
    );
    ensure!(ab.far == addr, "{} {:#x}: FAR = {:#x}", what, addr, ab.far);
    Ok(())
}

fn expect_read_abort(addr: u64) -> TestResult {
    match probe_read(addr) {
        Ok(v) => Err(msg!("load from {:#x} succeeded (read {:#x})", addr, v)),
        Err(ab) => check_abort("load", addr, ab),
    }
}

fn expect_write_abort(addr: u64) -> TestResult {
    match probe_write(addr, 0xDEAD_BEEF_DEAD_BEEF) {
        Ok(()) => Err(msg!("store to {:#x} succeeded", addr)),
        Err(ab) => check_abort("store", addr, ab),
    }
}

fn still_served() -> TestResult {
    let v = psci::hvc().version();
    ensure!(
        v == PSCI_VERSION_1_1,
        "PSCI_VERSION after the fault = {:#x}",
        v
    );
    Ok(())
}

/// The probes themselves: guest RAM reads and writes go through without an
/// abort (so an abort seen below really comes from the address).
fn ram_access_not_aborted(env: &Env) -> TestResult {
    static CELL: AtomicU64 = AtomicU64::new(0x1234_5678_9ABC_DEF0);
    let a = CELL.as_ptr() as u64;
    ensure!(env.in_ram(a, 8), "probe cell {:#x} is not in guest RAM", a);
    match probe_read(a) {
        Ok(v) => ensure!(
            v == 0x1234_5678_9ABC_DEF0,
            "probe read {:#x}, expected the cell's value",
            v
        ),
        Err(ab) => {
            return Err(msg!(
                "load from guest RAM {:#x} aborted: ESR {:#x}",
                a,
                ab.esr
            ));
        }
    }
    if let Err(ab) = probe_write(a, 0x0FED_CBA9) {
        return Err(msg!(
            "store to guest RAM {:#x} aborted: ESR {:#x}",
            a,
            ab.esr
        ));
    }
    ensure!(
        CELL.load(Acquire) == 0x0FED_CBA9,
        "probe store did not land"
    );
    Ok(())
}

fn hv_image_read(_env: &Env) -> TestResult {
    expect_read_abort(HV_IMAGE)?;
    expect_read_abort(HV_IMAGE + 0x1008)?;
    still_served()
}

fn hv_image_write(_env: &Env) -> TestResult {
    expect_write_abort(HV_IMAGE)?;
    expect_write_abort(HV_IMAGE + 0x2000)?;
    still_served()
}

fn hv_region_edges(_env: &Env) -> TestResult {
    for a in [HV_START, HV_END - 8] {
        expect_read_abort(a)?;
        expect_write_abort(a)?;
    }
    still_served()
}

fn unmapped_addrs(env: &Env) -> [u64; 2] {
    [env.ram_end() + 0x1000_0000, env.ram_end() + 0x2000_0008]
}

fn unmapped_read_write(env: &Env) -> TestResult {
    for a in unmapped_addrs(env) {
        ensure!(!env.in_ram(a, 8), "{:#x} is RAM?", a);
        expect_read_abort(a)?;
        expect_write_abort(a)?;
    }
    still_served()
}

/// Load/store forms the hypervisor cannot decode as simple MMIO (no valid
/// instruction syndrome for pairs, SIMD, exclusives, atomics): each must
/// still end in a data abort at `addr`.
fn other_access_kinds(addr: u64) -> TestResult {
    type Probe = fn(u64) -> Result<(), Abort>;
    let kinds: [(&str, Probe); 5] = [
        ("ldp", probe_ldp),
        ("stp", probe_stp),
        ("ldxr", probe_ldxr),
        ("ld1 (SIMD)", probe_ld1),
        ("ldadd (LSE atomic)", probe_ldadd),
    ];
    for (name, probe) in kinds {
        match probe(addr) {
            Ok(()) => return Err(msg!("{} at {:#x} did not abort", name, addr)),
            Err(ab) => {
                ensure!(
                    ab.is_data_abort_same_el(),
                    "{} at {:#x}: exception class {:#x} (ESR {:#x}), expected a data abort",
                    name,
                    addr,
                    ab.ec(),
                    ab.esr
                );
                ensure!(
                    ab.far >= addr && ab.far < addr + 16,
                    "{} at {:#x}: FAR = {:#x}",
                    name,
                    addr,
                    ab.far
                );
            }
        }
    }
    still_served()
}

fn hv_image_other_access_kinds(_env: &Env) -> TestResult {
    other_access_kinds(HV_IMAGE + 0x40)
}

fn unmapped_other_access_kinds(env: &Env) -> TestResult {
    other_access_kinds(unmapped_addrs(env)[0] + 0x40)
}

/// Branching into the hypervisor's image or unmapped space is an
/// instruction abort at EL1 (the vector returns to the caller).
fn exec_outside_ram(env: &Env) -> TestResult {
    let addrs = [unmapped_addrs(env)[0], HV_IMAGE];
    let n = if env.opts().plain() { 1 } else { 2 };
    for &a in &addrs[..n] {
        match probe_exec(a) {
            Ok(()) => return Err(msg!("executing at {:#x} returned normally", a)),
            Err(ab) => {
                ensure!(
                    ab.ec() == 0x21,
                    "executing at {:#x}: exception class {:#x} (ESR {:#x}), expected an instruction abort (0x21)",
                    a,
                    ab.ec(),
                    ab.esr
                );
                ensure!(ab.far == a, "executing at {:#x}: FAR = {:#x}", a, ab.far);
            }
        }
    }
    still_served()
}

/// A load pair from emulated MMIO (the UART, the GIC distributor) cannot be
/// emulated from the syndrome: the hypervisor may abort it or serve it, but
/// must survive and keep serving.
fn mmio_pair_access(env: &Env) -> TestResult {
    let mut targets = [0x0900_0018u64, env.gicd + 0x8];
    if env.gicd == 0 {
        targets[1] = targets[0];
    }
    for a in targets {
        let _ = probe_ldp(a);
        let _ = probe_ld1(a);
        still_served()?;
    }
    Ok(())
}

static STOP: AtomicU64 = AtomicU64::new(0);
const S_FAULT_OK: usize = 0;
const S_CALLS: usize = 1;
const S_BAD_CALLS: usize = 2;
const S_STARTED: usize = 3;

fn fault_job(idx: usize, _ctx: u64) {
    let env = guestlib::env();
    let s = smp::slot(idx);
    s.scratch[S_STARTED].store(1, Release);
    let mut ok = true;
    for a in [HV_IMAGE + 0x100 * idx as u64, unmapped_addrs(env)[0]] {
        ok &= expect_read_abort(a).is_ok();
        ok &= expect_write_abort(a).is_ok();
    }
    s.scratch[S_FAULT_OK].store(if ok { 1 } else { 2 }, Release);
    // Keep being served after the faults.
    for _ in 0..50 {
        if psci::hvc().affinity_info(env.mpidr(idx), 0) != AFF_ON {
            s.scratch[S_BAD_CALLS].fetch_add(1, Relaxed);
        }
        s.scratch[S_CALLS].fetch_add(1, Release);
    }
}

fn faults_on_every_cpu(env: &Env) -> TestResult {
    for idx in env.secondaries() {
        smp::slot(idx).clear_scratch();
    }
    // All secondaries fault at about the same time while the boot CPU does too.
    for idx in env.secondaries() {
        let st = smp::cpu_on(env, idx, fault_job, cookie());
        ensure!(st == SUCCESS, "CPU_ON(cpu{}) = {}", idx, st);
    }
    expect_read_abort(HV_IMAGE)?;
    for idx in env.secondaries() {
        let s = smp::slot(idx);
        ensure!(
            spin_until(5_000_000, || s.scratch[S_CALLS].load(Acquire) == 50),
            "cpu{} stalled: {} PSCI calls answered after its faults (fault check {})",
            idx,
            s.scratch[S_CALLS].load(Acquire),
            s.scratch[S_FAULT_OK].load(Acquire)
        );
        ensure!(
            s.scratch[S_FAULT_OK].load(Acquire) == 1,
            "cpu{}: its loads/stores did not all abort as expected",
            idx
        );
        ensure!(
            s.scratch[S_BAD_CALLS].load(Acquire) == 0,
            "cpu{}: wrong AFFINITY_INFO(self) after its faults",
            idx
        );
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    // CPU_ON/OFF still work for every CPU.
    for idx in env.secondaries() {
        smp::start(env, idx, nop_job, cookie())?;
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    still_served()
}

fn caller_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[S_STARTED].store(1, Release);
    while STOP.load(Acquire) == 0 && !smp::aborting() {
        if psci::hvc().version() != PSCI_VERSION_1_1 {
            s.scratch[S_BAD_CALLS].fetch_add(1, Relaxed);
        }
        s.scratch[S_CALLS].fetch_add(1, Release);
    }
}

fn others_served_during_faults(env: &Env) -> TestResult {
    STOP.store(0, Release);
    for idx in env.secondaries() {
        smp::slot(idx).clear_scratch();
        smp::start(env, idx, caller_job, cookie())?;
    }
    let mut before = [0u64; guestlib::MAX_CPUS];
    for idx in env.secondaries() {
        ensure!(
            spin_until(smp::ENTRY_TIMEOUT_US, || smp::slot(idx).scratch[S_CALLS]
                .load(Acquire)
                > 0),
            "cpu{} made no PSCI call",
            idx
        );
        before[idx] = smp::slot(idx).scratch[S_CALLS].load(Acquire);
    }
    let mut faults = 0;
    for i in 0..40u64 {
        let r = if i % 2 == 0 {
            expect_read_abort(HV_IMAGE + 8 * i)
        } else {
            expect_write_abort(env.ram_end() + 0x1000_0000 + 8 * i)
        };
        r?;
        faults += 1;
    }
    // Every other CPU kept being answered while the boot CPU faulted.
    for idx in env.secondaries() {
        let s = smp::slot(idx);
        let ok = spin_until(smp::ENTRY_TIMEOUT_US, || {
            s.scratch[S_CALLS].load(Acquire) > before[idx] + 5
        });
        ensure!(
            ok,
            "cpu{} got no PSCI answers during/after {} faults on cpu{}",
            idx,
            faults,
            env.boot_idx
        );
        ensure!(
            s.scratch[S_BAD_CALLS].load(Acquire) == 0,
            "cpu{} got wrong PSCI_VERSION answers",
            idx
        );
    }
    STOP.store(1, Release);
    for idx in env.secondaries() {
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    still_served()
}
