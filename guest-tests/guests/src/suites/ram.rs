//! `ram`: guest RAM above 4 GiB (run with the harness's `--mem 4G` or more).
//!
//! * save_regs_above_4g: FAST_STOP with SAVE_REGS into an area just above
//!   4 GiB and one in the last GiB of RAM: every entry holds its vCPU's
//!   MPIDR, the caller's status 0, each spinning secondary's status 1 and a
//!   PC inside its spin. The hypervisor writes these areas through its own
//!   map, which must cover all of RAM (it covered 4 GiB only).
//! * top_of_ram: the guest reads and writes the highest RAM page that holds
//!   no DTB (the hypervisor put the guest DTB at the top of RAM; booting at
//!   all shows that it can write there).
//!
//! With RAM ending at or below 4 GiB both tests are skipped.

use super::busy;
use super::common::skip_plain;
use super::fast_stop::{deadline_us, rescue};
use guestlib::abi::*;
use guestlib::arch::vectors::{probe_read, probe_write};
use guestlib::arch::{marked_spin, smp, time, vendor};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, Msg, TestResult, ensure, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "ram",
    tests: &[
        Test::new("save_regs_above_4g", save_regs_above_4g).skip_if(skip_small_or_plain),
        Test::new("top_of_ram", top_of_ram).skip_if(skip_small),
    ],
};

const FOUR_GIB: u64 = 1 << 32;
const GIB: u64 = 1 << 30;

fn skip_small(env: &Env) -> Option<Msg> {
    (env.ram_end() < FOUR_GIB + (16 << 20))
        .then(|| msg!("RAM ends at {:#x}: nothing above 4 GiB", env.ram_end()))
}

fn skip_small_or_plain(env: &Env) -> Option<Msg> {
    skip_plain(env).or_else(|| skip_small(env))
}

fn spin_job(idx: usize, _ctx: u64) {
    smp::slot(idx).scratch[busy::S_COUNT].store(1, core::sync::atomic::Ordering::Release);
    marked_spin::spin(idx)
}

fn save_regs_above_4g(env: &Env) -> TestResult {
    let last_gib = (env.ram_end() - GIB) & !(GIB - 1);
    rescue(save_regs_at(env, FOUR_GIB))?;
    if last_gib > FOUR_GIB {
        rescue(save_regs_at(env, last_gib))?;
    }
    Ok(())
}

fn save_regs_at(env: &Env, base: u64) -> TestResult {
    let words = env.ncpus * SAVE_ENTRY_WORDS;
    ensure!(
        env.in_ram(base, (words * 8) as u64),
        "save area {:#x} not in RAM",
        base
    );
    // Guest RAM nothing else uses: above the image, stacks and heap (all
    // low), below the DTB (top 2 MiB).
    for i in 0..words as u64 {
        probe_write(base + 8 * i, u64::MAX)
            .map_err(|a| msg!("RAM at {:#x}: {:?}", base + 8 * i, a))?;
    }
    let n = busy::start_all(env, spin_job, None)?;
    time::delay_us(10_000);
    let r = vendor::fast_stop_save_at(deadline_us(), base, (words * 8) as u64);
    ensure!(
        r.status == SUCCESS && r.stopped == n && r.missed == 0,
        "FAST_STOP with SAVE_REGS at {:#x}: x0 {} x1 {} x2 {}, expected 0 {} 0",
        base,
        r.status,
        r.stopped,
        r.missed,
        n
    );
    let (lo, hi) = marked_spin::range();
    for idx in 0..env.ncpus {
        let entry = base + (idx * SAVE_ENTRY_WORDS * 8) as u64;
        let word = |i: u64| {
            probe_read(entry + 8 * i).map_err(|a| msg!("RAM at {:#x}: {:?}", entry + 8 * i, a))
        };
        let (mpidr, status, pc) = (word(0)?, word(1)?, word(34)?);
        let want = mpidr_aff(env.mpidr(idx));
        ensure!(
            mpidr == want,
            "area {:#x} entry {}: mpidr {:#x}, expected {:#x}",
            base,
            idx,
            mpidr,
            want
        );
        let ok = if idx == env.boot_idx {
            status == 0
        } else {
            status == 1 && (lo..hi).contains(&pc)
        };
        ensure!(
            ok,
            "area {:#x} cpu{}: status {} pc {:#x}",
            base,
            idx,
            status,
            pc
        );
    }
    Ok(())
}

fn top_of_ram(env: &Env) -> TestResult {
    // 2 MiB below the top: the DTB has the top 2 MiB block.
    let page = env.ram_end() - (4 << 20);
    for i in 0..512 {
        probe_write(page + 8 * i, 0x7a11_0000 + i)
            .map_err(|a| msg!("write {:#x}: {:?}", page + 8 * i, a))?;
    }
    for i in 0..512 {
        let v = probe_read(page + 8 * i).map_err(|a| msg!("read {:#x}: {:?}", page + 8 * i, a))?;
        ensure!(
            v == 0x7a11_0000 + i,
            "RAM at {:#x} reads back {:#x}",
            page + 8 * i,
            v
        );
    }
    Ok(())
}
