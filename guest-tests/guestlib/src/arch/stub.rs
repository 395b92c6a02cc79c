//! Running one instruction at EL1 or EL0 (AArch64, or AArch32 T32 at EL0),
//! optionally single-stepped (MDSCR_EL1.SS), on any CPU. A stub is the
//! instruction followed by `svc #0`; it is entered by ERET and whatever
//! exception ends it (the SVC, the software step, an abort, an undefined
//! instruction) comes back through the vectors, which record it in this
//! CPU's exit record and resume the caller with SP_EL1 as it was.

use super::smp::this_cpu;
use crate::env::MAX_CPUS;
use core::sync::atomic::{AtomicU64, Ordering::*};

/// How a stub ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Vector slot (0..15): 4 = synchronous from EL1, 8 = from AArch64 EL0,
    /// 12 = from AArch32 EL0.
    pub vector: u64,
    pub esr: u64,
    pub elr: u64,
    /// x0..x3 (r0..r3) at the exception.
    pub regs: [u64; 4],
}

impl Exit {
    pub fn ec(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }
}

/// Exception classes a stub ends with.
pub const EC_UNKNOWN: u64 = 0x00;
pub const EC_SVC32: u64 = 0x11;
pub const EC_SVC64: u64 = 0x15;
pub const EC_STEP_LOWER: u64 = 0x32;
pub const EC_STEP_SAME: u64 = 0x33;

/// Where an AArch64 stub lives: `code`, one instruction then `svc #0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum A64 {
    /// `str w1, [x0]`
    Str32,
    /// `ldr w1, [x0]`
    Ldr32,
    /// `strb w1, [x0]`
    Str8,
    /// `ldrb w1, [x0]`
    Ldr8,
    /// `str x1, [x0]`
    Str64,
    /// `ldr x1, [x0]`
    Ldr64,
    /// `strh w1, [x0]`
    Str16,
    /// `ldrh w1, [x0]`
    Ldr16,
    /// `hvc #0` (x0..x3 = the call)
    Hvc,
    /// `smc #0`
    Smc,
    /// `msr icc_sgi1r_el1, x1`
    Sgi1r,
    /// `msr icc_sgi0r_el1, x1`
    Sgi0r,
    /// `msr icc_asgi1r_el1, x1`
    Asgi1r,
    /// `stp w1, w2, [x0]` (no instruction syndrome)
    Stp32,
    /// `nop`
    Nop,
}

impl A64 {
    pub const ALL: [A64; 15] = [
        A64::Str32,
        A64::Ldr32,
        A64::Str8,
        A64::Ldr8,
        A64::Str64,
        A64::Ldr64,
        A64::Str16,
        A64::Ldr16,
        A64::Hvc,
        A64::Smc,
        A64::Sgi1r,
        A64::Sgi0r,
        A64::Asgi1r,
        A64::Stp32,
        A64::Nop,
    ];

    /// Whether the instruction accesses memory at x0.
    pub fn is_memory(self) -> bool {
        matches!(
            self,
            A64::Str32
                | A64::Ldr32
                | A64::Str8
                | A64::Ldr8
                | A64::Str64
                | A64::Ldr64
                | A64::Str16
                | A64::Ldr16
                | A64::Stp32
        )
    }

    /// The stub's address (each is 8 bytes, in the order of [`A64::ALL`]).
    pub fn code(self) -> u64 {
        let i = A64::ALL.iter().position(|&s| s == self).unwrap_or(0);
        pv_stubs_a64 as *const () as u64 + 8 * i as u64
    }
}

/// T32 stubs for AArch32 EL0 (16 bytes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T32 {
    /// `str r1, [r0]`, `svc #0`
    Str,
    /// `ldr r1, [r0]`, `svc #0`
    Ldr,
    /// `strb r1, [r0]`, `svc #0`
    Strb,
    /// `ldrb r1, [r0]`, `svc #0`
    Ldrb,
    /// `cmp r2, r2`, `ite eq`, `str r1, [r0]` (then), `adds r3, #1`
    /// (else: must not run), `svc #0`: r3 comes back unchanged.
    ItStore,
}

impl T32 {
    pub const ALL: [T32; 5] = [T32::Str, T32::Ldr, T32::Strb, T32::Ldrb, T32::ItStore];

    pub fn code(self) -> u64 {
        let i = T32::ALL.iter().position(|&s| s == self).unwrap_or(0);
        pv_stubs_t32 as *const () as u64 + 16 * i as u64
    }

    /// Bytes from the stub's start to just after its first instruction.
    pub fn first_len(self) -> u64 {
        2
    }

    /// Bytes from the stub's start to just after its `svc`.
    pub fn svc_end(self) -> u64 {
        match self {
            T32::ItStore => 10,
            _ => 4,
        }
    }
}

core::arch::global_asm!(
    r#"
    .text
    .balign 8
    .global pv_stubs_a64
pv_stubs_a64:
    str     w1, [x0]
    svc     #0
    ldr     w1, [x0]
    svc     #0
    strb    w1, [x0]
    svc     #0
    ldrb    w1, [x0]
    svc     #0
    str     x1, [x0]
    svc     #0
    ldr     x1, [x0]
    svc     #0
    strh    w1, [x0]
    svc     #0
    ldrh    w1, [x0]
    svc     #0
    hvc     #0
    svc     #0
    smc     #0
    svc     #0
    msr     S3_0_C12_C11_5, x1
    svc     #0
    msr     S3_0_C12_C11_7, x1
    svc     #0
    msr     S3_0_C12_C11_6, x1
    svc     #0
    stp     w1, w2, [x0]
    svc     #0
    nop
    svc     #0

    .balign 16
    .global pv_stubs_t32
pv_stubs_t32:
    // Padded with more `svc #0`: a stub whose first SVC is skipped (an IT
    // state gone wrong) still ends here.
    .hword 0x6001, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00
    .hword 0x6801, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00
    .hword 0x7001, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00
    .hword 0x7801, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00, 0xdf00
    .hword 0x4292, 0xbf0c, 0x6001, 0x3301, 0xdf00, 0xdf00, 0xdf00, 0xdf00
"#
);

