//! The table of Linux steps: each step of scripts/test.sh that boots Linux,
//! with its run.sh options and the expectations its log must meet.

use super::{Driver, Step, cpus};

/// A plain scenario step: `linux-<scenario>-<smp>cpu`.
fn linux(scenario: &'static str, smp: u32) -> Step {
    Step::new(
        format!("linux-{scenario}-{smp}cpu"),
        scenario,
        smp,
        format!("linux-{scenario}-{smp}.serial"),
    )
    .all_cpus_up()
}

/// A step with parkvisor's guest module loaded (`pv.module=1`).
fn module(name: &str, smp: u32, scenario: &'static str, extra: &str) -> Step {
    Step::new(
        format!("linux-module-{name}-{smp}cpu"),
        scenario,
        smp,
        format!("linux-module-{name}-{smp}.serial"),
    )
    .timeout(600)
    .append(
        format!("console=ttyAMA0 printk.time=1 pv.module=1 {extra}")
            .trim_end()
            .to_string(),
    )
    .all_cpus_up()
}

/// A step on the GICv2 board.
fn gicv2(name: String, scenario: &'static str, smp: u32) -> Step {
    let mut s = Step::new(
        format!("gicv2-linux-{name}-{smp}cpu"),
        scenario,
        smp,
        format!("gicv2-linux-{name}-{smp}.serial"),
    )
    .timeout(600)
    .all_cpus_up();
    s.board = Some("virt-gicv2");
    s
}

const STOCK_KILLED: &str = "psci: CPU# killed";
/// A stock teardown's verdict on one CPU: "killed", or (when the CPU took
/// longer than the kernel's polling to reach its CPU_OFF, as on a loaded
/// host) "may not have shut down cleanly".
const STOCK_TEARDOWN: &str = "psci: CPU# [a-z]* ";

/// Stock kexec took no CPU down one at a time.
fn no_stock_teardown(s: Step) -> Step {
    s.no_line(STOCK_KILLED)
}

/// The module's kexec with every CPU busy: the stop IPI and FAST_STOP took
/// the secondaries, all back in the second kernel.
fn module_kexec_busy(s: Step) -> Step {
    let n = s.smp;
    no_stock_teardown(
        s.in_order(&[
            &format!("parkvisor_stop: kexec: stopped {} CPUs", n - 1),
            &format!("PVTEST kexec second kernel online={}", cpus(n)),
        ])
        .show(&[
            "parkvisor_stop: kexec",
            "Starting new kernel",
            "Bye!",
            "fast-stop",
            "second kernel online",
        ]),
    )
}

/// The module's crash dump with CPU `smp - 1` spinning with interrupts
/// masked: FAST_STOP parks it (its trace line says so), its registers are
/// saved, and the capture kernel finds every CPU's note.
fn module_crashspin(s: Step, registers: bool) -> Step {
    let n = s.smp;
    let took = format!(
        "parkvisor_stop: crash: {} CPUs took the crash IPI; FAST_STOP parked 1 more",
        n - 2
    );
    let took = if registers {
        format!("{took} *registers of 1 saved")
    } else {
        took
    };
    s.line(took)
        .line(format!(
            "PVTEST crashspin notes={n} cpus={n} spinner_pc_in=*:1"
        ))
        .trace(format!("cpu{} state ON -> OFF (fast-stop)", n - 1))
        .show(&[
            "parkvisor_stop: crash",
            "crashspin",
            "failed to stop",
            "may be stale",
            "Starting crashdump",
        ])
}

/// Stock kexec with every CPU busy or after a module fallback: the CPU
/// hotplug teardown, one `psci: CPUn killed` (and one CPU_OFF trace line)
/// per secondary, all back in the second kernel.
fn stock_kexec(s: Step) -> Step {
    let n = s.smp;
    let s = s
        .count(STOCK_KILLED, (n - 1) as usize)
        .line(format!("PVTEST kexec second kernel online={}", cpus(n)))
        .show(&[STOCK_KILLED, "second kernel online", "parkvisor_stop"]);
    if s.hv {
        s.trace_count("cpu# state ON -> OFF (psci CPU_OFF)", (n - 1) as usize)
    } else {
        s
    }
}

fn echo(name: String, smp: u32, log: String) -> Step {
    let mut s = Step::new(name, "echo", smp, log)
        .timeout(120)
        .all_cpus_up()
        .line("PVTEST echo got=parkvisor pl011 rx: hello/")
        .show(&["PVTEST echo"]);
    s.driver = Driver::ConsoleEcho;
    s
}

