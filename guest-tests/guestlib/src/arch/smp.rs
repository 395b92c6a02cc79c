//! Secondary CPUs: per-CPU slots, starting CPUs with a job, waiting for
//! their states, and the cleanup that puts every secondary back to OFF.
//!
//! Each CPU has a [`Slot`]. Before CPU_ON the controller stores a [`Job`] in
//! the target's slot; the entry trampoline records the entry state, then the
//! job runs on the slot's stack. When the job returns, the CPU calls CPU_OFF
//! through the conduit in [`Slot::off_conduit`]. If CPU_OFF ever returns, the
//! slot counts it in [`Slot::off_returned`] and the CPU parks in a WFE loop.

use super::call::Conduit;
use super::psci;
use super::time::{self, spin_until};
use crate::abi::{self, AFF_OFF};
use crate::env::{Env, MAX_CPUS};
use crate::msg::Msg;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};

/// How long a CPU may take from CPU_ON to its entry point, and from CPU_OFF
/// to reading OFF, before a test calls it lost. Generous: TCG with more
/// vCPUs than host cores can stall a vCPU for a while.
pub const ENTRY_TIMEOUT_US: u64 = 10_000_000;
pub const OFF_TIMEOUT_US: u64 = 10_000_000;
/// How long a job waits for the controller (who may be starved of host
/// time while several busy vCPUs share two host cores); cleanup cuts such
/// waits short anyway.
pub const JOB_WAIT_US: u64 = 60_000_000;

/// Secondary stack size per CPU.
pub const STACK_SIZE: usize = 16 * 1024;

/// Entry state as recorded by the trampolines (written from assembly: keep
/// `repr(C)` and the field order in sync with `entry.rs`, which uses
/// `offset_of!`).
#[repr(C)]
pub struct EntryRecord {
    /// Incremented last, after the other fields are written.
    pub entries: AtomicU64,
    pub x0: AtomicU64,
    pub x1: AtomicU64,
    pub x2: AtomicU64,
    pub x3: AtomicU64,
    /// 1 when the entry's first instruction did not execute.
    pub skipped: AtomicU64,
    /// Which entry point ran (`TAG_ENTRY`, `TAG_ENTRY_ALT`).
    pub tag: AtomicU64,
    pub daif: AtomicU64,
    pub current_el: AtomicU64,
    pub spsel: AtomicU64,
    pub sctlr: AtomicU64,
    pub mpidr: AtomicU64,
}

impl EntryRecord {
    pub const fn new() -> Self {
        Self {
            entries: AtomicU64::new(0),
            x0: AtomicU64::new(0),
            x1: AtomicU64::new(0),
            x2: AtomicU64::new(0),
            x3: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            tag: AtomicU64::new(0),
            daif: AtomicU64::new(0),
            current_el: AtomicU64::new(0),
            spsel: AtomicU64::new(0),
            sctlr: AtomicU64::new(0),
            mpidr: AtomicU64::new(0),
        }
    }

    /// Checks the architectural cold-boot state a CPU_ON target must see:
    /// EL1h, DAIF all masked, MMU off, little-endian, first instruction
    /// executed, and x0 = `ctx`.
    pub fn check_cold_entry(&self, ctx: u64) -> Result<(), Msg> {
        let x0 = self.x0.load(Acquire);
        crate::ensure!(x0 == ctx, "x0 = {:#x}, expected context_id {:#x}", x0, ctx);
        crate::ensure!(
            self.skipped.load(Acquire) == 0,
            "first instruction at the entry point was skipped"
        );
        let el = (self.current_el.load(Acquire) >> 2) & 3;
        crate::ensure!(el == 1, "entered at EL{}, expected EL1", el);
        let spsel = self.spsel.load(Acquire) & 1;
        crate::ensure!(spsel == 1, "entered in EL1t (SPSel=0), expected EL1h");
        let daif = self.daif.load(Acquire) & 0x3C0;
        crate::ensure!(
            daif == 0x3C0,
            "DAIF = {:#x}, expected 0x3c0 (all masked)",
            daif
        );
        let sctlr = self.sctlr.load(Acquire);
        crate::ensure!(
            sctlr & 1 == 0,
            "SCTLR_EL1.M = 1 (MMU on) at entry, SCTLR={:#x}",
            sctlr
        );
        crate::ensure!(
            sctlr & (1 << 25) == 0,
            "SCTLR_EL1.EE = 1 (big-endian) at entry"
        );
        Ok(())
    }
}

impl Default for EntryRecord {
    fn default() -> Self {
        Self::new()
    }
}

/// A job run by a secondary: `(cpu index, context_id)`.
pub type Job = fn(usize, u64);

