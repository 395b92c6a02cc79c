//! EL2 exception vectors and the guest register frame.
//!
//! An exception from the guest (lower EL, from AArch64 or AArch32 EL0) saves every general
//! purpose register plus ELR_EL2/SPSR_EL2 into a `GuestFrame` at the top of
//! this CPU's EL2 stack, calls `handle_lower`, restores the (possibly
//! rewritten) frame and ERETs. A vCPU that parks never returns here:
//! `handle_lower` parks it, and its next life enters the guest through
//! `pv_enter_guest` with SP_EL2 back at the top of the stack, so nothing of
//! the old context (its frames, its PC advance) survives.
//! Exceptions taken at EL2 itself are hypervisor bugs and go to `handle_current`.

use core::arch::global_asm;

/// The guest's general purpose registers and return state, as saved on entry
/// to EL2. The layout is shared with the assembly below.
#[repr(C, align(16))]
#[derive(Clone, Debug, Default)]
pub struct GuestFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<GuestFrame>() == 34 * 8);

/// SPSR for entering the guest at EL1h with D, A, I and F masked.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;

impl GuestFrame {
    /// The cold-boot state PSCI CPU_ON promises: all GPRs zero, x0 = context
    /// id, PC = entry, EL1h with DAIF masked.
    pub fn cold_boot(entry: u64, x0: u64) -> Self {
        let mut frame = Self {
            elr: entry,
            spsr: SPSR_EL1H_MASKED,
            ..Default::default()
        };
        frame.x[0] = x0;
        frame
    }
}

/// Why the guest trapped, as the vector entry tells `handle_lower`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowerKind {
    Sync = 0,
    Irq = 1,
    Fiq = 2,
    SError = 3,
}

unsafe extern "C" {
    /// Loads `frame` into the registers, sets SP_EL2 to `stack_top` and ERETs.
    fn pv_enter_guest(frame: *const GuestFrame, stack_top: u64) -> !;
    static pv_vectors: u8;
}

/// Enters (or re-enters) the guest with `frame`, resetting this CPU's EL2
/// stack to `stack_top`.
///
/// # Safety
/// `stack_top` must be the top of this CPU's EL2 stack, and nothing on that
/// stack may be needed any more (the call never returns).
pub unsafe fn enter_guest(frame: &GuestFrame, stack_top: u64) -> ! {
    // SAFETY: the frame is a valid, aligned GuestFrame; the caller guarantees
    // the stack may be discarded.
    unsafe { pv_enter_guest(frame, stack_top) }
}

/// Address of the vector table for VBAR_EL2.
pub fn vector_table() -> u64 {
    &raw const pv_vectors as u64
}

global_asm!(
    r#"
.equ FRAME_SIZE, 34 * 8

/* Save x0..x30, ELR_EL2, SPSR_EL2 into a new frame on SP_EL2, then call
 * handle_lower(frame, kind) and return to the guest through pv_exit. */
.macro lower_entry kind:req
    sub sp, sp, #FRAME_SIZE
    stp x0, x1, [sp, #0]
    mov x0, #\kind
    b pv_save_lower
.endm

.macro current_entry kind:req
    sub sp, sp, #FRAME_SIZE
    stp x0, x1, [sp, #0]
    mov x0, #\kind
    b pv_save_current
.endm

.section .text.pv_vectors, "ax"
.balign 0x800
.global pv_vectors
pv_vectors:
    /* Current EL with SP0: never used by parkvisor. */
    current_entry 0
.balign 0x80
    current_entry 1
.balign 0x80
    current_entry 2
.balign 0x80
    current_entry 3
    /* Current EL with SPx: a hypervisor fault. */
.balign 0x80
    current_entry 0
.balign 0x80
    current_entry 1
.balign 0x80
    current_entry 2
.balign 0x80
    current_entry 3
    /* Lower EL, AArch64: the guest. */
.balign 0x80
    lower_entry 0
.balign 0x80
    lower_entry 1
.balign 0x80
    lower_entry 2
.balign 0x80
    lower_entry 3
    /* Lower EL, AArch32: used only when EL1 is AArch32. parkvisor runs EL1
     * in AArch64 (HCR_EL2.RW=1), so even AArch32 EL0 traps arrive through
     * the AArch64 group above (the group is chosen by the state of the EL
     * just below EL2). Should one arrive here anyway, it is still the
     * guest's trap, never an EL2 fault. */
.balign 0x80
    lower_entry 0
.balign 0x80
    lower_entry 1
.balign 0x80
    lower_entry 2
.balign 0x80
    lower_entry 3

.macro save_rest
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x2, elr_el2
    mrs x3, spsr_el2
    stp x30, x2, [sp, #240]
    str x3, [sp, #256]
.endm

pv_save_lower:
    save_rest
    mov x1, x0
    mov x0, sp
    bl {handle_lower}
    b pv_exit

pv_save_current:
    save_rest
    mov x1, x0
    mov x0, sp
    bl {handle_current}
    b pv_exit

/* Restore the frame at SP and return to the guest. */
pv_exit:
    ldp x30, x2, [sp, #240]
    ldr x3, [sp, #256]
    msr elr_el2, x2
    msr spsr_el2, x3
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldp x0, x1, [sp, #0]
    add sp, sp, #FRAME_SIZE
    eret

/* pv_enter_guest(frame, stack_top): load the frame straight into the
 * registers (it may live anywhere, including on this stack) and ERET with
 * SP_EL2 at the top of the stack. */
.global pv_enter_guest
pv_enter_guest:
    mov sp, x1
    ldp x2, x3, [x0, #248]
    msr elr_el2, x2
    msr spsr_el2, x3
    ldp x2, x3, [x0, #16]
    ldp x4, x5, [x0, #32]
    ldp x6, x7, [x0, #48]
    ldp x8, x9, [x0, #64]
    ldp x10, x11, [x0, #80]
    ldp x12, x13, [x0, #96]
    ldp x14, x15, [x0, #112]
    ldp x16, x17, [x0, #128]
    ldp x18, x19, [x0, #144]
    ldp x20, x21, [x0, #160]
    ldp x22, x23, [x0, #176]
    ldp x24, x25, [x0, #192]
    ldp x26, x27, [x0, #208]
    ldp x28, x29, [x0, #224]
    ldr x30, [x0, #240]
    ldp x0, x1, [x0, #0]
    eret
"#,
    handle_lower = sym super::traps::handle_lower,
    handle_current = sym super::traps::handle_current,
);
