//! Serial trace vocabulary: formatting (used by the hypervisor) and, in the
//! host-only `parse`, reading it back (trace-plot, the harness, tests).
//!
//! Every line has the shape fixed by `abi.md`:
//!
//! ```text
//! [hv <seconds>.<microseconds, 6 digits>] cpu<N> <EVENT> <details>
//! ```
//!
//! This module is portable: it owns neither the console lock nor the clock.
//! The arch code reads the counter, picks the vCPU index, checks the
//! [`Filter`] against [`Event::level`], takes the console lock, makes sure
//! the UART is at the start of a line, and calls [`Event::write_line`].
//!
//! The full vocabulary with examples is in `docs/trace.md`; it is a stable
//! interface (host tools parse it), so extend it only by adding events.

use core::fmt::{self, Display, Write};

pub use crate::power_state::PowerState;
use crate::smccc::{Args, Call, CallClass};

#[cfg(not(target_os = "none"))]
mod parse;
mod results;
#[cfg(not(target_os = "none"))]
pub use parse::{TraceLine, parse_line, parse_log};

/// The text every trace line starts with.
pub const LINE_PREFIX: &str = "[hv ";

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// A trace timestamp: whole seconds and microseconds (rounded down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds.
    pub secs: u64,
    /// Microseconds within the second, `0..1_000_000`.
    pub micros: u32,
}

impl Timestamp {
    /// Seconds as a float (for plotting on the host).
    pub fn as_secs_f64(&self) -> f64 {
        self.secs as f64 + self.micros as f64 / 1e6
    }
}

impl Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.secs, self.micros)
    }
}

/// Converts a counter value (`CNTPCT_EL0`) at frequency `freq_hz`
/// (`CNTFRQ_EL0`) into a timestamp, rounding down to the microsecond.
/// Never overflows; a frequency of 0 (unprogrammed CNTFRQ) yields 0.000000.
pub const fn format_timestamp(ticks: u64, freq_hz: u64) -> Timestamp {
    if freq_hz == 0 {
        return Timestamp { secs: 0, micros: 0 };
    }
    let secs = ticks / freq_hz;
    let rem = ticks % freq_hz;
    // rem < freq_hz <= u64::MAX, so rem * 1e6 fits in u128.
    let micros = (rem as u128 * 1_000_000 / freq_hz as u128) as u32;
    Timestamp { secs, micros }
}

/// Converts a tick delta to nanoseconds (rounding down, saturating), e.g. for
/// the `elapsed_ns` of `fast-stop end`.
pub const fn ticks_to_ns(ticks: u64, freq_hz: u64) -> u64 {
    if freq_hz == 0 {
        return 0;
    }
    let ns = ticks as u128 * 1_000_000_000 / freq_hz as u128;
    if ns > u64::MAX as u128 {
        u64::MAX
    } else {
        ns as u64
    }
}

// ---------------------------------------------------------------------------
// Levels and filtering
// ---------------------------------------------------------------------------

/// How important an event is; compared against the `trace=` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Printed even with `trace=off`: `panic` and `log ERROR`.
    Error,
    /// Default (`trace=state`): state changes, fast-stop, ipi-drop, fault,
    /// mark, system, boot and the other log levels.
    State,
    /// Only with `trace=calls`: every PSCI / SMCCC / vendor call and result.
    Calls,
}

/// The `trace=` option of the hypervisor command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Filter {
    /// `trace=off`: errors only.
    Off,
    /// `trace=state` (default).
    #[default]
    State,
    /// `trace=calls`.
    Calls,
}

impl Filter {
    /// Parses the value of `trace=` (`off`, `state`, `calls`).
    pub fn from_option(value: &str) -> Option<Filter> {
        match value {
            "off" => Some(Filter::Off),
            "state" => Some(Filter::State),
            "calls" => Some(Filter::Calls),
            _ => None,
        }
    }

    /// Whether an event of `level` is printed.
    pub const fn allows(self, level: Level) -> bool {
        let max = match self {
            Filter::Off => Level::Error,
            Filter::State => Level::State,
            Filter::Calls => Level::Calls,
        };
        level as u8 <= max as u8
    }
}

// ---------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------

/// Why a vCPU changed state (the parenthesised tail of a `state` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason<'a> {
    /// `boot`: the hypervisor's own boot (vCPU0 starts ON, the others OFF).
    Boot,
    /// `psci CPU_ON by cpu<N>`.
    CpuOnBy(usize),
    /// `entered guest at 0x<pc>`: ON_PENDING → ON.
    EnteredGuest(u64),
    /// `psci CPU_OFF`.
    CpuOff,
    /// `fast-stop`: parked by another vCPU's FAST_STOP.
    FastStop,
    /// `system off`.
    SystemOff,
    /// `system reset`.
    SystemReset,
    /// Anything else (free text without parentheses or newlines).
    Other(&'a str),
}

