//! Generates `guest-tests/linux/module/parkvisor_abi.h` from this crate's
//! constants and fails when the checked-in header differs. With
//! `PARKVISOR_ABI_WRITE_HEADER=1` it rewrites the header instead.

use crate::{psci, ret, save_regs, vendor};
use std::fmt::Write;

const HEADER: &str = "guest-tests/linux/module/parkvisor_abi.h";
const COMMAND: &str = "PARKVISOR_ABI_WRITE_HEADER=1 cargo test -p parkvisor-abi";

/// One `#define`: name, value as C text, comment.
struct Define(&'static str, String, &'static str);

fn u32_id(v: u32) -> String {
    format!("0x{v:08X}U")
}

fn u64_bits(v: u64) -> String {
    format!("0x{v:X}ULL")
}

fn dec(v: impl Into<i64>) -> String {
    let v = v.into();
    if v < 0 {
        format!("({v})")
    } else {
        format!("{v}")
    }
}

fn sections() -> Vec<(&'static str, Vec<Define>)> {
    vec![
        (
            "Vendor hypervisor service function IDs (SMCCC owner 6)",
            vec![
                Define(
                    "PV_CALL_UID",
                    u32_id(vendor::CALL_UID),
                    "service UUID in x0..x3",
                ),
                Define(
                    "PV_FEATURES",
                    u32_id(vendor::FEATURES),
                    "bitmap of implemented functions",
                ),
                Define(
                    "PV_FAST_STOP",
                    u32_id(vendor::FAST_STOP),
                    "stop every other vCPU",
                ),
                Define(
                    "PV_VCPU_STATE",
                    u32_id(vendor::VCPU_STATE),
                    "power state of one vCPU",
                ),
                Define(
                    "PV_TRACE_MARK",
                    u32_id(vendor::TRACE_MARK),
                    "print a mark trace line",
                ),
                Define(
                    "PV_FAST_STOP_FLAGS",
                    u32_id(vendor::FAST_STOP_FLAGS),
                    "accepted FAST_STOP flags",
                ),
            ],
        ),
        (
            "CALL_UID's x0..x3: UUID f98411cd-4dea-4c9d-973e-208eee288f9b",
            (0..4)
                .map(|i| {
                    let name = ["PV_UID0", "PV_UID1", "PV_UID2", "PV_UID3"][i];
                    Define(name, u32_id(vendor::UID[i]), "")
                })
                .collect(),
        ),
        (
            "FEATURES bits: bit n = function number n is implemented",
            vec![
                Define("PV_FEAT_FEATURES", u64_bits(vendor::feature::FEATURES), ""),
                Define(
                    "PV_FEAT_FAST_STOP",
                    u64_bits(vendor::feature::FAST_STOP),
                    "",
                ),
                Define(
                    "PV_FEAT_VCPU_STATE",
                    u64_bits(vendor::feature::VCPU_STATE),
                    "",
                ),
                Define(
                    "PV_FEAT_TRACE_MARK",
                    u64_bits(vendor::feature::TRACE_MARK),
                    "",
                ),
                Define(
                    "PV_FEAT_FAST_STOP_FLAGS",
                    u64_bits(vendor::feature::FAST_STOP_FLAGS),
                    "",
                ),
            ],
        ),
        (
            "FAST_STOP: flags (x2) and the deadline when x1 = 0",
            vec![
                Define(
                    "PV_STOP_SAVE_REGS",
                    u64_bits(vendor::fast_stop::SAVE_REGS),
                    "save area at x3, size x4",
                ),
                Define(
                    "PV_STOP_SAVE_SP_EL0",
                    u64_bits(vendor::fast_stop::SAVE_SP_EL0),
                    "with SAVE_REGS: SP_EL0 too",
                ),
                Define(
                    "PV_STOP_DEFAULT_TIMEOUT_US",
                    dec(vendor::fast_stop::DEFAULT_TIMEOUT_US as i64),
                    "",
                ),
            ],
        ),
        (
            "VCPU_STATE answers",
            vec![
                Define("PV_VCPU_ON", dec(vendor::vcpu_state::ON), ""),
                Define("PV_VCPU_OFF", dec(vendor::vcpu_state::OFF), ""),
                Define(
                    "PV_VCPU_ON_PENDING",
                    dec(vendor::vcpu_state::ON_PENDING),
                    "",
                ),
            ],
        ),
        (
            "Return codes (x0, int32)",
            vec![
                Define("PV_RET_SUCCESS", dec(ret::SUCCESS), ""),
                Define("PV_RET_NOT_SUPPORTED", dec(ret::NOT_SUPPORTED), ""),
                Define(
                    "PV_RET_INVALID_PARAMETERS",
                    dec(ret::INVALID_PARAMETERS),
                    "",
                ),
                Define(
                    "PV_RET_DENIED",
                    dec(ret::DENIED),
                    "FAST_STOP: another in progress",
                ),
                Define(
                    "PV_RET_INTERNAL_FAILURE",
                    dec(ret::INTERNAL_FAILURE),
                    "FAST_STOP: deadline passed",
                ),
            ],
        ),
        (
            "One SAVE_REGS entry: byte offsets, sizes, status values",
            vec![
                Define(
                    "PV_SAVE_MPIDR_OFFSET",
                    dec(save_regs::MPIDR_OFFSET as i64),
                    "",
                ),
                Define(
                    "PV_SAVE_STATUS_OFFSET",
                    dec(save_regs::STATUS_OFFSET as i64),
                    "",
                ),
                Define(
                    "PV_SAVE_REGS_OFFSET",
                    dec(save_regs::REGS_OFFSET as i64),
                    "struct user_pt_regs",
                ),
                Define(
                    "PV_SAVE_SP_EL0_OFFSET",
                    dec(save_regs::SP_EL0_OFFSET as i64),
                    "with SAVE_SP_EL0",
                ),
                Define(
                    "PV_SAVE_ENTRY_BYTES",
                    dec(save_regs::ENTRY_BYTES as i64),
                    "",
                ),
                Define(
                    "PV_SAVE_ENTRY_BYTES_SP_EL0",
                    dec(save_regs::ENTRY_BYTES_SP_EL0 as i64),
                    "",
                ),
                Define(
                    "PV_SAVE_STATUS_EMPTY",
                    dec(save_regs::STATUS_EMPTY as i64),
                    "",
                ),
                Define(
                    "PV_SAVE_STATUS_SAVED",
                    dec(save_regs::STATUS_SAVED as i64),
                    "",
                ),
            ],
        ),
        (
            "PSCI 1.3 SYSTEM_OFF2, as parkvisor implements it",
            vec![
                Define("PV_PSCI_SYSTEM_OFF2_32", u32_id(psci::SYSTEM_OFF2_32), ""),
                Define("PV_PSCI_SYSTEM_OFF2_64", u32_id(psci::SYSTEM_OFF2_64), ""),
                Define(
                    "PV_PSCI_OFF_TYPE_HIBERNATE_OFF",
                    dec(psci::OFF_TYPE_HIBERNATE_OFF),
                    "",
                ),
            ],
        ),
    ]
}

