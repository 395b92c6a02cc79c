//! PL011 output with a cross-CPU line lock. The UART is the DTB's first
//! enabled PL011 (QEMU virt's at 0x0900_0000 until the DTB is read).
//!
//! The lock is re-entrant on the same CPU (an exception handler may print
//! while the interrupted code held it) and is taken over after a long wait
//! (a CPU stopped while printing must not wedge the others).

use super::smp::this_cpu;
use super::time;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// QEMU virt's PL011, used until [`set_base`].
pub const PL011_BASE: usize = 0x0900_0000;
static BASE: AtomicUsize = AtomicUsize::new(PL011_BASE);

/// The console PL011's base address.
pub fn base() -> usize {
    BASE.load(Relaxed)
}

/// Moves the console to the PL011 at `addr` (the boot CPU, from the DTB,
/// before any secondary runs).
pub fn set_base(addr: usize) {
    BASE.store(addr, Relaxed);
}
const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

const FREE: usize = usize::MAX;
static OWNER: AtomicUsize = AtomicUsize::new(FREE);

fn putc(c: u8) {
    let base = base();
    // SAFETY: the PL011's registers (from the DTB); MMIO is identity mapped
    // (MMU off).
    unsafe {
        let fr = (base + FR) as *const u32;
        let mut n = 0;
        while fr.read_volatile() & FR_TXFF != 0 && n < 100_000 {
            n += 1;
        }
        ((base + DR) as *mut u32).write_volatile(c as u32);
    }
}

struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

/// Runs `f` holding the print lock.
pub fn with_lock<R>(f: impl FnOnce() -> R) -> R {
    let me = this_cpu();
    let reentrant = OWNER.load(Acquire) == me;
    if !reentrant {
        let deadline = time::counter() + time::us_to_ticks(1_000_000);
        loop {
            if OWNER.compare_exchange(FREE, me, Acquire, Relaxed).is_ok() {
                break;
            }
            if time::counter() > deadline {
                // The holder is stuck (stopped?): take over.
                OWNER.store(me, Release);
                break;
            }
            core::hint::spin_loop();
        }
    }
    let r = f();
    if !reentrant {
        OWNER.store(FREE, Release);
    }
    r
}

/// Prints one whole line (adds the newline).
pub fn print_line(args: fmt::Arguments<'_>) {
    with_lock(|| {
        let _ = Raw.write_fmt(args);
        let _ = Raw.write_str("\n");
    });
}

/// Prints without a newline (caller should hold the line together).
pub fn print(args: fmt::Arguments<'_>) {
    with_lock(|| {
        let _ = Raw.write_fmt(args);
    });
}

/// `println!`-like macro printing one locked line.
#[macro_export]
macro_rules! gprintln {
    ($($arg:tt)*) => { $crate::arch::uart::print_line(format_args!($($arg)*)) };
}

/// Reads PL011 register `offset` (byte offset in the 4 KiB frame).
pub fn read_reg(offset: usize) -> u32 {
    // SAFETY: a PL011 register (from the DTB); MMIO is identity mapped.
    unsafe { ((base() + (offset & 0xffc)) as *const u32).read_volatile() }
}

/// Writes PL011 register `offset` (byte offset in the 4 KiB frame).
pub fn write_reg(offset: usize, value: u32) {
    // SAFETY: a PL011 register (from the DTB); MMIO is identity mapped.
    unsafe { ((base() + (offset & 0xffc)) as *mut u32).write_volatile(value) }
}
