//! What the hypervisor learns from the DTB QEMU (or U-Boot) hands it: RAM,
//! CPUs, GIC, console UART, timer interrupts, its own options and the guest
//! images loaded by `-device guest-loader` (the Xen multiboot binding).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use dtoolkit::fdt::{Fdt, FdtNode};
use dtoolkit::standard::NodeStandard;
use dtoolkit::{Cells, Node, Property, ToCellInt};

use super::{DtbError, MemRange};

/// The most CPUs parkvisor keeps per-CPU state for: one vCPU slot each, so
/// exactly [`crate::vcpu::MAX_VCPUS`] (QEMU virt's GICv3 limit). A DTB with
/// more is refused rather than silently running with some CPUs unmanaged.
pub const MAX_CPUS: usize = crate::vcpu::MAX_VCPUS;

const KERNEL_COMPATIBLE: &str = "multiboot,kernel";
const RAMDISK_COMPATIBLE: &str = "multiboot,ramdisk";

/// The machine as described by the boot DTB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// All RAM, sorted by address (the hypervisor's own region included).
    pub memory: Vec<MemRange>,
    /// CPUs in DT order: `cpus[i]` is physical CPU *i* and vCPU *i*.
    pub cpus: Vec<Cpu>,
    /// The GICv3.
    pub gic: Gic,
    /// The console PL011 (`/chosen/stdout-path` if it is a PL011, else the
    /// first PL011 in the tree).
    pub uart: Option<Uart>,
    /// The architected timer's interrupts.
    pub timer: Option<Timer>,
    /// Register ranges of the devices passed through to the guest (see
    /// `dtb::devices::PASSTHROUGH`), sorted: the only MMIO stage 2 maps.
    pub passthrough: Vec<MemRange>,
    /// The BCM2835 power-management watchdog (`brcm,bcm2835-pm-wdt` or
    /// `brcm,bcm2835-pm`): its first register range, for power-off and
    /// reset on boards without PSCI firmware.
    pub pm_watchdog: Option<MemRange>,
    /// Whether the firmware offers PSCI (a `/psci` node).
    pub psci_firmware: bool,
    /// `/chosen/bootargs`: the hypervisor's own options (QEMU `-append`).
    /// Empty when absent.
    pub bootargs: String,
    /// The guest kernel module (`multiboot,kernel`).
    pub kernel: KernelModule,
    /// The guest initrd module (`multiboot,ramdisk`), if any.
    pub initrd: Option<MemRange>,
}

/// One CPU node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The CPU's `reg`: its MPIDR_EL1 affinity bits (see [`crate::vcpu::MPIDR_AFF_MASK`]).
    pub mpidr: u64,
    /// How the firmware lets the hypervisor start it.
    pub enable: EnableMethod,
}

/// A CPU node's `enable-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableMethod {
    /// `psci` (or none: QEMU virt's boot CPU): the firmware's PSCI CPU_ON.
    Psci,
    /// `spin-table`: the CPU waits in firmware until a non-zero entry
    /// address appears at `cpu-release-addr` (a 64-bit slot).
    SpinTable {
        /// The release slot's physical address.
        release_addr: u64,
    },
}

/// The GIC's register frames: a GICv3's distributor and redistributors, or
/// a GICv2's distributor and the frames of its CPU and virtual interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gic {
    /// GICD.
    pub distributor: MemRange,
    /// GICR regions (`#redistributor-regions` of them, usually one); none
    /// on a GICv2.
    pub redistributors: Vec<MemRange>,
    /// The GICv2 frames, when the GIC is a GICv2 (`arm,cortex-a15-gic`,
    /// `arm,gic-400`).
    pub v2: Option<GicV2Frames>,
}

/// The GICv2 frames beyond the distributor (the binding's `reg` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicV2Frames {
    /// GICC: the physical CPU interface (the hypervisor's), and the
    /// address where the guest finds its (virtual) CPU interface.
    pub cpu_interface: MemRange,
    /// GICH: the virtual interface control (list registers).
    pub hyp: MemRange,
    /// GICV: the virtual CPU interface that stage 2 maps at GICC.
    pub vcpu: MemRange,
}

/// The compatibles of a GICv2 with virtualization extensions.
pub const GICV2_COMPATIBLE: &[&str] = &["arm,gic-400", "arm,cortex-a15-gic"];

/// A PL011 UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    /// Its MMIO registers.
    pub regs: MemRange,
    /// Its interrupt (INTID), if described.
    pub intid: Option<u32>,
}

