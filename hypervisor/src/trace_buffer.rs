//! Trace off the critical path: every CPU records its trace events, with
//! the time taken at the event, into its own ring ([`TraceRing`]), without a
//! lock and without touching the UART; whichever CPU holds the console at a
//! non-critical point later merges the rings ([`Merger`]) and prints them.
//!
//! Order. Every record carries a number from one shared [`Sequencer`]
//! (a single `fetch_add`, no lock), and the merger prints in exactly that
//! order, waiting for a number that is taken but not yet visible. The caller
//! of [`TraceRing::record`] takes the number *before* its publishing store
//! (a state change other CPUs can observe) and *after* the loads that
//! observed a cause; so if B's event is a consequence of A's (B read what A
//! stored after recording), A's number is smaller (the `fetch_add`s are
//! ordered by the release/acquire pair of the publication and the counter is
//! one atomic location), and A's line is printed first. Each CPU's own lines
//! keep their program order the same way. The time in a line is the
//! counter read at the event; it does not decide the order.
//!
//! Nothing is lost silently: a record that does not fit is counted, takes
//! no number (so the numbers stay dense), and the CPU's next record that
//! fits is preceded by a `log WARN` line saying how many were dropped.
//!
//! Portable and safe: the ring's storage is atomic words (the payload with
//! relaxed accesses, published by the release store of `head`), so the loom
//! model (`tests/loom.rs`) checks exactly this code.

use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use crate::trace::{Event, LINE_PREFIX, PowerState, Reason, Timestamp, format_timestamp};
use alloc::boxed::Box;
use core::fmt::{self, Write};

/// The longest event text a record holds; longer text is cut at a
/// character boundary and ends in `...`.
/// (The loom models use a small one so their rings stay small.)
pub const MAX_BODY: usize = if cfg!(loom) { 64 } else { 384 };
/// seq, ticks, cpu | length.
const HEADER_WORDS: usize = 3;

/// Hands out the dense, totally ordered record numbers.
pub struct Sequencer(AtomicU64);

impl Sequencer {
    pub fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    fn take(&self) -> u64 {
        // SeqCst: one location, so any order would do for the argument in
        // the module comment; SeqCst keeps the model and the proof simple.
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

/// Calls `f` with `event`'s text (what follows `cpu<N> ` in its line).
fn with_text<R>(event: &Event<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    f(Body::<MAX_BODY>::of(event).as_bytes())
}

/// An event's text, formatted into a fixed buffer (no allocation).
pub struct Body<const N: usize = MAX_BODY> {
    bytes: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Body<N> {
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// `event`'s text as it appears after `cpu<N> ` in its line.
    pub fn of(event: &Event<'_>) -> Self {
        let mut b = Self::new();
        let _ = event.write_body(&mut b);
        b
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only whole `str`s (or their prefixes cut at a char boundary) are
        // ever copied in.
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

impl<const N: usize> Default for Body<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for Body<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = N - self.len;
        if s.len() <= room {
            self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            return Ok(());
        }
        // Cut at a char boundary, leaving room for "...".
        let mut cut = room.saturating_sub(3).min(s.len());
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.bytes[self.len..self.len + cut].copy_from_slice(&s.as_bytes()[..cut]);
        self.len += cut;
        let dots = (N - self.len).min(3);
        self.bytes[self.len..self.len + dots].copy_from_slice(&b"..."[..dots]);
        self.len += dots;
        self.truncated = true;
        Ok(())
    }
}

/// One record taken out of a ring.
pub struct Record {
    pub seq: u64,
    /// Counter value (`CNTPCT_EL0`) at the event.
    pub ticks: u64,
    /// The vCPU the line is about (`cpu<N>`), not always the recording CPU.
    pub cpu: usize,
    pub body: Body,
}

impl Record {
    pub const fn new() -> Self {
        Self {
            seq: 0,
            ticks: 0,
            cpu: 0,
            body: Body::<MAX_BODY>::new(),
        }
    }

    /// Writes the complete trace line, identical to `Event::write_line`.
    pub fn write_line<W: Write + ?Sized>(&self, w: &mut W, freq_hz: u64) -> fmt::Result {
        write_prefix(w, format_timestamp(self.ticks, freq_hz), self.cpu)?;
        w.write_str(self.body.as_str())?;
        w.write_char('\n')
    }
}

impl Default for Record {
    fn default() -> Self {
        Self::new()
    }
}

/// `[hv <time>] cpu<N> `: the part of a line before the event.
pub fn write_prefix<W: Write + ?Sized>(w: &mut W, time: Timestamp, cpu: usize) -> fmt::Result {
    write!(w, "{LINE_PREFIX}{time}] cpu{cpu} ")
}

/// What a record holds after its header: text, or a hot event packed into
/// a few words (kind, words, how many).
enum Payload<'a> {
    Text(&'a [u8]),
    Packed(u64, [u64; PACKED_WORDS], usize),
}

impl Payload<'_> {
    /// Bytes after the header.
    fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Packed(_, _, n) => n * 8,
        }
    }
}

