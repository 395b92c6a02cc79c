//! Running a few Thumb instructions at AArch32 EL0, for the exception-entry
//! tests: the code is entered by ERET from EL1 and leaves by any exception
//! taken from AArch32 EL0 (SVC, an abort), which lands in the "lower EL,
//! AArch32" vectors (offset 0x600); the vector records what happened and
//! resumes the EL1 caller. Boot CPU only.

use core::sync::atomic::{AtomicU64, Ordering::*};

/// How a Thumb program at EL0 ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Vector slot (0..15) it arrived at: 12 = synchronous, lower EL AArch32.
    pub vector: u64,
    pub esr: u64,
    pub elr: u64,
    /// r0..r3 at the exception.
    pub regs: [u32; 4],
}

impl Exit {
    pub fn ec(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }
}

static RESUME: AtomicU64 = AtomicU64::new(0);
static EXIT: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

core::arch::global_asm!(
    r#"
    .text
    .balign 4
    .global pv_thumb_store_step
    // r0 = PL011 base, r1 = 0, r2 = 0.
pv_thumb_store_step:
    .hword 0x6041           // str  r1, [r0, #4]   16-bit store to the emulated PL011 (UARTECR)
    .hword 0x3201           // adds r2, #1
    .hword 0x3201           // adds r2, #1        r2 = 2 unless one was skipped
    .hword 0xdf00           // svc  #0
    .balign 4
    .global pv_thumb_it_store
    // r0 = PL011 base, r1 = 0, r2 = 0. The store is the "then" of an ITE EQ
    // block (taken), the add its "else" (skipped): r2 stays 0.
pv_thumb_it_store:
    .hword 0x4292           // cmp  r2, r2         Z = 1
    .hword 0xbf0c           // ite  eq
    .hword 0x6041           // streq r1, [r0, #4]  emulated by the hypervisor
    .hword 0x3201           // addne r2, #1        must not run
    .hword 0xdf00           // svc  #0
    .hword 0xdf00           // svc  #0             (if the IT state went wrong)
    .balign 4
    .global pv_thumb_load_abort
    // r0 = an address with nothing behind it.
pv_thumb_load_abort:
    .hword 0x6801           // ldr  r1, [r0]       aborts: injected by the hypervisor
    .hword 0xdf00           // svc  #0             (not reached)
    .balign 4
"#
);

unsafe extern "C" {
    fn pv_thumb_it_store();
    fn pv_thumb_store_step();
    fn pv_thumb_load_abort();
}

/// A 16-bit Thumb store to the PL011 at `r0`, then two `adds r2, #1`, then SVC.
pub fn store_step_program() -> u64 {
    pv_thumb_store_step as *const () as u64
}

/// `cmp r2, r2; ite eq; streq r1, [r0, #4]; addne r2, #1; svc #0`.
pub fn it_store_program() -> u64 {
    pv_thumb_it_store as *const () as u64
}

/// A 16-bit Thumb load from `r0`, then SVC.
pub fn load_abort_program() -> u64 {
    pv_thumb_load_abort as *const () as u64
}

/// Called by the vector for an exception from AArch32 EL0: records it and
/// resumes [`run_thumb`]'s caller. False when no program was running.
pub(crate) fn lower32_exit(vector: u64, esr: u64, frame: &mut super::vectors::Frame) -> bool {
    let resume = RESUME.swap(0, AcqRel);
    if resume == 0 {
        return false;
    }
    EXIT[0].store(vector, Relaxed);
    EXIT[1].store(esr, Relaxed);
    EXIT[2].store(frame.elr, Relaxed);
    for i in 0..4 {
        EXIT[3 + i].store(frame.x[i] & 0xffff_ffff, Relaxed);
    }
    frame.elr = resume;
    // EL1h, DAIF masked; run_thumb restores the caller's DAIF.
    frame.spsr = 0x3c5;
    true
}

/// SPSR for AArch32 User mode, Thumb state, A/I/F masked.
const SPSR_USR_THUMB: u64 = 0x10 | 1 << 5 | 0x7 << 6;

/// Runs the Thumb program at `code` at AArch32 EL0 with r0..r3 = `regs`
/// until its first exception; returns what it was.
pub fn run_thumb(code: u64, regs: [u32; 4]) -> Exit {
    run_thumb_spsr(code, regs, SPSR_USR_THUMB)
}

/// SPSR.SS (bit 21): with MDSCR_EL1.SS set, one instruction runs after the
/// ERET, then a software step exception is taken.
const SPSR_SS: u64 = 1 << 21;

/// Like [`run_thumb`], single-stepping: exactly one instruction runs, then
/// the software step exception (EC 0x32) ends the program, its ELR the
/// next instruction. Clears the OS lock; MDSCR_EL1.SS is set only for the
/// run.
pub fn step_thumb(code: u64, regs: [u32; 4]) -> Exit {
    const MDSCR_SS: u64 = 1;
    // SAFETY: debug registers of this CPU: the OS lock is released so that
    // debug exceptions can be taken, and software step is enabled only
    // around the one ERET to EL0 below.
    unsafe {
        core::arch::asm!(
            "msr oslar_el1, xzr",
            "mrs {t}, mdscr_el1",
            "orr {t}, {t}, {ss}",
            "msr mdscr_el1, {t}",
            "isb",
            t = out(reg) _,
            ss = const MDSCR_SS,
            options(nostack),
        )
    };
    let exit = run_thumb_spsr(code, regs, SPSR_USR_THUMB | SPSR_SS);
    // SAFETY: as above, software step off again.
    unsafe {
        core::arch::asm!(
            "mrs {t}, mdscr_el1",
            "bic {t}, {t}, {ss}",
            "msr mdscr_el1, {t}",
            "isb",
            t = out(reg) _,
            ss = const MDSCR_SS,
            options(nostack),
        )
    };
    exit
}

fn run_thumb_spsr(code: u64, regs: [u32; 4], spsr: u64) -> Exit {
    // SAFETY: ERET to EL0 runs only the given Thumb code, which cannot touch
    // EL1 state; any exception from it comes back through the vectors, which
    // resume at label 2 with SP_EL1 as it was at the ERET. x18, x19 and x29
    // (which cannot be named as clobbers) are saved on the stack; every
    // other register is declared clobbered.
    unsafe {
        core::arch::asm!(
            "stp x18, x19, [sp, #-32]!",
            "mrs x9, daif",
            "stp x29, x9, [sp, #16]",
            "adr x9, 2f",
            "str x9, [x12]",
            "msr elr_el1, x10",
            "msr spsr_el1, x11",
            "isb",
            "eret",
            "2:",
            "ldp x29, x9, [sp, #16]",
            "msr daif, x9",
            "ldp x18, x19, [sp], #32",
            in("x0") u64::from(regs[0]),
            in("x1") u64::from(regs[1]),
            in("x2") u64::from(regs[2]),
            in("x3") u64::from(regs[3]),
            in("x10") code,
            in("x11") spsr,
            in("x12") RESUME.as_ptr(),
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    Exit {
        vector: EXIT[0].load(Relaxed),
        esr: EXIT[1].load(Relaxed),
        elr: EXIT[2].load(Relaxed),
        regs: core::array::from_fn(|i| EXIT[3 + i].load(Relaxed) as u32),
    }
}
