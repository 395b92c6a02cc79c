//! The Linux scenario steps of `scripts/test.sh`, each a spec: how to start
//! it (through `scripts/run.sh` or a console script that wraps it) and what
//! its serial log must show. `harness linux STEP...` runs steps and judges
//! them; `harness linux --judge LOG STEP` judges a log already written.
//!
//! Every step, besides its own expectations, must show what run.sh itself
//! demands (checked again here, so a verdict stands on the log alone): exit
//! status 0, `PVTEST PASS <scenario>`, no `PVTEST FAIL`; under parkvisor the
//! hypervisor's boot trace line for the step's vCPU count, no `panic` trace
//! line and the `system off` (reboot: `system reset`) trace line, all read
//! through the trace parser.

use crate::judge::Exit;
use parkvisor::trace::parse_line;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

mod steps;
pub use steps::{find, steps};

const USAGE: &str = "\
usage: harness linux [options] STEP...
  Runs Linux scenario steps (scripts/run.sh) and judges each serial log
  against its spec; ends with `harness linux: N passed, M failed`.
  --list            list the steps and what each expects, and exit
  --log-dir DIR     where the serial logs go (default .cache/logs)
  --hv FILE         hypervisor ELF (default: the release build)
  --judge LOG       judge LOG as the (single) STEP's log, as if its runner
                    had exited 0, without running anything";

/// A serial-log pattern: text matched anywhere in a line, where `*` matches
/// any run of characters, `#` one or more digits, `[a-b]` one character in
/// that range, and `\` takes the next character literally.
pub fn matches(pat: &str, line: &str) -> bool {
    let toks = compile(pat);
    let l = line.as_bytes();
    (0..=l.len()).any(|start| match_at(&toks, l, start))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Byte(u8),
    Any,
    Digits,
    Range(u8, u8),
}

fn compile(pat: &str) -> Vec<Tok> {
    let p = pat.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => {
                out.push(Tok::Byte(p[i + 1]));
                i += 1;
            }
            b'*' => out.push(Tok::Any),
            b'#' => out.push(Tok::Digits),
            b'[' if i + 4 < p.len() && p[i + 2] == b'-' && p[i + 4] == b']' => {
                out.push(Tok::Range(p[i + 1], p[i + 3]));
                i += 4;
            }
            b => out.push(Tok::Byte(b)),
        }
        i += 1;
    }
    out
}

fn match_at(toks: &[Tok], l: &[u8], i: usize) -> bool {
    match toks.split_first() {
        None => true,
        Some((Tok::Byte(b), rest)) => l.get(i) == Some(b) && match_at(rest, l, i + 1),
        Some((Tok::Range(a, z), rest)) => {
            l.get(i).is_some_and(|c| (*a..=*z).contains(c)) && match_at(rest, l, i + 1)
        }
        Some((Tok::Any, rest)) => (i..=l.len()).any(|j| match_at(rest, l, j)),
        Some((Tok::Digits, rest)) => {
            let mut j = i;
            while l.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
                if match_at(rest, l, j) {
                    return true;
                }
            }
            false
        }
    }
}

/// One expectation on a step's serial log (patterns: [`matches`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Some line matches.
    Line(String),
    /// No line matches.
    NoLine(String),
    /// Exactly this many lines match.
    Count(String, usize),
    /// A line matching each pattern, each after the previous one's line.
    InOrder(Vec<String>),
    /// A hypervisor trace line (per the trace parser), written as
    /// `cpu<N> <word> <details>`, matches.
    Trace(String),
    /// Exactly this many hypervisor trace lines match.
    TraceCount(String, usize),
}

/// What starts a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `scripts/run.sh --scenario ...`.
    RunSh,
    /// `guest-tests/linux/console-echo.sh`: types one line into the console.
    ConsoleEcho,
    /// `guest-tests/linux/console-load.sh`: types 300 lines under load.
    ConsoleLoad,
}

/// One step of scripts/test.sh.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub driver: Driver,
    /// `--scenario` (the init script's `pv.scenario`).
    pub scenario: &'static str,
    pub smp: u32,
    /// Under parkvisor (else `--no-hv`).
    pub hv: bool,
    /// `--board`, when not the default one.
    pub board: Option<&'static str>,
    /// `--debian`, when not the default release.
    pub debian: Option<u32>,
    /// `--append`, when not run.sh's default for the scenario.
    pub append: Option<String>,
    pub icount: bool,
    pub no_reboot: bool,
    /// More run.sh options; `{linux12}` / `{linux13}` stand for that Debian
    /// release's guest directory (lib.sh's pv_linux_dir).
    pub args: Vec<String>,
    pub timeout_s: u64,
    /// The serial log's file name in the log directory.
    pub log: String,
    pub expect: Vec<Expect>,
    /// Lines printed with the verdict for the reader (not judged).
    pub show: Vec<String>,
}