const PACKED_WORDS: usize = 4;
const KIND_STATE: u64 = 1;

/// A state's packed code: its AFFINITY_INFO value.
fn state_code(s: PowerState) -> u64 {
    s.affinity_info()
}

fn state_of(code: u64) -> Option<PowerState> {
    PowerState::from_affinity_info(code)
}

/// A field of a hot event, as one ring word.
trait Word: Sized {
    fn to_word(self) -> u64;
    fn from_word(w: u64) -> Self;
}

macro_rules! word_as {
    ($($ty:ty),*) => {$(
        impl Word for $ty {
            #[inline(always)]
            fn to_word(self) -> u64 {
                self as u64
            }
            fn from_word(w: u64) -> Self {
                w as $ty
            }
        }
    )*};
}
word_as!(u8, u32, u64, i64, usize);

/// The hot events made of numbers, each listed once with its record kind
/// and its fields in word order: this gives both [`pack`] and [`unpack`].
macro_rules! word_events {
    ($($variant:ident = $kind:literal { $($field:ident: $ty:ty),+ };)*) => {
        #[inline(always)]
        fn pack_words(event: &Event<'_>) -> Option<Payload<'static>> {
            match *event {
                $(Event::$variant { $($field),+ } => {
                    let mut words = [0; PACKED_WORDS];
                    let mut n = 0;
                    $(
                        words[n] = Word::to_word($field);
                        n += 1;
                    )+
                    Some(Payload::Packed($kind, words, n))
                })*
                _ => None,
            }
        }

        fn unpack_words(kind: u64, w: &[u64; PACKED_WORDS]) -> Option<Event<'static>> {
            let mut words = w.iter().copied();
            Some(match kind {
                $($kind => Event::$variant {
                    $($field: <$ty as Word>::from_word(words.next()?)),+
                },)*
                _ => return None,
            })
        }
    };
}

word_events! {
    FastStopBegin = 2 { timeout_us: u64 };
    FastStopEnd = 3 { result: i64, stopped: u64, unconfirmed: u64, elapsed_ns: u64 };
    IpiDrop = 4 { sgi: u8, target: usize };
    Mark = 5 { value: u32 };
}

/// The hot events as words; `None` for the others (recorded as text).
#[inline(always)]
fn pack(event: &Event<'_>) -> Option<Payload<'static>> {
    match *event {
        Event::State { from, to, reason } => {
            let (tag, arg) = reason.pack()?;
            let code = state_code(from) | state_code(to) << 8 | tag << 16;
            Some(Payload::Packed(KIND_STATE, [code, arg, 0, 0], 2))
        }
        _ => pack_words(event),
    }
}

/// Inverse of [`pack`].
fn unpack(kind: u64, w: &[u64; PACKED_WORDS]) -> Option<Event<'static>> {
    match kind {
        KIND_STATE => Some(Event::State {
            from: state_of(w[0] & 0xff)?,
            to: state_of(w[0] >> 8 & 0xff)?,
            reason: Reason::unpack(w[0] >> 16, w[1])?,
        }),
        _ => unpack_words(kind, w),
    }
}

