//! Parse and rewrite the real QEMU virt DTBs in `tests/fixtures` (see
//! `generate.sh` there for how they were made).

use alloc::string::String;
use alloc::vec::Vec;

use dtoolkit::fdt::Fdt;
use dtoolkit::{Node, Property};

use super::platform::{MAX_CPUS, Timer, Uart};
use super::*;

const VIRT_1CPU: &[u8] = include_bytes!("../../tests/fixtures/virt-1cpu.dtb");
const VIRT_4CPU: &[u8] = include_bytes!("../../tests/fixtures/virt-4cpu.dtb");
const VIRT_8CPU: &[u8] = include_bytes!("../../tests/fixtures/virt-8cpu.dtb");
const VIRT_20CPU: &[u8] = include_bytes!("../../tests/fixtures/virt-20cpu.dtb");
const VIRT_NO_MODULES: &[u8] = include_bytes!("../../tests/fixtures/virt-nomodules.dtb");
const VIRT_126CPU: &[u8] = include_bytes!("../../tests/fixtures/virt-126cpu.dtb");
const VIRT_ITS: &[u8] = include_bytes!("../../tests/fixtures/virt-its.dtb");
const VIRT_GICV2: &[u8] = include_bytes!("../../tests/fixtures/virt-gicv2.dtb");

const HYPERVISOR: MemRange = MemRange::new(0x4000_0000, 0x400_0000);
const GIB: u64 = 1 << 30;

/// The RAM a DTB describes (the guest DTB has no modules, so no full parse).
fn memory_of(blob: &[u8]) -> Vec<MemRange> {
    platform::memory(&platform::all_nodes(Fdt::new(blob).unwrap())).unwrap()
}

fn mpidrs(p: &Platform) -> Vec<u64> {
    p.cpus.iter().map(|c| c.mpidr).collect()
}

#[test]
fn parses_virt_4cpu() {
    let p = Platform::parse(VIRT_4CPU).unwrap();
    assert!(p.psci_firmware);
    assert_eq!(p.memory, [MemRange::new(0x4000_0000, GIB)]);
    assert_eq!(mpidrs(&p), [0, 1, 2, 3]);
    assert_eq!(p.gic.distributor, MemRange::new(0x800_0000, 0x1_0000));
    assert_eq!(p.gic.redistributors, [MemRange::new(0x80a_0000, 0xf6_0000)]);
    assert_eq!(
        p.uart,
        Some(Uart {
            regs: MemRange::new(0x900_0000, 0x1000),
            intid: Some(33),
        })
    );
    assert_eq!(
        p.timer,
        Some(Timer {
            secure_phys: 29,
            phys: 30,
            virt: 27,
            hyp_phys: 26,
        })
    );
    assert_eq!(p.bootargs, "trace=calls");
    assert_eq!(p.kernel.image, MemRange::new(0x4800_0000, 0x1000));
    assert_eq!(p.kernel.bootargs, "console=ttyAMA0 test=x");
    assert_eq!(p.initrd, Some(MemRange::new(0x6000_0000, 0x2000)));
}

#[test]
fn parses_virt_1cpu_without_initrd_or_bootargs() {
    let p = Platform::parse(VIRT_1CPU).unwrap();
    assert_eq!(p.memory, [MemRange::new(0x4000_0000, GIB / 2)]);
    assert_eq!(mpidrs(&p), [0]);
    assert_eq!(p.bootargs, "");
    assert_eq!(p.kernel.bootargs, "");
    assert_eq!(p.initrd, None);
}