/// Architected timer PPIs as INTIDs, in the binding's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// Secure EL1 physical timer.
    pub secure_phys: u32,
    /// Non-secure EL1 physical timer (CNTP).
    pub phys: u32,
    /// EL1 virtual timer (CNTV): the guest's usual tick.
    pub virt: u32,
    /// EL2 physical timer (CNTHP): the hypervisor's own.
    pub hyp_phys: u32,
}

/// The guest kernel as loaded by `-device guest-loader,kernel=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelModule {
    /// Where the image bytes are.
    pub image: MemRange,
    /// The module's `bootargs`: the guest's command line (empty when absent).
    pub bootargs: String,
}

impl Platform {
    /// Reads everything parkvisor needs from the boot DTB.
    ///
    /// # Errors
    ///
    /// See [`DtbError`]: a malformed blob, missing memory/CPUs/GICv3/guest
    /// kernel, more than [`MAX_CPUS`] CPUs, or badly shaped properties.
    pub fn parse(blob: &[u8]) -> Result<Self, DtbError> {
        let fdt = Fdt::new(blob)?;
        let nodes = all_nodes(fdt);
        let chosen = fdt.find_node("/chosen");
        let (kernel, initrd) = modules(fdt)?;
        Ok(Self {
            memory: memory(&nodes)?,
            cpus: cpus(fdt, MAX_CPUS)?,
            gic: gic(&nodes)?,
            uart: uart(fdt, &nodes)?,
            timer: timer(&nodes),
            passthrough: super::devices::passthrough_ranges(&nodes)?,
            pm_watchdog: pm_watchdog(&nodes)?,
            psci_firmware: fdt.find_node("/psci").is_some(),
            bootargs: match chosen {
                Some(c) => string_prop(&c, "/chosen", "bootargs")?.unwrap_or_default(),
                None => String::new(),
            },
            kernel,
            initrd,
        })
    }
}

/// A node with its path (for errors) and how its parent's address space
/// maps to CPU physical addresses.
pub(crate) struct Located<'a> {
    pub(crate) node: FdtNode<'a>,
    pub(crate) path: String,
    /// The `ranges` of every bus between the root and this node, innermost
    /// first (empty for a child of the root).
    pub(crate) buses: Vec<BusRanges>,
    /// Depth below the root (1: a child of the root).
    pub(crate) depth: usize,
}

/// One bus node's `ranges`: `None` is an identity mapping (empty
/// `ranges`), a list its windows.
pub(crate) type BusRanges = Option<Vec<Window>>;

/// One `ranges` entry: child addresses `[child, child + size)` appear at
/// `parent` in the parent bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) child: u64,
    pub(crate) parent: u64,
    pub(crate) size: u64,
}

impl Located<'_> {
    /// The node's `reg` entries (read with its parent's cell sizes) as CPU
    /// physical addresses, through each enclosing bus's `ranges`; empty
    /// when it has none.
    pub(crate) fn reg(&self) -> Result<Vec<MemRange>, DtbError> {
        let local = match self.node.reg() {
            Ok(None) => return Ok(Vec::new()),
            Ok(Some(entries)) => ranges(entries.map(|r| [r.address, r.size]))
                .ok_or_else(|| bad(&self.path, "reg"))?,
            Err(_) => return Err(bad(&self.path, "reg")),
        };
        local
            .into_iter()
            .map(|r| translate(r, &self.buses).ok_or_else(|| bad(&self.path, "reg")))
            .collect()
    }
}

/// `r` (an address in the innermost bus of `buses`) as a CPU physical
/// address; `None` when a bus has no window that holds all of it.
pub(crate) fn translate(mut r: MemRange, buses: &[BusRanges]) -> Option<MemRange> {
    for windows in buses.iter().flatten() {
        let w = windows
            .iter()
            .find(|w| w.child <= r.base && r.end() <= w.child.saturating_add(w.size))?;
        r.base = w.parent.checked_add(r.base - w.child)?;
    }
    Some(r)
}

