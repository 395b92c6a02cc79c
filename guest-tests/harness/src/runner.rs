//! Starting one guest run through `scripts/run.sh`, the one place that turns
//! `boards/qemu-virt/board.env` into a QEMU command line.

use crate::judge::{Exit, Mode};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Everything that is the same for all runs.
#[derive(Clone, Debug)]
pub struct Setup {
    pub root: PathBuf,
    pub mode: Mode,
    /// Raw guest image (HV mode) or guest ELF (plain mode).
    pub guest: PathBuf,
    /// Hypervisor ELF (HV mode).
    pub hv_elf: PathBuf,
    pub hv_args: String,
    /// Guest RAM for test runs (the board's TEST_MEM).
    pub mem: String,
    pub log_dir: PathBuf,
    pub extra_guest_args: String,
    /// The board name (`scripts/run.sh --board`).
    pub board: String,
    /// The board's GIC is a GICv2 (board.env `GIC_VERSION=2`).
    pub gicv2: bool,
}

/// One run to make.
#[derive(Clone, Debug)]
pub struct Job {
    pub suite: &'static str,
    pub smp: u32,
    pub timeout_s: u64,
    pub no_reboot: bool,
    /// Which repetition (0 = first) with `--repeat`.
    pub nth: u32,
}

impl Job {
    pub fn label(&self) -> String {
        if self.nth == 0 {
            format!("{} smp={}", self.suite, self.smp)
        } else {
            format!("{} smp={} #{}", self.suite, self.smp, self.nth + 1)
        }
    }
}

/// What came back.
pub struct Outcome {
    pub exit: Exit,
    /// Serial output (stdout of the runner).
    pub serial: String,
    /// The runner's own messages (stderr).
    pub notes: String,
    pub log: PathBuf,
    pub secs: f64,
}

/// Reads `KEY=VALUE` lines (comments and blank lines skipped).
pub fn parse_board_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

impl Setup {
    fn guest_args(&self, job: &Job) -> String {
        let mut a = format!("test={}", job.suite);
        if self.mode == Mode::Plain {
            a += " plain=1";
        }
        if !self.extra_guest_args.is_empty() {
            a += " ";
            a += &self.extra_guest_args;
        }
        a
    }

    /// The command for a run (without output redirection).
    pub fn command(&self, job: &Job) -> Command {
        let mut c = Command::new(self.root.join("scripts/run.sh"));
        c.arg("--no-build")
            .args(["--board", &self.board])
            .args(["--kernel".as_ref(), self.guest.as_os_str()])
            .args(["--append", &self.guest_args(job)])
            .args(["--smp", &job.smp.to_string()])
            .args(["--mem", &self.mem])
            .args(["--timeout", &job.timeout_s.to_string()])
            .arg("--no-shell")
            .args(["--log".as_ref(), self.log_path(job).as_os_str()]);
        if self.mode == Mode::Plain {
            c.arg("--no-hv");
        } else {
            c.args(["--hv".as_ref(), self.hv_elf.as_os_str()]);
            if !self.hv_args.is_empty() {
                c.args(["--hv-args", &self.hv_args]);
            }
        }
        if job.no_reboot {
            c.arg("--no-reboot");
        }
        c
    }

    pub fn log_path(&self, job: &Job) -> PathBuf {
        let mode = match self.mode {
            Mode::Hv => "",
            Mode::Plain => "-plain",
        };
        let nth = if job.nth == 0 {
            String::new()
        } else {
            format!("-{}", job.nth + 1)
        };
        self.log_dir
            .join(format!("{}-smp{}{}{}.log", job.suite, job.smp, mode, nth))
    }

