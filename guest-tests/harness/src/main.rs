//! parkvisor guest-test harness: boots the bare-metal test guests under
//! parkvisor in QEMU (through `scripts/run.sh`), one run per (suite, vCPU
//! count), at most `--jobs` at a time, and judges each from its serial output
//! and exit status. Ends with `harness: N passed, M failed`; exits 1 if any
//! run failed, 2 on a usage or setup error.
//!
//! It builds nothing: build first with
//!   cargo build --release -p parkvisor --target aarch64-unknown-none-softfloat
//!   cargo build --release -p guests --target aarch64-unknown-none
//! The guest ELF is converted to `guest.bin` (objcopy -O binary) next to it.

mod board;
mod judge;
mod linux;
mod runner;
mod suites;

use judge::{Mode, judge_min};
use runner::{Job, Setup};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

const USAGE: &str = "\
usage: harness [options] [suite...]
  suites: see --list (default: all)
  --board NAME       virt (GICv3, default), virt-gicv2 (GICv2, at most 8
                     vCPUs) or raspi4b (Raspberry Pi 4 B: 4 CPUs, 2G):
                     boards/qemu-NAME/board.env, as scripts/run.sh
  --smp LIST         vCPU counts, comma separated (default 1,2,4,8; a board
                     with a fixed CPU count: that one)
  --jobs N           QEMU runs at once (default 2)
  --plain            run the guests on plain QEMU without parkvisor (development
                     baseline; the guest skips what only parkvisor provides)
  --mem SIZE         guest machine RAM, as QEMU's -m takes it (default: the
                     board's TEST_MEM)
  --hv FILE          hypervisor ELF (default: the release build; e.g. an older
                     build, to see a new test fail without its fix)
  --hv-args ARGS     hypervisor command line (e.g. trace=calls)
  --guest-args ARGS  extra guest bootargs (e.g. only=cpu_on_race)
  --timeout SECONDS  per-run timeout (default: per suite, scaled by vCPUs)
  --tail N           serial lines shown for a failed run (default 40)
  --repeat N         make every run N times (hunting flaky failures)
  --strict-trace     fail a run whose hypervisor state trace lines do not chain
                     per vCPU (by default only reported)
  --list             list the suites and exit
or: harness linux [options] STEP...  (the Linux scenario steps: harness linux --help)";

struct Opts {
    suites: Vec<&'static suites::SuiteSpec>,
    smp: Vec<u32>,
    /// `--smp` was given (else the board may choose).
    smp_set: bool,
    jobs: usize,
    plain: bool,
    mem: Option<String>,
    hv: Option<PathBuf>,
    hv_args: String,
    guest_args: String,
    timeout: Option<u64>,
    tail: usize,
    repeat: u32,
    strict_trace: bool,
    board: String,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        suites: Vec::new(),
        smp: vec![1, 2, 4, 8],
        smp_set: false,
        jobs: 2,
        plain: false,
        mem: None,
        hv: None,
        hv_args: String::new(),
        guest_args: String::new(),
        timeout: None,
        tail: 40,
        repeat: 1,
        strict_trace: false,
        board: "virt".to_string(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--list" => {
                for s in suites::SUITES {
                    println!("{}", s.name);
                }
                return Ok(None);
            }
            "--smp" => {
                o.smp_set = true;
                o.smp = val("--smp")?
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|&n| (1..=512).contains(&n))
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or("--smp wants numbers 1..512, comma separated")?;
            }
            "--jobs" => {
                o.jobs = val("--jobs")?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or("--jobs wants a positive number")?;
            }
            "--board" => o.board = val("--board")?,
            "--plain" => o.plain = true,
            "--strict-trace" => o.strict_trace = true,
            "--mem" => {
                let m = val("--mem")?;
                let digits = m.trim_end_matches(['M', 'G']);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("--mem wants a size like 512M or 4G".into());
                }
                o.mem = Some(m);
            }
            "--hv" => o.hv = Some(PathBuf::from(val("--hv")?)),
            "--hv-args" => o.hv_args = val("--hv-args")?,
            "--guest-args" => o.guest_args = val("--guest-args")?,
            "--timeout" => {
                o.timeout = Some(
                    val("--timeout")?
                        .parse()
                        .map_err(|_| "--timeout wants seconds")?,
                )
            }
            "--tail" => {
                o.tail = val("--tail")?
                    .parse()
                    .map_err(|_| "--tail wants a number")?
            }
            "--repeat" => {
                o.repeat = val("--repeat")?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or("--repeat wants a positive number")?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => o
                .suites
                .push(suites::find(s).ok_or(format!("unknown suite '{s}' (see --list)"))?),
        }
    }
    if o.suites.is_empty() {
        let plain = o.plain;
        o.suites = suites::SUITES
            .iter()
            .filter(|s| s.plain || !plain)
            .filter(|s| !suites::NOT_DEFAULT.contains(&s.name))
            .collect();
    }
    Ok(Some(o))
}