/// One CPU's trace ring: a single producer (that CPU) and a single consumer
/// at a time (the holder of the console, through a [`Merger`]).
///
/// Records are variable length, in 64-bit words: seq, ticks, `cpu << 32 |
/// length`, then the text (little endian, zero padded). `head` and `tail`
/// count words and only grow; a word's slot is `index & mask`.
pub struct TraceRing {
    words: Box<[AtomicU64]>,
    mask: usize,
    /// Written only by the producer (release: publishes the words before it).
    head: AtomicUsize,
    /// Written only by the consumer (release: frees the words before it).
    tail: AtomicUsize,
    /// Records lost because the ring was full, not yet reported in a line.
    dropped: AtomicU64,
}

/// A record's third word: the line's vCPU, the payload kind (0: text) and
/// the payload's length in bytes.
fn header(cpu: usize, kind: u64, len: usize) -> u64 {
    (cpu as u64) << 32 | kind << 24 | len as u64
}

fn words_for(len: usize) -> usize {
    HEADER_WORDS + len.div_ceil(8)
}

impl TraceRing {
    /// A ring of `words` 64-bit words (rounded up to a power of two, at
    /// least enough for one longest record plus a drop note).
    pub fn new(words: usize) -> Self {
        let words = words.max(2 * words_for(MAX_BODY)).next_power_of_two();
        Self {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            mask: words - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn capacity_words(&self) -> usize {
        self.mask + 1
    }

    /// Producer (the owning CPU `me` only): records `body` as vCPU `cpu`'s
    /// line with the time `now()` and the next number of `seq`, both taken
    /// here, after the ring has room. Call it before the store that
    /// publishes the event, after the loads that observed its cause.
    /// Returns false (and counts a drop) when the ring is full.
    pub fn record(
        &self,
        seq: &Sequencer,
        me: usize,
        cpu: usize,
        now: impl Fn() -> u64,
        body: &[u8],
    ) -> bool {
        let body = &body[..body.len().min(MAX_BODY)];
        self.record_payload(seq, me, cpu, now, Payload::Text(body))
    }

    /// [`Self::record`] for an event: the hot ones (state changes,
    /// fast-stop, ipi-drop, mark) as a few binary words, formatted only when
    /// printed; the others as text.
    ///
    /// Inlined, so that for an event known at the call site the packing
    /// folds to constants and a hot record costs a few dozen instructions
    /// (under icount every instruction is guest-visible time on FAST_STOP,
    /// CPU_ON and CPU_OFF); everything else is out of line.
    #[inline(always)]
    pub fn record_event(
        &self,
        seq: &Sequencer,
        me: usize,
        cpu: usize,
        now: impl Fn() -> u64,
        event: &Event<'_>,
    ) -> bool {
        match pack(event) {
            Some(Payload::Packed(kind, words, n)) => {
                self.record_packed(seq, me, cpu, now, kind, &words, n)
            }
            _ => self.record_text_event(seq, me, cpu, now, event),
        }
    }

    #[inline(never)]
    fn record_text_event(
        &self,
        seq: &Sequencer,
        me: usize,
        cpu: usize,
        now: impl Fn() -> u64,
        event: &Event<'_>,
    ) -> bool {
        with_text(event, |text| self.record(seq, me, cpu, now, text))
    }

    /// The hot path: a packed event, no drops to report, room, and no wrap
    /// inside the record (one bounds check). Anything else goes the general
    /// way ([`Self::record_payload`]), which writes the same format.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn record_packed(
        &self,
        seq: &Sequencer,
        me: usize,
        cpu: usize,
        now: impl Fn() -> u64,
        kind: u64,
        words: &[u64; PACKED_WORDS],
        n: usize,
    ) -> bool {
        let len = HEADER_WORDS + n;
        let head = self.head.load(Ordering::Relaxed);
        // Acquire: the consumer has finished reading what it freed.
        let used = head.wrapping_sub(self.tail.load(Ordering::Acquire));
        let start = head & self.mask;
        if self.dropped.load(Ordering::Relaxed) != 0
            || self.capacity_words() - used < len
            || start + len > self.words.len()
        {
            return self.record_payload(seq, me, cpu, now, Payload::Packed(kind, *words, n));
        }
        let slots = &self.words[start..start + len];
        let ticks = now();
        slots[0].store(seq.take(), Ordering::Relaxed);
        slots[1].store(ticks, Ordering::Relaxed);
        slots[2].store(header(cpu, kind, n * 8), Ordering::Relaxed);
        for (slot, w) in slots[HEADER_WORDS..].iter().zip(&words[..n]) {
            slot.store(*w, Ordering::Relaxed);
        }
        // Release: publishes the words above to the consumer.
        self.head.store(head + len, Ordering::Release);
        true
    }

    #[inline(never)]
    #[cold]
    fn record_payload(
        &self,
        seq: &Sequencer,
        me: usize,
        cpu: usize,
        now: impl Fn() -> u64,
        body: Payload<'_>,
    ) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        // Acquire: the consumer has finished reading what it freed.
        let used = head.wrapping_sub(self.tail.load(Ordering::Acquire));
        let lost = self.dropped.load(Ordering::Relaxed);
        if lost > 0 {
            return self.record_after_drops(seq, me, cpu, now, body, head, used, lost);
        }
        if self.capacity_words() - used < words_for(body.len()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let ticks = now();
        let at = self.put(head, seq.take(), ticks, cpu, &body);
        self.head.store(at, Ordering::Release);
        true
    }

    /// `record` when `lost` records were dropped since the last one that
    /// fitted: a note saying so goes first, if both fit.
    #[allow(clippy::too_many_arguments)]
    fn record_after_drops(
        &self,
        seq: &Sequencer,
        me: usize,
        cpu: usize,
        now: impl Fn() -> u64,
        body: Payload<'_>,
        head: usize,
        used: usize,
        lost: u64,
    ) -> bool {
        let mut note = Body::<MAX_BODY>::new();
        let _ = write!(
            note,
            "log WARN trace buffer full: {lost} events dropped on cpu{me}"
        );
        if self.capacity_words() - used < words_for(body.len()) + words_for(note.len) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.dropped.fetch_sub(lost, Ordering::Relaxed);
        let mut at = self.put(head, seq.take(), now(), me, &Payload::Text(note.as_bytes()));
        let ticks = now();
        at = self.put(at, seq.take(), ticks, cpu, &body);
        self.head.store(at, Ordering::Release);
        true
    }

    fn slot(&self, index: usize) -> &AtomicU64 {
        &self.words[index & self.mask]
    }

    fn put(&self, at: usize, seq: u64, ticks: u64, cpu: usize, body: &Payload<'_>) -> usize {
        self.slot(at).store(seq, Ordering::Relaxed);
        self.slot(at + 1).store(ticks, Ordering::Relaxed);
        let kind = match body {
            Payload::Text(_) => 0,
            Payload::Packed(kind, ..) => *kind,
        };
        self.slot(at + 2)
            .store(header(cpu, kind, body.len()), Ordering::Relaxed);
        match body {
            Payload::Text(text) => {
                for (i, chunk) in text.chunks(8).enumerate() {
                    let mut w = [0u8; 8];
                    w[..chunk.len()].copy_from_slice(chunk);
                    self.slot(at + HEADER_WORDS + i)
                        .store(u64::from_le_bytes(w), Ordering::Relaxed);
                }
            }
            Payload::Packed(_, words, n) => {
                for (i, w) in words[..*n].iter().enumerate() {
                    self.slot(at + HEADER_WORDS + i)
                        .store(*w, Ordering::Relaxed);
                }
            }
        }
        at + words_for(body.len())
    }

    /// Consumer: the number of the oldest unread record, if any.
    fn peek_seq(&self) -> Option<u64> {
        let tail = self.tail.load(Ordering::Relaxed);
        // Acquire: pairs with the producer's release of `head`.
        let head = self.head.load(Ordering::Acquire);
        (head != tail).then(|| self.slot(tail).load(Ordering::Relaxed))
    }

    /// Consumer: moves the oldest record (known to exist) into `out`.
    fn take(&self, out: &mut Record) {
        let tail = self.tail.load(Ordering::Relaxed);
        out.seq = self.slot(tail).load(Ordering::Relaxed);
        out.ticks = self.slot(tail + 1).load(Ordering::Relaxed);
        let cpu_len = self.slot(tail + 2).load(Ordering::Relaxed);
        out.cpu = (cpu_len >> 32) as usize;
        let kind = (cpu_len >> 24) & 0xff;
        let len = ((cpu_len & 0xff_ffff) as usize).min(MAX_BODY);
        out.body.clear();
        if kind != 0 {
            let mut words = [0u64; PACKED_WORDS];
            for (i, w) in words.iter_mut().enumerate().take(len / 8) {
                *w = self.slot(tail + HEADER_WORDS + i).load(Ordering::Relaxed);
            }
            match unpack(kind, &words) {
                Some(event) => {
                    let _ = event.write_body(&mut out.body);
                }
                None => {
                    let _ = out.body.write_str("log ERROR trace: undecodable record");
                }
            }
            self.tail.store(tail + words_for(len), Ordering::Release);
            return;
        }
        for i in 0..len.div_ceil(8) {
            let w = self
                .slot(tail + HEADER_WORDS + i)
                .load(Ordering::Relaxed)
                .to_le_bytes();
            let n = (len - i * 8).min(8);
            out.body.bytes[i * 8..i * 8 + n].copy_from_slice(&w[..n]);
        }
        out.body.len = len;
        // Release: our reads of the words are done before the producer reuses them.
        self.tail.store(tail + words_for(len), Ordering::Release);
    }

    /// Drops not yet reported in a line (reported by the panic flush).
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

/// The consumer's side: prints records in sequence order. One `Merger`
/// reads a set of rings, and only one CPU at a time uses it (it lives
/// under the console lock); it is the rings' only consumer.
pub struct Merger {
    next: u64,
}

impl Merger {
    pub const fn new() -> Self {
        Self { next: 0 }
    }

    /// Moves the next record in sequence order into `out`. False when it
    /// is not visible yet (no record at all, or its CPU is between taking
    /// the number and publishing the record).
    pub fn pop<'r>(
        &mut self,
        rings: impl IntoIterator<Item = &'r TraceRing>,
        out: &mut Record,
    ) -> bool {
        for ring in rings {
            if ring.peek_seq() == Some(self.next) {
                ring.take(out);
                self.next += 1;
                return true;
            }
        }
        false
    }

    /// Whether some ring holds a record (possibly not the next in order).
    pub fn any_pending<'r>(&self, rings: impl IntoIterator<Item = &'r TraceRing>) -> bool {
        rings.into_iter().any(|r| r.peek_seq().is_some())
    }