/// Every reason once: its packed tag in a trace ring and its text, a fixed
/// phrase or a prefix and a number. This one list gives `Display`, the
/// parser (`Reason::parse`, host only) and the packed form.
macro_rules! reasons {
    (
        $($fixed:ident = $ftag:literal, $text:literal;)*
        $(($numbered:ident, $ntag:literal) = $prefix:literal $fmt:literal $parse:ident as $ty:ty;)*
    ) => {
        impl Display for Reason<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match *self {
                    $(Reason::$fixed => f.write_str($text),)*
                    $(Reason::$numbered(n) => write!(f, concat!($prefix, $fmt), n),)*
                    Reason::Other(s) => f.write_str(s),
                }
            }
        }

        impl Reason<'_> {
            /// The reason as a ring's (tag, argument) words; `None` for
            /// `Other`, which is recorded as text.
            pub(crate) fn pack(self) -> Option<(u64, u64)> {
                match self {
                    $(Reason::$fixed => Some(($ftag, 0)),)*
                    $(Reason::$numbered(n) => Some(($ntag, n as u64)),)*
                    Reason::Other(_) => None,
                }
            }

            /// Inverse of [`Reason::pack`].
            pub(crate) fn unpack(tag: u64, arg: u64) -> Option<Reason<'static>> {
                match tag {
                    $($ftag => Some(Reason::$fixed),)*
                    $($ntag => Some(Reason::$numbered(arg as $ty)),)*
                    _ => None,
                }
            }
        }

        #[cfg(not(target_os = "none"))]
        impl<'a> Reason<'a> {
            /// Recognises the fixed reasons; anything else is `Other`.
            pub fn parse(s: &'a str) -> Reason<'a> {
                match s {
                    $($text => return Reason::$fixed,)*
                    _ => {}
                }
                $(if let Some(n) = s.strip_prefix($prefix).and_then(parse::$parse) {
                    return Reason::$numbered(n as $ty);
                })*
                Reason::Other(s)
            }
        }
    };
}

reasons! {
    Boot = 0, "boot";
    CpuOff = 3, "psci CPU_OFF";
    FastStop = 4, "fast-stop";
    SystemOff = 5, "system off";
    SystemReset = 6, "system reset";
    (CpuOnBy, 1) = "psci CPU_ON by cpu" "{}" parse_dec as usize;
    (EnteredGuest, 2) = "entered guest at " "{:#x}" parse_hex as u64;
}

