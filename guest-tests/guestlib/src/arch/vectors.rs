//! EL1 exception vectors.
//!
//! Every exception saves x0..x30, ELR/SPSR and the FP/SIMD registers, then
//! calls [`guest_exception`]:
//! * a synchronous exception on a CPU whose slot has `expect_abort` set is
//!   recorded (ESR, FAR, ELR) and the faulting instruction skipped;
//! * an IRQ goes to the installed IRQ handler, if any;
//! * anything else is reported as `GUEST FAIL <test>: unexpected ...` and the
//!   system is powered off.

use super::smp::{SLOTS, this_cpu};
use crate::env::MAX_CPUS;
use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// Saved state of the interrupted context.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE == 800);

core::arch::global_asm!(
    r#"
    .macro GUEST_VEC kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       guest_vec_common
    .endm

    .text
    .balign 2048
    .global guest_vectors
guest_vectors:
    GUEST_VEC 0
    GUEST_VEC 1
    GUEST_VEC 2
    GUEST_VEC 3
    GUEST_VEC 4
    GUEST_VEC 5
    GUEST_VEC 6
    GUEST_VEC 7
    GUEST_VEC 8
    GUEST_VEC 9
    GUEST_VEC 10
    GUEST_VEC 11
    GUEST_VEC 12
    GUEST_VEC 13
    GUEST_VEC 14
    GUEST_VEC 15

guest_vec_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el1
    stp     x30, x1, [sp, #240]
    mrs     x1, spsr_el1
    str     x1, [sp, #256]
    add     x1, sp, #272
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
    mrs     x2, fpsr
    mrs     x3, fpcr
    add     x1, sp, #784
    stp     x2, x3, [x1]
    mov     x1, sp
    bl      guest_exception
    add     x1, sp, #784
    ldp     x2, x3, [x1]
    msr     fpsr, x2
    msr     fpcr, x3
    add     x1, sp, #272
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
    ldr     x1, [sp, #256]
    msr     spsr_el1, x1
    ldp     x30, x1, [sp, #240]
    msr     elr_el1, x1
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
);

/// An IRQ handler: `(cpu index, frame)`.
pub type IrqHandler = fn(usize, &mut Frame);

static IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs (or with `None` removes) the IRQ handler for all CPUs.
pub fn set_irq_handler(h: Option<IrqHandler>) {
    IRQ_HANDLER.store(h.map_or(0, |f| f as usize), Release);
}

/// A recorded, contained synchronous exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
    /// PAN | SSBS | DIT of PSTATE as the vector started (see `pstate`).
    pub pstate: u64,
}

impl Abort {
    /// ESR exception class.
    pub fn ec(&self) -> u64 {
        (self.esr >> 26) & 0x3F
    }

    /// Data abort taken without a change in exception level (EC 0x25).
    pub fn is_data_abort_same_el(&self) -> bool {
        self.ec() == 0x25
    }
}

const VEC_NAMES: [&str; 16] = [
    "sync/SP0",
    "irq/SP0",
    "fiq/SP0",
    "serror/SP0",
    "sync",
    "irq",
    "fiq",
    "serror",
    "sync/lower64",
    "irq/lower64",
    "fiq/lower64",
    "serror/lower64",
    "sync/lower32",
    "irq/lower32",
    "fiq/lower32",
    "serror/lower32",
];

fn sysreg_esr() -> u64 {
    let v: u64;
    // SAFETY: reading ESR_EL1.
    unsafe { core::arch::asm!("mrs {}, esr_el1", out(reg) v, options(nomem, nostack)) };
    v
}

fn sysreg_far() -> u64 {
    let v: u64;
    // SAFETY: reading FAR_EL1.
    unsafe { core::arch::asm!("mrs {}, far_el1", out(reg) v, options(nomem, nostack)) };
    v
}

#[unsafe(no_mangle)]
extern "C" fn guest_exception(kind: u64, frame: &mut Frame) {
    let cpu = this_cpu();
    let slot = if cpu < MAX_CPUS {
        Some(&SLOTS[cpu])
    } else {
        None
    };
    // A stub (`stub::run`) on this CPU ends with its first synchronous
    // exception, whatever it is.
    if matches!(kind, 4 | 8 | 12) && super::stub::exit(kind, sysreg_esr(), frame) {
        return;
    }
    match kind {
        4 => {
            if let Some(slot) = slot
                && slot.expect_abort.load(Acquire) != 0
            {
                // First, before anything could change them: the PSTATE
                // fields exception entry set (compared by the tests with
                // what an injected exception gets).
                slot.abort_pstate.store(super::pstate::read(), Relaxed);
                let esr = sysreg_esr();
                slot.abort_esr.store(esr, Relaxed);
                slot.abort_far.store(sysreg_far(), Relaxed);
                slot.abort_elr.store(frame.elr, Relaxed);
                slot.abort_count.fetch_add(1, AcqRel);
                if (esr >> 26) & 0x3F == 0x21 {
                    // Instruction abort after a `blr` into nowhere: go back
                    // to the caller.
                    frame.elr = frame.x[30];
                } else {
                    frame.elr += 4;
                }
                return;
            }
        }
        // Lower EL: only ever from `aarch32::run_thumb` (AArch32 sources
        // belong at 12; 8 is where a wrong vector offset would put them).
        8 | 12 if super::aarch32::lower32_exit(kind, sysreg_esr(), frame) => return,
        5 => {
            let h = IRQ_HANDLER.load(Acquire);
            if h != 0 {
                // SAFETY: only `IrqHandler` values are stored.
                let f: IrqHandler = unsafe { core::mem::transmute::<usize, IrqHandler>(h) };
                f(cpu, frame);
                return;
            }
        }
        _ => {}
    }
    super::fail_and_power_off(format_args!(
        "unexpected exception {} on cpu{}: ESR={:#x} FAR={:#x} ELR={:#x} SPSR={:#x}",
        VEC_NAMES[(kind & 15) as usize],
        cpu,
        sysreg_esr(),
        sysreg_far(),
        frame.elr,
        frame.spsr
    ));
}

/// Runs `f` with aborts on this CPU expected: returns `f`'s result and the
/// last abort taken during it, if any.
pub fn expecting_abort<R>(f: impl FnOnce() -> R) -> (R, Option<Abort>) {
    let slot = &SLOTS[this_cpu()];
    let before = slot.abort_count.load(Acquire);
    slot.expect_abort.store(1, Release);
    let r = f();
    slot.expect_abort.store(0, Release);
    let after = slot.abort_count.load(Acquire);
    let ab = (after != before).then(|| Abort {
        esr: slot.abort_esr.load(Relaxed),
        far: slot.abort_far.load(Relaxed),
        elr: slot.abort_elr.load(Relaxed),
        pstate: slot.abort_pstate.load(Relaxed),
    });
    (r, ab)
}

/// One 64-bit load from `addr`, with an abort contained and returned.
pub fn probe_read(addr: u64) -> Result<u64, Abort> {
    probe_load(addr, 8)
}

/// One 64-bit store to `addr`, with an abort contained and returned.
pub fn probe_write(addr: u64, val: u64) -> Result<(), Abort> {
    probe_store(addr, 8, val)
}

/// One load of `bytes` (1, 2, 4; anything else: 8) from `addr`,
/// zero-extended, with an abort contained and returned.
pub fn probe_load(addr: u64, bytes: u8) -> Result<u64, Abort> {
    let (v, ab) = expecting_abort(|| {
        let v: u64;
        // SAFETY: the load may fault (it is meant to); the vector skips it.
        // It writes only `v`.
        unsafe {
            match bytes {
                1 => {
                    asm!("mov {v}, #0", "ldrb {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack))
                }
                2 => {
                    asm!("mov {v}, #0", "ldrh {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack))
                }
                4 => {
                    asm!("mov {v}, #0", "ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack))
                }
                _ => {
                    asm!("mov {v}, #0", "ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack))
                }
            }
        }
        v
    });
    ab.map_or(Ok(v), Err)
}

/// One store of the low `bytes` (1, 2, 4; anything else: 8) of `val` to
/// `addr`, with an abort contained and returned.
pub fn probe_store(addr: u64, bytes: u8, val: u64) -> Result<(), Abort> {
    let ((), ab) = expecting_abort(|| {
        // SAFETY: the store may fault (it is meant to); the vector skips it.
        // The callers aim it at device registers or their own memory.
        unsafe {
            match bytes {
                1 => asm!("strb {v:w}, [{a}]", a = in(reg) addr, v = in(reg) val, options(nostack)),
                2 => asm!("strh {v:w}, [{a}]", a = in(reg) addr, v = in(reg) val, options(nostack)),
                4 => asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) val, options(nostack)),
                _ => asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) val, options(nostack)),
            }
        }
    });
    ab.map_or(Ok(()), Err)
}

/// The address of the guest's exception vector table (what VBAR_EL1 holds).
pub fn table_address() -> u64 {
    unsafe extern "C" {
        static guest_vectors: u8;
    }
    &raw const guest_vectors as u64
}

macro_rules! probe_fn {
    ($(#[$m:meta])* $name:ident, $($insn:literal),+) => {
        $(#[$m])*
        pub fn $name(addr: u64) -> Result<(), Abort> {
            let ((), ab) = expecting_abort(|| {
                // SAFETY: the access may fault (it is meant to); the vector
                // skips it. Any data written lands in `addr` only.
                unsafe {
                    core::arch::asm!(
                        $($insn),+,
                        a = in(reg) addr,
                        out("x4") _, out("x5") _, out("v0") _,
                        options(nostack),
                    )
                };
            });
            match ab {
                Some(a) => Err(a),
                None => Ok(()),
            }
        }
    };
}

probe_fn!(
    /// `ldp` (a data abort without a valid instruction syndrome).
    probe_ldp, "ldp x4, x5, [{a}]"
);
probe_fn!(
    /// `stp` of two words.
    probe_stp, "mov x4, #0x5a5a", "mov x5, #0xa5a5", "stp x4, x5, [{a}]"
);
probe_fn!(
    /// Load-exclusive.
    probe_ldxr, "ldxr x4, [{a}]", "clrex"
);
probe_fn!(
    /// SIMD load of 16 bytes.
    probe_ld1, "ld1 {{v0.16b}}, [{a}]"
);
probe_fn!(
    /// LSE atomic add.
    probe_ldadd, ".arch_extension lse", "mov x4, #1", "ldadd x4, x5, [{a}]"
);

/// Branches to `addr` (`blr`); an instruction abort comes back here.
pub fn probe_exec(addr: u64) -> Result<(), Abort> {
    let ((), ab) = expecting_abort(|| {
        // SAFETY: the target is not meant to be executable; the vector
        // returns to the link register on an instruction abort. Should the
        // fetch succeed, whatever runs there is on the caller.
        unsafe {
            core::arch::asm!(
                "blr {a}",
                a = in(reg) addr,
                clobber_abi("C"),
                options(nostack),
            )
        };
    });
    match ab {
        Some(a) => Err(a),
        None => Ok(()),
    }
}
