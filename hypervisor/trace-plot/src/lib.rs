//! parkvisor serial log → per-CPU swimlane timeline (SVG).
//!
//! [`Timeline::from_log`] finds the trace lines in any serial log (guest
//! output around them is ignored) with `parkvisor::trace::parse_line`, and
//! turns them into per-vCPU power-state segments plus event markers;
//! [`render_svg`] draws them. Everything is plain data so it is unit-tested
//! without looking at pictures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use parkvisor::smccc::CallClass;
use parkvisor::trace::{Event, PowerState, Reason, TraceLine, parse_line};

/// A backward jump of the clock larger than this starts a new epoch (the
/// machine was reset and the counter restarted).
const EPOCH_JUMP_S: f64 = 0.010;

/// A lane's state over an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegState {
    /// Parked.
    Off,
    /// CPU_ON accepted, not yet in the guest.
    OnPending,
    /// Running guest code.
    On,
    /// No state line seen yet for this CPU.
    Unknown,
}

impl SegState {
    fn from_power(p: PowerState) -> SegState {
        match p {
            PowerState::Off => SegState::Off,
            PowerState::OnPending => SegState::OnPending,
            PowerState::On => SegState::On,
        }
    }

    /// Fill colour.
    pub fn color(self) -> &'static str {
        match self {
            SegState::Off => "#c9ced6",
            SegState::OnPending => "#f2a93b",
            SegState::On => "#37a554",
            SegState::Unknown => "#f4f5f7",
        }
    }

    /// Legend text.
    pub fn label(self) -> &'static str {
        match self {
            SegState::Off => "OFF (parked)",
            SegState::OnPending => "ON_PENDING",
            SegState::On => "ON (guest)",
            SegState::Unknown => "no state seen yet",
        }
    }
}

/// One state interval of one CPU (seconds on the plot's time base).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Start (inclusive).
    pub start: f64,
    /// End.
    pub end: f64,
    /// State during the interval.
    pub state: SegState,
}

/// What a marker stands for.
#[derive(Clone, Debug, PartialEq)]
pub enum MarkerKind {
    /// A PSCI / SMCCC / vendor call (trace=calls); failed calls are flagged.
    Call {
        /// The call failed (negative result other than a state query).
        failed: bool,
    },
    /// CPU_ON: arrow from the caller's lane (`from`) to this lane.
    CpuOn {
        /// Calling CPU.
        from: usize,
    },
    /// An IPI dropped because this CPU was parked (`from` sent it).
    IpiDrop {
        /// Sending CPU.
        from: usize,
    },
    /// A contained guest fault.
    Fault,
    /// A TRACE_MARK value.
    Mark(u32),
    /// `log WARN` / `log ERROR`.
    Log {
        /// ERROR (else WARN).
        error: bool,
    },
}

/// An event drawn on one lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// Time (s).
    pub t: f64,
    /// Lane.
    pub cpu: usize,
    /// What.
    pub kind: MarkerKind,
    /// Tooltip: the original trace line.
    pub text: String,
}

/// A FAST_STOP call from begin to end.
#[derive(Clone, Debug, PartialEq)]
pub struct FastStopSpan {
    /// Calling CPU.
    pub cpu: usize,
    /// `fast-stop begin` time.
    pub begin: f64,
    /// `fast-stop end` time (None if the log ends first).
    pub end: Option<f64>,
    /// Result, stopped, unconfirmed, elapsed_ns from the end line.
    pub result: Option<(i64, u64, u64, u64)>,
}

/// Events that concern the whole machine (vertical lines).
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalMark {
    /// Time (s).
    pub t: f64,
    /// Short label (`system off`, `panic`, `reset`).
    pub label: String,
    /// Draw in red.
    pub alarm: bool,
    /// Tooltip.
    pub text: String,
}

/// Options for building a timeline.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Start of the window to draw (s, on the plot's time base).
    pub from: Option<f64>,
    /// End of the window.
    pub to: Option<f64>,
    /// Draw at least this many lanes.
    pub cpus: Option<usize>,
    /// Title (default: "parkvisor trace").
    pub title: Option<String>,
    /// Picture width in pixels (default 1200).
    pub width: Option<u32>,
}

/// Everything the picture shows.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Number of lanes.
    pub cpus: usize,
    /// First and last time of the whole log.
    pub t_min: f64,
    /// Last time.
    pub t_max: f64,
    /// State segments per lane (covering `t_min..t_max`).
    pub lanes: Vec<Vec<Segment>>,
    /// Lane markers, by time.
    pub markers: Vec<Marker>,
    /// FAST_STOP spans.
    pub fast_stops: Vec<FastStopSpan>,
    /// Whole-machine events.
    pub globals: Vec<GlobalMark>,
    /// Number of trace lines used.
    pub lines: usize,
    /// Where the clock restarted (plot time of each new epoch).
    pub epochs: Vec<f64>,
}

/// A parsed line with its raw text and plot time.
struct Item<'a> {
    t: f64,
    line: TraceLine<'a>,
    text: &'a str,
}

/// Finds the trace lines of a log and puts them on one time base: within an
/// epoch lines are sorted by time; when the clock jumps back by more than
/// 10 ms (a machine reset), the next epoch continues where the last ended.
fn collect(log: &str) -> (Vec<Item<'_>>, Vec<f64>) {
    let mut items = Vec::new();
    let mut epochs = Vec::new();
    let mut epoch: Vec<Item<'_>> = Vec::new();
    let mut offset = 0.0;
    let mut epoch_max = f64::NEG_INFINITY;
    fn flush<'a>(epoch: &mut Vec<Item<'a>>, items: &mut Vec<Item<'a>>) {
        epoch.sort_by(|a, b| a.t.total_cmp(&b.t));
        items.append(epoch);
    }
    for raw in log.split('\n') {
        let Some(line) = parse_line(raw) else {
            continue;
        };
        let t = line.time.as_secs_f64();
        if t + EPOCH_JUMP_S < epoch_max {
            flush(&mut epoch, &mut items);
            offset += epoch_max;
            epochs.push(offset);
            epoch_max = f64::NEG_INFINITY;
        }
        epoch_max = epoch_max.max(t);
        let text = raw.trim_matches(['\r', '\n']);
        epoch.push(Item {
            t: t + offset,
            line,
            text,
        });
    }
    flush(&mut epoch, &mut items);
    (items, epochs)
}