/// `0`, `0-1`, ...: the kernel's CPU list of CPUs 0 to `n - 1`.
pub fn cpus(n: u32) -> String {
    if n == 1 {
        "0".into()
    } else {
        format!("0-{}", n - 1)
    }
}

impl Step {
    fn new(name: String, scenario: &'static str, smp: u32, log: String) -> Step {
        Step {
            name,
            driver: Driver::RunSh,
            scenario,
            smp,
            hv: true,
            board: None,
            debian: None,
            append: None,
            icount: false,
            no_reboot: false,
            args: Vec::new(),
            timeout_s: 400,
            log,
            expect: Vec::new(),
            show: Vec::new(),
        }
    }
    fn timeout(mut self, s: u64) -> Self {
        self.timeout_s = s;
        self
    }
    fn append(mut self, a: impl Into<String>) -> Self {
        self.append = Some(a.into());
        self
    }
    fn line(mut self, p: impl Into<String>) -> Self {
        self.expect.push(Expect::Line(p.into()));
        self
    }
    fn no_line(mut self, p: impl Into<String>) -> Self {
        self.expect.push(Expect::NoLine(p.into()));
        self
    }
    fn count(mut self, p: impl Into<String>, n: usize) -> Self {
        self.expect.push(Expect::Count(p.into(), n));
        self
    }
    fn in_order(mut self, ps: &[&str]) -> Self {
        self.expect
            .push(Expect::InOrder(ps.iter().map(|p| p.to_string()).collect()));
        self
    }
    fn trace(mut self, p: impl Into<String>) -> Self {
        self.expect.push(Expect::Trace(p.into()));
        self
    }
    fn trace_count(mut self, p: impl Into<String>, n: usize) -> Self {
        self.expect.push(Expect::TraceCount(p.into(), n));
        self
    }
    fn show(mut self, ps: &[&str]) -> Self {
        self.show.extend(ps.iter().map(|p| p.to_string()));
        self
    }
    /// The first stage's CPU lists: every CPU present and online.
    fn all_cpus_up(self) -> Self {
        let c = cpus(self.smp);
        let s = self.scenario;
        self.line(format!("PVTEST {s} stage=1 online={c} present={c} "))
    }

    /// The `PVTEST PASS` word: console-load runs the `echoload` scenario
    /// through run.sh's `echo`.
    pub fn pass_name(&self) -> &'static str {
        match self.driver {
            Driver::ConsoleLoad => "echoload",
            _ => self.scenario,
        }
    }

    /// Every expectation: the step's own after the common ones.
    pub fn expectations(&self) -> Vec<Expect> {
        let mut e = vec![
            Expect::Line(format!("PVTEST PASS {}", self.pass_name())),
            Expect::NoLine("PVTEST FAIL".into()),
        ];
        if self.hv {
            e.push(Expect::Trace(format!(
                "cpu0 boot parkvisor * {} CPUs,",
                self.smp
            )));
            e.push(Expect::TraceCount("cpu# panic*".into(), 0));
            e.push(Expect::NoLine("\\[hv #.#] cpu# panic ".into()));
            let end = if self.scenario == "reboot" {
                "system reset"
            } else {
                "system off"
            };
            e.push(Expect::Trace(format!("cpu# {end}")));
        }
        e.extend(self.expect.iter().cloned());
        e
    }
}

/// The verdict on one step's log.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The failed expectations, each said in a line.
    pub reasons: Vec<String>,
    /// The lines the step shows.
    pub shown: Vec<String>,
}

/// The hypervisor trace lines of a log, as `cpu<N> <word> <details>`.
fn trace_texts(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| parse_line(l))
        .map(|t| format!("cpu{} {} {}", t.cpu, t.word, t.details))
        .collect()
}