#[test]
fn parses_virt_8cpu() {
    let p = Platform::parse(VIRT_8CPU).unwrap();
    assert_eq!(p.memory, [MemRange::new(0x4000_0000, 2 * GIB)]);
    assert_eq!(mpidrs(&p), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(p.bootargs, "trace=state");
    assert_eq!(p.kernel.bootargs, "console=ttyAMA0 earlycon");
    assert!(p.initrd.is_some());
}

/// A minimal DTB whose `/cpus` has `n` CPUs, MPIDRs laid out as QEMU virt's
/// GICv3 does it (16 per Aff1 cluster).
fn dtb_with_cpus(n: usize) -> Vec<u8> {
    let mut w = writer::FdtWriter::new();
    w.begin_node("");
    w.property_u32("#address-cells", 2);
    w.property_u32("#size-cells", 2);
    w.begin_node("cpus");
    w.property_u32("#address-cells", 1);
    w.property_u32("#size-cells", 0);
    for i in 0..n as u32 {
        let mpidr = (i / 16) << 8 | (i % 16);
        w.begin_node(&alloc::format!("cpu@{mpidr:x}"));
        w.property_str("device_type", "cpu");
        w.property_u32("reg", mpidr);
        w.end_node();
    }
    w.end_node();
    w.end_node();
    w.finish(0)
}

/// A DTB with one memory node: the root's cell sizes and the node's raw `reg`.
fn dtb_with_memory_reg(address_cells: u32, size_cells: u32, reg: &[u8]) -> Vec<u8> {
    let mut w = writer::FdtWriter::new();
    w.begin_node("");
    w.property_u32("#address-cells", address_cells);
    w.property_u32("#size-cells", size_cells);
    w.begin_node("memory@0");
    w.property_str("device_type", "memory");
    w.property("reg", reg);
    w.end_node();
    w.end_node();
    w.finish(0)
}

#[test]
fn reg_follows_the_parents_cells() {
    let memory = |ac, sc, reg: &[u8]| {
        let blob = dtb_with_memory_reg(ac, sc, reg);
        platform::memory(&platform::all_nodes(Fdt::new(&blob).unwrap()))
    };
    let reg = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0x10, 0];
    assert_eq!(
        memory(2, 1, &reg),
        Ok(alloc::vec![MemRange::new(0x1_0000_0002, 0x1000)])
    );
    let bad_reg = Err(DtbError::BadProperty {
        node: "/memory@0".into(),
        property: "reg",
    });
    // Not a whole number of <address size> entries.
    assert_eq!(memory(2, 2, &reg), bad_reg);
    // An address wider than 64 bits.
    assert_eq!(memory(3, 0, &reg), bad_reg);
}

#[test]
fn cpu_limit_is_the_vcpu_limit() {
    assert_eq!(MAX_CPUS, crate::vcpu::MAX_VCPUS);
    // The 20-CPU QEMU fixture (beyond the old limit of 16) is accepted.
    assert_eq!(Platform::parse(VIRT_20CPU).unwrap().cpus.len(), 20);
}

#[test]
fn accepts_exactly_max_cpus() {
    let blob = dtb_with_cpus(MAX_CPUS);
    let cpus = platform::cpus(Fdt::new(&blob).unwrap(), MAX_CPUS).unwrap();
    assert_eq!(cpus.len(), MAX_CPUS);
    assert_eq!(
        cpus[MAX_CPUS - 1].mpidr,
        ((MAX_CPUS as u64 - 1) / 16) << 8 | 0xf
    );
}

#[test]
fn refuses_too_many_cpus() {
    let blob = dtb_with_cpus(MAX_CPUS + 1);
    assert_eq!(
        platform::cpus(Fdt::new(&blob).unwrap(), MAX_CPUS),
        Err(DtbError::TooManyCpus {
            found: MAX_CPUS + 1,
            max: MAX_CPUS
        })
    );
    // The check itself, on a real QEMU DTB, with a smaller limit.
    assert_eq!(
        platform::cpus(Fdt::new(VIRT_20CPU).unwrap(), 16),
        Err(DtbError::TooManyCpus { found: 20, max: 16 })
    );
}

#[test]
fn cpus_beyond_sixteen_use_aff1() {
    // QEMU's GICv3 virt packs 16 CPUs per Aff1 cluster.
    let cpus = platform::cpus(Fdt::new(VIRT_20CPU).unwrap(), 64).unwrap();
    assert_eq!(cpus.len(), 20);
    assert_eq!(cpus[15].mpidr, 0xf);
    assert_eq!(cpus[16].mpidr, 0x100);
    assert_eq!(cpus[19].mpidr, 0x103, "Aff1 1, Aff0 3");
}

#[test]
fn refuses_missing_guest_kernel() {
    let e = Platform::parse(VIRT_NO_MODULES).unwrap_err();
    assert_eq!(e, DtbError::NoGuestKernel);
    assert!(alloc::format!("{e}").contains("guest-loader"));
}

#[test]
fn refuses_garbage() {
    assert!(matches!(
        Platform::parse(b"not a dtb"),
        Err(DtbError::Malformed(_))
    ));
}