impl Timeline {
    /// Builds the timeline of a whole serial log.
    pub fn from_log(log: &str, cpus_at_least: Option<usize>) -> Timeline {
        let (items, epochs) = collect(log);
        let mut tl = Timeline {
            epochs,
            lines: items.len(),
            ..Timeline::default()
        };
        if items.is_empty() {
            tl.cpus = cpus_at_least.unwrap_or(1).max(1);
            tl.lanes = vec![Vec::new(); tl.cpus];
            return tl;
        }
        tl.t_min = items.first().map(|i| i.t).unwrap_or(0.0);
        tl.t_max = items.last().map(|i| i.t).unwrap_or(0.0);

        // Lanes: every CPU that prints, is targeted, or starts another.
        let mut max_cpu = 0;
        for it in &items {
            max_cpu = max_cpu.max(it.line.cpu);
            match it.line.event() {
                Some(Event::IpiDrop { target, .. }) => max_cpu = max_cpu.max(target),
                Some(Event::State {
                    reason: Reason::CpuOnBy(n),
                    ..
                }) => max_cpu = max_cpu.max(n),
                _ => {}
            }
        }
        tl.cpus = (max_cpu + 1).max(cpus_at_least.unwrap_or(0));

        // State segments: before a CPU's first state line it was in that
        // line's FROM state (backfilled from t_min); unknown if it has none.
        let mut current: Vec<Option<(f64, SegState)>> = vec![None; tl.cpus];
        tl.lanes = vec![Vec::new(); tl.cpus];
        let mut open_stop: BTreeMap<usize, usize> = BTreeMap::new();
        for it in &items {
            let cpu = it.line.cpu;
            let t = it.t;
            let text = it.text.to_string();
            let Some(event) = it.line.event() else {
                continue;
            };
            match event {
                Event::State { from, to, reason } => {
                    let (start, state) =
                        current[cpu].unwrap_or((tl.t_min, SegState::from_power(from)));
                    if t > start {
                        tl.lanes[cpu].push(Segment {
                            start,
                            end: t,
                            state,
                        });
                    }
                    current[cpu] = Some((t, SegState::from_power(to)));
                    if let Reason::CpuOnBy(caller) = reason {
                        tl.markers.push(Marker {
                            t,
                            cpu,
                            kind: MarkerKind::CpuOn { from: caller },
                            text,
                        });
                    }
                }
                Event::Call {
                    class,
                    name,
                    result,
                    ..
                } => {
                    // NOT_SUPPORTED from an unknown ID or a FEATURES query is
                    // an answer, not a failure.
                    let failed =
                        result < 0 && class != CallClass::Unknown && !name.ends_with("FEATURES");
                    tl.markers.push(Marker {
                        t,
                        cpu,
                        kind: MarkerKind::Call { failed },
                        text,
                    });
                }
                Event::FastStopBegin { .. } => {
                    open_stop.insert(cpu, tl.fast_stops.len());
                    tl.fast_stops.push(FastStopSpan {
                        cpu,
                        begin: t,
                        end: None,
                        result: None,
                    });
                }
                Event::FastStopEnd {
                    result,
                    stopped,
                    unconfirmed,
                    elapsed_ns,
                } => {
                    let r = Some((result, stopped, unconfirmed, elapsed_ns));
                    match open_stop.remove(&cpu) {
                        Some(i) => {
                            tl.fast_stops[i].end = Some(t);
                            tl.fast_stops[i].result = r;
                        }
                        // A refused FAST_STOP (-3) may print only its end.
                        None => tl.fast_stops.push(FastStopSpan {
                            cpu,
                            begin: t,
                            end: Some(t),
                            result: r,
                        }),
                    }
                }
                Event::IpiDrop { target, .. } => tl.markers.push(Marker {
                    t,
                    cpu: target,
                    kind: MarkerKind::IpiDrop { from: cpu },
                    text,
                }),
                Event::Fault { .. } => tl.markers.push(Marker {
                    t,
                    cpu,
                    kind: MarkerKind::Fault,
                    text,
                }),
                Event::Mark { value } => tl.markers.push(Marker {
                    t,
                    cpu,
                    kind: MarkerKind::Mark(value),
                    text,
                }),
                Event::Log { level, .. } if level <= log::Level::Warn => tl.markers.push(Marker {
                    t,
                    cpu,
                    kind: MarkerKind::Log {
                        error: level == log::Level::Error,
                    },
                    text,
                }),
                Event::SystemOff => tl.globals.push(GlobalMark {
                    t,
                    label: "system off".into(),
                    alarm: false,
                    text,
                }),
                Event::SystemReset => tl.globals.push(GlobalMark {
                    t,
                    label: "system reset".into(),
                    alarm: false,
                    text,
                }),
                Event::Panic { .. } => tl.globals.push(GlobalMark {
                    t,
                    label: "panic".into(),
                    alarm: true,
                    text,
                }),
                _ => {}
            }
        }
        for (cpu, cur) in current.iter().enumerate() {
            if let Some((start, state)) = *cur {
                tl.lanes[cpu].push(Segment {
                    start,
                    end: tl.t_max,
                    state,
                });
            }
        }
        for (cpu, lane) in tl.lanes.iter_mut().enumerate() {
            if current[cpu].is_none() {
                lane.push(Segment {
                    start: tl.t_min,
                    end: tl.t_max,
                    state: SegState::Unknown,
                });
            }
        }
        tl
    }

