//! The `fuzz` suite's GIC and hypercall fuzzer (test `gic_and_calls`):
//! every vCPU at once makes random
//! * GICD and GICR accesses (any offset, width 1/2/4/8, read or write,
//!   the frames of other CPUs and of CPUs that do not exist);
//! * ICC system register accesses, SGIs through ICC_SGI1R/SGI0R/ASGI1R;
//! * PSCI and vendor calls with random IDs and arguments (HVC and SMC),
//!   and the power calls with the bookkeeping that keeps the run going:
//!   CPU_OFF of itself, CPU_ON of an OFF CPU, CPU_SUSPEND (standby and
//!   powerdown), and, on the boot CPU, FAST_STOP with random flags;
//! * the same memory, SGI and call instructions as one-instruction stubs at
//!   EL1, AArch64 EL0 and AArch32 EL0 (`guestlib::arch::stub`), half of
//!   them single-stepped (MDSCR_EL1.SS);
//! * short windows with interrupts unmasked that take whatever is pending.
//!
//! Properties: the hypervisor never panics (the harness sees its panic line
//! or the missing power-off); no vCPU that is meant to run (it is ON and
//! not in a call that parks it) stops making progress for longer than the
//! stall limit: per-CPU progress counters, watched by the boot CPU; an
//! emulated instruction that is stepped ends in a step exception just
//! after it (+4, +2 for T32), one that is not ends at the stub's SVC; an
//! emulated T32 store in an IT block leaves the else-instruction unrun;
//! FAST_STOP stops every secondary at the end.
//!
//! Random writes never take away what a CPU needs to wake from a standby
//! CPU_SUSPEND (its virtual timer PPI 27 enabled, Group 1, priority, not
//! active; the distributor enabled); each CPU restores its own CPU
//! interface state (PMR, group enable, active priorities) before it waits.
//! With `fuzz_hostile=1` the PPI 27 and active-state protections are off.
//!
//! Guest options: `seed=N` (default: from the counter; printed), `fuzz_ops=N`
//! (boot CPU operations, 0 = no limit), `fuzz_ms=N` (time limit),
//! `fuzz_stall_ms=N` (progress deadline), `fuzz_strict=0` (only report, not
//! fail on, the stepping and IT-block properties; strict by default).

use super::common::cookie;
// The calls random IDs avoid (they end, suspend or restart a CPU or the
// system, or flood the console); the power calls have operations of their own.
use super::fuzz::forbidden;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call, hvc5};
use guestlib::arch::icc::{self, Icc};
use guestlib::arch::stub::{self, A64, Level, T32};
use guestlib::arch::vectors::{probe_load, probe_store, set_irq_handler};
use guestlib::arch::{cpu, gic, smp, time};
use guestlib::{Env, MAX_CPUS, TestResult, ensure, gprintln};

/// Per-CPU run states, as the fuzzer's bookkeeping sees them.
const ST_OFF: u64 = 0;
const ST_STARTING: u64 = 1;
const ST_RUN: u64 = 2;

static STATE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(ST_OFF) }; MAX_CPUS];
/// Operations done (the progress counter).
static PROGRESS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The operation in progress (for the stall report).
static LAST_OP: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Each CPU's random state, kept across its CPU_OFF/CPU_ON.
static RNG: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// When a STARTING CPU was started (counter ticks).
static STARTED_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Interrupts taken, per CPU.
static IRQS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Fuzzing is over: workers count in place until FAST_STOP.
static STOP: AtomicBool = AtomicBool::new(false);
static HOSTILE: AtomicBool = AtomicBool::new(false);
/// `fuzz_trace=1`: print every operation (slow; for replaying a seed).
static TRACE: AtomicBool = AtomicBool::new(false);

/// Property violations: count, and the first one's details.
struct Finding {
    count: AtomicU64,
    cpu: AtomicU64,
    what: AtomicU64,
    a: AtomicU64,
    b: AtomicU64,
}

impl Finding {
    const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            cpu: AtomicU64::new(0),
            what: AtomicU64::new(0),
            a: AtomicU64::new(0),
            b: AtomicU64::new(0),
        }
    }

    fn record(&self, cpu: usize, what: u64, a: u64, b: u64) {
        if self.count.fetch_add(1, AcqRel) == 0 {
            self.cpu.store(cpu as u64, Relaxed);
            self.what.store(what, Relaxed);
            self.a.store(a, Relaxed);
            self.b.store(b, Relaxed);
        }
    }

    fn reset(&self) {
        self.count.store(0, Relaxed);
    }
}

/// A stepped emulated instruction did not end in a step exception at +4
/// (what: stub code address; a: exit ESR; b: exit ELR).
static STEP_BAD: Finding = Finding::new();
/// An unstepped emulated instruction did not end at its stub's SVC.
static ADVANCE_BAD: Finding = Finding::new();
/// The else-instruction of an IT block ran after an emulated store.
static IT_BAD: Finding = Finding::new();
/// A call answered outside its specification (what: fid; a: x0; b: arg).
static CALL_BAD: Finding = Finding::new();