    /// Runs one job to completion (or its timeout).
    pub fn run(&self, job: &Job) -> Outcome {
        let t0 = Instant::now();
        let log = self.log_path(job);
        let serial_path = log.with_extension("serial");
        let notes_path = log.with_extension("notes");
        let res = (|| -> io::Result<Exit> {
            fs::create_dir_all(&self.log_dir)?;
            let mut cmd = self.command(job);
            cmd.stdin(Stdio::null())
                .stdout(File::create(&serial_path)?)
                .stderr(File::create(&notes_path)?)
                .current_dir(&self.root)
                .process_group(0);
            let mut child = cmd.spawn()?;
            // run.sh enforces the timeout itself; this is the backstop.
            let deadline = t0 + Duration::from_secs(job.timeout_s + 30);
            loop {
                if let Some(st) = child.try_wait()? {
                    return Ok(match st.code() {
                        Some(124) => Exit::Timeout(job.timeout_s),
                        Some(c) => Exit::Code(c),
                        None if st.signal().is_some() => Exit::Signal,
                        None => Exit::Signal,
                    });
                }
                if Instant::now() >= deadline {
                    kill_group(child.id());
                    let _ = child.wait();
                    return Ok(Exit::Timeout(job.timeout_s));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })();
        let exit = res.unwrap_or_else(|e| Exit::SpawnError(e.to_string()));
        let serial = read_lossy(&serial_path);
        let notes = read_lossy(&notes_path);
        let _ = fs::remove_file(&serial_path);
        let _ = fs::remove_file(&notes_path);
        Outcome {
            exit,
            serial,
            notes,
            log,
            secs: t0.elapsed().as_secs_f64(),
        }
    }
}

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Kills the process group the runner leads (run.sh, its timeout and QEMU).
pub(crate) fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// Finds an objcopy that can write a raw binary from an AArch64 ELF.
pub fn find_objcopy() -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = ["aarch64-linux-gnu-objcopy", "rust-objcopy", "llvm-objcopy"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() {
        let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if let Ok(rd) = fs::read_dir(Path::new(&sysroot).join("lib/rustlib")) {
            for e in rd.flatten() {
                cands.push(e.path().join("bin/rust-objcopy"));
            }
        }
    }
    cands.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Writes `bin` from `elf` (objcopy -O binary) unless it is up to date.
pub fn elf_to_bin(elf: &Path, bin: &Path) -> Result<(), String> {
    let newer = |a: &Path, b: &Path| -> bool {
        match (
            fs::metadata(a).and_then(|m| m.modified()),
            fs::metadata(b).and_then(|m| m.modified()),
        ) {
            (Ok(ta), Ok(tb)) => ta >= tb,
            _ => false,
        }
    };
    if newer(bin, elf) {
        return Ok(());
    }
    let objcopy =
        find_objcopy().ok_or("no objcopy found (apt-get install binutils-aarch64-linux-gnu)")?;
    let st = Command::new(&objcopy)
        .args(["-O", "binary"])
        .arg(elf)
        .arg(bin)
        .status()
        .map_err(|e| format!("{}: {e}", objcopy.display()))?;
    if !st.success() {
        return Err(format!(
            "{} -O binary {} failed",
            objcopy.display(),
            elf.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(mode: Mode) -> Setup {
        Setup {
            root: PathBuf::from("/repo"),
            mode,
            guest: PathBuf::from("/repo/g,uest.bin"),
            hv_elf: PathBuf::from("/repo/pv"),
            hv_args: "trace=calls".into(),
            mem: "512M".into(),
            log_dir: PathBuf::from("/tmp/logs"),
            extra_guest_args: String::new(),
            board: "virt".into(),
            gicv2: false,
        }
    }

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn board_env_parses() {
        let b = parse_board_env("A=1\n # x\nB = \"two\"\n\nbad line\n");
        assert_eq!(b["A"], "1");
        assert_eq!(b["B"], "two");
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn run_sh_command() {
        let s = setup(Mode::Hv);
        let j = Job {
            suite: "system_reset",
            smp: 2,
            timeout_s: 30,
            no_reboot: true,
            nth: 0,
        };
        let c = s.command(&j);
        assert_eq!(c.get_program(), "/repo/scripts/run.sh");
        let a = args(&c);
        let joined = a.join(" ");
        assert!(joined.contains("--no-build --board virt --kernel /repo/g,uest.bin --append test=system_reset --smp 2 --mem 512M --timeout 30"));
        assert!(a.contains(&"--no-reboot".to_string()));
        assert!(joined.contains("--hv /repo/pv --hv-args trace=calls"));
        let p = setup(Mode::Plain);
        let a = args(&p.command(&j));
        assert!(a.contains(&"--no-hv".to_string()));
        assert!(a.contains(&"test=system_reset plain=1".to_string()));
    }
}