/// Judges a step's serial log and its runner's exit.
pub fn judge(step: &Step, exit: &Exit, serial: &str) -> Verdict {
    let mut v = Verdict::default();
    let lines: Vec<&str> = serial.lines().map(|l| l.trim_end_matches('\r')).collect();
    match exit {
        Exit::Code(0) => {}
        Exit::Code(c) => v.reasons.push(format!("the runner exited with status {c}")),
        Exit::Signal => v.reasons.push("the runner was killed by a signal".into()),
        Exit::Timeout(s) => v.reasons.push(format!("timed out after {s} s")),
        Exit::SpawnError(e) => v.reasons.push(format!("could not start: {e}")),
    }
    let traces = trace_texts(&lines);
    let first = |ls: &[&str], p: &str, from: usize| {
        ls.iter()
            .enumerate()
            .skip(from)
            .find(|(_, l)| matches(p, l))
            .map(|(n, _)| n)
    };
    for e in step.expectations() {
        match &e {
            Expect::Line(p) => {
                if first(&lines, p, 0).is_none() {
                    v.reasons.push(format!("no line matches '{p}'"));
                }
            }
            Expect::NoLine(p) => {
                if let Some(n) = first(&lines, p, 0) {
                    v.reasons.push(format!(
                        "line {} matches '{p}', which must not appear: {}",
                        n + 1,
                        lines[n]
                    ));
                }
            }
            Expect::Count(p, want) => {
                let got = lines.iter().filter(|l| matches(p, l)).count();
                if got != *want {
                    v.reasons
                        .push(format!("{got} lines match '{p}', expected {want}"));
                }
            }
            Expect::InOrder(ps) => {
                let mut from = 0;
                let mut after: Option<(usize, &str)> = None;
                for p in ps {
                    match first(&lines, p, from) {
                        Some(n) => {
                            after = Some((n, p));
                            from = n + 1;
                        }
                        None => {
                            v.reasons.push(match after {
                                None => format!("no line matches '{p}'"),
                                Some((n, prev)) => format!(
                                    "no line matches '{p}' after line {} (matching '{prev}')",
                                    n + 1
                                ),
                            });
                            break;
                        }
                    }
                }
            }
            Expect::Trace(p) => {
                if !traces.iter().any(|t| matches(p, t)) {
                    v.reasons
                        .push(format!("no hypervisor trace line matches '{p}'"));
                }
            }
            Expect::TraceCount(p, want) => {
                let hits: Vec<&String> = traces.iter().filter(|t| matches(p, t)).collect();
                if hits.len() != *want {
                    let eg = hits
                        .first()
                        .map(|t| format!(" (e.g. {t})"))
                        .unwrap_or_default();
                    v.reasons.push(format!(
                        "{} hypervisor trace lines match '{p}', expected {want}{eg}",
                        hits.len()
                    ));
                }
            }
        }
    }
    let alts: Vec<Vec<String>> = step.show.iter().map(|p| expand_alternatives(p)).collect();
    v.shown = lines
        .iter()
        .filter(|l| alts.iter().flatten().any(|p| matches(p, l)))
        .map(|l| l.to_string())
        .collect();
    v
}

/// `a (b|c) d` -> `a b d`, `a c d` (one group): for the shown lines only.
fn expand_alternatives(p: &str) -> Vec<String> {
    match (p.find('('), p.find(')')) {
        (Some(o), Some(c)) if o < c && p[o..c].contains('|') => p[o + 1..c]
            .split('|')
            .map(|alt| format!("{}{alt}{}", &p[..o], &p[c + 1..]))
            .collect(),
        _ => vec![p.to_string()],
    }
}

/// The runner's command line for a step.
pub fn command(step: &Step, root: &Path, hv_elf: &Path, log: &Path) -> Result<Command, String> {
    let mut c = match step.driver {
        Driver::RunSh => {
            let mut c = Command::new(root.join("scripts/run.sh"));
            c.args(["--scenario", step.scenario])
                .arg("--no-shell")
                .arg("--log")
                .arg(log);
            c
        }
        Driver::ConsoleEcho => {
            let mut c = Command::new(root.join("guest-tests/linux/console-echo.sh"));
            c.env("PV_ECHO_LOG", log);
            c
        }
        Driver::ConsoleLoad => {
            let mut c = Command::new(root.join("guest-tests/linux/console-load.sh"));
            c.env("PV_LOAD_LOG", log);
            c
        }
    };
    c.arg("--no-build").current_dir(root);
    if let Some(b) = step.board {
        c.args(["--board", b]);
    }
    if let Some(d) = step.debian {
        c.args(["--debian", &d.to_string()]);
    }
    if step.hv {
        c.arg("--hv").arg(hv_elf);
    } else {
        c.arg("--no-hv");
    }
    c.args(["--smp", &step.smp.to_string()])
        .args(["--timeout", &step.timeout_s.to_string()]);
    if let Some(a) = &step.append {
        c.args(["--append", a]);
    }
    if step.icount {
        c.arg("--icount");
    }
    if step.no_reboot {
        c.arg("--no-reboot");
    }
    for a in &step.args {
        let mut a = a.clone();
        for n in [12, 13] {
            let key = format!("{{linux{n}}}");
            if a.contains(&key) {
                a = a.replace(&key, &linux_dir(root, n)?);
            }
        }
        c.arg(a);
    }
    Ok(c)
}

