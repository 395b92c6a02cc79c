//! What the isolation suite aims at on each machine. The guest's device
//! tree gives its GIC and console, but not where the devices withheld from
//! it are (parkvisor drops their nodes) nor the GICv2 virtualization frames
//! (not the guest's either): those are this board data, chosen by the
//! DTB's root `compatible`.

use guestlib::{Env, Machine};

/// How a passed-through device shows that it answers.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// The 32-bit register reads this value (a PrimeCell ID, say).
    Equals(u32),
    /// Any value: the load does not abort.
    Any,
}

/// A write through a DMA engine the guest must not reach: the stores that
/// would start it must all abort.
#[derive(Clone, Copy, Debug)]
pub enum DmaEngine {
    /// QEMU's fw_cfg at this base (DMA address at +0x10, big endian).
    FwCfg(u64),
    /// A BCM2835 DMA channel at this base (CS at +0, CONBLK_AD at +4).
    Bcm2835(u64),
}

pub struct Targets {
    /// Device frames a guest never gets (DMA masters): every access aborts.
    pub withheld: &'static [(&'static str, u64)],
    /// Devices passed through: a load answers (none on some boards).
    pub passthrough: &'static [(&'static str, u64, Answer)],
    /// Compatible strings the guest DTB must no longer contain.
    pub dtb_lacks: &'static [&'static str],
    /// Compatible strings it must keep (besides the PL011 and the GIC).
    pub dtb_keeps: &'static [&'static str],
    pub dma: DmaEngine,
    /// GICv2 virtualization frames (GICH, GICV), never mapped for the guest.
    pub gich_gicv: Option<(u64, u64)>,
}

const FW_CFG: u64 = 0x0902_0000;

static QEMU_VIRT: Targets = Targets {
    withheld: &[
        ("fw_cfg data", FW_CFG),
        ("fw_cfg DMA", FW_CFG + 0x10),
        ("virtio-mmio magic", 0x0a00_0000),
        ("last virtio-mmio", 0x0a00_3e00),
        ("platform bus", 0x0c00_0000),
        ("PCIe MMIO", 0x1000_0000),
        ("PCIe PIO", 0x3eff_0000),
        ("PCIe ECAM", 0x3f00_0000),
        ("high PCIe ECAM", 0x40_1000_0000),
        ("high PCIe MMIO", 0x80_0000_0000),
    ],
    passthrough: &[
        ("PL031 RTCDR", 0x0901_0000, Answer::Any),
        // PrimeCell IDs: PL031 is 0x31, PL061 is 0x61.
        ("PL031 PeriphID0", 0x0901_0fe0, Answer::Equals(0x31)),
        ("PL061 PeriphID0", 0x0903_0fe0, Answer::Equals(0x61)),
        ("flash", 0x0, Answer::Any),
    ],
    dtb_lacks: &[
        "qemu,fw-cfg-mmio",
        "virtio,mmio",
        "pci-host-ecam-generic",
        "qemu,platform",
        "arm,gic-v3-its",
        "arm,gic-v2m-frame",
    ],
    dtb_keeps: &["arm,pl031", "arm,pl061", "cfi-flash"],
    dma: DmaEngine::FwCfg(FW_CFG),
    gich_gicv: Some((0x0803_0000, 0x0804_0000)),
};

/// BCM2711 peripherals at their ARM addresses (low-peripheral mode: bus
/// 0x7e000000 is 0xfe000000). The bus masters QEMU's raspi4b models: the
/// DMA controller, the VideoCore mailbox (its property channel writes
/// replies into RAM), both SD host controllers (SDHCI DMA) and the DWC2 USB
/// controller; and devices that are not on the allow-list either: the
/// PM watchdog (parkvisor's own power-off and reset), the system timer,
/// the clock manager and GPIO. The guest gets none of the SoC's devices
/// but the emulated PL011 and GIC.
const BCM_DMA: u64 = 0xfe00_7000;

static BCM2711: Targets = Targets {
    withheld: &[
        ("DMA channel 0", BCM_DMA),
        ("DMA channel 0 CONBLK_AD", BCM_DMA + 0x4),
        ("DMA channel 14", BCM_DMA + 0xe00),
        ("DMA interrupt status", BCM_DMA + 0xfe0),
        ("VideoCore mailbox", 0xfe00_b880),
        ("SDHCI (emmc)", 0xfe30_0000),
        ("SDHCI (emmc2)", 0xfe34_0000),
        ("DWC2 USB", 0xfe98_0000),
        ("PM watchdog RSTC", 0xfe10_001c),
        ("system timer CLO", 0xfe00_3004),
        ("clock manager", 0xfe10_1000),
        ("GPIO GPFSEL0", 0xfe20_0000),
    ],
    passthrough: &[],
    dtb_lacks: &[
        "brcm,bcm2835-dma",
        "brcm,bcm2835-mbox",
        "brcm,bcm2835-sdhci",
        "brcm,bcm2711-emmc2",
        "brcm,bcm2835-usb",
        "brcm,bcm2835-pm-wdt",
        "brcm,bcm2835-system-timer",
        "brcm,bcm2711-cprman",
        "brcm,bcm2711-gpio",
    ],
    dtb_keeps: &[],
    dma: DmaEngine::Bcm2835(BCM_DMA),
    // The GIC-400's GICH and GICV (QEMU raspi4b: GICD 0xff841000, GICC
    // 0xff842000).
    gich_gicv: Some((0xff84_4000, 0xff84_6000)),
};

/// The targets for the machine `env` describes (QEMU virt's for any other).
pub fn targets(env: &Env) -> &'static Targets {
    match env.machine {
        Machine::Bcm2711 => &BCM2711,
        Machine::QemuVirt | Machine::Other => &QEMU_VIRT,
    }
}