    /// Last resort (final flush, when a CPU stopped between taking a number
    /// and publishing its record): continue at the smallest visible number.
    /// Returns whether there was a gap to skip.
    pub fn skip_gap<'r>(&mut self, rings: impl IntoIterator<Item = &'r TraceRing>) -> bool {
        match rings.into_iter().filter_map(|r| r.peek_seq()).min() {
            Some(s) if s > self.next => {
                self.next = s;
                true
            }
            _ => false,
        }
    }
}

impl Default for Merger {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::trace::{PowerState, Reason};
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::cell::Cell;

    const FREQ: u64 = 62_500_000;

    fn drain(m: &mut Merger, rings: &[TraceRing]) -> Vec<String> {
        let mut out = Vec::new();
        let mut r = Record::new();
        while m.pop(rings, &mut r) {
            let mut s = String::new();
            r.write_line(&mut s, FREQ).unwrap();
            out.push(s);
        }
        out
    }

    fn state(from: PowerState, to: PowerState, reason: Reason<'static>) -> Event<'static> {
        Event::State { from, to, reason }
    }

    #[test]
    fn a_recorded_line_prints_exactly_as_write_line() {
        let events = [
            state(PowerState::Off, PowerState::OnPending, Reason::CpuOnBy(0)),
            Event::FastStopEnd {
                result: -6,
                stopped: 3,
                unconfirmed: 1,
                elapsed_ns: 12345,
            },
            Event::Log {
                level: log::Level::Warn,
                message: &"two\nlines\tand a tab",
            },
            Event::Mark { value: 0x2a },
        ];
        let ring = TraceRing::new(64);
        let seq = Sequencer::new();
        for (i, e) in events.iter().enumerate() {
            assert!(ring.record(
                &seq,
                0,
                i + 1,
                || 62_500_123 + i as u64 * 1000,
                Body::<MAX_BODY>::of(e).as_bytes()
            ));
        }
        let lines = drain(&mut Merger::new(), core::slice::from_ref(&ring));
        assert_eq!(lines.len(), events.len());
        for (i, e) in events.iter().enumerate() {
            let mut want = String::new();
            e.write_line(
                &mut want,
                format_timestamp(62_500_123 + i as u64 * 1000, FREQ),
                i + 1,
            )
            .unwrap();
            assert_eq!(lines[i], want);
        }
        assert_eq!(
            lines[0],
            "[hv 1.000001] cpu1 state OFF -> ON_PENDING (psci CPU_ON by cpu0)\n"
        );
    }

    /// The hot events are packed into words, and print exactly as their
    /// `Display`.
    #[test]
    fn packed_events_print_as_display() {
        use crate::trace::PowerState::*;
        let states = [Off, OnPending, On];
        let reasons = [
            Reason::Boot,
            Reason::CpuOnBy(0),
            Reason::CpuOnBy(511),
            Reason::EnteredGuest(0),
            Reason::EnteredGuest(0x4800_1000),
            Reason::EnteredGuest(u64::MAX),
            Reason::CpuOff,
            Reason::FastStop,
            Reason::SystemOff,
            Reason::SystemReset,
        ];
        let mut events = Vec::new();
        for from in states {
            for to in states {
                for reason in reasons {
                    events.push(state(from, to, reason));
                }
            }
        }
        for v in [0u64, 1, 9, 10, 1_000_000, u64::MAX] {
            events.push(Event::FastStopBegin { timeout_us: v });
            events.push(Event::FastStopEnd {
                result: 0,
                stopped: v,
                unconfirmed: v / 3,
                elapsed_ns: v,
            });
            events.push(Event::Mark { value: v as u32 });
        }
        for r in [i64::MIN, -6, -1, 0, 7, i64::MAX] {
            events.push(Event::FastStopEnd {
                result: r,
                stopped: 1,
                unconfirmed: 0,
                elapsed_ns: 41250,
            });
        }
        events.push(Event::IpiDrop {
            sgi: 15,
            target: 63,
        });
        events.push(Event::Mark { value: 0xdead_beef });
        for e in &events {
            assert!(pack(e).is_some(), "{e:?} is packed");
            let ring = TraceRing::new(64);
            assert!(ring.record_event(&Sequencer::new(), 0, 1, || 0, e));
            let mut r = Record::new();
            assert!(Merger::new().pop(core::slice::from_ref(&ring), &mut r));
            assert_eq!(r.body.as_str(), alloc::format!("{e}"));
        }
        let other = state(Off, On, Reason::Other("a\nb"));
        assert!(pack(&other).is_none(), "free text stays text (escaped)");
    }

    #[test]
    fn lines_merge_in_sequence_order_across_rings() {
        let rings = [TraceRing::new(64), TraceRing::new(64)];
        let seq = Sequencer::new();
        // cpu1 records first but with a later clock; order follows the numbers.
        rings[1].record(&seq, 1, 1, || 900, b"mark 0x00000001");
        rings[0].record(&seq, 0, 0, || 100, b"mark 0x00000002");
        rings[1].record(&seq, 1, 1, || 901, b"mark 0x00000003");
        let lines = drain(&mut Merger::new(), &rings);
        let marks: Vec<&str> = lines.iter().map(|l| &l[l.len() - 9..l.len() - 1]).collect();
        assert_eq!(marks, ["00000001", "00000002", "00000003"]);
    }

    #[test]
    fn a_number_not_yet_published_holds_back_the_later_ones() {
        let rings = [TraceRing::new(64), TraceRing::new(64)];
        let seq = Sequencer::new();
        seq.take(); // cpu0 took number 0 and has not published it yet
        rings[1].record(&seq, 1, 1, || 5, b"mark 0x00000001");
        let mut m = Merger::new();
        assert!(
            drain(&mut m, &rings).is_empty(),
            "number 1 must wait for number 0"
        );
        assert!(m.any_pending(&rings));
        assert!(m.skip_gap(&rings));
        assert_eq!(drain(&mut m, &rings).len(), 1);
    }

    #[test]
    fn a_full_ring_counts_drops_and_reports_them_before_the_next_line() {
        let ring = TraceRing::new(1); // rounds up to the minimum
        let seq = Sequencer::new();
        let mut recorded = 0;
        while ring.record(&seq, 3, 3, || 0, b"mark 0x00000000") {
            recorded += 1;
        }
        assert!(recorded >= 1);
        assert!(
            !ring.record(&seq, 3, 3, || 0, b"mark 0x00000001"),
            "still full"
        );
        let mut m = Merger::new();
        assert_eq!(drain(&mut m, core::slice::from_ref(&ring)).len(), recorded);
        assert!(ring.record(&seq, 3, 3, || 0, b"mark 0x00000002"));
        let lines = drain(&mut m, core::slice::from_ref(&ring));
        assert_eq!(
            lines,
            [
                "[hv 0.000000] cpu3 log WARN trace buffer full: 2 events dropped on cpu3\n",
                "[hv 0.000000] cpu3 mark 0x00000002\n"
            ]
        );
        assert_eq!(ring.take_dropped(), 0);
    }

    #[test]
    fn records_wrap_around_the_ring_intact() {
        let ring = TraceRing::new(1);
        let seq = Sequencer::new();
        let mut m = Merger::new();
        let mut r = Record::new();
        let clock = Cell::new(0u64);
        for i in 0..500u64 {
            let text = alloc::format!("log INFO {}", "y".repeat((i as usize * 7) % 200));
            assert!(ring.record(
                &seq,
                0,
                0,
                || {
                    clock.set(clock.get() + 1);
                    clock.get()
                },
                text.as_bytes()
            ));
            assert!(m.pop(core::slice::from_ref(&ring), &mut r));
            assert_eq!(r.body.as_str(), text);
            assert_eq!(r.seq, i);
        }
    }

    /// The inlined hot path writes whole records where they fit before the
    /// ring's end and leaves the wrap (and a pending drop note) to the
    /// general path; either way every line comes back intact and in order.
    #[test]
    fn packed_records_wrap_around_the_ring_intact() {
        let ring = TraceRing::new(1);
        let seq = Sequencer::new();
        let mut m = Merger::new();
        let mut r = Record::new();
        let mut pending = Vec::new();
        for i in 0..600u64 {
            let e = match i % 4 {
                0 => Event::Mark { value: i as u32 },
                1 => state(
                    PowerState::OnPending,
                    PowerState::On,
                    Reason::EnteredGuest(i),
                ),
                2 => Event::FastStopEnd {
                    result: -(i as i64),
                    stopped: i,
                    unconfirmed: 1,
                    elapsed_ns: i * 3,
                },
                _ => Event::Log {
                    level: log::Level::Info,
                    message: &"text between packed records",
                },
            };
            if !ring.record_event(&seq, 0, 2, || i, &e) {
                // Full: print what is there, then it must fit.
                while m.pop(core::slice::from_ref(&ring), &mut r) {
                    assert_eq!(r.body.as_str(), pending.remove(0));
                }
                assert_eq!(ring.take_dropped(), 1);
                assert!(ring.record_event(&seq, 0, 2, || i, &e));
            }
            pending.push(alloc::format!("{e}"));
            if i % 7 == 6 {
                while m.pop(core::slice::from_ref(&ring), &mut r) {
                    assert_eq!(r.cpu, 2);
                    assert_eq!(r.body.as_str(), pending.remove(0));
                }
                assert!(pending.is_empty());
            }
        }
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let mut b = Body::<MAX_BODY>::new();
        let long: String = "é".repeat(MAX_BODY);
        b.write_str(&long).unwrap();
        assert!(b.as_str().ends_with("..."));
        assert!(b.as_bytes().len() <= MAX_BODY);
        assert!(b.as_str().starts_with("éé"));
    }
}