/// The repository root: the nearest ancestor of the working directory with
/// `boards/qemu-virt/board.env`, else where this crate was built from.
fn repo_root() -> PathBuf {
    let has_board = |p: &Path| p.join("boards/qemu-virt/board.env").is_file();
    if let Ok(mut d) = std::env::current_dir() {
        loop {
            if has_board(&d) {
                return d;
            }
            if !d.pop() {
                break;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory for this invocation's logs (several people or CI jobs
/// may run the harness at once on one target directory), with `last`
/// pointing at it; only the newest 10 are kept.
fn run_log_dir(base: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = base.join(format!("{secs}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let last = base.join("last");
    let _ = std::fs::remove_file(&last);
    let _ = std::os::unix::fs::symlink(dir.file_name().unwrap(), &last);
    if let Ok(rd) = std::fs::read_dir(base) {
        let mut runs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.is_symlink())
            .collect();
        runs.sort();
        let n = runs.len().saturating_sub(10);
        for old in &runs[..n] {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    dir
}

/// The runs' common setup, the board, and the vCPU counts to run.
fn setup(o: &Opts) -> Result<(Setup, board::Board, Vec<u32>), String> {
    let root = repo_root()
        .canonicalize()
        .map_err(|e| format!("repo root: {e}"))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() {
        root.join(target)
    } else {
        target
    };
    let elf = target.join("aarch64-unknown-none/release/guest");
    if !elf.is_file() {
        return Err(format!(
            "no guest image at {}: build it with\n  cargo build --release -p guests --target aarch64-unknown-none",
            elf.display()
        ));
    }
    let mode = if o.plain { Mode::Plain } else { Mode::Hv };
    let guest = match mode {
        Mode::Plain => elf.clone(),
        Mode::Hv => {
            let bin = elf.with_file_name("guest.bin");
            runner::elf_to_bin(&elf, &bin)?;
            bin
        }
    };
    let hv_elf =
        o.hv.clone()
            .unwrap_or_else(|| target.join("aarch64-unknown-none-softfloat/release/parkvisor"));
    if mode == Mode::Hv && !hv_elf.is_file() {
        return Err(format!(
            "no hypervisor at {}: build it with\n  cargo build --release -p parkvisor --target aarch64-unknown-none-softfloat",
            hv_elf.display()
        ));
    }
    // scripts/run.sh builds every QEMU command line from the board file; the
    // harness only adds what a test run needs (its own RAM size among them).
    let board = board::Board::load(&root, &o.board)?;
    let smp = if o.smp_set {
        o.smp.clone()
    } else {
        board.default_smp(&o.smp)
    };
    board.check_smp(&smp)?;
    if o.plain {
        board.check_plain()?;
    }
    let mem = board.test_mem(o.mem.as_deref())?;
    let gicv2 = board.gicv2();
    let s = Setup {
        log_dir: run_log_dir(&target.join("harness-logs")),
        root,
        mode,
        guest,
        hv_args: o.hv_args.clone(),
        hv_elf,
        mem,
        extra_guest_args: o.guest_args.clone(),
        board: o.board.clone(),
        gicv2,
    };
    Ok((s, board, smp))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "linux") {
        return linux::main(&args[1..]);
    }
    let o = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harness: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (s, board, smp_list) = match setup(&o) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("harness: {e}");
            return ExitCode::from(2);
        }
    };
    let mut queue = VecDeque::new();
    for spec in &o.suites {
        for (&smp, nth) in smp_list
            .iter()
            .flat_map(|n| (0..o.repeat).map(move |k| (n, k)))
        {
            queue.push_back((
                *spec,
                Job {
                    suite: spec.name,
                    smp,
                    timeout_s: o.timeout.unwrap_or_else(|| spec.timeout(smp)),
                    no_reboot: spec.end == suites::End::Reset,
                    nth,
                },
            ));
        }
    }
    let total = queue.len();
    println!(
        "harness: {} run(s), {} at a time, {} (via scripts/run.sh)",
        total,
        o.jobs,
        match s.mode {
            Mode::Hv => "under parkvisor",
            Mode::Plain => "plain QEMU, no hypervisor",
        },
    );
    let queue = Mutex::new(queue);
    let results = Mutex::new((0usize, 0usize));
    let print = Mutex::new(());
    std::thread::scope(|sc| {
        for _ in 0..o.jobs.min(total.max(1)) {
            sc.spawn(|| {
                loop {
                    let Some((spec, job)) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let spec = &board.spec(spec);
                    let out = s.run(&job);
                    let single = o
                        .guest_args
                        .split_whitespace()
                        .any(|a| a.starts_with("only="));
                    // Tests the guest skips on this board (GICv3-only ones
                    // on a GICv2, the board's own).
                    let skips = if single {
                        0
                    } else if s.gicv2 {
                        suites::gicv2_skips(spec.name, job.smp) + board.skips(spec.name, job.smp)
                    } else {
                        board.skips(spec.name, job.smp)
                    };
                    let min =
                        judge::min_passed(spec, job.smp, s.mode, single).saturating_sub(skips);
                    let mut v = judge_min(spec, job.smp, s.mode, &out.exit, &out.serial, min);
                    if o.strict_trace {
                        v.reasons.append(&mut v.warnings);
                    }
                    let _g = print.lock().unwrap();
                    if v.ok() {
                        println!(
                            "harness: ok   {:<24} {:>3} passed  {:6.1} s",
                            job.label(),
                            v.passed.unwrap_or(0),
                            out.secs
                        );
                        for w in &v.warnings {
                            println!("    ! {w}");
                        }
                        results.lock().unwrap().0 += 1;
                    } else {
                        println!(
                            "harness: FAIL {:<24} {:6.1} s  (log: {})",
                            job.label(),
                            out.secs,
                            out.log.display()
                        );
                        for r in &v.reasons {
                            println!("    - {r}");
                        }
                        for w in &v.warnings {
                            println!("    ! {w}");
                        }
                        let lines: Vec<&str> = out.serial.lines().collect();
                        let from = lines.len().saturating_sub(o.tail);
                        println!("    --- last {} serial lines ---", lines.len() - from);
                        for l in &lines[from..] {
                            println!("    | {}", l.trim_end_matches('\r'));
                        }
                        let notes: Vec<&str> =
                            out.notes.lines().filter(|l| !l.trim().is_empty()).collect();
                        for l in notes.iter().rev().take(3).rev() {
                            println!("    # {l}");
                        }
                        results.lock().unwrap().1 += 1;
                    }
                }
            });
        }
    });
    let (passed, failed) = *results.lock().unwrap();
    println!("harness: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn args_defaults_and_lists() {
        let o = parse_args(&a(&[])).unwrap().unwrap();
        assert_eq!(o.smp, vec![1, 2, 4, 8]);
        assert_eq!(
            o.suites.len(),
            suites::SUITES.len() - suites::NOT_DEFAULT.len()
        );
        assert!(
            o.suites
                .iter()
                .all(|s| !suites::NOT_DEFAULT.contains(&s.name))
        );
        assert_eq!(o.jobs, 2);
        let o = parse_args(&a(&["--smp", "2,4", "psci", "--jobs", "1", "--plain"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.smp, vec![2, 4]);
        assert_eq!(o.suites.len(), 1);
        assert!(o.plain);
    }

    #[test]
    fn bad_args_rejected() {
        assert!(parse_args(&a(&["--smp", "0"])).is_err());
        assert!(parse_args(&a(&["--smp", "x"])).is_err());
        assert!(parse_args(&a(&["--mem", "4X"])).is_err());
        let o = parse_args(&a(&["--mem", "16G"])).unwrap().unwrap();
        assert_eq!(o.mem.as_deref(), Some("16G"));
        assert!(parse_args(&a(&["nosuch"])).is_err());
        assert!(parse_args(&a(&["--bogus"])).is_err());
        assert!(parse_args(&a(&["--jobs"])).is_err());
    }
}