/// A copy of `blob` with `totalsize` grown by `extra` zero bytes, like the
/// 1 MiB-padded blob QEMU really leaves in RAM.
fn padded(blob: &[u8], extra: usize) -> Vec<u8> {
    let mut v = blob.to_vec();
    v.resize(blob.len() + extra, 0);
    let total = u32::try_from(v.len()).unwrap();
    v[4..8].copy_from_slice(&total.to_be_bytes());
    v
}

#[test]
fn parses_padded_blob() {
    let p = Platform::parse(&padded(VIRT_4CPU, 1 << 20)).unwrap();
    assert_eq!(p.cpus.len(), 4);
}

fn guest_of(host: &[u8]) -> (Platform, GuestConfig, Vec<u8>) {
    let p = Platform::parse(host).unwrap();
    let config = GuestConfig::new(&p, HYPERVISOR).unwrap();
    let guest = build_guest_dtb(host, &config).unwrap();
    (p, config, guest)
}

fn str_prop<'a>(fdt: Fdt<'a>, path: &str, name: &str) -> Option<&'a str> {
    fdt.find_node(path)?
        .property(name)
        .map(|p| p.value_as::<&str>().unwrap())
}

fn strs(fdt: Fdt<'_>, path: &str, name: &str) -> Vec<String> {
    let prop = fdt.find_node(path).unwrap().property(name).unwrap();
    prop.value()
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from(core::str::from_utf8(s).unwrap()))
        .collect()
}

/// Every node's path, depth first.
fn paths(fdt: Fdt<'_>) -> Vec<String> {
    fn walk(node: dtoolkit::fdt::FdtNode<'_>, path: &str, out: &mut Vec<String>) {
        for c in node.children() {
            let p = alloc::format!("{path}/{}", c.name());
            out.push(p.clone());
            walk(c, &p, out);
        }
    }
    let mut out = Vec::new();
    walk(fdt.root(), "", &mut out);
    out
}

#[test]
fn guest_dtb_psci_is_hvc() {
    let (_, _, guest) = guest_of(VIRT_4CPU);
    let fdt = Fdt::new(&guest).unwrap();
    assert_eq!(str_prop(fdt, "/psci", "method"), Some("hvc"));
    assert_eq!(
        strs(fdt, "/psci", "compatible"),
        ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
    );
    let cpu_on = fdt.find_node("/psci").unwrap().property("cpu_on").unwrap();
    assert_eq!(cpu_on.value_as::<u32>(), Ok(0xc400_0003));
    assert_eq!(
        paths(fdt).iter().filter(|p| p.starts_with("/psci")).count(),
        1
    );
    for i in 0..4 {
        let cpu = alloc::format!("/cpus/cpu@{i}");
        assert_eq!(str_prop(fdt, &cpu, "enable-method"), Some("psci"));
    }
}

#[test]
fn guest_dtb_memory_excludes_hypervisor() {
    let (_, config, guest) = guest_of(VIRT_4CPU);
    assert_eq!(config.ram, [MemRange::new(0x4400_0000, 0x3c00_0000)]);
    let fdt = Fdt::new(&guest).unwrap();
    let memory: Vec<_> = paths(fdt)
        .into_iter()
        .filter(|p| p.starts_with("/memory"))
        .collect();
    assert_eq!(memory, ["/memory@44000000"]);
    let g = memory_of(&guest);
    assert_eq!(g, [MemRange::new(0x4400_0000, 0x3c00_0000)]);
    assert!(g.iter().all(|r| !r.overlaps(&HYPERVISOR)));
}

#[test]
fn guest_dtb_chosen_has_guest_cmdline_and_initrd() {
    let (_, _, guest) = guest_of(VIRT_4CPU);
    let fdt = Fdt::new(&guest).unwrap();
    assert_eq!(
        str_prop(fdt, "/chosen", "bootargs"),
        Some("console=ttyAMA0 test=x")
    );
    assert_eq!(
        str_prop(fdt, "/chosen", "stdout-path"),
        Some("/pl011@9000000")
    );
    let chosen = fdt.find_node("/chosen").unwrap();
    let start = chosen
        .property("linux,initrd-start")
        .unwrap()
        .value_as::<u64>();
    let end = chosen
        .property("linux,initrd-end")
        .unwrap()
        .value_as::<u64>();
    assert_eq!((start, end), (Ok(0x6000_0000), Ok(0x6000_2000)));
    assert!(paths(fdt).iter().all(|p| !p.contains("module")));
    assert!(!guest.windows(10).any(|w| w == b"multiboot,"));
}