/// Per-CPU shared state.
#[repr(C, align(64))]
pub struct Slot {
    pub rec: EntryRecord,
    /// The [`Job`] to run after the next entry (0 = none: go straight off).
    pub job: AtomicUsize,
    /// Conduit for the CPU_OFF after the job (0 HVC, 1 SMC).
    pub off_conduit: AtomicU64,
    /// Times CPU_OFF returned to this CPU (must stay 0).
    pub off_returned: AtomicU64,
    /// Status that CPU_OFF returned last.
    pub off_status: AtomicU64,
    /// 1 while the job runs.
    pub running: AtomicU64,
    /// Exception containment: while `expect_abort` is set, a synchronous
    /// exception is recorded here and the faulting instruction skipped.
    pub expect_abort: AtomicU64,
    pub abort_count: AtomicU64,
    pub abort_esr: AtomicU64,
    pub abort_far: AtomicU64,
    pub abort_elr: AtomicU64,
    pub abort_pstate: AtomicU64,
    /// Free for tests.
    pub scratch: [AtomicU64; 8],
}

impl Slot {
    pub const fn new() -> Self {
        Self {
            rec: EntryRecord::new(),
            job: AtomicUsize::new(0),
            off_conduit: AtomicU64::new(0),
            off_returned: AtomicU64::new(0),
            off_status: AtomicU64::new(0),
            running: AtomicU64::new(0),
            expect_abort: AtomicU64::new(0),
            abort_count: AtomicU64::new(0),
            abort_esr: AtomicU64::new(0),
            abort_far: AtomicU64::new(0),
            abort_elr: AtomicU64::new(0),
            abort_pstate: AtomicU64::new(0),
            scratch: [const { AtomicU64::new(0) }; 8],
        }
    }

    pub fn entries(&self) -> u64 {
        self.rec.entries.load(Acquire)
    }

    pub fn set_job(&self, job: Job) {
        self.job.store(job as usize, Release);
    }

