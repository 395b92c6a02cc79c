//! What each guest suite must show, beyond the generic rules in `judge`.
//!
//! Keep in step with `guest-tests/guests/src/suites/`: `min_passed` is a
//! lower bound (the guest's own `GUEST PLAN` line gives the exact count), so
//! a suite that silently stops running its tests fails here.

/// A trace event the hypervisor must have printed (checked only when the
/// guest ran under parkvisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Required {
    /// The trace event word (`state`, `fault`, `system`, ...).
    pub event: &'static str,
    /// A substring the rest of the line must contain ("" = any).
    pub contains: &'static str,
    /// Only with at least this many vCPUs.
    pub min_smp: u32,
}

/// How the run must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest powers off (SYSTEM_OFF).
    Off,
    /// The guest resets (SYSTEM_RESET) and QEMU runs with -no-reboot.
    Reset,
}

#[derive(Clone, Copy, Debug)]
pub struct SuiteSpec {
    pub name: &'static str,
    /// Tests that must pass with 1 vCPU / with 2 or more (under parkvisor).
    pub min_passed_1: usize,
    pub min_passed_n: usize,
    pub required: &'static [Required],
    pub end: End,
    /// Timeout in seconds at 1 vCPU; scaled up with more vCPUs.
    pub timeout_s: u64,
    /// Part of a default `--plain` run (plain QEMU can do what it needs).
    pub plain: bool,
}

impl SuiteSpec {
    pub fn min_passed(&self, smp: u32) -> usize {
        if smp >= 2 {
            self.min_passed_n
        } else {
            self.min_passed_1
        }
    }

    /// Timeout for a run with `smp` vCPUs (TCG on a small host slows down
    /// as vCPUs are added).
    pub fn timeout(&self, smp: u32) -> u64 {
        self.timeout_s + self.timeout_s * u64::from(smp.saturating_sub(1)) / 2
    }
}

const fn req(event: &'static str, contains: &'static str, min_smp: u32) -> Required {
    Required {
        event,
        contains,
        min_smp,
    }
}