#[test]
fn guest_dtb_without_initrd_or_cmdline() {
    let (_, _, guest) = guest_of(VIRT_1CPU);
    let fdt = Fdt::new(&guest).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert!(chosen.property("bootargs").is_none());
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(chosen.property("linux,initrd-end").is_none());
    assert!(chosen.children().next().is_none());
}

#[test]
fn guest_dtb_never_leaks_hypervisor_options() {
    let host = Platform::parse(VIRT_8CPU).unwrap();
    let mut config = GuestConfig::new(&host, HYPERVISOR).unwrap();
    config.bootargs.clear();
    let guest = build_guest_dtb(VIRT_8CPU, &config).unwrap();
    assert!(!guest.windows(11).any(|w| w == b"trace=state"));
}

#[test]
fn guest_dtb_keeps_everything_else() {
    for host in [VIRT_1CPU, VIRT_4CPU, VIRT_8CPU] {
        let (p, _, guest) = guest_of(host);
        let fdt = Fdt::new(&guest).unwrap();
        let host_paths: Vec<_> = paths(Fdt::new(host).unwrap())
            .into_iter()
            .filter(|n| !n.starts_with("/memory") && !n.starts_with("/chosen/module"))
            .filter(|n| !WITHHELD_PREFIXES.iter().any(|w| n.starts_with(w)))
            .collect();
        let guest_paths: Vec<_> = paths(fdt)
            .into_iter()
            .filter(|n| !n.starts_with("/memory"))
            .collect();
        assert_eq!(host_paths, guest_paths);
        // The guest still finds its GIC, UART, timer and CPUs where they were.
        let cpus = platform::cpus(fdt, MAX_CPUS).unwrap();
        assert_eq!(cpus, p.cpus);
        for node in ["/intc@8000000", "/pl011@9000000", "/timer", "/cpus/cpu-map"] {
            let props = |blob| -> Vec<(String, Vec<u8>)> {
                let fdt = Fdt::new(blob).unwrap();
                let n = fdt.find_node(node).unwrap();
                n.properties()
                    .map(|p| (p.name().into(), p.value().to_vec()))
                    .collect()
            };
            assert_eq!(props(&guest), props(host), "{node}");
        }
        assert_eq!(
            fdt.boot_cpuid_phys(),
            Fdt::new(host).unwrap().boot_cpuid_phys()
        );
    }
}

#[test]
fn guest_dtb_adds_psci_when_host_has_none() {
    // Rewrite once with the psci node renamed away, as if the firmware had
    // none: the guest must still get exactly one /psci.
    let mut host = VIRT_4CPU.to_vec();
    let at = host.windows(5).position(|w| w == b"psci\0").unwrap();
    host[at..at + 4].copy_from_slice(b"fwxx");
    let p = Platform::parse(&host).unwrap();
    let guest = build_guest_dtb(&host, &GuestConfig::new(&p, HYPERVISOR).unwrap()).unwrap();
    let fdt = Fdt::new(&guest).unwrap();
    assert_eq!(str_prop(fdt, "/psci", "method"), Some("hvc"));
    assert_eq!(str_prop(fdt, "/fwxx", "method"), Some("smc"));
}

#[test]
fn guest_dtb_splits_memory_around_a_hole() {
    let p = Platform::parse(VIRT_4CPU).unwrap();
    let hole = MemRange::new(0x5000_0000, 0x1000_0000);
    let config = GuestConfig::new(&p, hole).unwrap();
    let guest = build_guest_dtb(VIRT_4CPU, &config).unwrap();
    assert_eq!(
        memory_of(&guest),
        [
            MemRange::new(0x4000_0000, 0x1000_0000),
            MemRange::new(0x6000_0000, 0x2000_0000),
        ]
    );
}