fn console_load(name: &str, smp: u32, hv: bool) -> Step {
    let mut s = Step::new(
        format!("linux-console-load-{name}cpu"),
        "echo",
        smp,
        format!(
            "linux-console-load-{}.serial",
            name.replace("plain-qemu-", "plain-")
        ),
    )
    .timeout(600)
    .line(format!("PVTEST echoload prompt lines=300 irq=# cpus={smp}"))
    .line("PVTEST echoload done lines=300 md5=")
    .show(&["PVTEST echoload (prompt|done)"]);
    s.driver = Driver::ConsoleLoad;
    s.hv = hv;
    s
}

fn debian13(name: &str, scenario: &'static str) -> Step {
    let mut s = Step::new(
        format!("debian13-linux-{name}-4cpu"),
        scenario,
        4,
        format!("linux-d13-{name}-4.serial"),
    );
    s.debian = Some(13);
    s
}

/// Every Linux step of scripts/test.sh, in its order.
pub fn steps() -> Vec<Step> {
    let mut v = Vec::new();
    // Base: boot, hotplug, kexec, kdump, power-off, reboot, console input.
    for n in [1, 2, 4, 8] {
        v.push(linux("boot", n).line(format!("PVTEST boot online={}", cpus(n))));
    }
    v.push(
        linux("hotplug", 4)
            .count("PVTEST hotplug round=# off=cpu#", 6)
            .count("PVTEST hotplug round=# on=cpu#", 6)
            .line("PVTEST hotplug rounds=2 online=0-3"),
    );
    v.push(linux("kexec", 4).in_order(&[
        "PVTEST kexec loaded online=0-3",
        "PVTEST kexec stage=2 online=0-3 present=0-3",
        "PVTEST kexec second kernel online=0-3",
    ]));
    v.push(linux("kdump", 4).in_order(&[
        "PVTEST kdump loaded crash_size=# online=0-3",
        "PVTEST kdump capture kernel vmcore=elf",
    ]));
    v.push(linux("poweroff", 4).line("PVTEST poweroff busy=3"));
    v.push(linux("reboot", 4));
    v.push(echo(
        "linux-echo-4cpu".into(),
        4,
        "linux-echo-4.serial".into(),
    ));
    // The Linux soak (conformance block): random hotplug and IPI ping-pong.
    let mut soak = Step::new(
        "linux-soak-8cpu".into(),
        "soak",
        8,
        "linux-soak-8.serial".into(),
    )
    .timeout(600)
    .append("console=ttyAMA0 printk.time=1 pv.soak_s=60")
    .line("PVTEST soak seconds=60 * lost=0 ")
    .show(&["PVTEST soak seconds="]);
    soak = soak.all_cpus_up();
    v.push(soak);

    // The guest module.
    for n in [4, 8] {
        v.push(module_kexec_busy(module(
            "kexec-busy",
            n,
            "kexec",
            "pv.busy=1",
        )));
        v.push(no_stock_teardown(
            module("multikexec", n, "multikexec", "")
                .count(format!("parkvisor_stop: kexec: stopped {} CPUs", n - 1), 3)
                .line(format!("PVTEST multikexec done online={}", cpus(n)))
                .show(&[
                    "parkvisor_stop: kexec",
                    "multikexec stage",
                    "multikexec done",
                ]),
        ));
        v.push(module_crashspin(
            module("crashspin", n, "crashspin", &format!("pv.spin={}", n - 1)),
            true,
        ));
    }
    let mut plain = module("plain-qemu", 4, "kexec", "");
    plain.hv = false;
    v.push(
        stock_kexec(plain)
            .line("PVTEST module not running under parkvisor")
            .no_line("parkvisor_stop: kexec: stopped"),
    );

    // The module's fallback; the masked spinner under -icount.
    v.push(
        stock_kexec(module(
            "fallback",
            4,
            "kexec",
            "pv.modargs=fail_once=1,ipi_wait_us=0",
        ))
        .line("parkvisor_stop: kexec: FAST_STOP failed (status -6, *parked 0): stock CPU teardown")
        .no_line("parkvisor_stop: kexec: stopped")
        .show(&["Bye!"]),
    );
    let mut icount = module_crashspin(
        module("crashspin-icount", 2, "crashspin", "pv.spin=1"),
        false,
    );
    icount.icount = true;
    icount.timeout_s = 400;
    v.push(icount);

    // The GICv2 board.
    v.push(gicv2("boot".into(), "boot", 8).line("PVTEST boot online=0-7"));
    v.push(gicv2("hotplug".into(), "hotplug", 4).line("PVTEST hotplug rounds=2 online=0-3"));
    v.push(gicv2("kdump".into(), "kdump", 4).line("PVTEST kdump capture kernel vmcore=elf"));
    v.push(stock_kexec(
        gicv2("kexec-busy".into(), "kexec", 4).append("console=ttyAMA0 printk.time=1 pv.busy=1"),
    ));
    v.push(module_kexec_busy(
        gicv2("module-kexec-busy".into(), "kexec", 4)
            .append("console=ttyAMA0 printk.time=1 pv.module=1 pv.busy=1"),
    ));
    v.push(module_crashspin(
        gicv2("module-crashspin".into(), "crashspin", 4)
            .append("console=ttyAMA0 printk.time=1 pv.module=1 pv.spin=3"),
        true,
    ));
    let mut e = echo(
        "gicv2-linux-echo-4cpu".into(),
        4,
        "gicv2-linux-echo-4.serial".into(),
    );
    e.board = Some("virt-gicv2");
    v.push(e);
    // raspi4b's PL011 (its Bluetooth serdev child disabled by the board's
    // dt-disable), through parkvisor's console and the GICv2 vGIC.
    let mut e = echo("rpi4-linux-echo".into(), 4, "rpi4-linux-echo.serial".into());
    e.board = Some("raspi4b");
    v.push(e);

    // Debian 13's 6.12 to init and power-off (Debian 12's busybox in the
    // mini initramfs); panic=-1 and --no-reboot make a dying init quick.
    let mut d13 = Step::new(
        "debian13-boot-2cpu".into(),
        "boot",
        2,
        "debian13-boot-2.serial".into(),
    )
    .timeout(180)
    .append("console=ttyAMA0 printk.time=1 panic=-1")
    .line("PVTEST boot stage=1 online=0-1 present=0-1 kernel=6.12.")
    .line("PVTEST boot online=0-1")
    .show(&["PVTEST", "Linux version"]);
    d13.no_reboot = true;
    d13.args = [
        "--kernel",
        "{linux13}/Image",
        "--initrd",
        "{linux12}/initramfs-mini.cpio",
    ]
    .map(String::from)
    .to_vec();
    v.push(d13);

    // Console input under load.
    v.push(console_load("4", 4, true));
    v.push(console_load("8", 8, true));
    v.push(console_load("plain-qemu-4", 4, false));

    // The module's stop and crash paths.
    for n in [4, 8] {
        // The flood can overrun the log buffer before the module's own
        // lines are printed: only shown.
        v.push(
            module(
                "kmsgstorm",
                n,
                "multikexec",
                "printk.devkmsg=on pv.flood=kmsg",
            )
            .line(format!("PVTEST multikexec stage=4 online={}", cpus(n)))
            .line(format!("PVTEST multikexec done online={}", cpus(n)))
            .show(&[
                "parkvisor_stop: kexec",
                "multikexec stage",
                "multikexec done",
                STOCK_KILLED,
                "messages dropped",
            ]),
        );
        v.push(
            module_crashspin(
                module(
                    "crashlock",
                    n,
                    "crashspin",
                    &format!("pv.spin={} pv.hold={}", n - 1, n - 2),
                ),
                false,
            )
            .line("PVTEST crashspin pids=* ok"),
        );
        v.push(no_stock_teardown(
            module(
                "partial",
                n,
                "kexec",
                "pv.busy=1 pv.modargs=ipi_wait_us=0,first_deadline_us=1",
            )
            .line(format!(
                "parkvisor_stop: kexec: stopped {m} CPUs * 0 by the stop IPI, {m} by FAST_STOP ([2-9] attempts; first: status -6",
                m = n - 1
            ))
            .line(format!("PVTEST kexec second kernel online={}", cpus(n)))
            .trace("cpu# fast-stop end result=*")
            .show(&["parkvisor_stop: kexec", "fast-stop end", "second kernel online"]),
        ));
    }

    // Debian 13's 6.12: stock kexec, the module's kexec and crash dump.
    v.push(
        debian13("kexec", "kexec")
            .all_cpus_up()
            .line("PVTEST kexec stage=2 online=0-3 present=0-3 kernel=6.12")
            .line("PVTEST kexec second kernel online=0-3")
            .show(&["PVTEST kexec stage", "PVTEST kexec second"]),
    );
    let mut busy = module_kexec_busy(module("d13-kexec-busy", 4, "kexec", "pv.busy=1"))
        .line("PVTEST kexec stage=1 online=0-3 present=0-3 kernel=6.12");
    busy.name = "debian13-linux-module-kexec-busy-4cpu".into();
    busy.debian = Some(13);
    v.push(busy);
    let mut crash = module_crashspin(module("d13-crashspin", 4, "crashspin", "pv.spin=3"), true)
        .line("PVTEST crashspin stage=1 online=0-3 present=0-3 kernel=6.12")
        .line("PVTEST crashspin pids=* ok")
        .no_line("Some CPUs may be stale");
    crash.name = "debian13-linux-module-crashspin-4cpu".into();
    crash.debian = Some(13);
    v.push(crash);
    v.extend(rpi4_steps());
    v
}

