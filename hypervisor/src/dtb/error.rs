//! Why a device tree could not be read or rewritten.

use alloc::string::String;
use core::fmt;

use dtoolkit::error::FdtParseError;

/// Everything that can go wrong while reading the platform DTB or building the
/// guest's. Each variant names the node or property at fault so the message on
/// the serial line is enough to fix the QEMU command line or the board DTB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtbError {
    /// The blob is not a flattened device tree dtoolkit can read.
    Malformed(FdtParseError),
    /// A property exists but its value has the wrong shape.
    BadProperty {
        /// Path of the node holding the property.
        node: String,
        /// Name of the property.
        property: &'static str,
    },
    /// No `device_type = "memory"` node with a non-empty `reg`.
    NoMemory,
    /// `/cpus` has no `cpu@*` node.
    NoCpus,
    /// More CPUs than the hypervisor has per-CPU state for.
    TooManyCpus {
        /// CPU nodes in the DTB.
        found: usize,
        /// What the hypervisor supports ([`super::platform::MAX_CPUS`]).
        max: usize,
    },
    /// No `arm,gic-v3` interrupt controller.
    NoGicV3,
    /// A GICv2 whose `reg` does not list GICH and GICV.
    NoGicVirtualization,
    /// No `/chosen/module@*` with `compatible = "multiboot,kernel"`: QEMU was
    /// started without `-device guest-loader,kernel=...`.
    NoGuestKernel,
    /// Two modules of the same kind (`multiboot,kernel` or
    /// `multiboot,ramdisk`); which one the user meant is ambiguous.
    DuplicateModule(&'static str),
    /// Removing the hypervisor's region from RAM left nothing for the guest.
    NoGuestRam,
    /// A value does not fit the `#address-cells`/`#size-cells` of its parent.
    ValueTooWide {
        /// Path of the node being written.
        node: String,
        /// The value that did not fit.
        value: u64,
    },
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed DTB: {e}"),
            Self::BadProperty { node, property } => {
                write!(f, "DTB: bad `{property}` property in {node}")
            }
            Self::NoMemory => f.write_str("DTB: no memory node"),
            Self::NoCpus => f.write_str("DTB: no /cpus/cpu@* node"),
            Self::TooManyCpus { found, max } => {
                write!(f, "DTB: {found} CPUs, parkvisor supports at most {max}")
            }
            Self::NoGicV3 => f.write_str(
                "DTB: no arm,gic-v3, arm,gic-400 or arm,cortex-a15-gic interrupt controller",
            ),
            Self::NoGicVirtualization => f.write_str(
                "DTB: the GICv2 has no virtualization extensions (reg lacks GICH and GICV)",
            ),
            Self::NoGuestKernel => f.write_str(
                "DTB: no guest kernel (/chosen/module@* \"multiboot,kernel\"); \
                 add -device guest-loader,addr=...,kernel=...",
            ),
            Self::DuplicateModule(kind) => write!(f, "DTB: more than one {kind} module"),
            Self::NoGuestRam => f.write_str("DTB: no RAM left for the guest"),
            Self::ValueTooWide { node, value } => {
                write!(f, "DTB: {value:#x} does not fit the cells of {node}")
            }
        }
    }
}

impl From<FdtParseError> for DtbError {
    fn from(e: FdtParseError) -> Self {
        Self::Malformed(e)
    }
}
