//! What the harness needs to know of a board beyond the QEMU command line
//! (scripts/run.sh builds that from the same `boards/qemu-NAME/board.env`):
//! the vCPU counts and RAM it accepts, its GIC, and the trace lines a suite
//! must show that name the board's own addresses.

use crate::runner::parse_board_env;
use crate::suites::{Required, SuiteSpec};
use std::collections::HashMap;
use std::path::Path;

pub struct Board {
    pub name: String,
    facts: HashMap<String, String>,
}

/// Trace lines a suite must show on a board instead of its defaults.
struct Override {
    board: &'static str,
    suite: &'static str,
    required: &'static [Required],
}

const fn req(event: &'static str, contains: &'static str, min_smp: u32) -> Required {
    Required {
        event,
        contains,
        min_smp,
    }
}

/// On a Raspberry Pi 4 the isolation suite's DMA attack is a store to the
/// BCM2835 DMA controller's channel 0 CONBLK_AD (0xfe007004), not QEMU
/// virt's fw_cfg (guest-tests/guests/src/suites/board.rs).
static OVERRIDES: &[Override] = &[Override {
    board: "raspi4b",
    suite: "isolation",
    required: &[
        req("fault", "addr=0xfe007004", 1),
        req("fast-stop", "end result=0", 2),
        req("system", "system off", 1),
    ],
}];

/// Tests a suite skips on a board beyond the GICv2 ones
/// (`suites::gicv2_skips`), at 1 vCPU and at 2 or more: a Raspberry Pi 4
/// passes no device through (the guest gets only the emulated PL011 and
/// GIC), so isolation's passthrough_devices_answer skips.
static SKIPS: &[(&str, &str, usize, usize)] = &[("raspi4b", "isolation", 1, 1)];

impl Board {
    /// Reads `boards/qemu-NAME/board.env` under `root`.
    pub fn load(root: &Path, name: &str) -> Result<Board, String> {
        let file = root.join(format!("boards/qemu-{name}/board.env"));
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "unknown board '{name}' ({}: {e}); see scripts/run.sh --help",
                file.display()
            )
        })?;
        Ok(Board::from_env(name, &text))
    }

    pub fn from_env(name: &str, text: &str) -> Board {
        Board {
            name: name.to_string(),
            facts: parse_board_env(text),
        }
    }

    fn number(&self, key: &str) -> Option<u32> {
        self.facts.get(key).and_then(|v| v.parse().ok())
    }

    /// The vCPU counts to run when none were asked for: the board's only
    /// one (`FIXED_SMP`, a real board's CPUs), else `default`.
    pub fn default_smp(&self, default: &[u32]) -> Vec<u32> {
        self.number("FIXED_SMP")
            .map_or_else(|| default.to_vec(), |n| vec![n])
    }

    /// Refuses vCPU counts the board cannot run: more than its GIC serves
    /// (`MAX_SMP`), or other than its CPUs (`FIXED_SMP`).
    pub fn check_smp(&self, smp: &[u32]) -> Result<(), String> {
        if let Some(fixed) = self.number("FIXED_SMP")
            && let Some(&n) = smp.iter().find(|&&n| n != fixed)
        {
            return Err(format!(
                "board {} has exactly {fixed} CPUs: --smp {fixed}, asked for {n}",
                self.name
            ));
        }
        if let Some(max) = self.number("MAX_SMP")
            && let Some(&n) = smp.iter().find(|&&n| n > max)
        {
            return Err(format!(
                "board {} runs at most {max} vCPUs, asked for {n}",
                self.name
            ));
        }
        Ok(())
    }

    /// The RAM for test runs: `asked`, else the board's `TEST_MEM`; a board
    /// with `FIXED_MEM` takes only that.
    pub fn test_mem(&self, asked: Option<&str>) -> Result<String, String> {
        let mem = asked
            .map(str::to_string)
            .or_else(|| self.facts.get("TEST_MEM").cloned())
            .ok_or_else(|| format!("board {} has no TEST_MEM", self.name))?;
        if let Some(fixed) = self.facts.get("FIXED_MEM")
            && bytes(&mem) != bytes(fixed)
        {
            return Err(format!(
                "board {} has exactly {fixed} of RAM: --mem {fixed}, asked for {mem}",
                self.name
            ));
        }
        Ok(mem)
    }

    /// Refuses `--plain` on a board without PSCI firmware (board.env
    /// `BARE_POWEROFF=halt`: the bare Raspberry Pi 4's CPUs start through
    /// spin tables and nothing powers off), where the guests, which start
    /// CPUs and end with PSCI, cannot run.
    pub fn check_plain(&self) -> Result<(), String> {
        if self.facts.get("BARE_POWEROFF").is_some_and(|v| v == "halt") {
            return Err(format!(
                "board {} has no PSCI firmware: the guests cannot run on the bare board \
                 (its Linux baseline is scripts/run.sh --board {} --no-hv)",
                self.name, self.name
            ));
        }
        Ok(())
    }

    /// The board's GIC is a GICv2 (`GIC_VERSION=2`).
    pub fn gicv2(&self) -> bool {
        self.facts.get("GIC_VERSION").is_some_and(|v| v == "2")
    }

    /// How many of `suite`'s tests skip on this board that run elsewhere
    /// (GICv2 skips not included).
    pub fn skips(&self, suite: &str, smp: u32) -> usize {
        SKIPS
            .iter()
            .find(|s| s.0 == self.name && s.1 == suite)
            .map_or(0, |s| if smp >= 2 { s.3 } else { s.2 })
    }

    /// `spec` with this board's trace expectations.
    pub fn spec(&self, spec: &SuiteSpec) -> SuiteSpec {
        let mut s = *spec;
        if let Some(o) = OVERRIDES
            .iter()
            .find(|o| o.board == self.name && o.suite == spec.name)
        {
            s.required = o.required;
        }
        s
    }
}

