//! Boot and secondary-CPU entry trampolines.
//!
//! * `_start` is the first byte of the image (raw binary entered by
//!   guest-loader, or the ELF entry on plain QEMU). x0 = DTB (0 on plain
//!   QEMU with an ELF `-kernel`: the DTB is then at the start of RAM).
//! * `secondary_entry` / `secondary_entry_alt` are CPU_ON entry points. The
//!   low 8 bits of context_id (x0) select the CPU slot; the trampoline
//!   records the entry state in that slot's [`EntryRecord`] before touching
//!   anything else, then calls the slot's job on the slot's stack.
//!
//! The first instruction of each secondary entry is a branch over a
//! `mov x10, #1`: if the first instruction is skipped (a hypervisor carrying a
//! stale "skip the trapped instruction" into CPU_ON), the record says so.

use super::smp::{BAD_ENTRY, BOOT_RECORD, EntryRecord, SLOTS, STACK_SIZE, STACKS, Slot};
use crate::env::MAX_CPUS;
use core::mem::{offset_of, size_of};

/// Boot stack size.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
pub struct BootStack(pub [u8; BOOT_STACK_SIZE]);

#[unsafe(no_mangle)]
pub static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

/// Tag recorded by `secondary_entry`.
pub const TAG_ENTRY: u64 = 1;
/// Tag recorded by `secondary_entry_alt`.
pub const TAG_ENTRY_ALT: u64 = 2;

const _: () = assert!(STACK_SIZE.is_power_of_two());

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    b       2f                      // first instruction of the image
    .balign 8
2:  mrs     x10, daif
    msr     daifset, #0xf
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    mov     x22, x3
    mrs     x23, CurrentEL
    mrs     x24, SPSel
    mrs     x25, sctlr_el1
    msr     spsel, #1
    mov     x1, #0x300000           // CPACR_EL1.FPEN = 0b11: no FP/SIMD traps
    msr     cpacr_el1, x1
    isb
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:  adrp    x1, {boot_rec}
    add     x1, x1, :lo12:{boot_rec}
    stp     x19, x20, [x1, #{r_x0}]
    stp     x21, x22, [x1, #{r_x2}]
    str     x10, [x1, #{r_daif}]
    str     x23, [x1, #{r_el}]
    str     x24, [x1, #{r_spsel}]
    str     x25, [x1, #{r_sctlr}]
    mov     x2, #1
    str     x2, [x1, #{r_entries}]
    dsb     sy
    adrp    x1, {boot_stack}
    add     x1, x1, :lo12:{boot_stack}
    mov     x2, #{boot_stack_size}
    add     x1, x1, x2
    mov     sp, x1
    mov     x29, #0
    mov     x30, #0
    mov     x0, x19
    bl      guest_boot_rust
5:  wfi
    b       5b

    .text
    .balign 64
    .global secondary_entry
secondary_entry:
    b       1f                      // must execute: see module docs
    mov     x10, #1
    b       2f
1:  mov     x10, #0
2:  mov     x8, #{tag_entry}
    b       secondary_common

    .balign 64
    .global secondary_entry_alt
secondary_entry_alt:
    b       1f
    mov     x10, #1
    b       2f
1:  mov     x10, #0
2:  mov     x8, #{tag_alt}
    b       secondary_common

secondary_common:
    mrs     x11, daif
    msr     daifset, #0xf
    mrs     x12, CurrentEL
    mrs     x13, SPSel
    mrs     x14, sctlr_el1
    // Little-endian data from here on, whatever the entry endianness was
    // (the record keeps it): the stores below must be readable by the rest.
    bic     x15, x14, #(1 << 25)
    msr     sctlr_el1, x15
    isb
    mrs     x7, mpidr_el1
    and     x9, x0, #0xff
    cmp     x9, #{max_cpus}
    b.hs    9f
    adrp    x15, {slots}
    add     x15, x15, :lo12:{slots}
    mov     x16, #{slot_size}
    madd    x15, x9, x16, x15
    str     x0, [x15, #{r_x0}]
    str     x10, [x15, #{r_skipped}]
    str     x8, [x15, #{r_tag}]
    str     x11, [x15, #{r_daif}]
    str     x12, [x15, #{r_el}]
    str     x13, [x15, #{r_spsel}]
    str     x14, [x15, #{r_sctlr}]
    str     x7, [x15, #{r_mpidr}]
    dmb     ish
    ldr     x16, [x15, #{r_entries}]
    add     x16, x16, #1
    str     x16, [x15, #{r_entries}]
    dsb     sy
    sev
    msr     spsel, #1
    mov     x1, #0x300000
    msr     cpacr_el1, x1
    isb
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    msr     tpidr_el1, x9
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    add     x16, x9, #1
    lsl     x16, x16, #{stack_shift}
    add     x1, x1, x16
    mov     sp, x1
    mov     x29, #0
    mov     x30, #0
    mov     x1, x0
    mov     x0, x9
    bl      guest_secondary_rust
8:  wfe
    b       8b
    // context_id does not name a slot: record what arrived and park.
9:  adrp    x15, {bad}
    add     x15, x15, :lo12:{bad}
    str     x0, [x15, #8]
    str     x1, [x15, #16]
    str     x7, [x15, #24]
    ldr     x16, [x15]
    add     x16, x16, #1
    str     x16, [x15]
    dsb     sy
    b       8b
"#,
    boot_rec = sym BOOT_RECORD,
    boot_stack = sym BOOT_STACK,
    boot_stack_size = const BOOT_STACK_SIZE,
    slots = sym SLOTS,
    bad = sym BAD_ENTRY,
    stacks = sym STACKS,
    slot_size = const size_of::<Slot>(),
    stack_shift = const STACK_SIZE.trailing_zeros(),
    max_cpus = const MAX_CPUS,
    tag_entry = const TAG_ENTRY,
    tag_alt = const TAG_ENTRY_ALT,
    r_entries = const offset_of!(EntryRecord, entries),
    r_x0 = const offset_of!(EntryRecord, x0),
    r_x2 = const offset_of!(EntryRecord, x2),
    r_skipped = const offset_of!(EntryRecord, skipped),
    r_tag = const offset_of!(EntryRecord, tag),
    r_daif = const offset_of!(EntryRecord, daif),
    r_el = const offset_of!(EntryRecord, current_el),
    r_spsel = const offset_of!(EntryRecord, spsel),
    r_sctlr = const offset_of!(EntryRecord, sctlr),
    r_mpidr = const offset_of!(EntryRecord, mpidr),
);

unsafe extern "C" {
    fn secondary_entry();
    fn secondary_entry_alt();
}

/// Address of the standard CPU_ON entry point.
pub fn entry_point() -> u64 {
    secondary_entry as *const () as u64
}

/// Address of the alternative CPU_ON entry point (records [`TAG_ENTRY_ALT`]).
pub fn entry_point_alt() -> u64 {
    secondary_entry_alt as *const () as u64
}