/// A bus node's `ranges`, read with its own `#address-cells`/`#size-cells`
/// (child side) and `parent_address_cells`. `None` inside `Some` is an
/// empty (identity) `ranges`; the outer `None`: no usable `ranges`, so the
/// bus's children are not reachable by the CPU.
fn bus_ranges(node: &FdtNode<'_>, parent_address_cells: usize) -> Option<BusRanges> {
    let property = node.property("ranges")?;
    let value = property.value();
    if value.is_empty() {
        return Some(None);
    }
    let space = node.address_space();
    let (ca, pa, cs) = (
        space.address_cells as usize,
        parent_address_cells,
        space.size_cells as usize,
    );
    let entry = 4 * (ca + pa + cs);
    if entry == 0 || value.len() % entry != 0 {
        return None;
    }
    let number = |bytes: &[u8]| -> Option<u64> {
        if bytes.len() > 12 {
            return None;
        }
        // A PCI-style 3-cell address keeps its flags in the high cell.
        let tail = &bytes[bytes.len().saturating_sub(8)..];
        Some(tail.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    let mut windows = Vec::new();
    for e in value.chunks_exact(entry) {
        let (child, rest) = e.split_at(4 * ca);
        let (parent, size) = rest.split_at(4 * pa);
        windows.push(Window {
            child: number(child)?,
            parent: number(parent)?,
            size: number(size)?,
        });
    }
    Some(Some(windows))
}

/// `<address size>` entries as ranges; `None` when a number is wider than
/// 64 bits.
fn ranges<'a>(entries: impl Iterator<Item = [Cells<'a>; 2]>) -> Option<Vec<MemRange>> {
    entries
        .map(|[address, size]| Some(MemRange::new(address.to_int().ok()?, size.to_int().ok()?)))
        .collect()
}

/// Every node in document order, with what translates its addresses (a
/// bus's `ranges`, as on the BCM2711's `/soc`). The children of a node
/// without `ranges` below the root (a CPU, a PCI device) are not
/// memory-mapped and are left out.
pub(crate) fn all_nodes(fdt: Fdt<'_>) -> Vec<Located<'_>> {
    let mut out = Vec::new();
    let root = fdt.root();
    let cells = root.address_space().address_cells as usize;
    visit(root, String::new(), &[], cells, 1, &mut out);
    out
}

fn visit<'a>(
    node: FdtNode<'a>,
    path: String,
    buses: &[BusRanges],
    address_cells: usize,
    depth: usize,
    out: &mut Vec<Located<'a>>,
) {
    for child in node.children() {
        let child_path = alloc::format!("{path}/{}", child.name());
        out.push(Located {
            node: child,
            path: child_path.clone(),
            buses: buses.to_vec(),
            depth,
        });
        // The grandchildren's addresses go through this child's `ranges`.
        let mut inner = Vec::with_capacity(buses.len() + 1);
        let reachable = match bus_ranges(&child, address_cells) {
            Some(r) => {
                inner.push(r);
                true
            }
            None => false,
        };
        inner.extend_from_slice(buses);
        if reachable || child.property("reg").is_none() {
            visit(
                child,
                child_path,
                &inner,
                child.address_space().address_cells as usize,
                depth + 1,
                out,
            );
        }
    }
}

pub(crate) fn bad(path: &str, property: &'static str) -> DtbError {
    DtbError::BadProperty {
        node: path.to_string(),
        property,
    }
}

fn string_prop(
    node: &FdtNode<'_>,
    path: &str,
    name: &'static str,
) -> Result<Option<String>, DtbError> {
    node.property(name)
        .map(|p| {
            p.value_as::<&str>()
                .map(String::from)
                .map_err(|_| bad(path, name))
        })
        .transpose()
}

pub(crate) fn is_memory(node: &FdtNode<'_>) -> bool {
    node.property("device_type")
        .is_some_and(|p| p.value_as::<&str>() == Ok("memory"))
}

fn is_enabled(node: &FdtNode<'_>) -> bool {
    node.property("status")
        .is_none_or(|p| matches!(p.value_as::<&str>(), Ok("okay" | "ok")))
}