/// A QEMU size (`2G`, `512M`, plain MiB) in bytes; `None` if malformed.
fn bytes(size: &str) -> Option<u64> {
    let (digits, shift) = match size.as_bytes().last()? {
        b'G' | b'g' => (&size[..size.len() - 1], 30),
        b'M' | b'm' => (&size[..size.len() - 1], 20),
        _ => (size, 20),
    };
    digits.parse::<u64>().ok().map(|n| n << shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites;

    /// boards/qemu-<name>/board.env of this repository.
    fn board(name: &str) -> Board {
        Board::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."), name).unwrap()
    }

    #[test]
    fn raspi4b_is_four_cpus_and_two_gib() {
        let b = board("raspi4b");
        assert_eq!(b.default_smp(&[1, 2, 4, 8]), vec![4]);
        assert!(b.check_smp(&[4]).is_ok());
        let e = b.check_smp(&[1, 4]).unwrap_err();
        assert!(e.contains("exactly 4 CPUs"), "{e}");
        assert!(b.check_smp(&[8]).is_err());
        assert_eq!(b.test_mem(None).unwrap(), "2G");
        assert_eq!(b.test_mem(Some("2048M")).unwrap(), "2048M");
        let e = b.test_mem(Some("4G")).unwrap_err();
        assert!(e.contains("exactly 2G of RAM"), "{e}");
        assert!(b.gicv2());
        assert!(b.check_plain().unwrap_err().contains("no PSCI firmware"));
    }

    #[test]
    fn virt_boards_unchanged() {
        let v = board("virt");
        assert_eq!(v.default_smp(&[1, 2, 4, 8]), vec![1, 2, 4, 8]);
        assert!(v.check_smp(&[1, 2, 4, 8, 32]).is_ok());
        assert_eq!(v.test_mem(None).unwrap(), "512M");
        assert_eq!(v.test_mem(Some("16G")).unwrap(), "16G");
        assert!(!v.gicv2());
        assert!(v.check_plain().is_ok());
        let g = board("virt-gicv2");
        assert!(g.check_smp(&[8]).is_ok());
        assert!(g.check_smp(&[9]).unwrap_err().contains("at most 8 vCPUs"));
        assert!(g.gicv2());
        assert!(Board::load(Path::new("/nonexistent"), "virt").is_err());
    }

    #[test]
    fn isolation_trace_follows_the_board() {
        let iso = suites::find("isolation").unwrap();
        let has = |s: &SuiteSpec, what: &str| s.required.iter().any(|r| r.contains == what);
        let on_virt = board("virt").spec(iso);
        assert!(has(&on_virt, "0x9020010"));
        let on_pi = board("raspi4b").spec(iso);
        assert!(has(&on_pi, "addr=0xfe007004") && !has(&on_pi, "0x9020010"));
        assert_eq!(board("raspi4b").skips("isolation", 4), 1);
        assert_eq!(board("virt-gicv2").skips("isolation", 4), 0);
        assert_eq!(board("raspi4b").skips("psci", 4), 0);
        // Only the overridden suite changes.
        let psci = suites::find("psci").unwrap();
        assert_eq!(board("raspi4b").spec(psci).required, psci.required);
    }

    /// The run.sh command of a raspi4b run: the board's name (run.sh adds
    /// machine, -dtb and guest-loader addresses from the same board.env),
    /// its 4 CPUs and 2 GiB.
    #[test]
    fn raspi4b_command() {
        use crate::judge::Mode;
        use crate::runner::{Job, Setup};
        let b = board("raspi4b");
        let s = Setup {
            root: "/repo".into(),
            mode: Mode::Hv,
            guest: "/repo/guest.bin".into(),
            hv_elf: "/repo/pv".into(),
            hv_args: String::new(),
            mem: b.test_mem(None).unwrap(),
            log_dir: "/tmp/logs".into(),
            extra_guest_args: String::new(),
            board: b.name.clone(),
            gicv2: b.gicv2(),
        };
        let job = Job {
            suite: "isolation",
            smp: b.default_smp(&[1, 2, 4, 8])[0],
            timeout_s: 90,
            no_reboot: false,
            nth: 0,
        };
        let args: Vec<String> = s
            .command(&job)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.join(" ").contains(
                "--board raspi4b --kernel /repo/guest.bin --append test=isolation --smp 4 --mem 2G"
            ),
            "{args:?}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("2G"), Some(2 << 30));
        assert_eq!(bytes("2048M"), Some(2 << 30));
        assert_eq!(bytes("2048"), Some(2 << 30));
        assert_eq!(bytes("x"), None);
    }
}