pub static SUITES: &[SuiteSpec] = &[
    SuiteSpec {
        name: "psci",
        min_passed_1: 22,
        min_passed_n: 36,
        required: &[
            req("state", "OFF -> ON", 2),
            req("state", "ON -> OFF", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 60,
        plain: true,
    },
    SuiteSpec {
        name: "vendor",
        min_passed_1: 5,
        min_passed_n: 5,
        required: &[req("mark", "0x5e1f7e57", 1), req("system", "system off", 1)],
        end: End::Off,
        timeout_s: 30,
        plain: false,
    },
    SuiteSpec {
        name: "containment",
        min_passed_1: 9,
        min_passed_n: 11,
        required: &[req("fault", "", 1), req("system", "system off", 1)],
        end: End::Off,
        timeout_s: 40,
        plain: true,
    },
    SuiteSpec {
        name: "demo",
        min_passed_1: 1,
        min_passed_n: 1,
        required: &[
            req("state", "OFF -> ON", 2),
            req("state", "ON -> OFF", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 30,
        plain: true,
    },
    SuiteSpec {
        name: "fast_stop",
        min_passed_1: 5,
        min_passed_n: 11,
        required: &[
            req("fast-stop", "end result=0", 1),
            req("state", "(fast-stop)", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 60,
        plain: false,
    },
    SuiteSpec {
        name: "fuzz",
        min_passed_1: 3,
        min_passed_n: 3,
        required: &[
            req("fast-stop", "end result=0", 1),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 90,
        plain: false,
    },
    SuiteSpec {
        name: "hostile",
        min_passed_1: 6,
        min_passed_n: 9,
        required: &[req("system", "system off", 1)],
        end: End::Off,
        timeout_s: 60,
        plain: true,
    },
    // Needs --mem 4G or more (at less both tests skip, and the run fails).
    SuiteSpec {
        name: "ram",
        min_passed_1: 2,
        min_passed_n: 2,
        required: &[
            req("fast-stop", "end result=0", 1),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 60,
        plain: false,
    },
    SuiteSpec {
        name: "gic_off",
        min_passed_1: 1,
        min_passed_n: 3,
        required: &[
            req("fast-stop", "end result=0", 2),
            req("state", "(fast-stop)", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 60,
        plain: false,
    },
    SuiteSpec {
        name: "ipi",
        min_passed_1: 1,
        min_passed_n: 7,
        required: &[
            req("ipi-drop", "(parked)", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 60,
        plain: false,
    },
    SuiteSpec {
        name: "isolation",
        min_passed_1: 7,
        min_passed_n: 12,
        required: &[
            req("fault", "0x9020010", 1),
            req("fast-stop", "end result=0", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 90,
        plain: false,
    },
    SuiteSpec {
        name: "scale",
        min_passed_1: 1,
        min_passed_n: 2,
        required: &[
            req("fast-stop", "end result=0", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 60,
        plain: false,
    },
    SuiteSpec {
        name: "exception",
        min_passed_1: 4,
        min_passed_n: 5,
        required: &[
            req("fault", "abort injected", 1),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 30,
        plain: true,
    },
    SuiteSpec {
        name: "stress",
        min_passed_1: 1,
        min_passed_n: 3,
        required: &[
            req("fast-stop", "end result=0", 2),
            req("system", "system off", 1),
        ],
        end: End::Off,
        timeout_s: 300,
        plain: false,
    },
    SuiteSpec {
        name: "system_off2",
        min_passed_1: 1,
        min_passed_n: 1,
        required: &[req("system", "system off", 1)],
        end: End::Off,
        timeout_s: 30,
        plain: false,
    },
    SuiteSpec {
        name: "system_off",
        min_passed_1: 1,
        min_passed_n: 1,
        required: &[req("system", "system off", 1)],
        end: End::Off,
        timeout_s: 30,
        plain: true,
    },
    SuiteSpec {
        name: "system_reset",
        min_passed_1: 1,
        min_passed_n: 1,
        required: &[req("system", "system reset", 1)],
        end: End::Reset,
        timeout_s: 30,
        plain: true,
    },
    SuiteSpec {
        name: "system_reset2",
        min_passed_1: 1,
        min_passed_n: 1,
        required: &[req("system", "system reset", 1)],
        end: End::Reset,
        timeout_s: 30,
        plain: false,
    },
];

/// How many tests a suite skips on a GICv2 board, at 1 vCPU and at 2 or
/// more: the GICv3-only ones (ICC_SGI1R routing, redistributors, another
/// CPU's SGI priorities, which a GICv2 banks per CPU; the hostile suite's
/// SPI and SGI cases and the GIC fuzzer, which drive ICC_* and GICR_*). The
/// guest marks them with `skip_gicv2`; isolation trades its redistributor
/// test for a GICv2 one (GICH and GICV unreachable), so it skips none on
/// balance.
static GICV2_SKIPS: &[(&str, usize, usize)] = &[
    ("ipi", 0, 1),
    ("scale", 1, 1),
    ("hostile", 2, 4),
    ("fuzz", 1, 1),
];

pub fn gicv2_skips(suite: &str, smp: u32) -> usize {
    GICV2_SKIPS
        .iter()
        .find(|s| s.0 == suite)
        .map_or(0, |s| if smp >= 2 { s.2 } else { s.1 })
}

/// Suites a bare run (no suite names) leaves out: `stress` runs on its own
/// at 8 and 32 vCPUs (scripts/test.sh), where it means something; `ram`
/// wants 4 GiB or more.
pub static NOT_DEFAULT: &[&str] = &["stress", "ram"];

pub fn find(name: &str) -> Option<&'static SuiteSpec> {
    SUITES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_found() {
        for (i, s) in SUITES.iter().enumerate() {
            assert!(SUITES[..i].iter().all(|o| o.name != s.name));
            assert_eq!(find(s.name).unwrap().name, s.name);
            assert!(s.min_passed_1 >= 1 && s.min_passed_n >= s.min_passed_1);
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn timeout_grows_with_cpus() {
        let s = find("psci").unwrap();
        assert_eq!(s.timeout(1), 60);
        assert!(s.timeout(8) > s.timeout(2));
    }
}