/// lib.sh's pv_linux_dir N.
fn linux_dir(root: &Path, n: u32) -> Result<String, String> {
    let out = Command::new("bash")
        .args(["-c", "source scripts/lib.sh && pv_linux_dir \"$1\"", "-"])
        .arg(n.to_string())
        .current_dir(root)
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    let d = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || d.is_empty() {
        return Err(format!("pv_linux_dir {n} failed"));
    }
    Ok(d)
}

/// Runs a step's runner to its end (its own timeout, with a backstop).
fn run(step: &Step, mut cmd: Command, log: &Path) -> Exit {
    use std::os::unix::process::CommandExt;
    let _ = std::fs::remove_file(log);
    let mut child = match cmd
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Exit::SpawnError(e.to_string()),
    };
    let deadline = Instant::now() + Duration::from_secs(step.timeout_s + 300);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match st.code() {
                    Some(124) => Exit::Timeout(step.timeout_s),
                    Some(c) => Exit::Code(c),
                    None => Exit::Signal,
                };
            }
            Ok(None) if Instant::now() >= deadline => {
                crate::runner::kill_group(child.id());
                let _ = child.wait();
                return Exit::Timeout(step.timeout_s + 300);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Exit::SpawnError(e.to_string()),
        }
    }
}

fn describe(step: &Step) -> String {
    let mut s = format!(
        "{}: {} scenario {} at {} vCPUs{}{}{}{}, timeout {} s, log {}",
        step.name,
        match step.driver {
            Driver::RunSh => "run.sh",
            Driver::ConsoleEcho => "console-echo.sh",
            Driver::ConsoleLoad => "console-load.sh",
        },
        step.scenario,
        step.smp,
        if step.hv { "" } else { ", plain QEMU" },
        step.board
            .map(|b| format!(", board {b}"))
            .unwrap_or_default(),
        step.debian
            .map(|d| format!(", Debian {d}"))
            .unwrap_or_default(),
        if step.icount { ", -icount" } else { "" },
        step.timeout_s,
        step.log,
    );
    if let Some(a) = &step.append {
        s += &format!("\n    append: {a}");
    }
    for a in &step.args {
        s += &format!("\n    option: {a}");
    }
    for e in step.expectations() {
        s += &format!("\n    expect {e:?}");
    }
    s
}

fn report(step: &Step, v: &Verdict, log: &Path, secs: f64) -> bool {
    for l in &v.shown {
        println!("    | {l}");
    }
    if v.reasons.is_empty() {
        println!("harness linux: ok   {} ({secs:.1} s)", step.name);
        true
    } else {
        println!(
            "harness linux: FAIL {} ({secs:.1} s, log: {})",
            step.name,
            log.display()
        );
        for r in &v.reasons {
            println!("    - {r}");
        }
        false
    }
}