#[test]
fn guest_dtb_errors() {
    let p = Platform::parse(VIRT_4CPU).unwrap();
    let all = MemRange::new(0, u64::MAX);
    assert_eq!(GuestConfig::new(&p, all), Err(DtbError::NoGuestRam));
    let config = GuestConfig {
        ram: Vec::new(),
        bootargs: String::new(),
        initrd: None,
    };
    assert_eq!(
        build_guest_dtb(VIRT_4CPU, &config),
        Err(DtbError::NoGuestRam)
    );
    assert!(matches!(
        build_guest_dtb(
            &VIRT_4CPU[..100],
            &GuestConfig::new(&p, HYPERVISOR).unwrap()
        ),
        Err(DtbError::Malformed(_))
    ));
}

/// Optional eyeball check: `dtc` decompiles the guest DTB without complaint.
/// Skipped (passes) when dtc is not installed.
#[test]
fn guest_dtb_decompiles_with_dtc_if_available() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let (_, _, guest) = guest_of(VIRT_4CPU);
    let Ok(mut child) = Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    child.stdin.take().unwrap().write_all(&guest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dts = String::from_utf8(out.stdout).unwrap();
    assert!(dts.contains("method = \"hvc\";"), "{dts}");
    assert!(dts.contains("memory@44000000"), "{dts}");
}

/// QEMU virt's DMA-capable devices (and the bus for dynamic ones).
const WITHHELD_PREFIXES: &[&str] = &["/fw-cfg@", "/virtio_mmio@", "/pcie@", "/platform-bus@"];

#[test]
fn guest_dtb_withholds_every_dma_master() {
    for host in [
        VIRT_1CPU,
        VIRT_4CPU,
        VIRT_8CPU,
        VIRT_NO_MODULES,
        VIRT_126CPU,
        VIRT_ITS,
    ] {
        let p = Platform::parse(host).unwrap_or_else(|_| {
            // virt-nomodules has no guest kernel: parse what the rewrite needs.
            Platform::parse(VIRT_1CPU).unwrap()
        });
        let config = GuestConfig::new(&p, HYPERVISOR).unwrap();
        let guest = build_guest_dtb(host, &config).unwrap();
        let host_paths = paths(Fdt::new(host).unwrap());
        let guest_paths = paths(Fdt::new(&guest).unwrap());
        for w in WITHHELD_PREFIXES {
            assert!(
                host_paths.iter().any(|n| n.starts_with(w)),
                "fixture has {w}"
            );
            assert!(
                !guest_paths.iter().any(|n| n.starts_with(w)),
                "guest DTB has {w}"
            );
        }
        assert!(
            !guest_paths.iter().any(|n| n.contains("/its@")),
            "guest DTB has the ITS"
        );
        // What the guest gets: exactly these devices besides CPUs and memory.
        let devices: Vec<_> = guest_paths
            .iter()
            .filter(|n| n.matches('/').count() == 1 && !n.starts_with("/memory"))
            .cloned()
            .collect();
        assert_eq!(
            devices,
            [
                "/psci",
                "/gpio-keys",
                "/pl061@9030000",
                "/pl031@9010000",
                "/pl011@9000000",
                "/pmu",
                "/intc@8000000",
                "/flash@0",
                "/cpus",
                "/timer",
                "/apb-pclk",
                "/chosen",
                "/aliases",
            ]
            .iter()
            .filter(|d| host_paths.iter().any(|h| h == *d) || **d == "/psci")
            .map(|d| String::from(*d))
            .collect::<Vec<_>>(),
            "{host_paths:?}"
        );
    }
}

#[test]
fn passthrough_is_rtc_gpio_and_flash_only() {
    for host in [VIRT_1CPU, VIRT_4CPU, VIRT_126CPU, VIRT_ITS] {
        let p = Platform::parse(host).unwrap();
        assert_eq!(
            p.passthrough,
            [
                MemRange::new(0, 0x400_0000),
                MemRange::new(0x400_0000, 0x400_0000),
                MemRange::new(0x901_0000, 0x1000),
                MemRange::new(0x903_0000, 0x1000),
            ],
            "flash banks, PL031, PL061; never fw_cfg at 0x9020000"
        );
        assert!(!p.passthrough.iter().any(|r| r.contains(0x902_0010)));
        assert!(!p.passthrough.iter().any(|r| r.overlaps(&HYPERVISOR)));
    }
}

