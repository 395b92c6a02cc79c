//! Builds the guest's DTB from the host's.
//!
//! The guest sees the host machine with four differences:
//! - `/psci` says `method = "hvc"`: parkvisor, not the firmware, implements
//!   PSCI for the guest, and HVC always traps to EL2.
//! - every `/cpus/cpu@*` has `enable-method = "psci"` (no spin tables).
//! - the memory nodes list guest RAM only. The hypervisor's region and the
//!   page of each spin-table release slot (firmware code polls it) are
//!   simply absent, so the guest never maps them; no `/reserved-memory` entry is needed
//!   (the guest's own kernel, initrd and DTB are reserved by the guest itself,
//!   as on bare metal). Host `/memreserve/` entries outside guest RAM go too.
//! - `/chosen` carries the guest's command line and initrd instead of the
//!   hypervisor's options and the `multiboot,*` module nodes.
//! - devices that could DMA (fw_cfg, virtio-mmio, PCIe, the platform bus,
//!   a GICv3 ITS: anything not on the allow-lists of `dtb::devices`) are
//!   left out; parkvisor does not map them either.
//!
//! - a GICv2 node keeps only its distributor and CPU interface frames and
//!   loses its maintenance interrupt (no virtualization for the guest).
//! - a simple bus (the BCM2711's `/soc`) keeps only the children the guest
//!   gets, classified as at the root; an emulated PL011 there gets a fixed
//!   clock of ours instead of the (withheld) clock controller, and no pin
//!   settings. A bus with none of them goes.
//!
//! Everything else (GIC, UART, RTC, GPIO, flash, timer, PMU, ...) is copied
//! unchanged: the guest uses the same addresses and parkvisor traps what it
//! must.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use dtoolkit::fdt::{Fdt, FdtNode};
use dtoolkit::standard::NodeStandard;
use dtoolkit::{Node, Property};

use super::devices::{Treatment, classify, is_withheld_child};
use super::platform::{is_memory, is_module};
use super::writer::FdtWriter;
use super::{DtbError, MemRange, Platform, cells, subtract};

use crate::smccc::{PSCI_CPU_OFF, PSCI_CPU_ON_64, PSCI_CPU_SUSPEND_64, PSCI_MIGRATE_64};

/// What the guest DTB says that the host DTB does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestConfig {
    /// The guest's RAM (one memory node per range).
    pub ram: Vec<MemRange>,
    /// The guest's `/chosen/bootargs`; omitted when empty.
    pub bootargs: String,
    /// Where the initrd is, for `linux,initrd-start`/`-end`.
    pub initrd: Option<MemRange>,
}

impl GuestConfig {
    /// The usual guest: all RAM but `hypervisor` and the spin-table
    /// release pages, the kernel module's
    /// command line and the ramdisk module as initrd.
    ///
    /// # Errors
    ///
    /// [`DtbError::NoGuestRam`] when `hypervisor` covers all RAM.
    pub fn new(platform: &Platform, hypervisor: MemRange) -> Result<Self, DtbError> {
        let mut ram = subtract(&platform.memory, hypervisor);
        // A spin-table CPU's release slot, and the firmware code polling
        // it, stay the firmware's: the page goes (QEMU's raspi stub has
        // slots and code in page 0).
        for cpu in &platform.cpus {
            if let super::EnableMethod::SpinTable { release_addr } = cpu.enable {
                ram = subtract(&ram, MemRange::new(release_addr & !0xfff, 0x1000));
            }
        }
        if ram.is_empty() {
            return Err(DtbError::NoGuestRam);
        }
        Ok(Self {
            ram,
            bootargs: platform.kernel.bootargs.clone(),
            initrd: platform.initrd,
        })
    }
}

/// The guest's DTB: `host` rewritten as described in the module docs.
///
/// # Errors
///
/// A malformed `host`, an empty `config.ram`, or a RAM/initrd address that does
/// not fit the root's `#address-cells`/`#size-cells`.
pub fn build_guest_dtb(host: &[u8], config: &GuestConfig) -> Result<Vec<u8>, DtbError> {
    if config.ram.is_empty() {
        return Err(DtbError::NoGuestRam);
    }
    let fdt = Fdt::new(host)?;
    let mut w = FdtWriter::new();
    for r in fdt.memory_reservations() {
        let r = MemRange::new(r.address(), r.size());
        if config.ram.iter().any(|ram| ram.overlaps(&r)) {
            w.reserve(r.base, r.size);
        }
    }
    Rewriter {
        config,
        w: &mut w,
        uart_clock: None,
    }
    .root(fdt.root())?;
    Ok(w.finish(fdt.boot_cpuid_phys()))
}

