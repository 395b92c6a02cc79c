//! The serial console: one PL011 shared by hypervisor trace lines and the
//! guest's (trapped, forwarded) UART accesses, under one lock so that a trace
//! line is never torn by guest output and always starts on a fresh line.
//!
//! Trace events are not written here when they happen: each CPU records
//! them in its own ring (`crate::trace_buffer`), and the console prints them
//! at non-critical points — a guest UART access, the end of boot, a
//! power-off, a panic. Only those take the console lock.
//!
//! With `console-baud=N` every byte (trace and guest) costs its time on a
//! PL011 wire at N baud (`crate::uart_model`, in builds with the
//! `uart-model` feature).

use super::timer;
use crate::trace::Event;
use crate::trace_buffer::{Merger, Record, TraceRing};
#[cfg(feature = "uart-model")]
use crate::uart_model::{FIFO_DEPTH, WireModel};
use core::fmt::{self, Write};
use core::ptr::NonNull;
#[cfg(not(feature = "uart-model"))]
use no_wire::{FIFO_DEPTH, WireModel};
use safe_mmio::{UniqueMmioPointer, fields::ReadWrite};
use spin::Mutex;

/// The PL011's 4 KiB register frame as 32-bit registers. The console owns
/// it through this one pointer: the hypervisor's bytes and the guest's
/// forwarded accesses (to any register) alike.
type Pl011Frame = [ReadWrite<u32>; 1024];
/// PL011 registers the console itself uses (byte offsets).
const UARTDR: usize = 0x00;
const UARTFR: usize = 0x18;
/// The PL011's configuration registers: what the guest may not change on
/// the UART that also carries the hypervisor's own output (see
/// [`filter_guest_write`]).
const UARTIBRD: usize = 0x24;
const UARTFBRD: usize = 0x28;
const UARTLCR_H: usize = 0x2c;
const UARTCR: usize = 0x30;
const UARTDMACR: usize = 0x48;
const CR_UARTEN: u32 = 1 << 0;
const CR_LBE: u32 = 1 << 7;
const CR_TXE: u32 = 1 << 8;
/// Flag register bits the wire model decides.
const FR_BUSY: u32 = 1 << 3;
const FR_TXFF: u32 = 1 << 5;
const FR_TXFE: u32 = 1 << 7;
/// The longest line: prefix, a cut record body, "\r\n" before and after.
const MAX_LINE: usize = 64 + crate::trace_buffer::MAX_BODY;

struct Console {
    regs: UniqueMmioPointer<'static, Pl011Frame>,
    /// Whether the last character written (by anyone) ended a line.
    at_line_start: bool,
    wire: Option<WireModel>,
    merger: Merger,
    /// Scratch for the record being printed.
    record: Record,
    /// The trace line being written.
    line: LineBuf,
    /// Bytes written while the transmit FIFO stayed full (lost by the
    /// UART), not yet reported.
    lost_bytes: u64,
    /// When the guest wrote the first byte of the line it has not ended
    /// yet: trace lines wait for its end (for at most 1/5 s),
    /// so they do not cut a guest line into pieces.
    guest_line_since: Option<u64>,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

struct LineBuf {
    bytes: [u8; MAX_LINE],
    len: usize,
    sent: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.push(b'\r');
            }
            self.push(b);
        }
        Ok(())
    }
}

impl LineBuf {
    fn push(&mut self, b: u8) {
        if self.len < MAX_LINE {
            self.bytes[self.len] = b;
            self.len += 1;
        }
    }
}

/// Takes ownership of the PL011 at `base`.
///
/// # Safety
/// `base` must be the physical (identity-mapped, device) address of a
/// PL011's 4 KiB register frame that nothing else in the hypervisor
/// accesses: from now on every access goes through the console.
pub unsafe fn init(base: usize) {
    let ptr = NonNull::new(base as *mut Pl011Frame).expect("UART base is null");
    // SAFETY: the caller guarantees that the frame is mapped device memory
    // and that nothing else accesses it; this pointer, kept under the
    // console lock, is its only owner (no raw accesses elsewhere).
    let regs = unsafe { UniqueMmioPointer::new(ptr) };
    *CONSOLE.lock() = Some(Console {
        regs,
        at_line_start: true,
        wire: None,
        merger: Merger::new(),
        record: Record::new(),
        line: LineBuf {
            bytes: [0; MAX_LINE],
            len: 0,
            sent: 0,
        },
        lost_bytes: 0,
        guest_line_since: None,
    });
}