/// A step on raspi4b: its 4 spin-table CPUs, given PSCI by parkvisor.
fn rpi4(name: &str, scenario: &'static str) -> Step {
    let mut s = Step::new(
        format!("rpi4-linux-{name}"),
        scenario,
        4,
        format!("rpi4-linux-{name}.serial"),
    )
    .timeout(600)
    .all_cpus_up();
    s.board = Some("raspi4b");
    s
}

/// raspi4b under parkvisor: PSCI instead of spin tables, random hotplug,
/// kexec (stock, then the module's FAST_STOP; and from CPU 3 while the
/// others flood the console), kdump with no stale CPU, and the module's
/// crash dump with CPU 3 spinning masked. The raspi4b echo step is above.
fn rpi4_steps() -> Vec<Step> {
    let mut v = vec![
        rpi4("boot", "boot")
            .line("psci: PSCIv1.1 detected in firmware")
            .line("smp: Brought up 1 node, 4 CPUs")
            .line("CPU: All CPU(s) started at EL1")
            .line("PVTEST boot online=0-3")
            .show(&[
                "psci: PSCIv",
                "smp: Brought up",
                "started at EL",
                "PVTEST boot",
            ]),
    ];
    // Under -icount: the soak's stall check (100 round trips per pair
    // within 2 s) then counts guest instructions, not a loaded host's time.
    let mut soak = rpi4("soak", "soak")
        .append("console=ttyAMA0 printk.time=1 pv.soak_s=10")
        .line("PVTEST soak seconds=10 ops=[1-9]* hotplug_cycles=[1-9]* lost=0 *online=0-3")
        .show(&["PVTEST soak seconds="]);
    soak.icount = true;
    v.push(soak);
    v.push(
        rpi4("kexec-twice", "demo")
            .count(STOCK_TEARDOWN, 3)
            .count("PVTEST demo cpus online=0-3", 1)
            .in_order(&[
                "parkvisor_stop: kexec: stopped 3 CPUs",
                "PVTEST demo second kernel online=0-3",
            ])
            .show(&[STOCK_KILLED, "parkvisor_stop: kexec", "PVTEST demo"]),
    );
    // Starts at stage 3 (no stage=1 line): CPUs 0-2 flood, CPU 3 kexecs.
    let mut from3 = rpi4("kexec-from-cpu3", "multikexec");
    from3.expect.clear();
    v.push(
        from3
            .append("console=ttyAMA0 printk.time=1 pv.stage=3")
            .line("PVTEST multikexec stage=3 from=cpu3 flooding")
            .line("psci: CPU0 [a-z]* ")
            .count(STOCK_TEARDOWN, 3)
            .line("PVTEST multikexec done online=0-3")
            .show(&[STOCK_KILLED, "PVTEST multikexec"]),
    );
    v.push(
        rpi4("kdump", "kdump")
            .line("PVTEST kdump capture kernel vmcore=elf")
            .no_line("Some CPUs may be stale")
            .show(&["PVTEST kdump", "failed to stop", "Starting crashdump"]),
    );
    v.push(module_crashspin(
        rpi4("module-crashspin", "crashspin")
            .append("console=ttyAMA0 printk.time=1 pv.module=1 pv.spin=3"),
        true,
    ));
    v
}

