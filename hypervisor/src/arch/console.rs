//! The serial console: one PL011 shared by hypervisor trace lines and the
//! guest's (trapped, forwarded) UART accesses, under one lock so that a trace
//! line is never torn by guest output and always starts on a fresh line.

use super::timer;
use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};
use crate::trace::{Event, Timestamp};
use core::fmt::{self, Write};
use core::ptr::NonNull;
use spin::Mutex;

struct Console {
    uart: Uart<'static>,
    base: usize,
    /// Whether the last character written (by anyone) ended a line.
    at_line_start: bool,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Takes ownership of the PL011 at `base`.
///
/// # Safety
/// `base` must be the physical (identity-mapped, device) address of a PL011
/// that nothing else in the hypervisor accesses directly.
pub unsafe fn init(base: usize) {
    let ptr = NonNull::new(base as *mut PL011Registers).expect("UART base is null");
    // SAFETY: the caller guarantees exclusive access to a mapped PL011.
    let uart = Uart::new(unsafe { UniqueMmioPointer::new(ptr) });
    *CONSOLE.lock() = Some(Console { uart, base, at_line_start: true });
}

/// Writer that keeps `at_line_start` up to date.
struct Tracked<'a>(&'a mut Console);

impl Write for Tracked<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.uart.write_word(b'\r');
            }
            self.0.uart.write_word(b);
        }
        if let Some(last) = s.bytes().last() {
            self.0.at_line_start = last == b'\n';
        }
        Ok(())
    }
}

fn write_locked(console: &mut Console, cpu: usize, event: &Event<'_>) {
    let mut w = Tracked(console);
    if !w.0.at_line_start {
        let _ = w.write_str("\n");
    }
    let (secs, micros) = timer::seconds_micros();
    let time = Timestamp { secs, micros: micros as u32 };
    let _ = event.write_line(&mut w, time, cpu);
}

/// Prints one trace line for vCPU `cpu`.
pub fn emit(cpu: usize, event: &Event<'_>) {
    emit_after(cpu, event, || {});
}

/// Runs `action` and prints the line under the console lock, so that no
/// line about a consequence of `action` (printed by another CPU that saw
/// its effect) can come before this one.
pub fn emit_after(cpu: usize, event: &Event<'_>, action: impl FnOnce()) {
    let mut guard = CONSOLE.lock();
    action();
    if let Some(console) = guard.as_mut() {
        write_locked(console, cpu, event);
    }
}

/// Prints a line from the panic handler: never waits forever for a lock that
/// the panicking CPU itself may hold.
pub fn emergency_emit(cpu: usize, event: &Event<'_>) {
    for _ in 0..1_000_000 {
        if let Some(mut guard) = CONSOLE.try_lock() {
            if let Some(console) = guard.as_mut() {
                write_locked(console, cpu, event);
            }
            return;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the lock holder is stuck (most likely this very CPU panicked
    // while printing); a torn line beats a silent hang.
    unsafe { CONSOLE.force_unlock() };
    if let Some(console) = CONSOLE.lock().as_mut() {
        write_locked(console, cpu, event);
    }
}

/// A guest access to the emulated UART, forwarded to the real one under the
/// console lock. Returns the value read (0 for writes).
pub fn guest_access(offset: usize, write: Option<u32>) -> u32 {
    let mut guard = CONSOLE.lock();
    let Some(console) = guard.as_mut() else { return 0 };
    let reg = (console.base + (offset & 0xffc)) as *mut u32;
    match write {
        Some(value) => {
            if offset & 0xffc == 0 {
                // UARTDR: track line starts so trace lines begin fresh.
                console.at_line_start = value as u8 == b'\n';
            }
            // SAFETY: `reg` is a 32-bit register inside the 4 KiB PL011 frame
            // this module owns; device memory, identity mapped.
            unsafe { reg.write_volatile(value) };
            0
        }
        // SAFETY: as above.
        None => unsafe { reg.read_volatile() },
    }
}