/// Whether the guest may read the UART's registers directly (stage 2 maps
/// the frame read-only, writes still trap): not with the wire model, which
/// rewrites UARTFR's FIFO bits.
pub fn guest_reads_direct() -> bool {
    CONSOLE.lock().as_ref().is_some_and(|c| c.wire.is_none())
}

/// `console-baud=N`: from now on the console costs what a PL011 at `baud`
/// would (0: instant).
#[cfg(feature = "uart-model")]
pub fn set_baud(baud: u64) {
    if let Some(c) = CONSOLE.lock().as_mut() {
        c.wire = WireModel::new(baud, timer::frequency());
    }
}

/// `console-baud=N` in a build without the wire model: refused loudly (an
/// error, so that it shows even with `trace=off`), since a benchmark that
/// asked for a real UART's speed would otherwise measure the instant one.
#[cfg(not(feature = "uart-model"))]
pub fn set_baud(baud: u64) {
    if baud != 0 {
        log::error!(
            "console-baud={baud} ignored: this build has no UART model (build parkvisor with --features uart-model)"
        );
    }
}

/// The wire model's stand-in when the `uart-model` feature is off: a type
/// with no values, so `Option<WireModel>` is always `None` and every use
/// of the model compiles away.
#[cfg(not(feature = "uart-model"))]
mod no_wire {
    pub const FIFO_DEPTH: u64 = 32;

    #[derive(Clone, Copy)]
    pub enum WireModel {}

    impl WireModel {
        pub fn can_accept(&self, _now: u64) -> bool {
            match *self {}
        }
        pub fn push(&mut self, _now: u64) {
            match *self {}
        }
        pub fn busy(&self, _now: u64) -> bool {
            match *self {}
        }
        pub fn fifo_empty(&self, _now: u64) -> bool {
            match *self {}
        }
        pub fn byte_ticks(&self) -> u64 {
            match *self {}
        }
        pub fn wait_ticks(&self, _now: u64) -> u64 {
            match *self {}
        }
    }
}

impl Console {
    /// The 32-bit register at byte `offset` (bits 1:0 ignored) of the frame.
    fn reg(&mut self, offset: usize) -> UniqueMmioPointer<'_, ReadWrite<u32>> {
        let index = (offset & 0xffc) / 4;
        self.regs
            .get(index)
            .expect("a masked offset lies inside the 4 KiB frame")
    }

    /// Whether a guest line in progress holds trace lines back at `now`.
    fn guest_line_open(&self, now: u64) -> bool {
        self.guest_line_since.is_some_and(|since| {
            now.wrapping_sub(since) < timer::frequency() / GUEST_LINE_HOLD_DIVISOR
        })
    }

    /// One byte, waiting for FIFO room in the wire model.
    fn put(&mut self, b: u8) {
        if let Some(w) = self.wire.as_mut() {
            let mut now = timer::ticks();
            while !w.can_accept(now) {
                core::hint::spin_loop();
                now = timer::ticks();
            }
            w.push(now);
        }
        // The real transmit FIFO: a PL011 drops a byte written while it is
        // full (QEMU 10 models the FIFO), which lost guest lines under heavy
        // trace output. Wait for room, but never for long: a UART that makes
        // no progress costs a byte, not the CPU.
        let give_up = timer::ticks() + timer::frequency() / TXFF_WAIT_DIVISOR;
        while self.reg(UARTFR).read() & FR_TXFF != 0 {
            if timer::ticks() >= give_up {
                self.lost_bytes += 1;
                break;
            }
            core::hint::spin_loop();
        }
        self.reg(UARTDR).write(u32::from(b));
    }

    /// Sends the formatted line (what is left of it), waiting for the wire.
    fn send_line(&mut self) {
        while self.line.sent < self.line.len {
            let b = self.line.bytes[self.line.sent];
            self.put(b);
            self.line.sent += 1;
        }
        self.line.len = 0;
        self.line.sent = 0;
    }

    /// Formats the next record in order as the line to send. False if none
    /// is ready.
    /// A report of lost console bytes comes first: nothing is lost silently.
    fn next_line<'r>(&mut self, rings: impl IntoIterator<Item = &'r TraceRing>) -> bool {
        let lost = core::mem::take(&mut self.lost_bytes);
        if lost == 0 && !self.merger.pop(rings, &mut self.record) {
            return false;
        }
        self.line.len = 0;
        self.line.sent = 0;
        if !self.at_line_start {
            let _ = self.line.write_str("\n");
        }
        self.guest_line_since = None;
        if lost > 0 {
            let message = format_args!(
                "console: {lost} bytes lost: the UART's transmit FIFO stayed full for 10 ms"
            );
            let report = Event::Log {
                level: log::Level::Warn,
                message: &message,
            };
            let _ = report.write_line(&mut self.line, timer::timestamp(), super::cpu_index());
        } else {
            let _ = self.record.write_line(&mut self.line, timer::frequency());
        }
        self.at_line_start = true;
        true
    }

    /// Prints every record that is ready, waiting for the wire.
    fn flush<'r>(&mut self, rings: impl IntoIterator<Item = &'r TraceRing> + Clone) {
        self.send_line();
        while self.next_line(rings.clone()) {
            self.send_line();
        }
    }

    /// Prints ready records until the counter passes `deadline` (the line
    /// under way is always finished): other CPUs may record lines as fast as
    /// this one prints them, and a guest UART access must complete in
    /// bounded time. What is left goes out at the next access or tick.
    fn flush_until<'r>(
        &mut self,
        rings: impl IntoIterator<Item = &'r TraceRing> + Clone,
        deadline: u64,
    ) {
        self.send_line();
        while timer::ticks() < deadline && self.next_line(rings.clone()) {
            self.send_line();
        }
    }

    /// A line now (boot, before the rings exist; panics), after the pending one.
    fn write_now(&mut self, cpu: usize, event: &Event<'_>) {
        self.send_line();
        let time = timer::timestamp();
        self.line.len = 0;
        self.line.sent = 0;
        if !self.at_line_start {
            let _ = self.line.write_str("\n");
        }
        let _ = event.write_line(&mut self.line, time, cpu);
        self.at_line_start = true;
        self.send_line();
    }
}