#[test]
fn parses_every_redistributor_region() {
    let p = Platform::parse(VIRT_126CPU).unwrap();
    assert_eq!(p.cpus.len(), 126);
    assert_eq!(
        p.gic.redistributors,
        [
            MemRange::new(0x80a_0000, 0xf6_0000),
            MemRange::new(0x40_0000_0000, 0x400_0000)
        ]
    );
    let layout = crate::gic_filter::GicLayout {
        distributor: p.gic.distributor,
        regions: p.gic.redistributors.clone(),
        cpus: p.cpus.len(),
    };
    assert_eq!(
        layout.redistributor_base(122),
        Some(0x80a_0000 + 122 * 0x2_0000)
    );
    assert_eq!(
        layout.redistributor_base(125),
        Some(0x40_0000_0000 + 2 * 0x2_0000)
    );
    // The guest DTB keeps both regions (the GIC node is copied as it is).
    let guest = build_guest_dtb(VIRT_126CPU, &GuestConfig::new(&p, HYPERVISOR).unwrap()).unwrap();
    let fdt = Fdt::new(&guest).unwrap();
    let intc = fdt.find_node("/intc@8000000").unwrap();
    let host = Fdt::new(VIRT_126CPU).unwrap();
    assert_eq!(
        intc.property("reg").unwrap().value(),
        host.find_node("/intc@8000000")
            .unwrap()
            .property("reg")
            .unwrap()
            .value()
    );
}

#[test]
fn a_gicv2_is_found_with_its_virtualization_frames() {
    let p = Platform::parse(VIRT_GICV2).unwrap();
    assert_eq!(p.gic.distributor, MemRange::new(0x800_0000, 0x1_0000));
    assert!(p.gic.redistributors.is_empty());
    let v2 = p.gic.v2.expect("a GICv2");
    assert_eq!(v2.cpu_interface, MemRange::new(0x801_0000, 0x1_0000));
    assert_eq!(v2.hyp, MemRange::new(0x803_0000, 0x1_0000));
    assert_eq!(v2.vcpu, MemRange::new(0x804_0000, 0x1_0000));
    assert!(Platform::parse(VIRT_4CPU).unwrap().gic.v2.is_none());
}

#[test]
fn the_guest_gicv2_node_offers_no_virtualization() {
    let (_, _, guest) = guest_of(VIRT_GICV2);
    let fdt = Fdt::new(&guest).unwrap();
    let gic = fdt
        .find_node("/intc@8000000")
        .expect("the GIC is emulated, not withheld");
    assert_eq!(
        strs(fdt, "/intc@8000000", "compatible"),
        ["arm,cortex-a15-gic"]
    );
    let reg = gic.property("reg").unwrap();
    let cells: Vec<u32> = reg
        .value()
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        cells,
        [0, 0x800_0000, 0, 0x1_0000, 0, 0x801_0000, 0, 0x1_0000],
        "GICD and GICC only: no GICH, no GICV"
    );
    assert!(
        gic.property("interrupts").is_none(),
        "no maintenance interrupt"
    );
    assert!(
        !paths(fdt).iter().any(|p| p.contains("v2m")),
        "the GICv2m frame is withheld"
    );
}

const RASPI4B: &[u8] = include_bytes!("../../tests/fixtures/raspi4b.dtb");

#[test]
fn parses_raspi4b_through_the_soc_ranges() {
    let p = Platform::parse(RASPI4B).unwrap();
    // QEMU's memory@0 and the board's /ram@40000000.
    assert_eq!(
        p.memory,
        [
            MemRange::new(0, 0x3c00_0000),
            MemRange::new(0x4000_0000, 0x4000_0000)
        ]
    );
    assert_eq!(mpidrs(&p), [0, 1, 2, 3]);
    let slots: Vec<_> = p.cpus.iter().map(|c| c.enable).collect();
    assert_eq!(
        slots,
        [0xd8, 0xe0, 0xe8, 0xf0].map(|release_addr| EnableMethod::SpinTable { release_addr })
    );
    // /soc maps bus 0x7e000000 at 0xfe000000 and 0x40000000 at 0xff800000.
    assert_eq!(p.gic.distributor, MemRange::new(0xff84_1000, 0x1000));
    let v2 = p.gic.v2.unwrap();
    assert_eq!(v2.cpu_interface, MemRange::new(0xff84_2000, 0x2000));
    assert_eq!(v2.hyp, MemRange::new(0xff84_4000, 0x2000));
    assert_eq!(v2.vcpu, MemRange::new(0xff84_6000, 0x2000));
    // stdout-path names the mini UART: the console is the PL011 uart0.
    assert_eq!(p.uart.unwrap().regs, MemRange::new(0xfe20_1000, 0x200));
    assert_eq!(p.pm_watchdog, Some(MemRange::new(0xfe10_0000, 0x114)));
    assert!(!p.psci_firmware);
    // Nothing on the BCM2711 is on the pass-through allow-list.
    assert_eq!(p.passthrough, []);
    // guest-loader's 2+2-cell module reg under a #size-cells = 1 root.
    assert_eq!(p.kernel.image, MemRange::new(0x4800_0000, 0x1000));
    assert_eq!(p.kernel.bootargs, "console=ttyAMA0");
    assert_eq!(p.initrd, Some(MemRange::new(0x6000_0000, 0x2000)));
}