/// The header's text.
fn render() -> String {
    let mut s = String::new();
    s += "/* SPDX-License-Identifier: GPL-2.0 OR MIT */\n";
    s += "/*\n";
    s += " * parkvisor's guest-visible ABI (docs/abi.md).\n";
    s += " *\n";
    s += " * GENERATED from hypervisor/abi/src/lib.rs (crate parkvisor-abi): do not\n";
    s += " * edit. Regenerate with\n";
    let _ = writeln!(s, " *   {COMMAND}");
    s += " * The same test, run by scripts/test.sh's host-unit-tests step, fails when\n";
    s += " * this file is stale.\n";
    s += " */\n";
    s += "#ifndef PARKVISOR_ABI_H\n#define PARKVISOR_ABI_H\n";
    for (title, defines) in sections() {
        let _ = write!(s, "\n/* {title} */\n");
        for Define(name, value, comment) in defines {
            let tabs = 40usize.saturating_sub(8 + name.len()).div_ceil(8);
            let _ = write!(s, "#define {name}{}{value}", "\t".repeat(tabs.max(1)));
            if !comment.is_empty() {
                let _ = write!(s, "\t/* {comment} */");
            }
            s += "\n";
        }
    }
    s += "\n#endif /* PARKVISOR_ABI_H */\n";
    s
}

#[test]
fn c_header_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(HEADER);
    let want = render();
    if std::env::var_os("PARKVISOR_ABI_WRITE_HEADER").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{HEADER} is stale: regenerate it with `{COMMAND}`"
    );
}

#[test]
fn header_defines_every_number_once() {
    let text = render();
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "a name is defined twice");
    let value = |name: &str| {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() >= 3 && w[0] == "#define" && w[1] == name)
            .map(|w| w[2].to_string())
    };
    assert_eq!(value("PV_FAST_STOP").as_deref(), Some("0xC6000001U"));
    assert_eq!(value("PV_SAVE_ENTRY_BYTES_SP_EL0").as_deref(), Some("296"));
    assert_eq!(value("PV_RET_INTERNAL_FAILURE").as_deref(), Some("(-6)"));
}
