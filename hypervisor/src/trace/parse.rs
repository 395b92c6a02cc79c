//! Reading trace lines back: the inverse of [`Event`]'s `Display`, into the
//! same borrowed [`Event`]. Host tools (trace-plot, the harness) and tests use
//! it; the EL2 image does not build it.

use super::{Event, LINE_PREFIX, Reason, Timestamp};
use crate::power_state::PowerState;
use crate::smccc::{Args, CallClass};

/// One trace line of a serial log: its prefix, event word and details, read
/// as an [`Event`] by [`TraceLine::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceLine<'a> {
    /// Timestamp.
    pub time: Timestamp,
    /// Linear vCPU index.
    pub cpu: usize,
    /// The event word (`state`, `psci`, `fast-stop`, ...).
    pub word: &'a str,
    /// Everything after the word and its space (may be empty).
    pub details: &'a str,
    /// The free-text fields of a `log`, `panic` or `boot` line, kept here so
    /// that [`TraceLine::event`] can lend them as `&dyn Display`.
    text: Option<[&'a str; 2]>,
}

impl TraceLine<'_> {
    /// The event of this line; `None` when its word or details are not
    /// understood (e.g. a newer hypervisor's event), or a `log` line's level
    /// is not a `log::Level`.
    pub fn event(&self) -> Option<Event<'_>> {
        Some(match (self.word, &self.text) {
            ("log", Some([level, message])) => Event::Log {
                level: level.parse().ok()?,
                message,
            },
            ("panic", Some([location, message])) => Event::Panic { location, message },
            ("boot", Some([message, _])) => Event::Boot { message },
            (word, _) => parse_event(word, self.details)?,
        })
    }
}

/// Splits the free text of `log`, `panic` and `boot` lines into the fields
/// their event prints.
fn free_text<'a>(word: &str, details: &'a str) -> Option<[&'a str; 2]> {
    Some(match word {
        "log" => {
            let (level, message) = details.split_once(' ').unwrap_or((details, ""));
            [level, message]
        }
        "panic" => {
            let (location, message) = details.split_once(": ")?;
            [location, message]
        }
        "boot" => [details, ""],
        _ => return None,
    })
}

pub(super) fn parse_dec(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_signed(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(d) => {
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Parse with the sign so that i64::MIN works.
            s.parse().ok()
        }
        None => parse_dec(s).and_then(|v| i64::try_from(v).ok()),
    }
}

pub(super) fn parse_hex(s: &str) -> Option<u64> {
    let d = s.strip_prefix("0x")?;
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(d, 16).ok()
}

/// The value of a `key=value` token.
fn value_of<'t>(tok: Option<&'t str>, key: &str) -> Option<&'t str> {
    tok?.strip_prefix(key)?.strip_prefix('=')
}

/// Parses the `[hv s.us] cpuN ` prefix; returns the rest.
fn parse_prefix(line: &str) -> Option<(Timestamp, usize, &str)> {
    let rest = line.strip_prefix(LINE_PREFIX)?;
    let (secs, rest) = rest.split_once('.')?;
    let (micros, rest) = rest.split_once("] cpu")?;
    if micros.len() != 6 {
        return None;
    }
    let secs = parse_dec(secs)?;
    let micros = parse_dec(micros)? as u32;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let cpu = parse_dec(&rest[..digits])? as usize;
    let rest = rest[digits..].strip_prefix(' ')?;
    Some((Timestamp { secs, micros }, cpu, rest))
}

/// ` = NAME (value)` → (value, Some(NAME)), or ` = 0x.. (value)` → (value, None).
fn parse_result(s: &str) -> Option<(i64, Option<&str>)> {
    let s = s.strip_prefix(" = ")?;
    let (name, val) = s.rsplit_once(" (")?;
    let value = parse_signed(val.strip_suffix(')')?)?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    if parse_hex(name) == Some(value as u64) {
        return Some((value, None));
    }
    Some((value, Some(name)))
}