pub fn find(name: &str) -> Option<Step> {
    steps().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Exit;
    use crate::linux::judge;
    use std::path::Path;

    #[test]
    fn names_unique_and_logs_distinct() {
        let s = steps();
        let mut names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        let mut logs: Vec<&str> = s.iter().map(|s| s.log.as_str()).collect();
        names.sort();
        names.dedup();
        logs.sort();
        logs.dedup();
        assert_eq!(names.len(), s.len());
        assert_eq!(logs.len(), s.len());
    }

    /// Every step's spec against its log of a full scripts/test.sh run, when
    /// `PV_LINUX_LOGS` names that run's log directory (not on CI: the logs
    /// are not part of the repository).
    #[test]
    fn recorded_runs_pass() {
        let Some(dir) = std::env::var_os("PV_LINUX_LOGS") else {
            return;
        };
        let mut bad = Vec::new();
        for s in steps() {
            let Ok(b) = std::fs::read(Path::new(&dir).join(&s.log)) else {
                bad.push(format!("{}: no log {}", s.name, s.log));
                continue;
            };
            let v = judge(&s, &Exit::Code(0), &String::from_utf8_lossy(&b));
            if !v.reasons.is_empty() {
                bad.push(format!("{}: {:?}", s.name, v.reasons));
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }
}