/// One trace event, borrowed and allocation-free (what the hypervisor prints).
///
/// Free-text fields (`Log`, `Panic`, `Boot`, `Reason::Other`, fault `why`
/// and `action`) may contain anything; control characters are escaped when
/// written so a line can never be split. `Fault::kind` must be a single word.
#[derive(Clone, Copy)]
pub enum Event<'a> {
    /// `state <FROM> -> <TO> (<reason>)`.
    State {
        /// Previous state.
        from: PowerState,
        /// New state.
        to: PowerState,
        /// Why.
        reason: Reason<'a>,
    },
    /// `psci CPU_ON(0x1, 0x48001000, 0x5) = SUCCESS (0)`, `smccc ...`,
    /// `hvc ...`, or `call 0x<id> = NOT_SUPPORTED (-1)` for unknown IDs.
    Call {
        /// Which family (and event word).
        class: CallClass,
        /// Function ID (printed only for [`CallClass::Unknown`]).
        id: u32,
        /// Function name (empty for unknown calls).
        name: &'a str,
        /// Arguments (printed in hex).
        args: Args,
        /// x0 on return (signed).
        result: i64,
        /// Name of the result; `None` prints the value in hex instead.
        result_name: Option<&'a str>,
    },
    /// `fast-stop begin timeout_us=<n>`.
    FastStopBegin {
        /// Effective deadline in µs.
        timeout_us: u64,
    },
    /// `fast-stop end result=<n> stopped=<n> unconfirmed=<n> elapsed_ns=<n>`.
    FastStopEnd {
        /// x0 of FAST_STOP.
        result: i64,
        /// x1: vCPUs moved to OFF by this call.
        stopped: u64,
        /// x2: vCPUs not confirmed by the deadline.
        unconfirmed: u64,
        /// x3: elapsed nanoseconds.
        elapsed_ns: u64,
    },
    /// `ipi-drop sgi=<n> target=cpu<M> (parked)`.
    IpiDrop {
        /// SGI number the guest sent.
        sgi: u8,
        /// Linear index of the parked target vCPU.
        target: usize,
    },
    /// `fault <kind> addr=0x.. pc=0x.. <read|write> size=<n> (<why>) -> <action>`.
    Fault {
        /// One word, e.g. `dabt`, `iabt`, `mmio`.
        kind: &'a str,
        /// Faulting address (IPA for stage-2 faults).
        addr: u64,
        /// Guest PC (ELR_EL2).
        pc: u64,
        /// Write access.
        write: bool,
        /// Access size in bytes (0 = unknown, e.g. ISV=0).
        size: u8,
        /// Why it could not be handled.
        why: &'a str,
        /// What the hypervisor did (`inject abort`, `park vcpu`, ...).
        action: &'a str,
    },
    /// `mark 0x<8 hex digits>` (vendor TRACE_MARK).
    Mark {
        /// The guest's value.
        value: u32,
    },
    /// `system off`.
    SystemOff,
    /// `system reset`.
    SystemReset,
    /// `log <LEVEL> <message>`.
    Log {
        /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`.
        level: log::Level,
        /// The message.
        message: &'a dyn Display,
    },
    /// `panic <location>: <message>`.
    Panic {
        /// `file:line:col` (or anything `Display`).
        location: &'a dyn Display,
        /// The panic message.
        message: &'a dyn Display,
    },
    /// `boot <free text>`.
    Boot {
        /// The text.
        message: &'a dyn Display,
    },
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event({self})")
    }
}

impl Event<'static> {
    /// The call line for a decoded guest call and its x0 result.
    pub fn call(call: &Call, result: i64) -> Event<'static> {
        Event::Call {
            class: call.class(),
            id: call.function_id(),
            name: call.name(),
            args: call.args(),
            result,
            result_name: results::result_name(call, result),
        }
    }
}

impl<'a> Event<'a> {
    /// The trace level this event is printed at.
    pub fn level(&self) -> Level {
        match self {
            Event::Call { .. } => Level::Calls,
            Event::Panic { .. }
            | Event::Log {
                level: log::Level::Error,
                ..
            } => Level::Error,
            _ => Level::State,
        }
    }

    /// Writes the event part of the line (`<EVENT> <details>`), escaping any
    /// control character so that it stays on one line: what a trace ring
    /// records at the event (`trace_buffer`).
    pub fn write_body<W: Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write!(OneLine(w), "{self}")
    }

    /// Writes one complete line, `[hv s.us] cpu<N> <event>\n`, escaping any
    /// control character inside the event so the line cannot be split.
    pub fn write_line<W: Write + ?Sized>(
        &self,
        w: &mut W,
        time: Timestamp,
        cpu: usize,
    ) -> fmt::Result {
        write!(
            OneLine(w),
            "{}",
            Line {
                time,
                cpu,
                event: self
            }
        )?;
        w.write_char('\n')
    }
}

/// A full trace line (without the newline) for `Display`.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    /// Timestamp.
    pub time: Timestamp,
    /// Linear vCPU index.
    pub cpu: usize,
    /// The event.
    pub event: &'a Event<'a>,
}

impl Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{LINE_PREFIX}{}] cpu{} {}",
            self.time, self.cpu, self.event
        )
    }
}

/// Escapes control characters so that the output stays on one line.
struct OneLine<'w, W: Write + ?Sized>(&'w mut W);

impl<W: Write + ?Sized> Write for OneLine<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(|c: char| c.is_control()) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or(' ');
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_char(' ')?,
                _ => self.0.write_char('?')?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

struct HexList<'a>(&'a [u64]);

impl Display for HexList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v:#x}")?;
        }
        Ok(())
    }
}

struct ResultText<'a>(i64, Option<&'a str>);

impl Display for ResultText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "{:#x} ({})", self.0, self.0),
        }
    }
}

impl Display for Event<'_> {
    /// The event part of the line: `<EVENT> <details>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Event::State { from, to, reason } => {
                write!(f, "state {} -> {} ({reason})", from.name(), to.name())
            }
            Event::Call {
                class: CallClass::Unknown,
                id,
                result,
                result_name,
                ..
            } => {
                write!(f, "call {id:#x} = {}", ResultText(result, result_name))
            }
            Event::Call {
                class,
                name,
                args,
                result,
                result_name,
                ..
            } => write!(
                f,
                "{} {name}({}) = {}",
                class.word(),
                HexList(args.as_slice()),
                ResultText(result, result_name)
            ),
            Event::FastStopBegin { timeout_us } => {
                write!(f, "fast-stop begin timeout_us={timeout_us}")
            }
            Event::FastStopEnd {
                result,
                stopped,
                unconfirmed,
                elapsed_ns,
            } => write!(
                f,
                "fast-stop end result={result} stopped={stopped} unconfirmed={unconfirmed} elapsed_ns={elapsed_ns}"
            ),
            Event::IpiDrop { sgi, target } => {
                write!(f, "ipi-drop sgi={sgi} target=cpu{target} (parked)")
            }
            Event::Fault {
                kind,
                addr,
                pc,
                write,
                size,
                why,
                action,
            } => write!(
                f,
                "fault {kind} addr={addr:#x} pc={pc:#x} {} size={size} ({why}) -> {action}",
                if write { "write" } else { "read" }
            ),
            Event::Mark { value } => write!(f, "mark {value:#010x}"),
            Event::SystemOff => f.write_str("system off"),
            Event::SystemReset => f.write_str("system reset"),
            Event::Log { level, message } => write!(f, "log {level} {message}"),
            Event::Panic { location, message } => write!(f, "panic {location}: {message}"),
            Event::Boot { message } => write!(f, "boot {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn line(ev: &Event<'_>, time: Timestamp, cpu: usize) -> String {
        let mut s = String::new();
        ev.write_line(&mut s, time, cpu).unwrap();
        s
    }

    fn ts(secs: u64, micros: u32) -> Timestamp {
        Timestamp { secs, micros }
    }

    #[test]
    fn timestamp_basic() {
        assert_eq!(format_timestamp(0, 62_500_000).to_string(), "0.000000");
        assert_eq!(
            format_timestamp(62_500_000, 62_500_000).to_string(),
            "1.000000"
        );
        assert_eq!(
            format_timestamp(62_500_062, 62_500_000).to_string(),
            "1.000000"
        ); // 0.992 µs rounds down
        assert_eq!(
            format_timestamp(62_500_063, 62_500_000).to_string(),
            "1.000001"
        );
        assert_eq!(
            format_timestamp(93_750_000, 62_500_000).to_string(),
            "1.500000"
        );
        assert_eq!(format_timestamp(1, 1).to_string(), "1.000000");
        assert_eq!(format_timestamp(123, 0).to_string(), "0.000000");
        // 24 MHz (common on real boards): 1 tick = 41.67 ns.
        assert_eq!(
            format_timestamp(23_999_999, 24_000_000).to_string(),
            "0.999999"
        );
        assert_eq!(format_timestamp(24, 24_000_000).to_string(), "0.000001");
        assert_eq!(format_timestamp(23, 24_000_000).to_string(), "0.000000");
    }

    #[test]
    fn timestamp_never_overflows() {
        let t = format_timestamp(u64::MAX, 62_500_000);
        assert_eq!(t.secs, u64::MAX / 62_500_000);
        assert!(t.micros < 1_000_000);
        // u64::MAX % 62_500_000 = 22_051_615 ticks = 352_825.84 µs.
        assert_eq!(t.micros, 352_825);
        let t = format_timestamp(u64::MAX, u64::MAX);
        assert_eq!(t, ts(1, 0));
        let t = format_timestamp(u64::MAX - 1, u64::MAX);
        assert_eq!(t, ts(0, 999_999));
        assert_eq!(format_timestamp(u64::MAX, 1).secs, u64::MAX);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(62_500_000, 62_500_000), 1_000_000_000);
        assert_eq!(ticks_to_ns(1, 62_500_000), 16);
    }

    #[test]
    fn timestamp_exhaustive_small_frequency() {
        // Cross-check the rounding against a float-free reference.
        for freq in [1u64, 3, 7, 1000, 999_999, 1_000_001, 19_200_000] {
            for ticks in (0..5 * freq).step_by((freq / 97).max(1) as usize) {
                let t = format_timestamp(ticks, freq);
                let total_us = ticks as u128 * 1_000_000 / freq as u128;
                let us = t.secs as u128 * 1_000_000 + t.micros as u128;
                assert_eq!(us, total_us, "ticks {ticks} freq {freq}");
            }
        }
    }

    #[test]
    fn filter_levels() {
        assert_eq!(Filter::from_option("off"), Some(Filter::Off));
        assert_eq!(Filter::from_option("calls"), Some(Filter::Calls));
        assert_eq!(Filter::from_option("state"), Some(Filter::State));
        assert_eq!(Filter::from_option("bogus"), None);
        assert_eq!(Filter::default(), Filter::State);
        assert!(Filter::Off.allows(Level::Error));
        assert!(!Filter::Off.allows(Level::State));
        assert!(Filter::State.allows(Level::State));
        assert!(!Filter::State.allows(Level::Calls));
        assert!(Filter::Calls.allows(Level::Calls));
        assert!(Filter::Calls.allows(Level::Error));
    }

    #[test]
    fn event_levels() {
        let msg = "x";
        let call = Event::call(&crate::smccc::decode(0x8400_0000, 0, 0, 0), 0x10001);
        assert_eq!(call.level(), Level::Calls);
        assert_eq!(Event::Mark { value: 1 }.level(), Level::State);
        assert_eq!(Event::SystemOff.level(), Level::State);
        assert_eq!(Event::FastStopBegin { timeout_us: 1 }.level(), Level::State);
        assert_eq!(Event::IpiDrop { sgi: 1, target: 1 }.level(), Level::State);
        assert_eq!(Event::Boot { message: &msg }.level(), Level::State);
        assert_eq!(
            Event::Log {
                level: log::Level::Info,
                message: &msg
            }
            .level(),
            Level::State
        );
        assert_eq!(
            Event::Log {
                level: log::Level::Error,
                message: &msg
            }
            .level(),
            Level::Error
        );
        assert_eq!(
            Event::Panic {
                location: &msg,
                message: &msg
            }
            .level(),
            Level::Error
        );
        let st = Event::State {
            from: PowerState::Off,
            to: PowerState::On,
            reason: Reason::Boot,
        };
        assert_eq!(st.level(), Level::State);
    }

    #[test]
    fn exact_formats() {
        let t = ts(12, 345);
        let cases: Vec<(Event<'_>, &str)> = vec![
            (
                Event::State {
                    from: PowerState::Off,
                    to: PowerState::OnPending,
                    reason: Reason::CpuOnBy(0),
                },
                "[hv 12.000345] cpu3 state OFF -> ON_PENDING (psci CPU_ON by cpu0)\n",
            ),
            (
                Event::State {
                    from: PowerState::OnPending,
                    to: PowerState::On,
                    reason: Reason::EnteredGuest(0x4800_1000),
                },
                "[hv 12.000345] cpu3 state ON_PENDING -> ON (entered guest at 0x48001000)\n",
            ),
            (
                Event::State {
                    from: PowerState::On,
                    to: PowerState::Off,
                    reason: Reason::CpuOff,
                },
                "[hv 12.000345] cpu3 state ON -> OFF (psci CPU_OFF)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0xC400_0003, 1, 0x4800_1000, 5), 0),
                "[hv 12.000345] cpu3 psci CPU_ON(0x1, 0x48001000, 0x5) = SUCCESS (0)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0x8400_0002, 0, 0, 0), -3),
                "[hv 12.000345] cpu3 psci CPU_OFF() = DENIED (-3)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0x8400_0000, 0, 0, 0), 0x10001),
                "[hv 12.000345] cpu3 psci VERSION() = v1.1 (65537)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0x8000_0001, 0x8000_8000, 0, 0), -1),
                "[hv 12.000345] cpu3 smccc ARCH_FEATURES(0x80008000) = NOT_SUPPORTED (-1)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0x8600_0000, 0, 0, 0), 0xF),
                "[hv 12.000345] cpu3 hvc FEATURES() = 0xf (15)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0xC600_0001, 0, 0, 0), 0),
                "[hv 12.000345] cpu3 hvc FAST_STOP(0x0, 0x0) = SUCCESS (0)\n",
            ),
            (
                Event::call(&crate::smccc::decode(0xC500_0000, 7, 0, 0), -1),
                "[hv 12.000345] cpu3 call 0xc5000000 = NOT_SUPPORTED (-1)\n",
            ),
            (
                Event::FastStopBegin {
                    timeout_us: 1_000_000,
                },
                "[hv 12.000345] cpu3 fast-stop begin timeout_us=1000000\n",
            ),
            (
                Event::FastStopEnd {
                    result: 0,
                    stopped: 3,
                    unconfirmed: 0,
                    elapsed_ns: 41_250,
                },
                "[hv 12.000345] cpu3 fast-stop end result=0 stopped=3 unconfirmed=0 elapsed_ns=41250\n",
            ),
            (
                Event::FastStopEnd {
                    result: -6,
                    stopped: 2,
                    unconfirmed: 1,
                    elapsed_ns: 1_000_000_123,
                },
                "[hv 12.000345] cpu3 fast-stop end result=-6 stopped=2 unconfirmed=1 elapsed_ns=1000000123\n",
            ),
            (
                Event::IpiDrop { sgi: 1, target: 2 },
                "[hv 12.000345] cpu3 ipi-drop sgi=1 target=cpu2 (parked)\n",
            ),
            (
                Event::Fault {
                    kind: "dabt",
                    addr: 0x4010_0000,
                    pc: 0x4800_0abc,
                    write: true,
                    size: 8,
                    why: "hypervisor memory",
                    action: "inject abort",
                },
                "[hv 12.000345] cpu3 fault dabt addr=0x40100000 pc=0x48000abc write size=8 (hypervisor memory) -> inject abort\n",
            ),
            (
                Event::Mark { value: 0xAB },
                "[hv 12.000345] cpu3 mark 0x000000ab\n",
            ),
            (
                Event::Mark { value: 0xDEAD_BEEF },
                "[hv 12.000345] cpu3 mark 0xdeadbeef\n",
            ),
            (Event::SystemOff, "[hv 12.000345] cpu3 system off\n"),
            (Event::SystemReset, "[hv 12.000345] cpu3 system reset\n"),
        ];
        for (ev, want) in cases {
            assert_eq!(line(&ev, t, 3), want);
        }
        let m = format_args!("gicv3 ready, {} cpus", 4);
        assert_eq!(
            line(
                &Event::Log {
                    level: log::Level::Warn,
                    message: &m
                },
                ts(0, 1),
                0
            ),
            "[hv 0.000001] cpu0 log WARN gicv3 ready, 4 cpus\n"
        );
        let loc = "hypervisor/src/main.rs:10:5";
        let msg = "oops";
        assert_eq!(
            line(
                &Event::Panic {
                    location: &loc,
                    message: &msg
                },
                ts(0, 1),
                0
            ),
            "[hv 0.000001] cpu0 panic hypervisor/src/main.rs:10:5: oops\n"
        );
        let b = "parkvisor 0.1.0, 4 cpus, guest at 0x48000000";
        assert_eq!(
            line(&Event::Boot { message: &b }, ts(0, 0), 0),
            "[hv 0.000000] cpu0 boot parkvisor 0.1.0, 4 cpus, guest at 0x48000000\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let msg = "two\nlines\r\tand\x07bell";
        let s = line(
            &Event::Log {
                level: log::Level::Info,
                message: &msg,
            },
            ts(1, 2),
            1,
        );
        assert_eq!(s, "[hv 1.000002] cpu1 log INFO two\\nlines\\r and?bell\n");
        assert_eq!(s.matches('\n').count(), 1);
    }

    fn all_events() -> Vec<Event<'static>> {
        use crate::smccc::decode;
        static LOC: &str = "src/lib.rs:1:1";
        static MSG: &str = "message: with colon";
        let mut v = vec![
            Event::State {
                from: PowerState::Off,
                to: PowerState::On,
                reason: Reason::Boot,
            },
            Event::State {
                from: PowerState::Off,
                to: PowerState::OnPending,
                reason: Reason::CpuOnBy(63),
            },
            Event::State {
                from: PowerState::OnPending,
                to: PowerState::On,
                reason: Reason::EnteredGuest(u64::MAX),
            },
            Event::State {
                from: PowerState::On,
                to: PowerState::Off,
                reason: Reason::CpuOff,
            },
            Event::State {
                from: PowerState::On,
                to: PowerState::Off,
                reason: Reason::FastStop,
            },
            Event::State {
                from: PowerState::OnPending,
                to: PowerState::Off,
                reason: Reason::FastStop,
            },
            Event::State {
                from: PowerState::On,
                to: PowerState::Off,
                reason: Reason::SystemOff,
            },
            Event::State {
                from: PowerState::On,
                to: PowerState::Off,
                reason: Reason::SystemReset,
            },
            Event::State {
                from: PowerState::On,
                to: PowerState::Off,
                reason: Reason::Other("weird (nested) reason"),
            },
            Event::FastStopBegin { timeout_us: 0 },
            Event::FastStopEnd {
                result: i64::MIN,
                stopped: u64::MAX,
                unconfirmed: 0,
                elapsed_ns: 1,
            },
            Event::IpiDrop {
                sgi: 15,
                target: 511,
            },
            Event::Fault {
                kind: "mmio",
                addr: 0,
                pc: 0,
                write: false,
                size: 0,
                why: "isv=0 (ldp)",
                action: "inject abort",
            },
            Event::Mark { value: 0 },
            Event::Mark { value: u32::MAX },
            Event::SystemOff,
            Event::SystemReset,
            Event::Log {
                level: log::Level::Error,
                message: &MSG,
            },
            Event::Log {
                level: log::Level::Trace,
                message: &"",
            },
            Event::Panic {
                location: &LOC,
                message: &MSG,
            },
            Event::Boot { message: &MSG },
        ];
        let calls = [
            (0x8400_0000u64, 0u64, 0u64, 0u64, 0x10001i64),
            (0x8400_000A, 0xC400_0003, 0, 0, 0),
            (0xC400_0001, 0x1_0000, 0x4800_0000, 9, 0),
            (0x8400_0002, 0, 0, 0, -3),
            (0xC400_0003, 0x3, 0x4800_1000, 0x5, -4),
            (0x8400_0003, 0x3, 0x4800_1000, 0x5, -9),
            (0xC400_0004, 0x2, 0, 0, 1),
            (0x8400_0006, 0, 0, 0, 2),
            (0x8400_0008, 0, 0, 0, 0),
            (0x8400_0009, 0, 0, 0, 0),
            (0xC400_0012, 1, 2, 0, -2),
            (0xC400_000E, 1, 2, 0, -1),
            (0x8000_0000, 0, 0, 0, 0x10001),
            (0x8000_0001, 0x8000_8000, 0, 0, -1),
            (0x8000_8000, 0, 0, 0, -1),
            (0x8600_FF01, 0, 0, 0, 0xCD11_84F9),
            (0x8600_0000, 0, 0, 0, 0xF),
            (0xC600_0001, 1000, 0, 0, -6),
            (0xC600_0002, 0x101, 0, 0, 2),
            (0x8600_0003, 0x1234, 0, 0, 0),
            (0x0400_0003, 0, 0, 0, -1),
            (0xFFFF_FFFF, 0, 0, 0, -1),
            (0x8400_0003, 0, 0, 0, 12345),
            (0x8400_0003, 0, 0, 0, -77),
        ];
        for (x0, x1, x2, x3, r) in calls {
            v.push(Event::call(&decode(x0, x1, x2, x3), r));
        }
        v
    }

    #[test]
    fn format_parse_round_trip() {
        for (i, ev) in all_events().iter().enumerate() {
            let time = ts(i as u64 * 1000, (i as u32 * 7919) % 1_000_000);
            let cpu = i % 70;
            let text = line(ev, time, cpu);
            let parsed = parse_line(&text).unwrap_or_else(|| panic!("no parse: {text}"));
            assert_eq!(parsed.time, time, "{text}");
            assert_eq!(parsed.cpu, cpu, "{text}");
            let again = parsed
                .event()
                .unwrap_or_else(|| panic!("{text} -> {parsed:?}"));
            assert_eq!(again.level(), ev.level(), "{text}");
            assert_eq!(line(&again, time, cpu), text);
        }
    }

    type CallFields = (CallClass, u32, String, Vec<u64>, i64, Option<String>);

    /// The fields of a parsed call line's event.
    fn call_fields(line: &TraceLine<'_>) -> CallFields {
        match line.event() {
            Some(Event::Call {
                class,
                id,
                name,
                args,
                result,
                result_name,
            }) => (
                class,
                id,
                name.into(),
                args.as_slice().to_vec(),
                result,
                result_name.map(String::from),
            ),
            other => panic!("{line:?} -> {other:?}"),
        }
    }

    #[test]
    fn parsed_fields() {
        let p = parse_line("[hv 3.000100] cpu1 psci CPU_ON(0x1, 0x48001000, 0x5) = SUCCESS (0)")
            .unwrap();
        assert_eq!(p.time, ts(3, 100));
        assert_eq!(p.cpu, 1);
        assert_eq!(
            call_fields(&p),
            (
                CallClass::Psci,
                0,
                "CPU_ON".into(),
                vec![1, 0x4800_1000, 5],
                0,
                Some("SUCCESS".into())
            )
        );
        let p = parse_line("[hv 3.000100] cpu1 call 0xc5000000 = NOT_SUPPORTED (-1)").unwrap();
        assert_eq!(
            call_fields(&p),
            (
                CallClass::Unknown,
                0xC500_0000,
                String::new(),
                vec![],
                -1,
                Some("NOT_SUPPORTED".into())
            )
        );
        let p = parse_line("[hv 0.5] cpu1 mark 0x00000001");
        assert_eq!(p, None, "microseconds need 6 digits");
        let reason = |l: &str| {
            let p = parse_line(l).unwrap();
            match p.event() {
                Some(Event::State { reason, .. }) => format!("{reason:?}"),
                other => panic!("{l} -> {other:?}"),
            }
        };
        assert_eq!(
            reason("[hv 7.000000] cpu2 state ON -> OFF (fast-stop)"),
            "FastStop"
        );
        assert_eq!(
            reason("[hv 7.000000] cpu2 state OFF -> ON_PENDING (psci CPU_ON by cpu12)"),
            "CpuOnBy(12)"
        );
        let p = parse_line("[hv 7.000000] cpu2 ipi-drop sgi=3 target=cpu5 (parked)").unwrap();
        assert!(
            matches!(p.event(), Some(Event::IpiDrop { sgi: 3, target: 5 })),
            "{p:?}"
        );
        let p = parse_line(
            "[hv 7.000000] cpu2 fault dabt addr=0x1 pc=0x2 read size=4 (why (x)) -> park",
        )
        .unwrap();
        assert!(
            matches!(
                p.event(),
                Some(Event::Fault {
                    kind: "dabt",
                    addr: 1,
                    pc: 2,
                    write: false,
                    size: 4,
                    why: "why (x)",
                    action: "park",
                })
            ),
            "{p:?}"
        );
        let p = parse_line("[hv 7.000000] cpu2 log WARN two words").unwrap();
        let Some(Event::Log { level, message }) = p.event() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (level, message.to_string()),
            (log::Level::Warn, "two words".into())
        );
    }

    #[test]
    fn unknown_or_malformed_events_have_no_event() {
        let p = parse_line("[hv 1.000000] cpu0 vgic lr0=0x1").unwrap();
        assert_eq!((p.word, p.details), ("vgic", "lr0=0x1"));
        assert!(p.event().is_none());
        for l in [
            "[hv 1.000000] cpu0 state ON -> BANANA (x)",
            "[hv 1.000000] cpu0 mark 0x1",
            "[hv 1.000000] cpu0 panic no location",
            "[hv 1.000000] cpu0 log LOUD message",
            "[hv 1.000000] cpu0 psci CPU_ON(0x1, 0x2, 0x3, 0x4) = SUCCESS (0)",
            "[hv 1.000000] cpu0 fast-stop end result=0 stopped=1 unconfirmed=0 elapsed_ns=1 more",
        ] {
            let p = parse_line(l).unwrap();
            assert!(p.event().is_none(), "{l} -> {:?}", p.event());
        }
        let p = parse_line("[hv 1.000000] cpu0 system").unwrap();
        assert_eq!((p.word, p.details), ("system", ""));
        assert!(p.event().is_none());
    }

    #[test]
    fn not_trace_lines() {
        for l in [
            "",
            "GUEST ok cpu_on",
            "  [hv 1.000000] cpu0 system off",
            "x[hv 1.000000] cpu0 system off",
            "[hv 1.000000] cpu system off",
            "[hv 1.000000] cpux system off",
            "[hv 1.000000] cpu0",
            "[hv 1.000000] cpu0 ",
            "[hv .000000] cpu0 system off",
            "[hv 1.0000000] cpu0 system off",
            "[hv 1,000000] cpu0 system off",
            "[hv -1.000000] cpu0 system off",
            "[ 0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
        ] {
            assert_eq!(parse_line(l), None, "{l:?}");
        }
    }

    #[test]
    fn finds_lines_in_noisy_log() {
        let log = "NOTICE:  Booting Trusted Firmware\r\n\
                   [hv 0.000010] cpu0 boot parkvisor 0.1.0\r\n\
                   [    0.000000] Linux version 6.6\r\n\
                   partial guest output without newline\n\
                   [hv 0.100000] cpu1 state OFF -> ON_PENDING (psci CPU_ON by cpu0)\n\
                   \r[hv 0.100020] cpu1 state ON_PENDING -> ON (entered guest at 0x48001000)\r\n\
                   GUEST ok fast_stop [hv 0.2] cpu0 mark 0x00000001\n\
                   [hv 0.300000] cpu0 mark 0x00000002";
        let lines: Vec<_> = parse_log(log).collect();
        assert_eq!(lines.len(), 4);
        let events: Vec<String> = lines
            .iter()
            .map(|l| format!("{}", l.event().unwrap()))
            .collect();
        assert_eq!(events[0], "boot parkvisor 0.1.0");
        assert_eq!(lines[1].cpu, 1);
        assert!(
            matches!(
                lines[2].event(),
                Some(Event::State {
                    reason: Reason::EnteredGuest(0x4800_1000),
                    ..
                })
            ),
            "{:?}",
            lines[2]
        );
        assert!(matches!(lines[3].event(), Some(Event::Mark { value: 2 })));
        assert_eq!(lines[3].time, ts(0, 300_000));
    }

    #[test]
    fn reason_parse_round_trip() {
        for r in [
            Reason::Boot,
            Reason::CpuOnBy(0),
            Reason::CpuOnBy(511),
            Reason::EnteredGuest(0x4800_0000),
            Reason::CpuOff,
            Reason::FastStop,
            Reason::SystemOff,
            Reason::SystemReset,
            Reason::Other("something else"),
        ] {
            assert_eq!(Reason::parse(&format!("{r}")), r);
        }
    }
}