unsafe extern "C" {
    fn pv_stubs_a64();
    fn pv_stubs_t32();
}

static RESUME: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static EXIT: [[AtomicU64; 7]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; 7] }; MAX_CPUS];

/// Called by the vector for a synchronous exception: if this CPU runs a
/// stub, records the exception and resumes [`run`]'s caller.
pub(crate) fn exit(vector: u64, esr: u64, frame: &mut super::vectors::Frame) -> bool {
    let cpu = this_cpu();
    if cpu >= MAX_CPUS {
        return false;
    }
    let resume = RESUME[cpu].swap(0, AcqRel);
    if resume == 0 {
        return false;
    }
    let e = &EXIT[cpu];
    e[0].store(vector, Relaxed);
    e[1].store(esr, Relaxed);
    e[2].store(frame.elr, Relaxed);
    for i in 0..4 {
        e[3 + i].store(frame.x[i], Relaxed);
    }
    frame.elr = resume;
    // EL1h, DAIF masked; `run` restores the caller's DAIF.
    frame.spsr = 0x3c5;
    true
}

/// Forgets a stub this CPU was running when it was stopped (FAST_STOP, a
/// powerdown): call at the start of each new life of the CPU.
pub fn forget() {
    if let Some(r) = RESUME.get(this_cpu()) {
        r.store(0, Release);
    }
}

/// Where the stub runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    El1,
    El0A64,
    El0T32,
}

const SPSR_SS: u64 = 1 << 21;
const MDSCR_SS: u64 = 1 << 0;
const MDSCR_KDE: u64 = 1 << 13;

/// Whether this CPU can run AArch32 at EL0 (ID_AA64PFR0_EL1.EL0 == 2).
pub fn has_aarch32_el0() -> bool {
    let pfr0: u64;
    // SAFETY: reading an ID register.
    unsafe { core::arch::asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack)) };
    pfr0 & 0xf == 2
}

/// Unlocks the OS lock (it resets locked, which disables debug
/// exceptions such as the software step). Once per CPU life.
pub fn unlock_os_lock() {
    // SAFETY: OSLAR_EL1 only affects this CPU's debug state.
    unsafe { core::arch::asm!("msr oslar_el1, xzr", "isb", options(nomem, nostack)) };
}

/// Runs the stub at `code` at `level` with x0..x3 = `regs` until its first
/// exception; with `step`, single-steps it (the software step exception
/// comes after its first instruction). IRQs, FIQs and SErrors stay masked.
pub fn run(code: u64, level: Level, regs: [u64; 4], step: bool) -> Exit {
    let cpu = this_cpu().min(MAX_CPUS - 1);
    let mut spsr = match level {
        // EL1h with A, I, F masked; D clear so a step can happen.
        Level::El1 => 0x1c5,
        // EL0t, DAIF masked (debug from EL0 does not depend on D).
        Level::El0A64 => 0x3c0,
        // AArch32 User, Thumb, A/I/F masked.
        Level::El0T32 => 0x10 | 1 << 5 | 0x7 << 6,
    };
    let mut mdscr = 0;
    if step {
        spsr |= SPSR_SS;
        mdscr = MDSCR_SS | if level == Level::El1 { MDSCR_KDE } else { 0 };
    }
    // SAFETY: ERET runs only the given stub (one instruction and an SVC),
    // which cannot return by itself; any exception from it comes back
    // through the vectors (`exit`), which resume at label 2 with SP_EL1 as
    // it was at the ERET and every DAIF bit masked. The debug state is
    // cleared again at once. x18, x19 and x29 (which cannot be named as
    // clobbers) are saved on the stack; every other register is declared
    // clobbered.
    unsafe {
        core::arch::asm!(
            "stp x18, x19, [sp, #-32]!",
            "mrs x9, daif",
            "stp x29, x9, [sp, #16]",
            "msr daifset, #0xf",
            "adr x9, 2f",
            "str x9, [x12]",
            "msr mdscr_el1, x13",
            "msr elr_el1, x10",
            "msr spsr_el1, x11",
            "isb",
            "eret",
            "2:",
            "msr mdscr_el1, xzr",
            "isb",
            "ldp x29, x9, [sp, #16]",
            "msr daif, x9",
            "ldp x18, x19, [sp], #32",
            in("x0") regs[0],
            in("x1") regs[1],
            in("x2") regs[2],
            in("x3") regs[3],
            in("x10") code,
            in("x11") spsr,
            in("x12") RESUME[cpu].as_ptr(),
            in("x13") mdscr,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    let e = &EXIT[cpu];
    Exit {
        vector: e[0].load(Relaxed),
        esr: e[1].load(Relaxed),
        elr: e[2].load(Relaxed),
        regs: core::array::from_fn(|i| e[3 + i].load(Relaxed)),
    }
}