pub(crate) fn memory(nodes: &[Located<'_>]) -> Result<Vec<MemRange>, DtbError> {
    let mut ram = Vec::new();
    for n in nodes
        .iter()
        .filter(|n| is_memory(&n.node) && is_enabled(&n.node))
    {
        ram.extend(n.reg()?.into_iter().filter(|r| !r.is_empty()));
    }
    if ram.is_empty() {
        return Err(DtbError::NoMemory);
    }
    ram.sort_unstable();
    Ok(ram)
}

/// `/cpus/cpu@*` in DT order, refusing more than `max`.
pub(crate) fn cpus(fdt: Fdt<'_>, max: usize) -> Result<Vec<Cpu>, DtbError> {
    let cpus = fdt.find_node("/cpus").ok_or(DtbError::NoCpus)?;
    let mut out = Vec::new();
    for cpu in cpus
        .children()
        .filter(|c| c.name_without_address() == "cpu")
    {
        let path = alloc::format!("/cpus/{}", cpu.name());
        let mpidr = cpu
            .reg()
            .ok()
            .flatten()
            .and_then(|mut entries| entries.next()?.address::<u64>().ok())
            .ok_or_else(|| bad(&path, "reg"))?;
        let enable = match string_prop(&cpu, &path, "enable-method")?.as_deref() {
            Some("spin-table") => {
                let addr = cpu
                    .property("cpu-release-addr")
                    .ok_or_else(|| bad(&path, "cpu-release-addr"))?;
                let value = addr.value();
                let release_addr = match value.len() {
                    4 | 8 => value.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)),
                    _ => return Err(bad(&path, "cpu-release-addr")),
                };
                EnableMethod::SpinTable { release_addr }
            }
            None | Some("psci") => EnableMethod::Psci,
            Some(_) => return Err(bad(&path, "enable-method")),
        };
        out.push(Cpu {
            mpidr: mpidr & crate::vcpu::MPIDR_AFF_MASK,
            enable,
        });
    }
    match out.len() {
        0 => Err(DtbError::NoCpus),
        n if n > max => Err(DtbError::TooManyCpus { found: n, max }),
        _ => Ok(out),
    }
}

/// Decodes an `interrupts` property of 3-cell GIC specifiers
/// (`<type number flags>`) into INTIDs: SPI n is 32 + n, PPI n is 16 + n.
fn intids(node: &FdtNode<'_>) -> Option<Vec<u32>> {
    node.property("interrupts")?
        .as_prop_encoded_array([1, 1, 1])
        .ok()?
        .map(|[kind, number, _flags]| {
            let number = number.to_int::<u32>().ok()?;
            match kind.to_int::<u32>().ok()? {
                0 => Some(32 + number),
                1 => Some(16 + number),
                _ => None,
            }
        })
        .collect()
}

fn gic(nodes: &[Located<'_>]) -> Result<Gic, DtbError> {
    if let Some(n) = nodes
        .iter()
        .find(|n| GICV2_COMPATIBLE.iter().any(|c| n.node.is_compatible(c)))
    {
        // reg = GICD, GICC, GICH, GICV (the last two: virtualization).
        let reg = n.reg()?;
        let [distributor, cpu_interface, hyp, vcpu, ..] = reg[..] else {
            return Err(DtbError::NoGicVirtualization);
        };
        return Ok(Gic {
            distributor,
            redistributors: Vec::new(),
            v2: Some(GicV2Frames {
                cpu_interface,
                hyp,
                vcpu,
            }),
        });
    }
    let n = nodes
        .iter()
        .find(|n| n.node.is_compatible("arm,gic-v3"))
        .ok_or(DtbError::NoGicV3)?;
    let reg = n.reg()?;
    let redist_regions = match n.node.property("#redistributor-regions") {
        None => 1,
        Some(p) => p
            .value_as::<u32>()
            .map_err(|_| bad(&n.path, "#redistributor-regions"))? as usize,
    };
    // reg = GICD, then the GICR regions, then optional GICC/GICH/GICV.
    if redist_regions == 0 || reg.len() < 1 + redist_regions {
        return Err(bad(&n.path, "reg"));
    }
    Ok(Gic {
        distributor: reg[0],
        redistributors: reg[1..=redist_regions].to_vec(),
        v2: None,
    })
}

/// The console: `stdout-path` (a path or an alias, with optional `:options`)
/// when it names a PL011, else the first PL011 in the tree.
fn uart(fdt: Fdt<'_>, nodes: &[Located<'_>]) -> Result<Option<Uart>, DtbError> {
    let stdout = fdt
        .find_node("/chosen")
        .and_then(|c| c.property("stdout-path"))
        .and_then(|p| p.value_as::<&str>().ok())
        .map(|s| s.split(':').next().unwrap_or(s));
    let stdout = stdout.and_then(|s| {
        if s.starts_with('/') {
            fdt.find_node(s)
        } else {
            let alias = fdt
                .find_node("/aliases")?
                .property(s)?
                .value_as::<&str>()
                .ok()?;
            fdt.find_node(alias)
        }
    });
    let pl011 = |n: &&Located<'_>| n.node.is_compatible("arm,pl011") && is_enabled(&n.node);
    let chosen = stdout.and_then(|s| nodes.iter().filter(pl011).find(|n| same_node(&n.node, &s)));
    let Some(n) = chosen.or_else(|| nodes.iter().find(pl011)) else {
        return Ok(None);
    };
    let regs = *n.reg()?.first().ok_or_else(|| bad(&n.path, "reg"))?;
    Ok(Some(Uart {
        regs,
        intid: intids(&n.node).and_then(|i| i.first().copied()),
    }))
}