/// Operation codes (LAST_OP, counts).
const OP_GICD: u64 = 0;
const OP_GICR: u64 = 1;
const OP_ICC: u64 = 2;
const OP_SGI: u64 = 3;
const OP_CALL: u64 = 4;
const OP_STUB: u64 = 5;
const OP_IRQ: u64 = 6;
const OP_SUSPEND: u64 = 7;
const OP_INFO: u64 = 8;
const OP_CPU_ON: u64 = 9;
const OP_CPU_OFF: u64 = 10;
const OP_FAST_STOP: u64 = 11;
const OP_NAMES: [&str; 12] = [
    "gicd",
    "gicr",
    "icc",
    "sgi",
    "call",
    "stub",
    "irq",
    "suspend",
    "info",
    "cpu_on",
    "cpu_off",
    "fast_stop",
];
static OP_COUNT: [AtomicU64; 12] = [const { AtomicU64::new(0) }; 12];

const GICD_SIZE: u64 = 0x1_0000;
const GICR_FRAME: u64 = 0x2_0000;
const SGI_BASE: u64 = 0x1_0000;
const VTIMER: u32 = gic::VTIMER_INTID;
/// Hypervisor memory: never the guest's, an access is an injected abort.
const NOT_GUEST: u64 = 0x4020_0000;

/// Memory the stubs and calls may write (per CPU, 64 bytes each).
#[repr(C, align(64))]
struct Scratch([[AtomicU64; 8]; MAX_CPUS]);
static SCRATCH: Scratch = Scratch([const { [const { AtomicU64::new(0) }; 8] }; MAX_CPUS]);
/// FAST_STOP SAVE_REGS area for the boot CPU's random stops.
static SAVE_AREA: [AtomicU64; SAVE_ENTRY_WORDS * MAX_CPUS] =
    [const { AtomicU64::new(0) }; SAVE_ENTRY_WORDS * MAX_CPUS];

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

