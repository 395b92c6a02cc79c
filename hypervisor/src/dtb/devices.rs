//! Which of the host's devices the guest gets. The rule is an allow-list
//! (docs/architecture.md, "Devices and DMA"): QEMU virt has no IOMMU in front
//! of its DMA masters (fw_cfg's DMA interface, virtio-mmio, PCIe, the
//! platform bus), and any of them could write the hypervisor's memory for
//! the guest. So only devices that cannot master memory are passed through;
//! the GIC and the console UART are emulated; everything else is withheld:
//! absent from the guest DTB and from stage 2, so a guest access aborts.

use alloc::vec::Vec;

use dtoolkit::Node;
use dtoolkit::fdt::FdtNode;
use dtoolkit::standard::NodeStandard;

use super::platform::{Located, is_memory};
use super::{DtbError, MemRange};

/// Passed through (mapped in stage 2): they only answer register accesses.
/// PL031 RTC, PL061 GPIO (QEMU's power button) and the CFI flash banks.
pub const PASSTHROUGH: &[&str] = &["arm,pl031", "arm,pl061", "cfi-flash"];

/// Emulated by parkvisor at their host addresses (trapped in stage 2).
pub const EMULATED: &[&str] = &[
    "arm,gic-v3",
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,pl011",
];

/// Children of an emulated node that are withheld all the same: the GICv3
/// ITS reads and writes its tables in memory; a GICv2m frame turns device
/// writes into SPIs the hypervisor does not mediate.
const WITHHELD_CHILDREN: &[&str] = &["arm,gic-v3-its", "arm,gic-v2m-frame"];

/// What the guest gets of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Copied to the guest DTB and mapped in stage 2.
    PassThrough,
    /// Copied to the guest DTB; parkvisor emulates it.
    Emulated,
    /// Not in the guest DTB, not mapped.
    Withheld,
    /// Not a device (no registers or bus window): copied as it is.
    NotADevice,
}

fn any_compatible(node: &FdtNode<'_>, list: &[&str]) -> bool {
    list.iter().any(|c| node.is_compatible(c))
}

/// The treatment of a child of the root (devices and buses of QEMU virt
/// all sit there). A node with `reg` or `ranges` is a device or a bus.
pub fn classify(node: &FdtNode<'_>) -> Treatment {
    if is_memory(node) {
        return Treatment::NotADevice;
    }
    if any_compatible(node, PASSTHROUGH) {
        Treatment::PassThrough
    } else if any_compatible(node, EMULATED) {
        Treatment::Emulated
    } else if node.property("reg").is_some() || node.property("ranges").is_some() {
        Treatment::Withheld
    } else {
        Treatment::NotADevice
    }
}

/// Whether a child of an emulated or passed-through node is withheld.
pub fn is_withheld_child(node: &FdtNode<'_>) -> bool {
    any_compatible(node, WITHHELD_CHILDREN)
}

/// The register ranges of the passed-through devices (for stage 2): the
/// root's children, and a simple bus's (the BCM2711's `/soc`).
pub(crate) fn passthrough_ranges(nodes: &[Located<'_>]) -> Result<Vec<MemRange>, DtbError> {
    let mut out = Vec::new();
    for located in nodes
        .iter()
        .filter(|n| n.depth <= 2 && classify(&n.node) == Treatment::PassThrough)
    {
        out.extend(located.reg()?.into_iter().filter(|r| !r.is_empty()));
    }
    out.sort_unstable();
    Ok(out)
}
