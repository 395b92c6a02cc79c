//! Judging one guest run from its serial output and exit status.
//!
//! A run passes only when all of these hold:
//! * the runner (run.sh or QEMU) exited 0 and did not time out;
//! * the guest booted and printed exactly one `GUEST PLAN <suite>` and one
//!   `GUEST DONE <suite> passed=<n> failed=0` line, with `n` equal to the
//!   planned count and at least the suite's minimum;
//! * no `GUEST FAIL` line anywhere (also after DONE: e.g. SYSTEM_OFF
//!   returned);
//! * under parkvisor: no hypervisor `panic` line, and every trace event the
//!   suite requires was printed.

use crate::suites::{End, SuiteSpec};
use parkvisor::trace::{Event, TraceLine, parse_line};

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// Killed by a signal (no exit code).
    Signal,
    /// The harness or run.sh gave up waiting.
    Timeout(u64),
    /// Could not start.
    SpawnError(String),
}

/// Whether the guest ran under parkvisor or directly on QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Hv,
    Plain,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub reasons: Vec<String>,
    /// Trace inconsistencies: failures with `strict_trace`, else only shown.
    pub warnings: Vec<String>,
    pub passed: Option<usize>,
    pub failed: Option<usize>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.reasons.is_empty()
    }
}

fn field(tok: &str, key: &str) -> Option<usize> {
    tok.strip_prefix(key)?.strip_prefix('=')?.parse().ok()
}

/// `GUEST DONE <suite> passed=<n> failed=<m>` anywhere in a line (a trace
/// line may have been printed in front of it).
fn parse_done(line: &str) -> Option<(&str, Option<usize>, Option<usize>)> {
    let at = line.find("GUEST DONE ")?;
    let mut it = line[at + "GUEST DONE ".len()..].split_whitespace();
    let suite = it.next()?;
    let (mut p, mut f) = (None, None);
    for tok in it {
        p = p.or(field(tok, "passed"));
        f = f.or(field(tok, "failed"));
    }
    Some((suite, p, f))
}

/// `GUEST PLAN <suite> run=<r> skip=<s>`.
fn parse_plan(line: &str) -> Option<(&str, Option<usize>)> {
    let at = line.find("GUEST PLAN ")?;
    let mut it = line[at + "GUEST PLAN ".len()..].split_whitespace();
    let suite = it.next()?;
    let run = it.find_map(|t| field(t, "run"));
    Some((suite, run))
}

/// Checks that each vCPU's `state A -> B` trace lines chain (every `A` is
/// the previous `B`), as a reader of the trace (trace-plot) assumes. Returns
/// one message per vCPU that breaks the chain (with the first break). A
/// break with a reported drop after its previous line ("trace buffer full:
/// N events dropped", on any CPU: a CPU records other CPUs' ON_PENDING
/// lines, and says what it dropped once it records again) is not silent
/// and does not count.
pub fn state_chain_problems(lines: &[&str]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut last: BTreeMap<usize, (&str, usize)> = BTreeMap::new();
    let mut bad: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    let is_drop = |l: &&str| {
        parse_line(l).is_some_and(|t| {
            matches!(t.event(), Some(Event::Log { message, .. })
                if message.to_string().starts_with("trace buffer full:"))
        })
    };
    let last_drop = lines.iter().rposition(is_drop);
    for (n, l) in lines.iter().enumerate() {
        let Some(t) = parse_line(l) else { continue };
        let Some(Event::State { from, to, .. }) = t.event() else {
            continue;
        };
        let (from, to) = (from.name(), to.name());
        if let Some(&(prev_to, prev_line)) = last.get(&t.cpu)
            && prev_to != from
            && last_drop.is_none_or(|d| d < prev_line)
        {
            let e = bad.entry(t.cpu).or_insert((0, String::new()));
            if e.0 == 0 {
                e.1 = format!(
                    "serial line {}: 'state {from} -> {to}' follows line {}: '... -> {prev_to}'",
                    n + 1,
                    prev_line + 1
                );
            }
            e.0 += 1;
        }
        last.insert(t.cpu, (to, n));
    }
    bad.into_iter()
        .map(|(cpu, (count, first))| {
            format!("trace: cpu{cpu}'s state lines do not chain ({count} break(s); first: {first})")
        })
        .collect()
}