struct Rewriter<'c, 'w> {
    config: &'c GuestConfig,
    w: &'w mut FdtWriter,
    /// The phandle of the fixed clock given to an emulated PL011 on a bus,
    /// once one needs it (the node is added at the end of the root).
    uart_clock: Option<u32>,
}

/// A phandle no DTC-made tree uses (they count up from 1).
const UART_CLOCK_PHANDLE: u32 = 0x7076_0001;

impl Rewriter<'_, '_> {
    /// The root: new memory nodes where the first host memory node was, our
    /// `/psci` where the host's was (or first), `/cpus` and `/chosen` edited.
    fn root(&mut self, root: FdtNode<'_>) -> Result<(), DtbError> {
        self.w.begin_node("");
        self.copy_properties(&root, &[]);
        let has_psci = root.children().any(|c| is_psci(&c));
        if !has_psci {
            self.psci();
        }
        let mut memory_done = false;
        for child in root.children() {
            if is_memory(&child) {
                if !memory_done {
                    self.memory(&root)?;
                    memory_done = true;
                }
            } else if is_psci(&child) {
                self.psci();
            } else {
                match child.name() {
                    "cpus" => self.cpus(&child),
                    "chosen" => self.chosen(&child),
                    _ if is_gic_v2(&child) => self.gic_v2(&root, &child),
                    _ if is_simple_bus(&child) && keeps_a_device(&child) => self.bus(&child),
                    _ if classify(&child) == Treatment::Withheld => {}
                    _ => self.copy(&child),
                }
            }
        }
        if !memory_done {
            self.memory(&root)?;
        }
        if let Some(phandle) = self.uart_clock {
            self.w.begin_node("parkvisor-uart-clock");
            self.w.property_str("compatible", "fixed-clock");
            self.w.property_u32("#clock-cells", 0);
            self.w.property_u32("clock-frequency", 48_000_000);
            self.w.property_u32("phandle", phandle);
            self.w.end_node();
        }
        self.w.end_node();
        Ok(())
    }

    /// One `memory@<base>` node per guest RAM range.
    fn memory(&mut self, root: &FdtNode<'_>) -> Result<(), DtbError> {
        let cells = root.address_space();
        let (ac, sc) = (cells.address_cells as usize, cells.size_cells as usize);
        for r in &self.config.ram {
            let name = format!("memory@{:x}", r.base);
            let mut reg = Vec::new();
            cells::push(&mut reg, r.base, ac)
                .and_then(|()| cells::push(&mut reg, r.size, sc))
                .ok_or_else(|| DtbError::ValueTooWide {
                    node: format!("/{name}"),
                    value: r.end(),
                })?;
            self.w.begin_node(&name);
            self.w.property_str("device_type", "memory");
            self.w.property("reg", &reg);
            self.w.end_node();
        }
        Ok(())
    }