/// `harness linux ...`.
pub fn main(args: &[String]) -> ExitCode {
    let mut names = Vec::new();
    let (mut log_dir, mut hv, mut judge_log) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned();
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--list" => {
                for s in steps() {
                    println!("{}", describe(&s));
                }
                return ExitCode::SUCCESS;
            }
            "--log-dir" | "--hv" | "--judge" => {
                let Some(v) = val() else {
                    eprintln!("harness linux: {a} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                let v = Some(PathBuf::from(v));
                match a.as_str() {
                    "--log-dir" => log_dir = v,
                    "--hv" => hv = v,
                    _ => judge_log = v,
                }
            }
            s if s.starts_with('-') => {
                eprintln!("harness linux: unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            s => match find(s) {
                Some(st) => names.push(st),
                None => {
                    eprintln!("harness linux: unknown step '{s}' (see harness linux --list)");
                    return ExitCode::from(2);
                }
            },
        }
    }
    if names.is_empty() || (judge_log.is_some() && names.len() != 1) {
        eprintln!("harness linux: name one step with --judge, at least one without\n{USAGE}");
        return ExitCode::from(2);
    }
    if let Some(log) = judge_log {
        let serial = match std::fs::read(&log) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                eprintln!("harness linux: {}: {e}", log.display());
                return ExitCode::from(2);
            }
        };
        let v = judge(&names[0], &Exit::Code(0), &serial);
        return if report(&names[0], &v, &log, 0.0) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let root = crate::repo_root();
    let root = root.canonicalize().unwrap_or(root);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_relative() { root.join(t) } else { t })
        .unwrap_or_else(|| root.join("target"));
    let hv = hv.unwrap_or_else(|| target.join("aarch64-unknown-none-softfloat/release/parkvisor"));
    let log_dir = log_dir.unwrap_or_else(|| root.join(".cache/logs"));
    let log_dir = if log_dir.is_relative() {
        std::env::current_dir().unwrap_or_default().join(log_dir)
    } else {
        log_dir
    };
    let _ = std::fs::create_dir_all(&log_dir);
    let (mut passed, mut failed) = (0, 0);
    for step in &names {
        let log = log_dir.join(&step.log);
        println!(
            "harness linux: {}",
            describe(step).lines().next().unwrap_or("")
        );
        let t0 = Instant::now();
        let exit = match command(step, &root, &hv, &log) {
            Ok(cmd) => run(step, cmd, &log),
            Err(e) => Exit::SpawnError(e),
        };
        let serial = std::fs::read(&log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let v = judge(step, &exit, &serial);
        if report(step, &v, &log, t0.elapsed().as_secs_f64()) {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("harness linux: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches(
            "psci: CPU# killed",
            "[ 1.2] psci: CPU3 killed (polled 0 ms)"
        ));
        assert!(!matches("psci: CPU# killed", "psci: CPU killed"));
        assert!(matches(
            "notes=4 cpus=4 spinner_pc_in=*:1",
            "x notes=4 cpus=4 spinner_pc_in=a:b:1"
        ));
        assert!(matches("([2-9] attempts", "(3 attempts"));
        assert!(!matches("([2-9] attempts", "(1 attempts"));
        assert!(!matches("([2-9] attempts", "(12 attempts"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
        assert!(matches("", "anything"));
        assert!(!matches("online=0-3", "online=0-7"));
        assert_eq!(expand_alternatives("x (a|b) y"), ["x a y", "x b y"]);
    }

    /// A kexec run at 4 vCPUs with the module, cut to the judged lines.
    const KEXEC_BUSY: &str = "\
[hv 0.030982] cpu0 boot parkvisor 0.1.0: 4 CPUs, guest RAM 0x44000000..0xc0000000, kernel entry 0x48000000, dtb 0xbfe00000
[hv 0.041013] cpu0 state OFF -> ON (boot)
[    3.805064] PVTEST kexec stage=1 online=0-3 present=0-3 kernel=6.1.0-57-arm64
[    4.622400] PVTEST busy cpus=0-3
[    8.242015] parkvisor_stop: kexec: stopped 3 CPUs in 1882 us: 3 by the stop IPI, 0 by FAST_STOP (0 attempts; first: status 0, parked 0)\r
[    8.25] kexec_core: Starting new kernel
[    3.335486] PVTEST kexec stage=2 online=0-3 present=0-3 kernel=6.1.0-57-arm64
[    3.784561] PVTEST kexec second kernel online=0-3\r
[    3.787174] PVTEST PASS kexec
[hv 14.516532] cpu0 system off
";

    fn busy4() -> Step {
        find("linux-module-kexec-busy-4cpu").unwrap()
    }

    #[test]
    fn recorded_log_passes() {
        let v = judge(&busy4(), &Exit::Code(0), KEXEC_BUSY);
        assert!(v.reasons.is_empty(), "{:?}", v.reasons);
        assert!(v.shown.iter().any(|l| l.contains("Starting new kernel")));
    }

    #[test]
    fn each_broken_expectation_fails() {
        let fails = |log: &str, exit: Exit, why: &str| {
            let v = judge(&busy4(), &exit, log);
            assert!(
                v.reasons.iter().any(|r| r.contains(why)),
                "{why}: {:?}",
                v.reasons
            );
        };
        fails(KEXEC_BUSY, Exit::Code(4), "exited with status 4");
        fails(KEXEC_BUSY, Exit::Timeout(600), "timed out");
        // One CPU short in the second kernel.
        fails(
            &KEXEC_BUSY.replace("second kernel online=0-3", "second kernel online=0-2"),
            Exit::Code(0),
            "no line matches 'PVTEST kexec second kernel online=0-3'",
        );
        // The stop counted too few CPUs.
        fails(
            &KEXEC_BUSY.replace("stopped 3 CPUs", "stopped 2 CPUs"),
            Exit::Code(0),
            "parkvisor_stop: kexec: stopped 3 CPUs",
        );
        // A stock teardown line.
        fails(
            &KEXEC_BUSY.replace(
                "PVTEST busy",
                "psci: CPU2 killed (polled 0 ms)\nPVTEST busy",
            ),
            Exit::Code(0),
            "must not appear",
        );
        // The second kernel's line before the stop: out of order.
        let swapped = KEXEC_BUSY
            .replace(
                "[    3.784561] PVTEST kexec second kernel online=0-3\r\n",
                "",
            )
            .replace(
                "[    4.622400] PVTEST busy",
                "[    3.784561] PVTEST kexec second kernel online=0-3\n[    4.622400] PVTEST busy",
            );
        fails(&swapped, Exit::Code(0), "after line");
        fails(
            &KEXEC_BUSY.replace("PVTEST PASS", "PVTEST FAIL kexec: x\nPVTEST PAS"),
            Exit::Code(0),
            "PVTEST PASS kexec",
        );
        fails(
            &KEXEC_BUSY.replace(
                "[hv 14.516532] cpu0 system off",
                "[hv 14.500000] cpu0 system reset",
            ),
            Exit::Code(0),
            "'cpu# system off'",
        );
        // "system off" from the guest, not the hypervisor's trace.
        fails(
            &KEXEC_BUSY.replace(
                "[hv 14.516532] cpu0 system off",
                "[   14.5] cpu0 system off",
            ),
            Exit::Code(0),
            "'cpu# system off'",
        );
        fails(
            &KEXEC_BUSY.replace(
                "system off",
                "system off\n[hv 14.600000] cpu1 panic at x: y",
            ),
            Exit::Code(0),
            "'cpu# panic*', expected 0",
        );
        fails(
            &KEXEC_BUSY.replace(": 4 CPUs,", ": 8 CPUs,"),
            Exit::Code(0),
            "cpu0 boot parkvisor * 4 CPUs,",
        );
    }

    #[test]
    fn stock_count_and_traces() {
        let s = find("gicv2-linux-kexec-busy-4cpu").unwrap();
        let log = "\
[hv 0.030000] cpu0 boot parkvisor 0.1.0: 4 CPUs, guest RAM 0x44000000..0xc0000000
[    3.8] PVTEST kexec stage=1 online=0-3 present=0-3 kernel=6.1.0-57-arm64
[    5.0] psci: CPU1 killed (polled 0 ms)
[hv 5.100000] cpu1 state ON -> OFF (psci CPU_OFF)
[    5.2] psci: CPU2 killed (polled 0 ms)
[hv 5.300000] cpu2 state ON -> OFF (psci CPU_OFF)
[    5.4] psci: CPU3 killed (polled 0 ms)
[hv 5.500000] cpu3 state ON -> OFF (psci CPU_OFF)
[    3.7] PVTEST kexec second kernel online=0-3
[    3.8] PVTEST PASS kexec
[hv 9.000000] cpu0 system off
";
        let v = judge(&s, &Exit::Code(0), log);
        assert!(v.reasons.is_empty(), "{:?}", v.reasons);
        let v = judge(
            &s,
            &Exit::Code(0),
            &log.replace("[hv 5.500000] cpu3 state", "[ 5.5] cpu3 state"),
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("2 hypervisor trace lines match")),
            "{:?}",
            v.reasons
        );
        let v = judge(
            &s,
            &Exit::Code(0),
            &log.replace("[    5.4] psci: CPU3 killed (polled 0 ms)\n", ""),
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("2 lines match 'psci: CPU# killed', expected 3")),
            "{:?}",
            v.reasons
        );
    }
}