/// Checks that a vCPU's `psci CPU_OFF()` call line (printed only under
/// `trace=calls`) is that vCPU's last call line before the `ON -> OFF (psci
/// CPU_OFF)` state line it caused: the call's answer belongs to the life
/// that made it, never after the next life's lines. Without call lines in
/// the log, or with dropped trace events (a "trace buffer full" line), there
/// is nothing to check. One message per vCPU, with the first offending line.
pub fn cpu_off_order_problems(lines: &[&str]) -> Vec<String> {
    use std::collections::BTreeMap;
    let traces: Vec<(usize, TraceLine<'_>)> = lines
        .iter()
        .enumerate()
        .filter_map(|(n, l)| Some((n, parse_line(l)?)))
        .collect();
    let dropped = traces.iter().any(|(_, t)| {
        matches!(t.event(), Some(Event::Log { message, .. })
            if message.to_string().starts_with("trace buffer full:"))
    });
    if dropped || !traces.iter().any(|(_, t)| t.word == "psci") {
        return Vec::new();
    }
    // Per vCPU: whether its last call line since its last state line was CPU_OFF.
    let mut called_off: BTreeMap<usize, bool> = BTreeMap::new();
    let mut bad: BTreeMap<usize, String> = BTreeMap::new();
    for (n, t) in &traces {
        if t.word == "psci" {
            called_off.insert(t.cpu, t.details.starts_with("CPU_OFF("));
        } else if t.word == "state" {
            let off = t.details.ends_with("-> OFF (psci CPU_OFF)");
            if off && !called_off.get(&t.cpu).copied().unwrap_or(false) {
                bad.entry(t.cpu).or_insert_with(|| {
                    format!(
                        "trace: cpu{}'s 'state ... -> OFF (psci CPU_OFF)' (serial line {}) does not follow its 'psci CPU_OFF()' line",
                        t.cpu,
                        n + 1
                    )
                });
            }
            called_off.insert(t.cpu, false);
        }
    }
    bad.into_values().collect()
}

/// The least number of passed tests a run must show: the suite's minimum
/// under parkvisor, 1 on plain QEMU (where the guest skips what needs
/// parkvisor) or when the guest ran a single test (`only=`).
pub fn min_passed(spec: &SuiteSpec, smp: u32, mode: Mode, single_test: bool) -> usize {
    match mode {
        Mode::Hv if !single_test => spec.min_passed(smp),
        _ => 1,
    }
}

#[cfg(test)]
pub fn judge(spec: &SuiteSpec, smp: u32, mode: Mode, exit: &Exit, output: &str) -> Verdict {
    judge_min(
        spec,
        smp,
        mode,
        exit,
        output,
        min_passed(spec, smp, mode, false),
    )
}

/// [`judge`] with an explicit minimum of passed tests.
pub fn judge_min(
    spec: &SuiteSpec,
    smp: u32,
    mode: Mode,
    exit: &Exit,
    output: &str,
    min: usize,
) -> Verdict {
    let mut v = Verdict::default();
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();

    match exit {
        Exit::Code(0) => {}
        Exit::Code(c) => v.reasons.push(format!("runner exited with status {c}")),
        Exit::Signal => v.reasons.push("runner was killed by a signal".into()),
        Exit::Timeout(s) => v.reasons.push(format!("timed out after {s} s")),
        Exit::SpawnError(e) => v.reasons.push(format!("could not start: {e}")),
    }

    if !lines.iter().any(|l| l.contains("GUEST boot ")) {
        v.reasons
            .push("the guest never booted (no 'GUEST boot' line)".into());
    }

    let fails: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("GUEST FAIL"))
        .collect();
    for f in fails.iter().take(5) {
        v.reasons.push(format!(
            "guest: {}",
            &f[f.find("GUEST FAIL").unwrap_or(0)..]
        ));
    }
    if fails.len() > 5 {
        v.reasons
            .push(format!("... and {} more GUEST FAIL lines", fails.len() - 5));
    }

    let plans: Vec<_> = lines.iter().filter_map(|l| parse_plan(l)).collect();
    let dones: Vec<_> = lines.iter().filter_map(|l| parse_done(l)).collect();
    let planned = match plans.as_slice() {
        [(s, run)] if *s == spec.name => *run,
        [] => {
            v.reasons.push("no 'GUEST PLAN' line".into());
            None
        }
        [(s, _)] => {
            v.reasons
                .push(format!("the guest ran suite '{s}', not '{}'", spec.name));
            None
        }
        _ => {
            v.reasons.push(format!(
                "{} 'GUEST PLAN' lines (the guest restarted?)",
                plans.len()
            ));
            None
        }
    };
    match dones.as_slice() {
        [(s, p, f)] if *s == spec.name => {
            v.passed = *p;
            v.failed = *f;
            match (p, f) {
                (Some(p), Some(f)) => {
                    if *f != 0 {
                        v.reasons.push(format!("{f} test(s) failed"));
                    }
                    if let Some(run) = planned
                        && *p != run
                    {
                        v.reasons
                            .push(format!("passed={p} but {run} tests were planned"));
                    }
                    if *p < min {
                        v.reasons.push(format!(
                            "passed={p}, expected at least {min} at {smp} vCPU(s)"
                        ));
                    }
                }
                _ => v.reasons.push("malformed 'GUEST DONE' line".into()),
            }
        }
        [] => v.reasons.push("no 'GUEST DONE' line".into()),
        [(s, ..)] => v
            .reasons
            .push(format!("'GUEST DONE' for suite '{s}', not '{}'", spec.name)),
        _ => v.reasons.push(format!(
            "{} 'GUEST DONE' lines (the guest restarted?)",
            dones.len()
        )),
    }

    if mode == Mode::Hv {
        let traces: Vec<TraceLine<'_>> = lines.iter().filter_map(|l| parse_line(l)).collect();
        if let Some(p) = traces.iter().find(|t| t.word == "panic") {
            v.reasons
                .push(format!("hypervisor panic on cpu{}: {}", p.cpu, p.details));
        }
        for r in spec.required.iter().filter(|r| smp >= r.min_smp) {
            let found = traces.iter().any(|t| {
                t.word == r.event
                    && (r.contains.is_empty()
                        || format!("{} {}", t.word, t.details).contains(r.contains))
            });
            if !found {
                v.reasons.push(if r.contains.is_empty() {
                    format!("no hypervisor '{}' trace line", r.event)
                } else {
                    format!(
                        "no hypervisor '{}' trace line containing '{}'",
                        r.event, r.contains
                    )
                });
            }
        }
        v.reasons.extend(cpu_off_order_problems(&lines));
        v.warnings = state_chain_problems(&lines);
        if spec.end == End::Off
            && traces
                .iter()
                .any(|t| matches!(t.event(), Some(Event::SystemReset)))
        {
            v.reasons
                .push("the system reset instead of powering off".into());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::find;

    fn psci() -> &'static SuiteSpec {
        find("psci").unwrap()
    }

    fn good_psci_log(passed: usize) -> String {
        let mut s = String::from(
            "[hv 0.000100] cpu0 boot parkvisor\r\nGUEST boot cpu0 mpidr=0x80000000 ncpus=4\r\n",
        );
        s += &format!("GUEST PLAN psci run={passed} skip=0\n");
        s += "[hv 0.100000] cpu1 state OFF -> ON_PENDING (psci CPU_ON)\n";
        s += "[hv 0.100100] cpu1 state ON_PENDING -> ON (entry)\n";
        s += "[hv 0.200000] cpu1 state ON -> OFF (psci CPU_OFF)\n";
        for i in 0..passed {
            s += &format!("GUEST run t{i}\nGUEST ok t{i}\n");
        }
        s += &format!("GUEST DONE psci passed={passed} failed=0\n");
        s += "[hv 1.000000] cpu0 system off\n";
        s
    }

    #[test]
    fn single_test_runs_need_one_pass() {
        assert_eq!(min_passed(psci(), 4, Mode::Hv, false), 36);
        assert_eq!(min_passed(psci(), 4, Mode::Hv, true), 1);
        assert_eq!(min_passed(psci(), 4, Mode::Plain, false), 1);
        let log = good_psci_log(1);
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log).ok());
        let v = judge_min(psci(), 4, Mode::Hv, &Exit::Code(0), &log, 1);
        assert!(v.ok(), "{:?}", v.reasons);
    }

    #[test]
    fn state_chain() {
        let ok = [
            "[hv 1.000000] cpu1 state OFF -> ON_PENDING (psci CPU_ON by cpu0)",
            "GUEST ok x",
            "[hv 1.100000] cpu2 state OFF -> ON_PENDING (psci CPU_ON by cpu0)",
            "[hv 1.200000] cpu1 state ON_PENDING -> ON (entered guest at 0x48000000)",
            "[hv 1.300000] cpu1 state ON -> OFF (psci CPU_OFF)",
        ];
        assert!(state_chain_problems(&ok).is_empty());
        let bad = [
            "[hv 1.000000] cpu3 state OFF -> ON_PENDING (psci CPU_ON by cpu0)",
            "[hv 1.100000] cpu3 state ON_PENDING -> ON (entered guest at 0x48000000)",
            "[hv 1.200000] cpu3 state ON -> OFF (psci CPU_OFF)",
            "[hv 1.300000] cpu3 state ON_PENDING -> ON (entered guest at 0x48000000)",
            "[hv 1.400000] cpu3 state ON -> OFF (psci CPU_OFF)",
            "[hv 1.500000] cpu3 state OFF -> ON_PENDING (psci CPU_ON by cpu0)",
        ];
        let p = state_chain_problems(&bad);
        assert_eq!(p.len(), 1);
        // The same break after a reported drop is not silent.
        let mut dropped = bad.to_vec();
        dropped.insert(
            3,
            "[hv 1.250000] cpu0 log WARN trace buffer full: 4 events dropped on cpu0",
        );
        assert!(state_chain_problems(&dropped).is_empty());
        assert!(
            p[0].contains("cpu3") && p[0].contains("1 break(s)"),
            "{p:?}"
        );
        // Out-of-order trace is a warning, not (by default) a failure.
        let mut log = good_psci_log(36);
        log += &bad.join("\n");
        let v = judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log);
        assert!(v.ok(), "{:?}", v.reasons);
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn cpu_off_call_precedes_its_state_line() {
        let new_order = [
            "[hv 1.000000] cpu1 state ON_PENDING -> ON (entered guest at 0x40080000)",
            "[hv 1.100000] cpu1 psci AFFINITY_INFO(0x0, 0) = 0",
            "[hv 1.200000] cpu1 psci CPU_OFF() = SUCCESS",
            "[hv 1.300000] cpu0 psci AFFINITY_INFO(0x1, 0) = 0",
            "[hv 1.300001] cpu1 state ON -> OFF (psci CPU_OFF)",
            "[hv 1.400000] cpu1 state OFF -> ON_PENDING (cpu_on by cpu0)",
            "[hv 1.500000] cpu1 state ON_PENDING -> ON (entered guest at 0x40080000)",
            "[hv 1.600000] cpu1 psci CPU_OFF() = SUCCESS",
            "[hv 1.700000] cpu1 state ON -> OFF (psci CPU_OFF)",
        ];
        assert_eq!(cpu_off_order_problems(&new_order), Vec::<String>::new());
        // The answer printed by the next life, after its ON line.
        let old_order = [
            "[hv 1.000000] cpu1 state ON_PENDING -> ON (entered guest at 0x40080000)",
            "[hv 1.100000] cpu1 psci AFFINITY_INFO(0x0, 0) = 0",
            "[hv 1.300001] cpu1 state ON -> OFF (psci CPU_OFF)",
            "[hv 1.400000] cpu1 state OFF -> ON_PENDING (cpu_on by cpu0)",
            "[hv 1.500000] cpu1 state ON_PENDING -> ON (entered guest at 0x40080000)",
            "[hv 1.500001] cpu1 psci CPU_OFF() = SUCCESS",
            "[hv 1.700000] cpu1 state ON -> OFF (psci CPU_OFF)",
        ];
        let problems = cpu_off_order_problems(&old_order);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("cpu1") && problems[0].contains("line 3"));
        // No call lines traced (the default): nothing to check.
        let untraced = [old_order[0], old_order[2], old_order[4]];
        assert_eq!(cpu_off_order_problems(&untraced), Vec::<String>::new());
        // A dropped call line is not a wrong order.
        let mut dropped = old_order.to_vec();
        dropped.push("[hv 1.800000] cpu0 log WARN trace buffer full: 4 events dropped on cpu0");
        assert_eq!(cpu_off_order_problems(&dropped), Vec::<String>::new());
    }

    #[test]
    fn parses_trace_lines() {
        let t = parse_line("[hv 12.000345] cpu3 state ON -> OFF (psci CPU_OFF)").unwrap();
        assert_eq!(
            (t.cpu, t.word, t.details),
            (3, "state", "ON -> OFF (psci CPU_OFF)")
        );
        assert_eq!(
            parse_line("[hv 1.000000] cpu0 system off").unwrap().word,
            "system"
        );
        assert!(parse_line("GUEST ok x").is_none());
        assert!(parse_line("[hv x] cpu0 panic").is_none());
        assert!(parse_line("[hv 1.000000] cpuX panic").is_none());
    }

    #[test]
    fn good_run_passes() {
        let v = judge(psci(), 4, Mode::Hv, &Exit::Code(0), &good_psci_log(36));
        assert!(v.ok(), "{:?}", v.reasons);
        assert_eq!(v.passed, Some(36));
    }

    #[test]
    fn never_booted_fails() {
        let v = judge(
            psci(),
            4,
            Mode::Hv,
            &Exit::Code(0),
            "[hv 0.100000] cpu0 boot parkvisor\n",
        );
        assert!(!v.ok());
        assert!(v.reasons.iter().any(|r| r.contains("never booted")));
        assert!(v.reasons.iter().any(|r| r.contains("no 'GUEST DONE'")));
        let v = judge(psci(), 1, Mode::Plain, &Exit::Code(0), "");
        assert!(!v.ok());
    }

    #[test]
    fn nonzero_exit_or_timeout_fails() {
        let log = good_psci_log(36);
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Code(4), &log).ok());
        let v = judge(psci(), 4, Mode::Hv, &Exit::Timeout(90), &log);
        assert_eq!(v.reasons, vec!["timed out after 90 s".to_string()]);
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Signal, &log).ok());
    }

    #[test]
    fn guest_fail_anywhere_fails() {
        let log = good_psci_log(36) + "GUEST FAIL system_off: SYSTEM_OFF returned -1\n";
        let v = judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log);
        assert!(v.reasons.iter().any(|r| r.contains("SYSTEM_OFF returned")));
    }

    #[test]
    fn failed_count_and_too_few_passed_fail() {
        let log = good_psci_log(36).replace("failed=0", "failed=2");
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log).ok());
        // 10 passed as planned, but psci needs 24 at 4 vCPUs.
        let v = judge(psci(), 4, Mode::Hv, &Exit::Code(0), &good_psci_log(10));
        assert!(v.reasons.iter().any(|r| r.contains("expected at least 36")));
        // Fewer passed than planned (a test vanished without a verdict).
        let log = good_psci_log(36).replace("run=36", "run=37");
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log).ok());
    }

    #[test]
    fn panic_and_missing_trace_fail_only_under_hv() {
        let log = good_psci_log(36) + "[hv 1.500000] cpu2 panic src/psci.rs:10: boom\n";
        let v = judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("hypervisor panic on cpu2"))
        );
        let log = good_psci_log(36).replace("state ON -> OFF", "state ON -> ON");
        let v = judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log);
        assert!(
            v.reasons.iter().any(|r| r.contains("ON -> OFF")),
            "{:?}",
            v.reasons
        );
        // The same log is fine on plain QEMU (no trace expected there).
        assert!(judge(psci(), 4, Mode::Plain, &Exit::Code(0), &log).ok());
        // At 1 vCPU no state lines are required.
        let one = good_psci_log(22).replace("state", "xstate");
        assert!(judge(psci(), 1, Mode::Hv, &Exit::Code(0), &one).ok());
    }

    #[test]
    fn containment_needs_a_fault_line() {
        let spec = find("containment").unwrap();
        let mut log = String::from(
            "GUEST boot cpu0\nGUEST PLAN containment run=11 skip=0\nGUEST DONE containment passed=11 failed=0\n[hv 2.000000] cpu0 system off\n",
        );
        assert!(!judge(spec, 2, Mode::Hv, &Exit::Code(0), &log).ok());
        log += "[hv 1.000000] cpu0 fault stage2 addr=0x40200000 pc=0x48001000 read size=8 (hypervisor memory) -> inject\n";
        let v = judge(spec, 2, Mode::Hv, &Exit::Code(0), &log);
        assert!(v.ok(), "{:?}", v.reasons);
    }

    #[test]
    fn restarted_guest_and_wrong_suite_fail() {
        let log = good_psci_log(36);
        let twice = log.clone() + &log;
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Code(0), &twice).ok());
        let other = log.replace("psci", "demo");
        assert!(!judge(psci(), 4, Mode::Hv, &Exit::Code(0), &other).ok());
    }

    #[test]
    fn reset_suite_needs_reset_not_off() {
        let spec = find("system_reset").unwrap();
        let base = "GUEST boot cpu0\nGUEST PLAN system_reset run=1 skip=0\nGUEST ok system_reset_supported\nGUEST DONE system_reset passed=1 failed=0\nGUEST calling SYSTEM_RESET\n";
        let off = format!("{base}[hv 1.000000] cpu0 system off\n");
        assert!(!judge(spec, 2, Mode::Hv, &Exit::Code(0), &off).ok());
        let reset = format!("{base}[hv 1.000000] cpu0 system reset\n");
        assert!(judge(spec, 2, Mode::Hv, &Exit::Code(0), &reset).ok());
        // An off-suite that reset instead fails.
        let spec = find("system_off").unwrap();
        let log = reset.replace("system_reset", "system_off") + "[hv 1.000000] cpu0 system off\n";
        assert!(!judge(spec, 2, Mode::Hv, &Exit::Code(0), &log).ok());
    }

    #[test]
    fn done_line_after_trace_prefix_is_found() {
        let log =
            good_psci_log(36).replace("GUEST DONE", "[hv 0.900000] cpu1 mark 0x1\nGUEST DONE");
        assert!(judge(psci(), 4, Mode::Hv, &Exit::Code(0), &log).ok());
    }
}