/// Prints one trace line for vCPU `cpu` at once (before the trace rings
/// exist: early boot only).
#[cold]
#[inline(never)]
pub fn emit_now(cpu: usize, event: &Event<'_>) {
    if let Some(console) = CONSOLE.lock().as_mut() {
        console.write_now(cpu, event);
    }
}

/// Prints every ready trace line, waiting for the wire (power-off, boot).
pub fn flush<'r>(rings: impl IntoIterator<Item = &'r TraceRing> + Clone) {
    if let Some(c) = CONSOLE.lock().as_mut() {
        c.flush(rings);
    }
}

/// Why the trace tick stopped printing.
pub enum TickDrain {
    /// Every ready line is out.
    Empty,
    /// The wire model's FIFO is full; half of it has drained in this many
    /// ticks.
    WireFull(u64),
    /// The tick's time is up with lines still ready.
    OutOfTime,
    /// Another CPU holds the console (it prints what is ready).
    Busy,
}

/// The trace tick: sends ready lines byte by byte until none is left, the
/// wire model's FIFO is full, or the counter reaches `deadline`, and never
/// waits (not for the lock, not for the wire). A line it leaves half sent is
/// finished first by the next one to print, so nothing is torn.
pub fn tick_drain<'r>(
    rings: impl IntoIterator<Item = &'r TraceRing> + Clone,
    deadline: u64,
) -> TickDrain {
    let Some(mut guard) = CONSOLE.try_lock() else {
        return TickDrain::Busy;
    };
    let Some(c) = guard.as_mut() else {
        return TickDrain::Empty;
    };
    loop {
        if c.line.sent == c.line.len {
            if c.guest_line_open(timer::ticks()) {
                return TickDrain::Busy;
            }
            if !c.next_line(rings.clone()) {
                return TickDrain::Empty;
            }
        }
        let now = timer::ticks();
        if let Some(w) = c.wire.as_mut() {
            if !w.can_accept(now) {
                let half = w.byte_ticks() * (FIFO_DEPTH / 2);
                return TickDrain::WireFull(w.wait_ticks(now) + half);
            }
            w.push(now);
        } else if now >= deadline {
            return TickDrain::OutOfTime;
        }
        let b = c.line.bytes[c.line.sent];
        c.reg(UARTDR).write(u32::from(b));
        c.line.sent += 1;
    }
}