/// A well-mixed, non-zero per-CPU seed (splitmix64 of seed and index).
fn cpu_seed(seed: u64, idx: usize) -> u64 {
    let mut z = seed.wrapping_add((idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

struct Ctx<'a> {
    env: &'a Env,
    idx: usize,
    rng: u64,
}

impl Ctx<'_> {
    fn next(&mut self) -> u64 {
        xorshift(&mut self.rng)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn width(&mut self) -> u8 {
        [1u8, 2, 4, 8][self.below(4) as usize]
    }

    /// A random value, often a small or all-ones one.
    fn value(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(64),
            1 => u64::MAX,
            _ => self.next(),
        }
    }

    /// A random redistributor frame base: this CPU's, another's, or one
    /// past the last CPU (no such redistributor).
    fn gicr_frame(&mut self) -> u64 {
        let n = self.env.ncpus as u64;
        let i = match self.below(4) {
            0 => self.idx as u64,
            1 => n + self.below(3),
            _ => self.below(n),
        };
        self.env.gicr + i * GICR_FRAME
    }
}

/// Bits of a GICR SGI-frame register that random writes must leave alone
/// (so that every CPU can still wake from a standby CPU_SUSPEND on its
/// timer): `(offset, bit, the value the bit must have)`.
const KEEP_SGI: [(u64, u32, bool); 5] = [
    (0x080, VTIMER, true),  // IGROUPR0: Group 1
    (0x180, VTIMER, false), // ICENABLER0: not disabled
    (0x300, VTIMER, false), // ISACTIVER0: not made active
    (0x380, VTIMER, false), // ICACTIVER0: (hostile) not deactivated in flight
    (0xd00, VTIMER, false), // IGRPMODR0
];

/// The write of `value` (`width` bytes at `offset` of a redistributor)
/// made harmless for the CPUs' wake-ups, or None to skip it.
fn tame_gicr_write(offset: u64, width: u64, mut value: u64) -> Option<u64> {
    let end = offset + width;
    let overlaps = |start: u64, len: u64| offset < start + len && start < end;
    // RD frame: GICR_CTLR and GICR_WAKER (sleep, LPIs).
    if overlaps(0x0, 4) || overlaps(0x14, 4) {
        return None;
    }
    // PPI 27's priority byte and configuration word.
    if overlaps(SGI_BASE + 0x400 + u64::from(VTIMER), 1) || overlaps(SGI_BASE + 0xc04, 4) {
        return None;
    }
    let hostile = HOSTILE.load(Relaxed);
    for (reg, bit, set) in KEEP_SGI {
        if hostile && reg == 0x380 {
            continue;
        }
        let byte = SGI_BASE + reg + u64::from(bit / 8);
        if byte >= offset && byte < end {
            let shift = (byte - offset) * 8 + u64::from(bit % 8);
            if set {
                value |= 1 << shift;
            } else {
                value &= !(1 << shift);
            }
        }
    }
    Some(value)
}

/// One random access to the frame at `base` of `size` bytes, width-aligned.
fn mmio_access(c: &mut Ctx<'_>, base: u64, size: u64, tame: impl Fn(u64, u64, u64) -> Option<u64>) {
    let w = c.width();
    let offset = c.below(size) & !(u64::from(w) - 1);
    let addr = base + offset;
    if c.chance(50) {
        let _ = probe_load(addr, w);
    } else {
        let v = c.value();
        if let Some(v) = tame(offset, u64::from(w), v) {
            let _ = probe_store(addr, w, v);
        }
    }
}

fn gicd_op(c: &mut Ctx<'_>) {
    let base = c.env.gicd;
    // GICD_CTLR: never written (its group enables gate every CPU's timer).
    mmio_access(c, base, GICD_SIZE, |off, _, v| (off >= 4).then_some(v));
}

fn gicr_op(c: &mut Ctx<'_>) {
    let base = c.gicr_frame();
    mmio_access(c, base, GICR_FRAME, tame_gicr_write);
}

const ICC_CTLR_EOIMODE: u64 = 1 << 1;

/// Ends what `iar` acknowledged (and deactivates it with EOImode 1).
fn finish_interrupt(iar: u64) {
    icc::write(Icc::Eoir1, iar);
    if icc::read(Icc::Ctlr) & ICC_CTLR_EOIMODE != 0 {
        icc::write(Icc::Dir, iar);
    }
}

fn icc_op(c: &mut Ctx<'_>) {
    let v = c.value();
    match c.below(16) {
        0 => {
            let iar = icc::read(Icc::Iar1);
            if iar & 0xff_ffff < 1020 {
                IRQS[c.idx].fetch_add(1, Relaxed);
                finish_interrupt(iar);
            }
        }
        1 => {
            let _ = icc::read(Icc::Hppir1) + icc::read(Icc::Rpr) + icc::read(Icc::Sre);
        }
        2 => icc::write(Icc::Pmr, v & 0xff),
        3 => icc::write(Icc::Bpr1, v & 7),
        4 => icc::write(Icc::Ctlr, v),
        5 => icc::write(Icc::Igrpen1, v & 1),
        6 => icc::write(Icc::Ap1r0, v),
        7 => icc::write(Icc::Eoir1, v & 0x3ff),
        8 => icc::write(Icc::Dir, v & 0x3ff),
        9 => {
            let _ = icc::read(Icc::Pmr) + icc::read(Icc::Bpr1) + icc::read(Icc::Ctlr);
            let _ = icc::read(Icc::Igrpen1) + icc::read(Icc::Ap1r0);
        }
        10 => icc::write(Icc::Bpr0, v & 7),
        11 => {
            let _ = icc::read(Icc::Iar0) + icc::read(Icc::Hppir0);
        }
        12 => icc::write(Icc::Eoir0, v & 0x3ff),
        13 => icc::write(Icc::Igrpen0, v & 1),
        14 => icc::write(Icc::Ap0r0, v),
        _ => icc::write(Icc::Pmr, 0xff),
    }
}

/// A random SGI register value: mostly valid-looking targets, sometimes
/// anything (IRM, RS, other affinities, reserved bits).
fn sgi_value(c: &mut Ctx<'_>) -> u64 {
    if c.chance(20) {
        return c.next();
    }
    let target = c.below(c.env.ncpus as u64 + 1) as usize;
    let mpidr = c.env.mpidr(target.min(c.env.ncpus - 1));
    let intid = c.below(16);
    let irm = u64::from(c.chance(15));
    intid << 24
        | irm << 40
        | (mpidr >> 8 & 0xff) << 16
        | (mpidr >> 16 & 0xff) << 32
        | (mpidr >> 32 & 0xff) << 48
        | 1 << (mpidr & 0xf)
}

fn sgi_op(c: &mut Ctx<'_>) {
    let v = sgi_value(c);
    match c.below(3) {
        0 => icc::write(Icc::Sgi1r, v),
        1 => icc::write(Icc::Sgi0r, v),
        _ => icc::write(Icc::Asgi1r, v),
    }
}

fn random_fid(c: &mut Ctx<'_>) -> u32 {
    loop {
        let r = c.next();
        let hi = (r >> 32) as u32;
        let fid = match r % 8 {
            0 | 1 => hi,
            2 => 0x8400_0000 | (hi & 0x4000_001F),
            3 => 0x8600_0000 | (hi & 0x4000_00FF),
            4 => 0x8600_FF00 | (hi & 0x4000_00FF),
            5 => 0x8000_0000 | (hi & 0x4000_FFFF),
            6 => 0x8000_0000 | (hi & 0x7F00_FFFF),
            _ => 0x8500_0000 | (hi & 0x4000_00FF),
        };
        if !forbidden(fid) {
            return fid;
        }
    }
}

fn conduit(c: &mut Ctx<'_>) -> Conduit {
    if c.chance(50) {
        Conduit::Hvc
    } else {
        Conduit::Smc
    }
}

fn call_op(c: &mut Ctx<'_>) {
    let fid = random_fid(c);
    let (a1, a2, a3) = (c.value(), c.value(), c.value());
    let k = conduit(c);
    let r = call(k, fid, a1, a2, a3);
    let owner = (fid >> 24) & 0x3F;
    if !matches!(owner, 0 | 4 | 5 | 6) && status(r[0]) != NOT_SUPPORTED {
        CALL_BAD.record(c.idx, u64::from(fid), r[0], a1);
    }
}

/// A random MPIDR that names no CPU.
fn bad_mpidr(c: &mut Ctx<'_>) -> u64 {
    loop {
        let m = match c.below(3) {
            0 => c.next(),
            1 => c.below(256) << 8 | c.below(16),
            _ => c.env.ncpus as u64 + c.below(8),
        };
        if c.env.index_of(m & 0xff_00ff_ffff).is_none() && c.env.index_of(m).is_none() {
            return m;
        }
    }
}

/// PSCI and vendor calls with random arguments and known answers.
fn info_op(c: &mut Ctx<'_>) {
    let k = conduit(c);
    match c.below(5) {
        0 => {
            // CPU_ON of no CPU, any entry point: INVALID_PARAMETERS.
            let m = bad_mpidr(c);
            let (entry, ctx) = (c.next(), c.next());
            let r = call(k, 0xC400_0003, m, entry, ctx);
            if !matches!(status(r[0]), INVALID_PARAMETERS | INVALID_ADDRESS) {
                CALL_BAD.record(c.idx, 0xC400_0003, r[0], m);
            }
        }
        1 => {
            let (m, level) = (c.next(), c.below(4));
            let _ = call(k, 0xC400_0004, m, level, c.next());
        }
        2 => {
            let m = if c.chance(50) {
                bad_mpidr(c)
            } else {
                c.env.mpidr(c.below(c.env.ncpus as u64) as usize)
            };
            let _ = call(k, VENDOR_VCPU_STATE, m, c.next(), 0);
        }
        3 => {
            let f = random_fid(c);
            let _ = call(k, 0x8400_000A, u64::from(f), c.next(), 0);
            let _ = call(k, SMCCC_ARCH_FEATURES, u64::from(f), 0, 0);
        }
        _ => {
            let _ = call(k, VENDOR_FAST_STOP_FLAGS, c.next(), 0, 0);
            let _ = call(k, VENDOR_FEATURES, c.next(), 0, 0);
        }
    }
}

/// A random target for a stub's memory access: the GIC, the PL011 (reads
/// only), hypervisor memory, or this CPU's scratch memory. Returns the
/// address and whether the hypervisor emulates the access.
fn stub_target(c: &mut Ctx<'_>, write: bool, width: u64) -> Option<(u64, bool)> {
    Some(match c.below(6) {
        0 | 1 => {
            let off = c.below(GICD_SIZE) & !(width - 1);
            if write && off < 4 {
                return None;
            }
            (c.env.gicd + off, true)
        }
        2 | 3 => {
            let base = c.gicr_frame();
            let off = c.below(GICR_FRAME) & !(width - 1);
            // Values for stubs are small: tame with a zero pattern check.
            if write && tame_gicr_write(off, width, 0) != Some(0) {
                return None;
            }
            if write && tame_gicr_write(off, width, u64::MAX) != Some(u64::MAX) {
                return None;
            }
            (base + off, true)
        }
        4 if !write => (
            guestlib::arch::uart::base() as u64 + (c.below(0x1000) & !(width - 1)),
            true,
        ),
        4 => (NOT_GUEST, false),
        _ => (SCRATCH.0[c.idx].as_ptr() as u64, false),
    })
}

fn stub_op(c: &mut Ctx<'_>) {
    let step = c.chance(50);
    let t32 = c.chance(15) && stub::has_aarch32_el0();
    if t32 {
        return t32_op(c, step);
    }
    let s = A64::ALL[c.below(A64::ALL.len() as u64) as usize];
    let level = if c.chance(50) {
        Level::El1
    } else {
        Level::El0A64
    };
    let write = matches!(
        s,
        A64::Str32 | A64::Str8 | A64::Str64 | A64::Str16 | A64::Stp32
    );
    let width = match s {
        A64::Str8 | A64::Ldr8 => 1,
        A64::Str16 | A64::Ldr16 => 2,
        A64::Str64 | A64::Ldr64 | A64::Stp32 => 8,
        _ => 4,
    };
    let mut regs = [0, c.value(), c.value(), c.value()];
    let mut emulated = false;
    if s.is_memory() {
        let Some((addr, emu)) = stub_target(c, write, width) else {
            return;
        };
        regs[0] = addr;
        // Paired stores have no syndrome: never emulated.
        emulated = emu && s != A64::Stp32;
    } else if matches!(s, A64::Hvc | A64::Smc) {
        regs[0] = u64::from(random_fid(c));
        emulated = level == Level::El1;
    } else if matches!(s, A64::Sgi1r | A64::Sgi0r | A64::Asgi1r) {
        regs[1] = sgi_value(c);
        emulated = level == Level::El1;
    }
    let code = s.code();
    if TRACE.load(Relaxed) {
        gprintln!(
            "fz cpu{} stub {:?} {:?} step={} regs={:#x?}",
            c.idx,
            s,
            level,
            step,
            regs
        );
    }
    let e = stub::run(code, level, regs, step);
    if !emulated || e.vector == 0 {
        return;
    }
    // The instruction was emulated (or was an answered call): it completed,
    // and the PC moved past it by exactly 4.
    let ended_ok = if step {
        let want = if level == Level::El1 {
            stub::EC_STEP_SAME
        } else {
            stub::EC_STEP_LOWER
        };
        e.ec() == want && e.elr == code + 4
    } else {
        e.ec() == stub::EC_SVC64 && e.elr == code + 8
    };
    // An access the hypervisor refused comes back as an abort at the
    // instruction itself: not a stepping fault.
    let aborted = matches!(e.ec(), 0x20 | 0x21 | 0x24 | 0x25) && e.elr == code;
    if !ended_ok && !aborted {
        let f = if step { &STEP_BAD } else { &ADVANCE_BAD };
        f.record(c.idx, code, e.esr, e.elr);
    }
}

fn t32_op(c: &mut Ctx<'_>, step: bool) {
    let s = T32::ALL[c.below(T32::ALL.len() as u64) as usize];
    let write = matches!(s, T32::Str | T32::Strb | T32::ItStore);
    let width = if matches!(s, T32::Strb | T32::Ldrb) {
        1
    } else {
        4
    };
    let Some((addr, emulated)) = stub_target(c, write, width) else {
        return;
    };
    // AArch32 addresses are 32 bits: the guest's devices and RAM are below
    // 4 GiB on QEMU virt.
    if addr >> 32 != 0 {
        return;
    }
    let r3 = c.below(1000) + 1;
    let code = s.code();
    let e = stub::run(
        code,
        Level::El0T32,
        [addr, c.value() & 0xffff_ffff, 0, r3],
        step && s != T32::ItStore,
    );
    if !emulated {
        return;
    }
    let aborted =
        matches!(e.ec(), 0x20 | 0x24) && e.elr == code + if s == T32::ItStore { 4 } else { 0 };
    if aborted {
        return;
    }
    if s == T32::ItStore {
        if e.ec() != stub::EC_SVC32 || e.elr != code + s.svc_end() || e.regs[3] & 0xffff_ffff != r3
        {
            IT_BAD.record(c.idx, code, e.esr, e.regs[3]);
        }
        return;
    }
    let ok = if step {
        e.ec() == stub::EC_STEP_LOWER && e.elr == code + s.first_len()
    } else {
        e.ec() == stub::EC_SVC32 && e.elr == code + s.svc_end()
    };
    if !ok {
        let f = if step { &STEP_BAD } else { &ADVANCE_BAD };
        f.record(c.idx, code, e.esr, e.elr);
    }
}

/// Takes whatever interrupts are pending. A level interrupt the fuzzer left
/// asserted (an SPI it enabled, say) would fire again at once, forever:
/// after 16 in one go the interrupted code resumes with IRQs masked.
fn irq_handler(cpu: usize, frame: &mut guestlib::arch::vectors::Frame) {
    for _ in 0..16 {
        let iar = icc::read(Icc::Iar1);
        if iar & 0xff_ffff >= 1020 {
            return;
        }
        if cpu < MAX_CPUS {
            IRQS[cpu].fetch_add(1, Relaxed);
        }
        finish_interrupt(iar);
    }
    frame.spsr |= SPSR_I;
}

const SPSR_I: u64 = 1 << 7;

fn irq_op(c: &mut Ctx<'_>) {
    let spins = c.below(200);
    cpu::unmask_irq();
    for _ in 0..spins {
        core::hint::spin_loop();
    }
    cpu::mask_irq();
}

/// What this CPU needs to wake on its timer: the CPU interface enabled and
/// unmasked, no active priority, PPI 27 enabled in its redistributor.
fn restore_wakeup(c: &mut Ctx<'_>) {
    icc::write(Icc::Pmr, 0xff);
    icc::write(Icc::Ap1r0, 0);
    icc::write(Icc::Igrpen1, 1);
    let me = c.env.mpidr(c.idx);
    let _ = gic::enable_ppi(c.env, me, VTIMER);
}

fn suspend_op(c: &mut Ctx<'_>) {
    restore_wakeup(c);
    gic::vtimer_arm(50 + c.below(500));
    let k = conduit(c);
    let powerdown = c.idx != c.env.boot_idx && c.chance(30);
    let state = if powerdown {
        1 << 16
    } else if c.chance(80) {
        0
    } else {
        // Reserved bits: INVALID_PARAMETERS (or a standby).
        c.next() as u32 as u64 & !(1 << 16)
    };
    let entry = guestlib::entry_point();
    let ctx = smp::ctx(c.idx, cookie());
    // Save the random state: a powerdown may come back at the entry point.
    RNG[c.idx].store(c.rng, Relaxed);
    let r = call(k, 0xC400_0001, state, entry, ctx);
    gic::vtimer_stop();
    let st = status(r[0]);
    if !matches!(st, SUCCESS | INVALID_PARAMETERS | DENIED) {
        CALL_BAD.record(c.idx, 0xC400_0001, r[0], state);
    }
}

/// The worker every CPU runs (secondaries from CPU_ON, restarted by any
/// CPU; the boot CPU from the test).
fn worker_job(idx: usize, _ctx: u64) {
    let env = guestlib::env();
    // A previous life may have been stopped inside a stub or a probe.
    stub::forget();
    smp::slot(idx).expect_abort.store(0, Release);
    // A powerdown CPU_SUSPEND may have come back here with the timer armed.
    gic::vtimer_stop();
    STATE[idx].store(ST_RUN, Release);
    stub::unlock_os_lock();
    cpu::mask_all();
    let mut c = Ctx {
        env,
        idx,
        rng: RNG[idx].load(Relaxed),
    };
    while !STOP.load(Relaxed) {
        if !worker_step(&mut c) {
            // This CPU turns itself off: CPU_OFF after the job returns.
            return;
        }
    }
    RNG[idx].store(c.rng, Relaxed);
    // Fuzzing is over: keep counting until FAST_STOP.
    while !smp::aborting() {
        PROGRESS[idx].fetch_add(1, Relaxed);
    }
}

/// One random operation; false when the CPU should turn itself off.
fn worker_step(c: &mut Ctx<'_>) -> bool {
    let idx = c.idx;
    let boot = idx == c.env.boot_idx;
    let r = c.below(1000);
    let op = match r {
        0..200 => OP_GICD,
        200..400 => OP_GICR,
        400..500 => OP_ICC,
        500..560 => OP_SGI,
        560..660 => OP_CALL,
        660..850 => OP_STUB,
        850..900 => OP_IRQ,
        900..940 => OP_SUSPEND,
        940..970 => OP_INFO,
        970..990 => OP_CPU_ON,
        990..999 => OP_CPU_OFF,
        _ => OP_FAST_STOP,
    };
    LAST_OP[idx].store(op, Relaxed);
    if TRACE.load(Relaxed) {
        gprintln!("fz cpu{} op {} r={}", idx, OP_NAMES[op as usize], r);
    }
    OP_COUNT[op as usize].fetch_add(1, Relaxed);
    match op {
        OP_GICD => gicd_op(c),
        OP_GICR => gicr_op(c),
        OP_ICC => icc_op(c),
        OP_SGI => sgi_op(c),
        OP_CALL => call_op(c),
        OP_STUB => stub_op(c),
        OP_IRQ => irq_op(c),
        OP_SUSPEND => suspend_op(c),
        OP_INFO => info_op(c),
        OP_CPU_ON => cpu_on_op(c),
        OP_CPU_OFF if !boot => {
            RNG[idx].store(c.rng, Relaxed);
            let off_smc = c.chance(50);
            smp::slot(idx)
                .off_conduit
                .store(u64::from(off_smc), Release);
            STATE[idx].store(ST_OFF, Release);
            PROGRESS[idx].fetch_add(1, Relaxed);
            return false;
        }
        OP_FAST_STOP if boot => fast_stop_op(c),
        _ => {}
    }
    PROGRESS[idx].fetch_add(1, Relaxed);
    true
}

/// CPU_ON of a random OFF secondary into the worker.
fn cpu_on_op(c: &mut Ctx<'_>) {
    let n = c.env.ncpus;
    if n < 2 {
        return;
    }
    let t = c.below(n as u64) as usize;
    if t == c.env.boot_idx || t == c.idx {
        return;
    }
    if STATE[t]
        .compare_exchange(ST_OFF, ST_STARTING, AcqRel, Relaxed)
        .is_err()
    {
        return;
    }
    STARTED_AT[t].store(time::counter(), Relaxed);
    let st = start_worker(c.env, t, c.chance(50));
    if st != SUCCESS {
        // Still on its way to OFF (ALREADY_ON / ON_PENDING): try later.
        let _ = STATE[t].compare_exchange(ST_STARTING, ST_OFF, AcqRel, Relaxed);
        if !matches!(st, ALREADY_ON | ON_PENDING) {
            CALL_BAD.record(c.idx, 0xC400_0003, st as i64 as u64, t as u64);
        }
    }
}

fn start_worker(env: &Env, t: usize, smc: bool) -> i32 {
    let conduit = if smc { Conduit::Smc } else { Conduit::Hvc };
    let args = smp::OnArgs {
        entry: guestlib::entry_point(),
        ctx: smp::ctx(t, cookie()),
        conduit,
        smc32: false,
    };
    smp::cpu_on_with(env, t, worker_job, conduit, args)
}

/// FAST_STOP from the boot CPU with random flags and timeout; then every
/// secondary's state is read back and all are started again.
fn fast_stop_op(c: &mut Ctx<'_>) {
    let timeout = match c.below(3) {
        0 => 0,
        1 => c.below(2_000_000),
        _ => c.next(),
    };
    let flags = if c.chance(70) {
        0
    } else if c.chance(50) {
        FAST_STOP_SAVE_REGS
    } else {
        c.next()
    };
    let (area, size) = if c.chance(70) {
        (
            SAVE_AREA.as_ptr() as u64,
            core::mem::size_of_val(&SAVE_AREA) as u64,
        )
    } else {
        (c.next(), c.next())
    };
    let r = hvc5(VENDOR_FAST_STOP, timeout, flags, area, size);
    let st = status(r[0]);
    // INTERNAL_FAILURE: the deadline passed first (a random timeout).
    if !matches!(
        st,
        SUCCESS | INTERNAL_FAILURE | INVALID_PARAMETERS | INVALID_ADDRESS | DENIED
    ) {
        CALL_BAD.record(c.idx, u64::from(VENDOR_FAST_STOP), r[0], flags);
    }
    resync(c.env, c.idx);
}

/// After a FAST_STOP: every secondary it asked to stop parks, by its
/// deadline or later (then it was "not confirmed"); each is started again
/// once OFF. One that never gets there is left for the watch to report.
fn resync(env: &Env, me: usize) {
    for t in env.secondaries() {
        if t == me {
            continue;
        }
        let off = smp::wait_aff(env, t, AFF_OFF, super::busy::entry_wait_us()).is_ok();
        if off {
            STATE[t].store(ST_STARTING, Release);
            STARTED_AT[t].store(time::counter(), Relaxed);
            if start_worker(env, t, false) != SUCCESS {
                STATE[t].store(ST_OFF, Release);
            }
        }
    }
}

/// The boot CPU's watch: every RUN CPU's counter must move within the
/// stall limit, every STARTING one must enter within the entry limit.
struct Watch {
    seen: [u64; MAX_CPUS],
    since: [u64; MAX_CPUS],
    stall_ticks: u64,
    entry_ticks: u64,
    /// When the watcher last looked.
    last: u64,
}

impl Watch {
    fn check(&mut self, env: &Env) -> Result<(), (usize, &'static str, u64)> {
        let now = time::counter();
        // A watcher that was away itself (a FAST_STOP and the restarts
        // after it, a long call) cannot judge the time it missed: start
        // every deadline afresh.
        let away = now - self.last > self.stall_ticks / 2;
        self.last = now;
        for t in env.secondaries() {
            let st = STATE[t].load(Acquire);
            let p = PROGRESS[t].load(Relaxed);
            if away || st != ST_RUN || p != self.seen[t] {
                self.seen[t] = p;
                self.since[t] = now;
            }
            match st {
                ST_RUN if now - self.since[t] > self.stall_ticks => {
                    return Err((t, "made no progress", now - self.since[t]));
                }
                ST_STARTING
                    if !away
                        && now.saturating_sub(STARTED_AT[t].load(Relaxed)) > self.entry_ticks =>
                {
                    return Err((
                        t,
                        "was started but never ran",
                        now - STARTED_AT[t].load(Relaxed),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn reset_all(env: &Env) {
    STOP.store(false, SeqCst);
    for i in 0..env.ncpus {
        STATE[i].store(ST_OFF, SeqCst);
        PROGRESS[i].store(0, SeqCst);
        IRQS[i].store(0, SeqCst);
    }
    for n in &OP_COUNT {
        n.store(0, SeqCst);
    }
    for f in [&STEP_BAD, &ADVANCE_BAD, &IT_BAD, &CALL_BAD] {
        f.reset();
    }
}

fn report(name: &str, f: &Finding) -> u64 {
    let n = f.count.load(Acquire);
    if n > 0 {
        gprintln!(
            "fuzz: FINDING {}: {} times, first on cpu{}: {:#x} -> {:#x} / {:#x}",
            name,
            n,
            f.cpu.load(Relaxed),
            f.what.load(Relaxed),
            f.a.load(Relaxed),
            f.b.load(Relaxed)
        );
    }
    n
}

pub fn gic_and_calls(env: &Env) -> TestResult {
    let opts = env.opts();
    let seed = opts.get_u64("seed").unwrap_or_else(|| {
        let t = time::counter();
        t ^ t << 29 ^ 0x5EED
    });
    let max_ops = opts.get_u64("fuzz_ops").unwrap_or(20_000);
    let max_ms = opts.get_u64("fuzz_ms").unwrap_or(5000);
    let stall_ms = opts
        .get_u64("fuzz_stall_ms")
        .unwrap_or(1000 * (1 + env.ncpus as u64 / 8));
    let strict = opts.get("fuzz_strict") != Some("0");
    HOSTILE.store(opts.flag("fuzz_hostile"), SeqCst);
    TRACE.store(opts.flag("fuzz_trace"), SeqCst);
    gprintln!(
        "fuzz: seed={:#x} fuzz_ops={} fuzz_ms={} fuzz_stall_ms={} cpus={} (replay: seed={:#x})",
        seed,
        max_ops,
        max_ms,
        stall_ms,
        env.ncpus,
        seed
    );
    reset_all(env);
    for (i, rng) in RNG.iter().enumerate().take(env.ncpus) {
        rng.store(cpu_seed(seed, i), SeqCst);
    }
    set_irq_handler(Some(irq_handler));
    // Every secondary STARTING before the first starts: the running ones
    // start only OFF CPUs.
    for t in env.secondaries() {
        STATE[t].store(ST_STARTING, SeqCst);
        STARTED_AT[t].store(time::counter(), Relaxed);
    }
    for t in env.secondaries() {
        let st = start_worker(env, t, false);
        ensure!(st == SUCCESS, "CPU_ON(cpu{}) = {} before fuzzing", t, st);
    }
    let me = env.boot_idx;
    stub::unlock_os_lock();
    let mut c = Ctx {
        env,
        idx: me,
        rng: RNG[me].load(Relaxed),
    };
    let mut watch = Watch {
        seen: [0; MAX_CPUS],
        since: [time::counter(); MAX_CPUS],
        stall_ticks: time::us_to_ticks(stall_ms * 1000),
        entry_ticks: time::us_to_ticks(super::busy::entry_wait_us()),
        last: time::counter(),
    };
    let t0 = time::now_ns();
    let mut ops = 0u64;
    let mut stalled = None;
    cpu::mask_all();
    while (max_ops == 0 || ops < max_ops) && time::now_ns() - t0 < max_ms * 1_000_000 {
        worker_step(&mut c);
        ops += 1;
        if let Err(e) = watch.check(env) {
            stalled = Some(e);
            break;
        }
    }
    // Restore this CPU's interrupt state for the rest of the suite.
    restore_wakeup(&mut c);
    icc::write(Icc::Ctlr, 0);
    icc::write(Icc::Bpr1, 0);
    STOP.store(true, SeqCst);
    let total: u64 = (0..env.ncpus).map(|i| PROGRESS[i].load(Relaxed)).sum();
    gprintln!(
        "fuzz: seed={:#x} {} ms, ops boot={} all={}, irqs {}",
        seed,
        (time::now_ns() - t0) / 1_000_000,
        ops,
        total,
        (0..env.ncpus).map(|i| IRQS[i].load(Relaxed)).sum::<u64>()
    );
    let mut line = heapless_line();
    for (i, n) in OP_COUNT.iter().enumerate() {
        line.push(OP_NAMES[i], n.load(Relaxed));
    }
    gprintln!("fuzz: ops {}", line.as_str());
    if let Some((t, why, ticks)) = stalled {
        // The handler stays: workers may still be in an interrupt window.
        return Err(guestlib::msg!(
            "cpu{} {} for {} ms (last op {}); replay with seed={:#x}",
            t,
            why,
            time::ticks_to_ns(ticks) / 1_000_000,
            OP_NAMES[LAST_OP[t].load(Relaxed) as usize % OP_NAMES.len()],
            seed
        ));
    }
    let call_bad = report("call answer", &CALL_BAD);
    let step_bad = report(
        "single step over an emulated instruction not at +4",
        &STEP_BAD,
    );
    let adv_bad = report(
        "emulated instruction not advanced by its length",
        &ADVANCE_BAD,
    );
    let it_bad = report("IT block not advanced after an emulated T32 store", &IT_BAD);
    // The end: every secondary running again, then one FAST_STOP.
    end_with_fast_stop(env)?;
    // Every secondary is OFF now.
    set_irq_handler(None);
    ensure!(
        call_bad == 0,
        "calls answered outside their specification; replay with seed={:#x}",
        seed
    );
    ensure!(
        !strict || step_bad + adv_bad + it_bad == 0,
        "stepping / PC advance findings; replay with seed={:#x}",
        seed
    );
    Ok(())
}

/// Starts every OFF secondary into the worker (now counting only), waits
/// for all to run, then FAST_STOP must stop every one of them.
fn end_with_fast_stop(env: &Env) -> TestResult {
    let n = env.ncpus as u64 - 1;
    for t in env.secondaries() {
        let ok = time::spin_until(super::busy::entry_wait_us(), || {
            if STATE[t].load(Acquire) == ST_RUN {
                return true;
            }
            if STATE[t].load(Acquire) == ST_OFF && smp::wait_aff(env, t, AFF_OFF, 1000).is_ok() {
                STATE[t].store(ST_STARTING, Release);
                if start_worker(env, t, false) != SUCCESS {
                    STATE[t].store(ST_OFF, Release);
                }
            }
            false
        });
        ensure!(
            ok,
            "cpu{} could not be brought back to run (state {})",
            t,
            STATE[t].load(Relaxed)
        );
    }
    if n == 0 {
        return Ok(());
    }
    super::fast_stop::stop_all_checked(env, n, super::fast_stop::deadline_us())
}

/// "name=count name=count ..." without allocation.
struct Line {
    buf: [u8; 256],
    len: usize,
}

fn heapless_line() -> Line {
    Line {
        buf: [0; 256],
        len: 0,
    }
}

impl Line {
    fn push(&mut self, name: &str, n: u64) {
        use core::fmt::Write;
        let _ = write!(self, "{}={} ", name, n);
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        Ok(())
    }
}
