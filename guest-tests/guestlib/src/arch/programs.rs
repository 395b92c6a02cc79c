//! Hand-written programs that secondaries run outside the Rust runtime
//! (entered straight from CPU_ON, with no stack or vectors of guestlib's),
//! and the stores and cache maintenance that make code written at run time
//! visible to every CPU.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

core::arch::global_asm!(
    r#"
    .section .text.pv_counting_entry, "ax"
    .balign 4
    // x0 = context_id = address of a u64 counter: increment it forever.
    .global pv_counting_entry
pv_counting_entry:
1:  ldr     x1, [x0]
    add     x1, x1, #1
    str     x1, [x0]
    b       1b

    // The templates below are copied into RAM and run there (x0 = RamCpu).
    .section .rodata.pv_ram_templates, "a"
    .balign 8
    // Sets VBAR, TPIDR and CPACR, switches to stack_top, then counts in
    // `counter` forever, pushing and popping through the stack each round.
    .global pv_counting_loop
pv_counting_loop:
    ldr     x1, [x0, #16]
    msr     vbar_el1, x1
    ldr     x1, [x0, #24]
    msr     tpidr_el1, x1
    mov     x1, #0x300000
    msr     cpacr_el1, x1
    ldr     x1, [x0, #8]
    mov     sp, x1
    isb
1:  ldr     x1, [x0]
    add     x1, x1, #1
    stp     x1, x0, [sp, #-16]!
    ldp     x1, x2, [sp], #16
    str     x1, [x0]
    b       1b
    .global pv_counting_loop_end
pv_counting_loop_end:

    .balign 8
    // Sets VBAR and TPIDR, switches to new_stack, pushes once, sets `flag`,
    // calls CPU_OFF; should that return, sets `off_ret` and waits forever.
    .global pv_mark_and_off
pv_mark_and_off:
    mov     x19, x0
    ldr     x1, [x19, #16]
    msr     vbar_el1, x1
    ldr     x1, [x19, #24]
    msr     tpidr_el1, x1
    ldr     x1, [x19, #48]
    mov     sp, x1
    isb
    mov     x1, #1
    stp     x1, x19, [sp, #-16]!
    str     x1, [x19, #32]
    dsb     sy
    movz    x0, #0x0002
    movk    x0, #0x8400, lsl #16
    hvc     #0
    mov     x1, #1
    str     x1, [x19, #40]
    dsb     sy
2:  wfe
    b       2b
    .global pv_mark_and_off_end
pv_mark_and_off_end:
"#
);

unsafe extern "C" {
    fn pv_counting_entry();
    static pv_counting_loop: u32;
    static pv_counting_loop_end: u32;
    static pv_mark_and_off: u32;
    static pv_mark_and_off_end: u32;
}

/// A CPU_ON entry point that increments the u64 whose address is the
/// context_id, forever, using no stack and no other memory.
pub fn counting_entry() -> u64 {
    pv_counting_entry as *const () as u64
}

/// `udf #0xdead`: what overwritten code and stacks are filled with, so that
/// executing them is an unexpected exception.
pub const UDF: u32 = 0x0000_DEAD;

/// The per-CPU block the RAM templates get in x0 (offsets used by the asm).
#[repr(C, align(64))]
pub struct RamCpu {
    /// Advanced by [`RamProgram::CountingLoop`].
    pub counter: AtomicU64,
    /// The counting loop's stack.
    pub stack_top: AtomicU64,
    pub vbar: AtomicU64,
    /// Written to TPIDR_EL1 (guestlib's CPU index).
    pub idx: AtomicU64,
    /// Set by [`RamProgram::MarkAndOff`] before its CPU_OFF.
    pub flag: AtomicU64,
    /// Set by [`RamProgram::MarkAndOff`] if CPU_OFF returned.
    pub off_ret: AtomicU64,
    /// [`RamProgram::MarkAndOff`]'s stack.
    pub new_stack: AtomicU64,
}

const _: () = {
    assert!(core::mem::offset_of!(RamCpu, counter) == 0);
    assert!(core::mem::offset_of!(RamCpu, stack_top) == 8);
    assert!(core::mem::offset_of!(RamCpu, vbar) == 16);
    assert!(core::mem::offset_of!(RamCpu, idx) == 24);
    assert!(core::mem::offset_of!(RamCpu, flag) == 32);
    assert!(core::mem::offset_of!(RamCpu, off_ret) == 40);
    assert!(core::mem::offset_of!(RamCpu, new_stack) == 48);
};

impl RamCpu {
    pub const fn new() -> Self {
        Self {
            counter: AtomicU64::new(0),
            stack_top: AtomicU64::new(0),
            vbar: AtomicU64::new(0),
            idx: AtomicU64::new(0),
            flag: AtomicU64::new(0),
            off_ret: AtomicU64::new(0),
            new_stack: AtomicU64::new(0),
        }
    }
}

impl Default for RamCpu {
    fn default() -> Self {
        Self::new()
    }
}

/// The programs to copy into RAM.
#[derive(Clone, Copy, Debug)]
pub enum RamProgram {
    CountingLoop,
    MarkAndOff,
}

impl RamProgram {
    /// The program's instruction words.
    pub fn words(self) -> &'static [u32] {
        let (start, end) = match self {
            RamProgram::CountingLoop => {
                (&raw const pv_counting_loop, &raw const pv_counting_loop_end)
            }
            RamProgram::MarkAndOff => (&raw const pv_mark_and_off, &raw const pv_mark_and_off_end),
        };
        // SAFETY: both labels delimit one template in .rodata (8-aligned, a
        // whole number of instructions), which nothing ever writes.
        unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) }
    }
}

/// Copies `program` to the start of `dst` (which must be big enough).
/// Call [`sync_code`] before anyone runs it.
pub fn write_program(dst: &[AtomicU32], program: RamProgram) {
    let words = program.words();
    assert!(words.len() <= dst.len(), "{:?} does not fit", program);
    for (d, &w) in dst.iter().zip(words) {
        d.store(w, Relaxed);
    }
}

/// Makes what was stored in `region` visible to instruction fetch and to
/// every other CPU: clean and invalidate to the point of coherency, then
/// invalidate every instruction cache.
pub fn sync_code<T>(region: &T) {
    let start = region as *const T as usize;
    let end = start + core::mem::size_of_val(region);
    for line in (start & !63..end).step_by(64) {
        // SAFETY: cache maintenance by VA on memory we hold a reference to;
        // clean and invalidate keeps its contents.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) line, options(nostack)) };
    }
    // SAFETY: barriers and I-cache invalidation only.
    unsafe { core::arch::asm!("dsb sy", "ic ialluis", "dsb sy", "isb", options(nostack)) };
}