#[test]
fn raspi4b_guest_gets_psci_not_the_spin_table_nor_its_page() {
    let p = Platform::parse(RASPI4B).unwrap();
    let config = GuestConfig::new(&p, HYPERVISOR).unwrap();
    assert_eq!(
        config.ram,
        [
            MemRange::new(0x1000, 0x3c00_0000 - 0x1000),
            MemRange::new(0x4400_0000, 0x3c00_0000)
        ]
    );
    let blob = build_guest_dtb(RASPI4B, &config).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(memory_of(&blob), config.ram);
    for cpu in fdt.find_node("/cpus").unwrap().children() {
        if cpu.name_without_address() != "cpu" {
            continue;
        }
        assert_eq!(
            cpu.property("enable-method").unwrap().value_as::<&str>(),
            Ok("psci")
        );
        assert!(cpu.property("cpu-release-addr").is_none());
    }
    let psci = fdt.find_node("/psci").unwrap();
    assert_eq!(
        psci.property("method").unwrap().value_as::<&str>(),
        Ok("hvc")
    );
}

#[test]
fn raspi4b_guest_keeps_gic_and_uart_and_withholds_the_dma_masters() {
    let p = Platform::parse(RASPI4B).unwrap();
    let blob = build_guest_dtb(RASPI4B, &GuestConfig::new(&p, HYPERVISOR).unwrap()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let soc = fdt.find_node("/soc").unwrap();
    let names: Vec<String> = soc.children().map(|c| String::from(c.name())).collect();
    assert!(names.contains(&String::from("serial@7e201000")));
    // The other PL011s (disabled in the host tree) are not the console that
    // parkvisor emulates: withheld.
    assert!(!names.iter().any(|n| n == "serial@7e201400"));
    assert!(names.contains(&String::from("interrupt-controller@40041000")));
    // Bus masters: the DMA controllers, the SD/eMMC hosts, USB, V3D, ...
    for gone in [
        "dma@7e007000",
        "mmc@7e300000",
        "mmc@7e340000",
        "usb@7e980000",
        "mailbox@7e00b880",
        "watchdog@7e100000",
    ] {
        assert!(!names.iter().any(|n| n == gone), "{gone} must be withheld");
    }
    for bus in ["/scb", "/emmc2bus", "/v3dbus"] {
        assert!(
            fdt.find_node(bus).is_none(),
            "{bus} has no device the guest gets"
        );
    }
    // The GIC keeps GICD and GICC (in /soc's 1+1 cells), not GICH/GICV.
    let gic = soc
        .children()
        .find(|c| c.name() == "interrupt-controller@40041000")
        .unwrap();
    assert_eq!(gic.property("reg").unwrap().value().len(), 16);
    // The PL011's clocks are our fixed clock; no pin settings.
    let uart = soc
        .children()
        .find(|c| c.name() == "serial@7e201000")
        .unwrap();
    assert!(uart.property("pinctrl-0").is_none());
    let clock = fdt.find_node("/parkvisor-uart-clock").unwrap();
    let ph = clock
        .property("phandle")
        .unwrap()
        .value_as::<u32>()
        .unwrap();
    let clocks = uart.property("clocks").unwrap();
    assert_eq!(
        clocks.value(),
        [ph.to_be_bytes(), ph.to_be_bytes()].concat()
    );
}