/// Last words (panic, power-off): prints every recorded line, even past a
/// CPU that stopped between numbering and publishing a record, reports
/// unreported drops, then `event` if given. Never waits forever for a lock
/// that the calling CPU itself may hold.
pub fn final_flush<'r>(
    rings: impl IntoIterator<Item = &'r TraceRing> + Clone,
    cpu: usize,
    event: Option<&Event<'_>>,
) {
    let mut guard = None;
    for _ in 0..1_000_000 {
        guard = CONSOLE.try_lock();
        if guard.is_some() {
            break;
        }
        core::hint::spin_loop();
    }
    let mut guard = guard.unwrap_or_else(|| {
        // SAFETY: the lock holder is stuck (most likely this very CPU
        // panicked while printing); a torn line beats a silent hang.
        unsafe { CONSOLE.force_unlock() };
        CONSOLE.lock()
    });
    let Some(c) = guard.as_mut() else { return };
    c.send_line();
    let mut stalls = 0;
    loop {
        c.flush(rings.clone());
        if !c.merger.any_pending(rings.clone()) {
            break;
        }
        // A number is taken but its record not visible: give its CPU a
        // moment (it is a few instructions from publishing), then skip.
        stalls += 1;
        if stalls > 1000 && !c.merger.skip_gap(rings.clone()) {
            break;
        }
        core::hint::spin_loop();
    }
    for (i, ring) in rings.into_iter().enumerate() {
        let lost = ring.take_dropped();
        if lost > 0 {
            let message = format_args!("trace buffer full: {lost} events dropped on cpu{i}");
            c.write_now(
                i,
                &Event::Log {
                    level: log::Level::Warn,
                    message: &message,
                },
            );
        }
    }
    if let Some(event) = event {
        c.write_now(cpu, event);
    }
}

/// A guest access to the emulated UART, forwarded to the real one under the
/// console lock, after every ready trace line (so neither tears the other).
/// Returns the value read (0 for writes).
pub fn guest_access<'r>(
    rings: impl IntoIterator<Item = &'r TraceRing> + Clone,
    offset: usize,
    write: Option<u32>,
) -> u32 {
    let mut guard = CONSOLE.lock();
    let Some(c) = guard.as_mut() else { return 0 };
    let now = timer::ticks();
    if c.guest_line_open(now) {
        // Only the line under way, so that it ends where it started.
        c.send_line();
    } else {
        c.flush_until(rings, now + timer::frequency() / GUEST_FLUSH_BUDGET_DIVISOR);
    }
    let offset = offset & 0xffc;
    match write {
        Some(value) if offset == UARTDR => {
            // Through the wire model; track line starts so trace lines
            // begin fresh, and the guest's open line.
            c.put(value as u8);
            c.at_line_start = value as u8 == b'\n';
            if c.at_line_start {
                c.guest_line_since = None;
            } else if c.guest_line_since.is_none() {
                c.guest_line_since = Some(now);
            }
            0
        }
        Some(value) => {
            if let Some(value) = filter_guest_write(offset, value) {
                c.reg(offset).write(value);
            }
            0
        }
        None => {
            let real = c.reg(offset).read();
            match (offset, c.wire) {
                (UARTFR, Some(w)) => {
                    let now = timer::ticks();
                    let mut v = real & !(FR_BUSY | FR_TXFF | FR_TXFE);
                    if w.busy(now) {
                        v |= FR_BUSY;
                    }
                    if !w.can_accept(now) {
                        v |= FR_TXFF;
                    }
                    if w.fifo_empty(now) {
                        v |= FR_TXFE;
                    }
                    v
                }
                _ => real,
            }
        }
    }
}

/// The longest wait for room in the real transmit FIFO: 1/100 s, about
/// 100 characters at 115200 baud.
const TXFF_WAIT_DIVISOR: u64 = 100;

/// How long a guest UART access prints trace lines first: 1/1000 s.
const GUEST_FLUSH_BUDGET_DIVISOR: u64 = 1000;

/// How long a guest line in progress holds trace lines back: 1/5 s. A
/// guest that leaves a line open longer (a prompt, a stalled CPU) gets it
/// cut by the next trace line, as before. Shorter holds (20 ms) still cut
/// lines under QEMU on a loaded host, where a vCPU thread can wait that
/// long between two bytes of one line.
const GUEST_LINE_HOLD_DIVISOR: u64 = 5;

/// What of a guest write to a non-data register reaches the real PL011,
/// whose output is the hypervisor's too: the guest may not disable the
/// UART or its transmitter, turn on loopback, or change the baud rate,
/// the frame format or DMA (ignored). Interrupt masks, clears and the
/// other control bits (RXE, RTS, ...) are the guest's.
fn filter_guest_write(offset: usize, value: u32) -> Option<u32> {
    match offset {
        UARTIBRD | UARTFBRD | UARTLCR_H | UARTDMACR => None,
        UARTCR => Some(value & !CR_LBE | CR_UARTEN | CR_TXE),
        _ => Some(value),
    }
}