    pub fn clear_scratch(&self) {
        for s in &self.scratch {
            s.store(0, Relaxed);
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

#[unsafe(no_mangle)]
pub static SLOTS: [Slot; MAX_CPUS] = [const { Slot::new() }; MAX_CPUS];

/// The boot CPU's entry state (x0..x3 = DTB, 0, 0, 0 expected).
#[unsafe(no_mangle)]
pub static BOOT_RECORD: EntryRecord = EntryRecord::new();

/// Entries whose x0 named no slot: `[count, x0, x1, MPIDR_EL1]` of the last
/// one (a hypervisor passing context_id somewhere other than x0 ends here).
#[unsafe(no_mangle)]
pub static BAD_ENTRY: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Why CPU `idx` did not show up at its entry point, for messages.
pub fn no_entry_reason(idx: usize) -> Msg {
    let n = BAD_ENTRY[0].load(Acquire);
    if n == 0 {
        crate::msg!("cpu{} never reached its entry point", idx)
    } else {
        crate::msg!(
            "cpu{} never reached its entry point; {} entr{} with a context_id naming no CPU: x0={:#x} x1={:#x} MPIDR={:#x}",
            idx,
            n,
            if n == 1 { "y" } else { "ies" },
            BAD_ENTRY[1].load(Relaxed),
            BAD_ENTRY[2].load(Relaxed),
            BAD_ENTRY[3].load(Relaxed)
        )
    }
}

#[repr(C, align(16))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_CPUS]);

#[unsafe(no_mangle)]
pub static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

/// Set by [`cleanup`] to make every job's waits give up.
static ABORT: AtomicBool = AtomicBool::new(false);

/// Whether jobs should stop waiting and return (test cleanup in progress).
pub fn aborting() -> bool {
    ABORT.load(Relaxed)
}

/// Linear index of the calling CPU (TPIDR_EL1, set at entry).
pub fn this_cpu() -> usize {
    let v: u64;
    // SAFETY: reading TPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) v, options(nomem, nostack)) };
    v as usize
}

pub(crate) fn set_this_cpu(idx: usize) {
    // SAFETY: TPIDR_EL1 is ours.
    unsafe { core::arch::asm!("msr tpidr_el1, {}", in(reg) idx as u64, options(nomem, nostack)) };
}

pub fn slot(idx: usize) -> &'static Slot {
    &SLOTS[idx]
}

/// context_id for CPU `idx`: the low 8 bits select the slot, `cookie` fills
/// the rest (so tests can check all 64 bits arrive).
pub const fn ctx(idx: usize, cookie: u64) -> u64 {
    (cookie << 8) | (idx as u64 & 0xFF)
}

#[unsafe(no_mangle)]
extern "C" fn guest_secondary_rust(idx: usize, ctx: u64) -> ! {
    let slot = &SLOTS[idx];
    slot.running.store(1, Release);
    let job = slot.job.load(Acquire);
    if job != 0 {
        // SAFETY: only `Job` values are ever stored in `job`.
        let f: Job = unsafe { core::mem::transmute::<usize, Job>(job) };
        f(idx, ctx);
    }
    slot.running.store(0, Release);
    let conduit = if slot.off_conduit.load(Acquire) == 1 {
        Conduit::Smc
    } else {
        Conduit::Hvc
    };
    off_self(conduit)
}

/// CPU_OFF for the calling secondary. If CPU_OFF returns, the return is
/// recorded in the slot (tests check [`Slot::off_returned`]) and the CPU
/// parks forever.
pub fn off_self(conduit: Conduit) -> ! {
    let slot = &SLOTS[this_cpu()];
    let st = psci::Psci(conduit).cpu_off();
    slot.off_status.store(st as i64 as u64, Release);
    slot.off_returned.fetch_add(1, AcqRel);
    loop {
        // SAFETY: just waits.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}

/// How to issue a CPU_ON.
#[derive(Clone, Copy, Debug)]
pub struct OnArgs {
    pub entry: u64,
    pub ctx: u64,
    pub conduit: Conduit,
    /// Use CPU_ON_32 instead of CPU_ON_64.
    pub smc32: bool,
}

/// Stores `job` for CPU `idx`, sets its CPU_OFF conduit and issues CPU_ON
/// with the standard entry point and `ctx(idx, cookie)`. Returns the PSCI
/// status.
pub fn cpu_on(env: &Env, idx: usize, job: Job, cookie: u64) -> i32 {
    let args = OnArgs {
        entry: super::entry_point(),
        ctx: ctx(idx, cookie),
        conduit: Conduit::Hvc,
        smc32: false,
    };
    cpu_on_with(env, idx, job, Conduit::Hvc, args)
}

/// Like [`cpu_on`] with every knob.
pub fn cpu_on_with(env: &Env, idx: usize, job: Job, off_conduit: Conduit, a: OnArgs) -> i32 {
    let slot = &SLOTS[idx];
    slot.set_job(job);
    slot.off_conduit
        .store(if off_conduit == Conduit::Smc { 1 } else { 0 }, Release);
    let p = psci::Psci(a.conduit);
    if a.smc32 {
        p.cpu_on32(env.mpidr(idx) as u32, a.entry as u32, a.ctx as u32)
    } else {
        p.cpu_on(env.mpidr(idx), a.entry, a.ctx)
    }
}

/// Waits until CPU `idx` has entered more than `before` times.
pub fn wait_entered(idx: usize, before: u64, timeout_us: u64) -> bool {
    spin_until(timeout_us, || SLOTS[idx].entries() > before)
}

/// Polls AFFINITY_INFO(level 0) until CPU `idx` reports `state`; returns the
/// last state seen on timeout.
pub fn wait_aff(env: &Env, idx: usize, state: i32, timeout_us: u64) -> Result<(), i32> {
    let mut last = 0;
    if spin_until(timeout_us, || {
        last = psci::hvc().affinity_info(env.mpidr(idx), 0);
        last == state
    }) {
        Ok(())
    } else {
        Err(last)
    }
}

/// Starts CPU `idx` with `job` and waits for its entry; fails with a reason.
pub fn start(env: &Env, idx: usize, job: Job, cookie: u64) -> Result<(), Msg> {
    let before = SLOTS[idx].entries();
    let st = cpu_on(env, idx, job, cookie);
    crate::ensure!(
        st == abi::SUCCESS,
        "CPU_ON(cpu{}) = {} ({})",
        idx,
        st,
        abi::status_name(st)
    );
    if !wait_entered(idx, before, ENTRY_TIMEOUT_US) {
        return Err(no_entry_reason(idx));
    }
    Ok(())
}

/// Waits for CPU `idx` to be OFF (AFFINITY_INFO) and checks that CPU_OFF did
/// not return on it.
pub fn wait_off(env: &Env, idx: usize, timeout_us: u64) -> Result<(), Msg> {
    if let Err(last) = wait_aff(env, idx, AFF_OFF, timeout_us) {
        return Err(crate::msg!(
            "cpu{} not OFF after {} ms (AFFINITY_INFO = {})",
            idx,
            timeout_us / 1000,
            last
        ));
    }
    let r = SLOTS[idx].off_returned.load(Acquire);
    crate::ensure!(
        r == 0,
        "CPU_OFF returned on cpu{} (status {})",
        idx,
        SLOTS[idx].off_status.load(Acquire) as i64
    );
    Ok(())
}

/// Puts every secondary back to OFF after a test: jobs' waits are told to
/// give up, then each CPU must reach OFF. Also reports a CPU_OFF that
/// returned during the test.
pub fn cleanup(env: &Env) -> Result<(), Msg> {
    ABORT.store(true, SeqCst);
    let mut res = Ok(());
    for idx in env.secondaries() {
        if res.is_ok() {
            res = wait_off(env, idx, OFF_TIMEOUT_US);
        }
    }
    ABORT.store(false, SeqCst);
    for slot in &SLOTS[..env.ncpus] {
        slot.expect_abort.store(0, SeqCst);
    }
    res
}

/// Busy-waits (with a bound) until `f` holds or a cleanup aborts; for jobs.
pub fn job_wait(timeout_us: u64, mut f: impl FnMut() -> bool) -> bool {
    spin_until(timeout_us, || f() || aborting()) && !aborting()
}

/// Delay helper re-exported for jobs.
pub fn delay_us(us: u64) {
    time::delay_us(us)
}