    /// A text summary: per-CPU transition counts and the fast-stop results.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} trace lines, {} CPUs, {:.6} s .. {:.6} s{}",
            self.lines,
            self.cpus,
            self.t_min,
            self.t_max,
            if self.epochs.is_empty() {
                String::new()
            } else {
                format!(", {} clock restarts", self.epochs.len())
            }
        );
        for (i, f) in self.fast_stops.iter().enumerate() {
            match f.result {
                Some((r, st, un, ns)) => {
                    let _ = writeln!(
                        s,
                        "fast-stop #{i} by cpu{} at {:.6} s: result={r} stopped={st} unconfirmed={un} elapsed={:.1} us",
                        f.cpu,
                        f.begin,
                        ns as f64 / 1000.0
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "fast-stop #{i} by cpu{} at {:.6} s: no end line",
                        f.cpu, f.begin
                    );
                }
            }
        }
        let count = |k: fn(&MarkerKind) -> bool| self.markers.iter().filter(|m| k(&m.kind)).count();
        let _ = writeln!(
            s,
            "cpu_on={} calls={} ipi_drops={} faults={} marks={} warnings/errors={}",
            count(|k| matches!(k, MarkerKind::CpuOn { .. })),
            count(|k| matches!(k, MarkerKind::Call { .. })),
            count(|k| matches!(k, MarkerKind::IpiDrop { .. })),
            count(|k| matches!(k, MarkerKind::Fault)),
            count(|k| matches!(k, MarkerKind::Mark(_))),
            count(|k| matches!(k, MarkerKind::Log { .. })),
        );
        for g in &self.globals {
            let _ = writeln!(s, "{} at {:.6} s", g.label, g.t);
        }
        s
    }
}