    fn psci(&mut self) {
        self.w.begin_node("psci");
        self.w
            .property_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]);
        self.w.property_str("method", "hvc");
        // PSCI 0.2+ function IDs, for the old `arm,psci` (0.1) binding that
        // the node's compatible list also names. Linux prefers
        // `arm,psci-1.0` and ignores them.
        self.w.property_u32("cpu_suspend", PSCI_CPU_SUSPEND_64);
        self.w.property_u32("cpu_off", PSCI_CPU_OFF);
        self.w.property_u32("cpu_on", PSCI_CPU_ON_64);
        self.w.property_u32("migrate", PSCI_MIGRATE_64);
        self.w.end_node();
    }

    fn cpus(&mut self, cpus: &FdtNode<'_>) {
        self.w.begin_node(cpus.name());
        self.copy_properties(cpus, &[]);
        for child in cpus.children() {
            if child.name_without_address() == "cpu" {
                self.w.begin_node(child.name());
                self.copy_properties(&child, &["enable-method", "cpu-release-addr"]);
                self.w.property_str("enable-method", "psci");
                self.copy_children(&child);
                self.w.end_node();
            } else {
                self.copy(&child);
            }
        }
        self.w.end_node();
    }

    fn chosen(&mut self, chosen: &FdtNode<'_>) {
        self.w.begin_node(chosen.name());
        self.copy_properties(
            chosen,
            &["bootargs", "linux,initrd-start", "linux,initrd-end"],
        );
        if !self.config.bootargs.is_empty() {
            self.w.property_str("bootargs", &self.config.bootargs);
        }
        if let Some(initrd) = self.config.initrd {
            // Linux reads these with any cell count; 64 bits always fit.
            self.w
                .property("linux,initrd-start", &initrd.base.to_be_bytes());
            self.w
                .property("linux,initrd-end", &initrd.end().to_be_bytes());
        }
        self.copy_children(chosen);
        self.w.end_node();
    }

    /// A simple bus (the BCM2711's `/soc`) with some device the guest gets:
    /// the bus with those children only, the rest withheld as at the root.
    fn bus(&mut self, bus: &FdtNode<'_>) {
        self.w.begin_node(bus.name());
        self.copy_properties(bus, &[]);
        for child in bus.children() {
            match classify(&child) {
                _ if is_gic_v2(&child) => self.gic_v2(bus, &child),
                Treatment::Withheld => {}
                // Only an enabled PL011 can be the console parkvisor
                // emulates (a BCM2711 has five, four disabled).
                Treatment::Emulated if child.is_compatible("arm,pl011") => {
                    if is_enabled(&child) {
                        self.pl011(&child);
                    }
                }
                _ => self.copy(&child),
            }
        }
        self.w.end_node();
    }

    /// An emulated PL011 on a bus whose clock and pin controllers are
    /// withheld: its clocks become a fixed clock of ours (Linux's AMBA
    /// bus wants `apb_pclk`), its pin settings go.
    fn pl011(&mut self, uart: &FdtNode<'_>) {
        self.w.begin_node(uart.name());
        self.copy_properties(
            uart,
            &["clocks", "clock-names", "pinctrl-names", "pinctrl-0"],
        );
        if self.uart_clock.is_none() {
            self.uart_clock = Some(UART_CLOCK_PHANDLE);
        }
        let ph = UART_CLOCK_PHANDLE.to_be_bytes();
        let mut clocks = Vec::new();
        clocks.extend_from_slice(&ph);
        clocks.extend_from_slice(&ph);
        self.w.property("clocks", &clocks);
        self.w
            .property_strs("clock-names", &["uartclk", "apb_pclk"]);
        self.copy_children(uart);
        self.w.end_node();
    }

    /// A GICv2 as the guest sees it: distributor and CPU interface only
    /// (the CPU interface it gets is the virtual one, at the same address).
    /// GICH, GICV and the maintenance interrupt are left out: the guest is
    /// not offered the virtualization extensions.
    fn gic_v2(&mut self, parent: &FdtNode<'_>, gic: &FdtNode<'_>) {
        let cells = parent.address_space();
        let entry = 4 * (cells.address_cells as usize + cells.size_cells as usize);
        self.w.begin_node(gic.name());
        self.copy_properties(gic, &["reg", "interrupts"]);
        if let Some(reg) = gic.property("reg") {
            let value = reg.value();
            self.w.property("reg", &value[..value.len().min(2 * entry)]);
        }
        self.copy_children(gic);
        self.w.end_node();
    }

    /// Copies a subtree verbatim, minus multiboot module nodes and withheld
    /// children (a GICv3 ITS).
    fn copy(&mut self, node: &FdtNode<'_>) {
        if is_module(node) || is_withheld_child(node) {
            return;
        }
        self.w.begin_node(node.name());
        self.copy_properties(node, &[]);
        self.copy_children(node);
        self.w.end_node();
    }

    fn copy_children(&mut self, node: &FdtNode<'_>) {
        for child in node.children() {
            self.copy(&child);
        }
    }

    fn copy_properties(&mut self, node: &FdtNode<'_>, skip: &[&str]) {
        for p in node.properties() {
            if !skip.contains(&p.name()) {
                self.w.property(p.name(), p.value());
            }
        }
    }
}

fn is_gic_v2(node: &FdtNode<'_>) -> bool {
    super::platform::GICV2_COMPATIBLE
        .iter()
        .any(|c| node.is_compatible(c))
}

fn is_enabled(node: &FdtNode<'_>) -> bool {
    node.property("status")
        .is_none_or(|p| matches!(p.value_as::<&str>(), Ok("okay" | "ok")))
}

fn is_simple_bus(node: &FdtNode<'_>) -> bool {
    node.is_compatible("simple-bus") && node.property("reg").is_none()
}

/// Whether a bus has a child the guest gets (emulated or passed through).
fn keeps_a_device(bus: &FdtNode<'_>) -> bool {
    bus.children()
        .any(|c| matches!(classify(&c), Treatment::PassThrough | Treatment::Emulated))
}

fn is_psci(node: &FdtNode<'_>) -> bool {
    node.name_without_address() == "psci"
}