/// Whether two handles are the same node: `FdtNode` has no equality, but a
/// node's name is a slice of the blob at the node's own offset.
fn same_node(a: &FdtNode<'_>, b: &FdtNode<'_>) -> bool {
    core::ptr::eq(a.name().as_ptr(), b.name().as_ptr())
}

fn timer(nodes: &[Located<'_>]) -> Option<Timer> {
    let n = nodes
        .iter()
        .find(|n| n.node.is_compatible("arm,armv8-timer"))?;
    match intids(&n.node)?[..] {
        [secure_phys, phys, virt, hyp_phys, ..] => Some(Timer {
            secure_phys,
            phys,
            virt,
            hyp_phys,
        }),
        _ => None,
    }
}

/// The `#address-cells`/`#size-cells` for `/chosen/module@*` `reg`. QEMU's
/// guest-loader (like U-Boot) writes them with the root's cell sizes and does
/// not set them on `/chosen`, so fall back to the root's.
fn module_cells(fdt: Fdt<'_>, chosen: &FdtNode<'_>) -> [usize; 2] {
    let root = fdt.root().address_space();
    let get = |name, default| {
        chosen
            .property(name)
            .and_then(|p| p.value_as::<u32>().ok())
            .unwrap_or(default) as usize
    };
    [
        get("#address-cells", root.address_cells),
        get("#size-cells", root.size_cells),
    ]
}

/// Whether a node is a multiboot module (what the guest DTB must not show).
pub(crate) fn is_module(node: &FdtNode<'_>) -> bool {
    node.is_compatible("multiboot,module")
        || node.is_compatible(KERNEL_COMPATIBLE)
        || node.is_compatible(RAMDISK_COMPATIBLE)
}

fn modules(fdt: Fdt<'_>) -> Result<(KernelModule, Option<MemRange>), DtbError> {
    let chosen = fdt.find_node("/chosen").ok_or(DtbError::NoGuestKernel)?;
    let cells = module_cells(fdt, &chosen);
    let mut kernel = None;
    let mut initrd = None;
    for m in chosen.children().filter(is_module) {
        let path = alloc::format!("/chosen/{}", m.name());
        let reg = m.property("reg").ok_or_else(|| bad(&path, "reg"))?;
        // QEMU's guest-loader writes 2 + 2 cells whatever the root says
        // (the BCM2711's root has #size-cells = 1).
        let cells = if reg.value().len() == 4 * (cells[0] + cells[1]) {
            cells
        } else {
            [2, 2]
        };
        let entries = reg.as_prop_encoded_array(cells).ok().and_then(ranges);
        let range = match entries.as_deref() {
            Some([r]) => *r,
            _ => return Err(bad(&path, "reg")),
        };
        if m.is_compatible(KERNEL_COMPATIBLE) {
            if kernel.is_some() {
                return Err(DtbError::DuplicateModule(KERNEL_COMPATIBLE));
            }
            let bootargs = string_prop(&m, &path, "bootargs")?.unwrap_or_default();
            kernel = Some(KernelModule {
                image: range,
                bootargs,
            });
        } else if m.is_compatible(RAMDISK_COMPATIBLE) && initrd.replace(range).is_some() {
            return Err(DtbError::DuplicateModule(RAMDISK_COMPATIBLE));
        }
    }
    Ok((kernel.ok_or(DtbError::NoGuestKernel)?, initrd))
}

/// The BCM2835 PM watchdog's registers (see [`Platform::pm_watchdog`]).
fn pm_watchdog(nodes: &[Located<'_>]) -> Result<Option<MemRange>, DtbError> {
    let Some(n) = nodes.iter().find(|n| {
        n.node.is_compatible("brcm,bcm2835-pm-wdt") || n.node.is_compatible("brcm,bcm2835-pm")
    }) else {
        return Ok(None);
    };
    Ok(n.reg()?.first().copied())
}