// ---------------------------------------------------------------------------
// Axis
// ---------------------------------------------------------------------------

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` ticks over `span`.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    // Tolerate rounding (40e-6 / 8 must give 5e-6, not 1e-5).
    let norm = raw / mag * (1.0 - 1e-9);
    let m = [1.0, 2.0, 5.0]
        .into_iter()
        .find(|m| norm <= *m)
        .unwrap_or(10.0);
    m * mag
}

/// Tick positions in `[lo, hi]` for a step, and the decimals their labels need.
pub fn ticks(lo: f64, hi: f64, step: f64) -> (Vec<f64>, usize) {
    let decimals = (-step.log10().floor()).clamp(0.0, 9.0) as usize;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let v = (first..=last).map(|k| k as f64 * step).collect();
    (v, decimals)
}

// ---------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------

/// Escapes text for SVG content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Height of one lane for `n` CPUs.
pub fn lane_height(n: usize) -> f64 {
    match n {
        0..=8 => 30.0,
        9..=16 => 22.0,
        17..=32 => 16.0,
        _ => 11.0,
    }
}

/// Pixel geometry.
struct Geo {
    left: f64,
    right: f64,
    top: f64,
    lane_h: f64,
    lo: f64,
    hi: f64,
}

impl Geo {
    fn x(&self, t: f64) -> f64 {
        self.left + (t - self.lo) / (self.hi - self.lo) * (self.right - self.left)
    }
    fn lane_y(&self, cpu: usize) -> f64 {
        self.top + cpu as f64 * self.lane_h
    }
    fn lane_mid(&self, cpu: usize) -> f64 {
        self.lane_y(cpu) + self.lane_h / 2.0
    }
}

const FAST_STOP_COLOR: &str = "#3b6fd8";
const CALL_COLOR: &str = "#44505e";
const FAIL_COLOR: &str = "#d9480f";
const DROP_COLOR: &str = "#c92a2a";
const FAULT_COLOR: &str = "#e03131";
const MARK_COLOR: &str = "#9c36b5";
const CPU_ON_COLOR: &str = "#1864ab";

/// Draws the timeline as a standalone SVG document.
pub fn render_svg(tl: &Timeline, opts: &Options) -> String {
    let width = f64::from(opts.width.unwrap_or(1200).max(400));
    let n = tl.cpus.max(opts.cpus.unwrap_or(0)).max(1);
    let lane_h = lane_height(n);
    let mut lo = opts.from.unwrap_or(tl.t_min);
    let mut hi = opts.to.unwrap_or(tl.t_max);
    if hi <= lo {
        // A single instant (or an empty window): show 1 ms around it.
        lo -= 0.0005;
        hi = lo + 0.001;
    } else if opts.from.is_none() && opts.to.is_none() {
        let pad = (hi - lo) * 0.01;
        lo = (lo - pad).max(0.0_f64.min(lo));
        hi += pad;
    }
    let label_w = if n >= 100 { 62.0 } else { 52.0 };
    let mut g = Geo {
        left: label_w,
        right: width - 16.0,
        top: 0.0,
        lane_h,
        lo,
        hi,
    };
    // Labels above the lanes (fast-stop results, system events), stacked in
    // rows so they never overlap.
    let mut labels: Vec<(f64, String, &str)> = Vec::new();
    for f in &tl.fast_stops {
        if f.end.unwrap_or(tl.t_max) >= lo && f.begin <= hi {
            labels.push((g.x(f.begin.max(lo)), fast_stop_label(f), FAST_STOP_COLOR));
        }
    }
    for gm in tl.globals.iter().filter(|gm| gm.t >= lo && gm.t <= hi) {
        labels.push((
            g.x(gm.t),
            gm.label.clone(),
            if gm.alarm { FAULT_COLOR } else { "#212529" },
        ));
    }
    let placed = place_labels(&labels, g.left, g.right);
    let rows = placed.iter().map(|p| p.1 + 1).max().unwrap_or(1);
    g.top = 50.0 + 12.0 * rows as f64;
    let label_base = g.top - 6.0;
    let lanes_bottom = g.top + n as f64 * lane_h;
    let axis_y = lanes_bottom + 4.0;
    let legend_y = axis_y + 44.0;
    let height = legend_y + 46.0;
    let font = (lane_h * 0.55).clamp(8.0, 12.0);
    let in_window = |t: f64| t >= lo && t <= hi;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let title = opts
        .title
        .clone()
        .unwrap_or_else(|| "parkvisor trace".into());
    let _ = writeln!(
        s,
        r##"<text x="{}" y="20" font-size="15" font-weight="bold" fill="#212529">{}</text>"##,
        g.left,
        xml_escape(&title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="36" font-size="11" fill="#495057">{} CPUs, {} trace lines, window {:.6} s .. {:.6} s ({})</text>"##,
        g.left,
        n,
        tl.lines,
        lo,
        hi,
        fmt_duration(hi - lo)
    );

    // Lane backgrounds and labels.
    let _ = writeln!(s, r#"<g id="lanes">"#);
    for cpu in 0..n {
        let y = g.lane_y(cpu);
        let fill = if cpu % 2 == 0 { "#ffffff" } else { "#f8f9fa" };
        let _ = writeln!(
            s,
            r#"<rect x="0" y="{y:.2}" width="{width}" height="{lane_h}" fill="{fill}"/>"#
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.2}" font-size="{font:.1}" text-anchor="end" dominant-baseline="central" fill="#343a40">cpu{cpu}</text>"##,
            g.left - 6.0,
            g.lane_mid(cpu)
        );
    }
    let _ = writeln!(s, "</g>");

    // Time grid.
    let target_ticks = ((g.right - g.left) / 110.0).max(2.0) as usize;
    let step = nice_step(hi - lo, target_ticks);
    let (tks, decimals) = ticks(lo, hi, step);
    let _ = writeln!(s, r##"<g id="axis" font-size="10" fill="#495057">"##);
    for t in &tks {
        let x = g.x(*t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{axis_y:.2}" stroke="#dee2e6" stroke-width="1"/>"##,
            g.top
        );
        let _ = writeln!(
            s,
            r##"<line x1="{x:.2}" y1="{axis_y:.2}" x2="{x:.2}" y2="{:.2}" stroke="#495057"/>"##,
            axis_y + 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.2}" y="{:.2}" text-anchor="middle">{:.*}</text>"#,
            axis_y + 17.0,
            decimals,
            t
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{:.2}" y1="{axis_y:.2}" x2="{:.2}" y2="{axis_y:.2}" stroke="#495057"/>"##,
        g.left, g.right
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="end">time (s, hypervisor clock), grid {}</text>"#,
        g.right,
        axis_y + 32.0,
        fmt_duration(step)
    );
    let _ = writeln!(s, "</g>");

    // Clip everything time-based to the plot area.
    let _ = writeln!(
        s,
        r#"<clipPath id="plot"><rect x="{:.2}" y="0" width="{:.2}" height="{height}"/></clipPath>"#,
        g.left,
        g.right - g.left
    );
    let _ = writeln!(s, r#"<g clip-path="url(#plot)">"#);

    // State segments.
    let _ = writeln!(s, r#"<g id="states">"#);
    let pad = (lane_h * 0.15).max(1.0);
    for (cpu, lane) in tl.lanes.iter().enumerate() {
        let y = g.lane_y(cpu) + pad;
        let h = lane_h - 2.0 * pad;
        for seg in lane {
            if seg.end < lo || seg.start > hi {
                continue;
            }
            let x0 = g.x(seg.start.max(lo));
            let x1 = g.x(seg.end.min(hi));
            let w = (x1 - x0).max(1.0);
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{}"><title>cpu{cpu} {} {:.6} .. {:.6} s ({})</title></rect>"#,
                seg.state.color(),
                seg.state.label(),
                seg.start,
                seg.end,
                fmt_duration(seg.end - seg.start)
            );
        }
    }
    let _ = writeln!(s, "</g>");

    // Fast-stop windows: a band over all lanes.
    for f in &tl.fast_stops {
        let end = f.end.unwrap_or(tl.t_max);
        if end < lo || f.begin > hi {
            continue;
        }
        let x0 = g.x(f.begin);
        let w = (g.x(end) - x0).max(2.0);
        let tip = match f.result {
            Some((r, st, un, ns)) => format!(
                "fast-stop by cpu{}: result={r} stopped={st} unconfirmed={un} elapsed={}",
                f.cpu,
                fmt_duration(ns as f64 * 1e-9)
            ),
            None => format!("fast-stop by cpu{}: no end line", f.cpu),
        };
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.2}" y="{:.2}" width="{w:.2}" height="{:.2}" fill="{FAST_STOP_COLOR}" fill-opacity="0.16" stroke="{FAST_STOP_COLOR}" stroke-width="1"><title>{}</title></rect>"#,
            label_base,
            lanes_bottom - label_base,
            xml_escape(&tip)
        );
    }

    // Clock restarts.
    for e in &tl.epochs {
        if in_window(*e) {
            let x = g.x(*e);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{lanes_bottom:.2}" stroke="#868e96" stroke-dasharray="2 3"><title>clock restarted (machine reset)</title></line>"##,
                g.top
            );
        }
    }

    // Markers.
    let _ = writeln!(s, r#"<g id="markers">"#);
    let r = (lane_h * 0.28).clamp(2.5, 6.0);
    let arrow_opacity = if n > 16 { 0.35 } else { 0.8 };
    for m in tl.markers.iter().filter(|m| in_window(m.t)) {
        let x = g.x(m.t);
        let y = g.lane_mid(m.cpu);
        let tip = xml_escape(&m.text);
        match &m.kind {
            MarkerKind::Call { failed } => {
                let c = if *failed { FAIL_COLOR } else { CALL_COLOR };
                let _ = writeln!(
                    s,
                    r#"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{:.2}" stroke="{c}" stroke-width="1.5"><title>{tip}</title></line>"#,
                    g.lane_y(m.cpu) + 1.0,
                    g.lane_y(m.cpu) + lane_h - 1.0
                );
            }
            MarkerKind::CpuOn { from } => {
                let y0 = g.lane_mid(*from);
                let dir = if y >= y0 { 1.0 } else { -1.0 };
                let tip_y = y - dir * r;
                let _ = writeln!(
                    s,
                    r#"<g stroke="{CPU_ON_COLOR}" fill="{CPU_ON_COLOR}"><title>{tip}</title><line x1="{x:.2}" y1="{y0:.2}" x2="{x:.2}" y2="{tip_y:.2}" stroke-width="1.2" stroke-opacity="{arrow_opacity}"/><path d="M{x:.2},{tip_y:.2} l{:.2},{:.2} l{:.2},0 z"/><circle cx="{x:.2}" cy="{y0:.2}" r="1.8"/></g>"#,
                    -r * 0.7,
                    -dir * r,
                    r * 1.4
                );
            }
            MarkerKind::IpiDrop { .. } => {
                let _ = writeln!(
                    s,
                    r#"<path d="M{:.2},{:.2} l{:.2},{:.2} M{:.2},{:.2} l{:.2},{:.2}" stroke="{DROP_COLOR}" stroke-width="2"><title>{tip}</title></path>"#,
                    x - r,
                    y - r,
                    2.0 * r,
                    2.0 * r,
                    x - r,
                    y + r,
                    2.0 * r,
                    -2.0 * r
                );
            }
            MarkerKind::Fault => {
                let _ = writeln!(
                    s,
                    r##"<path d="M{x:.2},{:.2} l{:.2},{:.2} l{:.2},0 z" fill="{FAULT_COLOR}" stroke="#000" stroke-width="0.5"><title>{tip}</title></path>"##,
                    y - r,
                    r,
                    2.0 * r,
                    -2.0 * r
                );
            }
            MarkerKind::Mark(v) => {
                let _ = writeln!(
                    s,
                    r##"<path d="M{x:.2},{:.2} l{r:.2},{r:.2} l{:.2},{r:.2} l{:.2},{:.2} z" fill="{MARK_COLOR}" stroke="#fff" stroke-width="0.5"><title>{tip}</title></path>"##,
                    y - r,
                    -r,
                    -r,
                    -r
                );
                if lane_h >= 20.0 {
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.2}" y="{:.2}" font-size="9" font-weight="bold" fill="{MARK_COLOR}" stroke="#fff" stroke-width="2.5" paint-order="stroke">{v:#x}</text>"##,
                        x + r + 1.0,
                        g.lane_y(m.cpu) + 9.0
                    );
                }
            }
            MarkerKind::Log { error } => {
                let c = if *error { FAULT_COLOR } else { "#f08c00" };
                let _ = writeln!(
                    s,
                    r##"<circle cx="{x:.2}" cy="{y:.2}" r="{:.2}" fill="{c}" stroke="#000" stroke-width="0.5"><title>{tip}</title></circle>"##,
                    r * 0.8
                );
            }
        }
    }
    let _ = writeln!(s, "</g>");

    // Whole-machine events.
    for gm in tl.globals.iter().filter(|g| in_window(g.t)) {
        let x = g.x(gm.t);
        let c = if gm.alarm { FAULT_COLOR } else { "#212529" };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.2}" y1="{label_base:.2}" x2="{x:.2}" y2="{lanes_bottom:.2}" stroke="{c}" stroke-width="1.5" stroke-dasharray="5 3"><title>{}</title></line>"#,
            xml_escape(&gm.text)
        );
    }
    let _ = writeln!(s, "</g>");

    // Labels above the lanes.
    for ((x, text, color), (lx, row, end)) in labels.iter().zip(&placed) {
        let y = label_base - 2.0 - 12.0 * *row as f64;
        let anchor = if *end { "end" } else { "start" };
        let _ = writeln!(
            s,
            r##"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{label_base:.2}" stroke="{color}" stroke-width="0.6"/><text x="{lx:.2}" y="{y:.2}" font-size="10" text-anchor="{anchor}" fill="{color}">{}</text>"##,
            y + 2.0,
            xml_escape(text)
        );
    }

    // Legend.
    let _ = writeln!(s, r##"<g id="legend" font-size="11" fill="#343a40">"##);
    let mut lx = g.left;
    let ly = legend_y;
    for st in [
        SegState::On,
        SegState::OnPending,
        SegState::Off,
        SegState::Unknown,
    ] {
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.1}" y="{:.1}" width="18" height="10" fill="{}" stroke="#adb5bd" stroke-width="0.5"/><text x="{:.1}" y="{ly:.1}">{}</text>"##,
            ly - 9.0,
            st.color(),
            lx + 22.0,
            st.label()
        );
        lx += 34.0 + 7.0 * st.label().len() as f64;
    }
    let ly2 = ly + 20.0;
    let mut lx = g.left;
    let entries: [(&str, String); 7] = [
        (
            "fast-stop window",
            format!(
                r#"<rect x="{lx:.1}" y="{:.1}" width="18" height="12" fill="{FAST_STOP_COLOR}" fill-opacity="0.16" stroke="{FAST_STOP_COLOR}"/>"#,
                ly2 - 10.0
            ),
        ),
        ("CPU_ON (caller → target)", String::new()),
        ("call (trace=calls; orange = error)", String::new()),
        ("IPI dropped (parked)", String::new()),
        ("fault", String::new()),
        ("mark", String::new()),
        ("system off / reset / panic", String::new()),
    ];
    for (i, (label, shape)) in entries.iter().enumerate() {
        let cx = lx + 9.0;
        let cy = ly2 - 4.0;
        let sym = match i {
            0 => shape.clone(),
            1 => format!(
                r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="{CPU_ON_COLOR}" stroke-width="1.2"/><path d="M{cx:.1},{:.1} l-3,-5 l6,0 z" fill="{CPU_ON_COLOR}"/>"#,
                cy - 8.0,
                cy + 4.0,
                cy + 6.0
            ),
            2 => format!(
                r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="{CALL_COLOR}" stroke-width="1.5"/>"#,
                cy - 7.0,
                cy + 7.0
            ),
            3 => format!(
                r#"<path d="M{:.1},{:.1} l8,8 M{:.1},{:.1} l8,-8" stroke="{DROP_COLOR}" stroke-width="2"/>"#,
                cx - 4.0,
                cy - 4.0,
                cx - 4.0,
                cy + 4.0
            ),
            4 => format!(
                r##"<path d="M{cx:.1},{:.1} l5,9 l-10,0 z" fill="{FAULT_COLOR}" stroke="#000" stroke-width="0.5"/>"##,
                cy - 5.0
            ),
            5 => format!(
                r#"<path d="M{cx:.1},{:.1} l5,5 l-5,5 l-5,-5 z" fill="{MARK_COLOR}"/>"#,
                cy - 5.0
            ),
            _ => format!(
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#212529" stroke-width="1.5" stroke-dasharray="3 2"/>"##,
                cy - 8.0,
                cy + 6.0
            ),
        };
        let _ = writeln!(
            s,
            r#"{sym}<text x="{:.1}" y="{ly2:.1}">{}</text>"#,
            lx + 22.0,
            xml_escape(label)
        );
        lx += 34.0 + 6.4 * label.chars().count() as f64;
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, "</svg>");
    s
}

/// The label of a fast-stop span above the lanes.
fn fast_stop_label(f: &FastStopSpan) -> String {
    match f.result {
        Some((r, st, _, ns)) => format!(
            "fast-stop {} ({}, stopped {st})",
            fmt_duration(ns as f64 * 1e-9),
            if r == 0 {
                "ok".to_string()
            } else {
                format!("result {r}")
            }
        ),
        None => "fast-stop (no end)".into(),
    }
}

/// Approximate width in pixels of `text` at font size 10.
fn text_width(text: &str) -> f64 {
    5.8 * text.chars().count() as f64
}

/// Greedy row assignment for labels at x positions: returns, per label, the
/// text x, its row (0 = nearest the lanes) and whether it is right-aligned
/// (when it would run past `right`).
pub fn place_labels(
    labels: &[(f64, String, &str)],
    left: f64,
    right: f64,
) -> Vec<(f64, usize, bool)> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|a, b| labels[*a].0.total_cmp(&labels[*b].0));
    let mut row_end: Vec<f64> = Vec::new();
    let mut out = vec![(0.0, 0, false); labels.len()];
    for i in order {
        let (x, text, _) = &labels[i];
        let w = text_width(text);
        let end_aligned = x + 3.0 + w > right && x - 3.0 - w >= left;
        let (x0, x1, tx) = if end_aligned {
            (x - 3.0 - w, *x, x - 3.0)
        } else {
            (*x, x + 3.0 + w, x + 3.0)
        };
        let row = match row_end.iter().position(|e| *e + 6.0 <= x0) {
            Some(r) => r,
            None => {
                row_end.push(f64::NEG_INFINITY);
                row_end.len() - 1
            }
        };
        row_end[row] = x1;
        out[i] = (tx, row, end_aligned);
    }
    out
}

/// Human duration: `1.5 s`, `12.3 ms`, `41.3 µs`, `250 ns`.
pub fn fmt_duration(secs: f64) -> String {
    // Nudge up so that 1e-3 computed as 0.000999999... reads "1.000 ms".
    let a = secs.abs() * (1.0 + 1e-9);
    if a >= 1.0 {
        format!("{secs:.3} s")
    } else if a >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else if a >= 1e-6 {
        format!("{:.1} µs", secs * 1e6)
    } else {
        format!("{:.0} ns", secs * 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
NOTICE:  firmware banner\r
[hv 0.000100] cpu0 boot parkvisor 0.1.0, 4 cpus\r
[hv 0.000200] cpu0 state OFF -> ON (boot)\r
[hv 0.000210] cpu1 state ON -> OFF (boot)
[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]
[hv 0.100000] cpu0 psci CPU_ON(0x1, 0x48001000, 0x5) = SUCCESS (0)
[hv 0.100001] cpu1 state OFF -> ON_PENDING (psci CPU_ON by cpu0)
[hv 0.100050] cpu1 state ON_PENDING -> ON (entered guest at 0x48001000)
[hv 0.100100] cpu0 psci CPU_ON(0x3, 0x48001000, 0x5) = SUCCESS (0)
[hv 0.100101] cpu3 state OFF -> ON_PENDING (psci CPU_ON by cpu0)
[hv 0.100140] cpu3 state ON_PENDING -> ON (entered guest at 0x48001000)
guest says hello
[hv 0.200000] cpu1 ipi-drop sgi=1 target=cpu2 (parked)
[hv 0.300000] cpu0 mark 0x00000042
[hv 0.400000] cpu0 fast-stop begin timeout_us=1000000
[hv 0.400010] cpu1 state ON -> OFF (fast-stop)
[hv 0.400012] cpu3 state ON -> OFF (fast-stop)
[hv 0.400020] cpu0 fast-stop end result=0 stopped=2 unconfirmed=0 elapsed_ns=20000
[hv 0.450000] cpu0 fault dabt addr=0x40100000 pc=0x48000abc write size=8 (hypervisor memory) -> inject abort
[hv 0.460000] cpu0 call 0xc5000000 = NOT_SUPPORTED (-1)
[hv 0.465000] cpu0 smccc ARCH_FEATURES(0x80003fff) = NOT_SUPPORTED (-1)
[hv 0.470000] cpu0 psci CPU_ON(0x1, 0x0, 0x0) = INVALID_ADDRESS (-9)
[hv 0.480000] cpu0 log WARN something odd
[hv 0.500000] cpu0 state ON -> OFF (system off)
[hv 0.500001] cpu0 system off
";

    #[test]
    fn segments_per_cpu() {
        let tl = Timeline::from_log(LOG, None);
        assert_eq!(tl.cpus, 4);
        assert_eq!(tl.lines, 22);
        assert!((tl.t_min - 0.0001).abs() < 1e-9);
        assert!((tl.t_max - 0.500001).abs() < 1e-9);
        let states = |cpu: usize| tl.lanes[cpu].iter().map(|s| s.state).collect::<Vec<_>>();
        // cpu0 was OFF (backfilled) until boot, ON until system off, then OFF.
        assert_eq!(states(0), [SegState::Off, SegState::On, SegState::Off]);
        assert_eq!(
            states(1),
            [
                SegState::On,
                SegState::Off,
                SegState::OnPending,
                SegState::On,
                SegState::Off
            ]
        );
        // cpu2 never printed a state line: unknown throughout.
        assert_eq!(states(2), [SegState::Unknown]);
        assert_eq!(
            states(3),
            [
                SegState::Off,
                SegState::OnPending,
                SegState::On,
                SegState::Off
            ]
        );
        // Segments are contiguous and cover the log.
        for lane in &tl.lanes {
            assert!((lane[0].start - tl.t_min).abs() < 1e-12);
            assert!((lane.last().unwrap().end - tl.t_max).abs() < 1e-12);
            for w in lane.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
        }
        let on = tl.lanes[3][1];
        assert!((on.start - 0.100101).abs() < 1e-9 && (on.end - 0.100140).abs() < 1e-9);
    }

    #[test]
    fn markers_and_spans() {
        let tl = Timeline::from_log(LOG, None);
        let kinds: Vec<_> = tl.markers.iter().map(|m| (m.cpu, m.kind.clone())).collect();
        assert!(kinds.contains(&(1, MarkerKind::CpuOn { from: 0 })));
        assert!(kinds.contains(&(3, MarkerKind::CpuOn { from: 0 })));
        assert!(kinds.contains(&(2, MarkerKind::IpiDrop { from: 1 })));
        assert!(kinds.contains(&(0, MarkerKind::Mark(0x42))));
        assert!(kinds.contains(&(0, MarkerKind::Fault)));
        assert!(kinds.contains(&(0, MarkerKind::Log { error: false })));
        // Unknown call → NOT_SUPPORTED is expected behaviour, not a failure;
        // CPU_ON with INVALID_ADDRESS is.
        let calls: Vec<_> = tl
            .markers
            .iter()
            .filter_map(|m| match m.kind {
                MarkerKind::Call { failed } => Some(failed),
                _ => None,
            })
            .collect();
        assert_eq!(calls, [false, false, false, false, true]);
        assert_eq!(tl.fast_stops.len(), 1);
        let f = &tl.fast_stops[0];
        assert_eq!(f.cpu, 0);
        assert_eq!(f.result, Some((0, 2, 0, 20000)));
        assert!((f.end.unwrap() - 0.40002).abs() < 1e-9);
        assert_eq!(tl.globals.len(), 1);
        assert_eq!(tl.globals[0].label, "system off");
        let sum = tl.summary();
        assert!(sum.contains("22 trace lines, 4 CPUs"), "{sum}");
        assert!(
            sum.contains("stopped=2 unconfirmed=0 elapsed=20.0 us"),
            "{sum}"
        );
        assert!(
            sum.contains("cpu_on=2 calls=5 ipi_drops=1 faults=1 marks=1"),
            "{sum}"
        );
    }

    #[test]
    fn svg_contains_the_picture() {
        let tl = Timeline::from_log(LOG, None);
        let svg = render_svg(
            &tl,
            &Options {
                title: Some("a <test> & more".into()),
                ..Options::default()
            },
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;test&gt; &amp; more"));
        for cpu in 0..4 {
            assert!(
                svg.contains(&format!(">cpu{cpu}</text>")),
                "lane label {cpu}"
            );
        }
        for st in [
            SegState::On,
            SegState::OnPending,
            SegState::Off,
            SegState::Unknown,
        ] {
            assert!(svg.contains(&format!("fill=\"{}\"", st.color())));
        }
        assert!(svg.contains("fast-stop 20.0 µs (ok, stopped 2)"));
        assert!(svg.contains(">system off</text>"));
        assert!(svg.contains("cpu1 ipi-drop sgi=1 target=cpu2 (parked)"));
        assert!(svg.contains("(hypervisor memory) -&gt; inject abort"));
        assert!(svg.contains(">0x42</text>"));
        // Balanced tags (a cheap well-formedness check).
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn window_clips() {
        let tl = Timeline::from_log(LOG, None);
        let opts = Options {
            from: Some(0.399_990),
            to: Some(0.400_030),
            ..Options::default()
        };
        let svg = render_svg(&tl, &opts);
        assert!(svg.contains("fast-stop 20.0 µs"));
        assert!(
            !svg.contains("mark 0x00000042"),
            "mark is outside the window"
        );
        assert!(!svg.contains(">system off</text>"));
        // Every x coordinate of a state rect lies inside the plot area.
        for part in svg.split("<rect x=\"").skip(1) {
            let x: f64 = part.split('"').next().unwrap().parse().unwrap();
            assert!((0.0..=1200.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn many_cpus_are_readable() {
        let mut log = String::new();
        for cpu in 1..64 {
            log.push_str(&format!(
                "[hv 0.{:06}] cpu{cpu} state OFF -> ON_PENDING (psci CPU_ON by cpu0)\n[hv 0.{:06}] cpu{cpu} state ON_PENDING -> ON (entered guest at 0x48000000)\n",
                cpu * 100,
                cpu * 100 + 30
            ));
        }
        log.push_str("[hv 0.100000] cpu0 fast-stop begin timeout_us=0\n");
        for cpu in 1..64 {
            log.push_str(&format!(
                "[hv 0.1{:05}] cpu{cpu} state ON -> OFF (fast-stop)\n",
                cpu
            ));
        }
        log.push_str(
            "[hv 0.100100] cpu0 fast-stop end result=0 stopped=63 unconfirmed=0 elapsed_ns=99000\n",
        );
        let tl = Timeline::from_log(&log, None);
        assert_eq!(tl.cpus, 64);
        assert_eq!(tl.fast_stops[0].result, Some((0, 63, 0, 99000)));
        let svg = render_svg(&tl, &Options::default());
        assert!(svg.contains(">cpu63</text>"));
        let h: f64 = svg
            .split("height=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(h > 64.0 * 10.0 && h < 1000.0, "height {h}");
        assert!(lane_height(2) > lane_height(16) && lane_height(16) > lane_height(64));
        assert!(lane_height(64) >= 10.0);
        // --cpus adds empty lanes.
        let tl = Timeline::from_log("[hv 0.000001] cpu0 mark 0x00000001\n", Some(8));
        assert_eq!(tl.cpus, 8);
        assert_eq!(
            tl.lanes[7],
            [Segment {
                start: 1e-6,
                end: 1e-6,
                state: SegState::Unknown
            }]
        );
        let svg = render_svg(&tl, &Options::default());
        assert!(svg.contains(">cpu7</text>"));
    }

    #[test]
    fn clock_restart_starts_an_epoch() {
        let log = "\
[hv 1.000000] cpu0 state OFF -> ON (boot)
[hv 2.000000] cpu0 system reset
[hv 0.000100] cpu0 state OFF -> ON (boot)
[hv 0.500000] cpu0 system off
";
        let tl = Timeline::from_log(log, None);
        assert_eq!(tl.epochs, [2.0]);
        assert!((tl.t_max - 2.5).abs() < 1e-9);
        assert_eq!(tl.globals.len(), 2);
        // Slight reordering between CPUs (< 10 ms) is just sorted.
        let log = "[hv 1.000010] cpu1 mark 0x00000001\n[hv 1.000000] cpu0 mark 0x00000002\n";
        let tl = Timeline::from_log(log, None);
        assert!(tl.epochs.is_empty());
        assert_eq!(tl.markers[0].cpu, 0);
    }

    #[test]
    fn empty_log() {
        let tl = Timeline::from_log("just guest output\n", None);
        assert_eq!(tl.lines, 0);
        let svg = render_svg(&tl, &Options::default());
        assert!(svg.contains("</svg>") && !svg.contains("NaN"));
    }

    #[test]
    fn axis_ticks() {
        assert_eq!(nice_step(1.0, 10), 0.1);
        assert_eq!(nice_step(0.5, 10), 0.05);
        assert_eq!(nice_step(3.0, 10), 0.5);
        assert!((nice_step(40e-6, 8) - 5e-6).abs() < 1e-15);
        assert_eq!(nice_step(0.0, 10), 1.0);
        let (t, d) = ticks(0.399995, 0.400031, 1e-5);
        assert_eq!(d, 5);
        assert_eq!(t.len(), 4);
        assert_eq!(format!("{:.*}", d, t[0]), "0.40000");
        // Ends that sit on a tick (up to rounding) are included.
        assert_eq!(ticks(0.39999, 0.40003, 1e-5).0.len(), 5);
        let (t, d) = ticks(0.0, 10.0, 2.0);
        assert_eq!((t.len(), d), (6, 0));
        assert_eq!(fmt_duration(20e-6), "20.0 µs");
        assert_eq!(fmt_duration(0.0125), "12.500 ms");
        assert_eq!(fmt_duration(2.0), "2.000 s");
        assert_eq!(fmt_duration(250e-9), "250 ns");
    }

    /// Every example line of docs/trace.md parses to a known event and
    /// formats back to the identical text: the doc cannot drift from the code.
    #[test]
    fn doc_examples_match_the_code() {
        let doc = include_str!("../../../docs/trace.md");
        let mut n = 0;
        for l in doc
            .lines()
            .filter(|l| l.starts_with("[hv ") && !l.starts_with("[hv <"))
        {
            let p = parse_line(l).unwrap_or_else(|| panic!("doc line does not parse: {l}"));
            let ev = p
                .event()
                .unwrap_or_else(|| panic!("unknown event in doc: {l}"));
            let mut again = String::new();
            ev.write_line(&mut again, p.time, p.cpu).unwrap();
            assert_eq!(
                again.trim_end(),
                l,
                "doc line is not what the hypervisor prints"
            );
            n += 1;
        }
        assert!(n >= 25, "only {n} example lines found");
        // And the doc's example calls are what decode + Event::call produce.
        use parkvisor::smccc::decode;
        use parkvisor::trace::Timestamp;
        let t = Timestamp {
            secs: 0,
            micros: 410_100,
        };
        let mut s = String::new();
        Event::call(&decode(0xC400_0003, 1, 0x4800_1000, 5), 0)
            .write_line(&mut s, t, 0)
            .unwrap();
        assert!(doc.contains(s.trim_end()), "{s}");
    }

    /// A real serial log: QEMU virt, 4 vCPUs, Debian Linux under parkvisor
    /// with trace=calls (guest lines thinned out).
    #[test]
    fn real_linux_log() {
        let log = include_str!("../testdata/qemu-linux-4cpu.log");
        for l in log.lines().filter(|l| l.starts_with("[hv ")) {
            let p = parse_line(l).unwrap_or_else(|| panic!("no parse: {l}"));
            assert!(p.event().is_some(), "{l}");
        }
        let tl = Timeline::from_log(log, None);
        assert_eq!((tl.cpus, tl.lines), (4, 26));
        let arrows: Vec<_> = tl
            .markers
            .iter()
            .filter_map(|m| match m.kind {
                MarkerKind::CpuOn { from } => Some((from, m.cpu)),
                _ => None,
            })
            .collect();
        assert_eq!(arrows, [(0, 1), (0, 2), (0, 3)]);
        for cpu in 1..4 {
            let st: Vec<_> = tl.lanes[cpu].iter().map(|s| s.state).collect();
            assert_eq!(st, [SegState::Off, SegState::OnPending, SegState::On]);
        }
        assert_eq!(
            tl.markers
                .iter()
                .filter(|m| m.kind == MarkerKind::Fault)
                .count(),
            1
        );
        // Only answers here, no failed calls.
        assert!(
            !tl.markers
                .iter()
                .any(|m| m.kind == MarkerKind::Call { failed: true })
        );
        let svg = render_svg(&tl, &Options::default());
        assert!(svg.contains(">cpu3</text>"));
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<b>&\"c'\x07"), "a&lt;b&gt;&amp;&quot;c&apos; ");
    }
}