/// A call line. Only `call` lines (unknown IDs) print the function ID; the
/// others come back with `id` 0.
fn parse_call(class: CallClass, details: &str) -> Option<Event<'_>> {
    if class == CallClass::Unknown {
        let (id, rest) = details.split_once(' ')?;
        let id = u32::try_from(parse_hex(id)?).ok()?;
        let (result, result_name) = parse_result(&details[details.len() - rest.len() - 1..])?;
        return Some(Event::Call {
            class,
            id,
            name: "",
            args: Args::NONE,
            result,
            result_name,
        });
    }
    let (name, rest) = details.split_once('(')?;
    let (args_text, rest) = rest.split_once(')')?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    let mut vals = [0; 3];
    let mut len = 0;
    if !args_text.is_empty() {
        for a in args_text.split(", ") {
            *vals.get_mut(len)? = parse_hex(a)?;
            len += 1;
        }
    }
    let (result, result_name) = parse_result(rest)?;
    Some(Event::Call {
        class,
        id: 0,
        name,
        args: Args::new(&vals[..len]),
        result,
        result_name,
    })
}

/// The events without free text (see [`free_text`]).
fn parse_event<'a>(word: &str, details: &'a str) -> Option<Event<'a>> {
    if let Some(class) = CallClass::from_word(word) {
        return parse_call(class, details);
    }
    let mut toks = details.split(' ');
    let dec = |t: Option<&str>, key: &str| value_of(t, key).and_then(parse_dec);
    Some(match word {
        "state" => {
            let (states, reason) = details.split_once(" (")?;
            let reason = reason.strip_suffix(')')?;
            let (from, to) = states.split_once(" -> ")?;
            Event::State {
                from: PowerState::from_name(from)?,
                to: PowerState::from_name(to)?,
                reason: Reason::parse(reason),
            }
        }
        "fast-stop" => {
            let ev = match toks.next()? {
                "begin" => Event::FastStopBegin {
                    timeout_us: dec(toks.next(), "timeout_us")?,
                },
                "end" => Event::FastStopEnd {
                    result: value_of(toks.next(), "result").and_then(parse_signed)?,
                    stopped: dec(toks.next(), "stopped")?,
                    unconfirmed: dec(toks.next(), "unconfirmed")?,
                    elapsed_ns: dec(toks.next(), "elapsed_ns")?,
                },
                _ => return None,
            };
            toks.next().is_none().then_some(ev)?
        }
        "ipi-drop" => Event::IpiDrop {
            sgi: u8::try_from(dec(toks.next(), "sgi")?).ok()?,
            target: parse_dec(toks.next()?.strip_prefix("target=cpu")?)? as usize,
        },
        "fault" => {
            let kind = toks.next()?;
            let addr = value_of(toks.next(), "addr").and_then(parse_hex)?;
            let pc = value_of(toks.next(), "pc").and_then(parse_hex)?;
            let write = match toks.next()? {
                "write" => true,
                "read" => false,
                _ => return None,
            };
            let size = u8::try_from(dec(toks.next(), "size")?).ok()?;
            // After the five tokens above comes "(<why>) -> <action>".
            let rest = details.splitn(6, ' ').nth(5)?;
            let (why, action) = rest.strip_prefix('(')?.rsplit_once(") -> ")?;
            Event::Fault {
                kind,
                addr,
                pc,
                write,
                size,
                why,
                action,
            }
        }
        "mark" => {
            let t = toks.next()?;
            if t.len() != "0x".len() + 8 || toks.next().is_some() {
                return None;
            }
            Event::Mark {
                value: u32::try_from(parse_hex(t)?).ok()?,
            }
        }
        "system" => match details {
            "off" => Event::SystemOff,
            "reset" => Event::SystemReset,
            _ => return None,
        },
        _ => return None,
    })
}

/// Parses one line of a serial log. Returns `None` unless the line *starts*
/// with a well-formed `[hv <s>.<us6>] cpu<N> <word>` prefix (a trailing `\r`
/// and a leading `\r` are ignored, so CRLF logs work). Whether the event is
/// understood is [`TraceLine::event`]'s answer.
pub fn parse_line(line: &str) -> Option<TraceLine<'_>> {
    let line = line.trim_end_matches(['\r', '\n']).trim_start_matches('\r');
    let (time, cpu, rest) = parse_prefix(line)?;
    let (word, details) = rest.split_once(' ').unwrap_or((rest, ""));
    if word.is_empty() {
        return None;
    }
    Some(TraceLine {
        time,
        cpu,
        word,
        details,
        text: free_text(word, details),
    })
}

/// Iterates over the trace lines of a whole serial log, skipping every other
/// line (guest output, firmware banners, ...).
pub fn parse_log(log: &str) -> impl Iterator<Item = TraceLine<'_>> + '_ {
    log.split('\n').filter_map(parse_line)
}
