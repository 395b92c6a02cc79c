//! GICD/GICR mediation, portable and host-tested: which guest accesses to
//! the (trapped) distributor and redistributor frames reach the hardware,
//! and how. The arch side (`arch/gic_mmio.rs`) only performs what this
//! module decides. See `docs/gic-mediation.md` for the table.
//!
//! Everything is an allow-list: an access reaches the GIC only if its
//! (frame, offset, width) names an architected register at a width the
//! GICv3 spec permits for it (IHI 0069 §12.1.3: word accesses everywhere,
//! byte accesses to the priority bytes, doubleword or word-half accesses to
//! the 64-bit registers). Anything else (halfword, unaligned, reserved or
//! IMPLEMENTATION DEFINED offsets, frames inside the DTB's GICR range with
//! no CPU behind them) reads as zero and ignores writes.

use crate::mem_range::MemRange;

/// GICR layout (GICv3: two 64 KiB frames per CPU, RD_base then SGI_base).
pub const GICR_FRAME: u64 = 0x2_0000;
pub const GICR_SGI_BASE: u64 = 0x1_0000;

/// INTIDs 0..32 the hypervisor keeps for itself (its kick and stop SGIs and
/// the maintenance PPI): the guest may not enable, disable, pend, unpend,
/// activate, deactivate, regroup, reprioritise or reconfigure them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved(pub u32);

/// The SGIs (INTIDs 0..15). Guest SGIs are virtual (trapped ICC_SGI1R
/// writes): a physical SGI pended or activated through GICR would reach EL2
/// and end up hardware-linked in a list register, which the architecture
/// forbids for SGIs. So the guest may not pend or activate any physical SGI.
const ALL_SGIS: u32 = 0xffff;

/// Where a trapped GIC address lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicFrame {
    /// The distributor, at this offset.
    Distributor(u64),
    /// CPU `cpu`'s redistributor pair, at this offset (< [`GICR_FRAME`]).
    Redistributor { cpu: usize, offset: u64 },
    /// Inside a GICR region of the DTB but past the CPUs it holds: nothing
    /// answers there (QEMU aborts an access from EL2).
    NoCpu,
}

/// The redistributor regions of the DTB, in order, and the CPUs behind
/// them: CPU *i* has the *i*-th frame pair counting through the regions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GicLayout {
    pub distributor: MemRange,
    pub regions: alloc::vec::Vec<MemRange>,
    pub cpus: usize,
}

impl GicLayout {
    /// Frame pairs the regions can hold, in total.
    pub fn capacity(&self) -> usize {
        self.regions
            .iter()
            .map(|r| (r.size / GICR_FRAME) as usize)
            .sum()
    }

    /// Base of CPU `cpu`'s redistributor, if the regions hold it.
    pub fn redistributor_base(&self, cpu: usize) -> Option<u64> {
        let mut left = cpu;
        for r in &self.regions {
            let frames = (r.size / GICR_FRAME) as usize;
            if left < frames {
                return Some(r.base + left as u64 * GICR_FRAME);
            }
            left -= frames;
        }
        None
    }

    /// Whether `ipa` is a GIC register address (any of the frames).
    pub fn owns(&self, ipa: u64) -> bool {
        self.distributor.contains(ipa) || self.regions.iter().any(|r| r.contains(ipa))
    }

    /// Which frame `ipa` is in; `None` if it is not a GIC address.
    pub fn locate(&self, ipa: u64) -> Option<GicFrame> {
        if self.distributor.contains(ipa) {
            return Some(GicFrame::Distributor(ipa - self.distributor.base));
        }
        let mut first_cpu = 0usize;
        for r in &self.regions {
            let frames = (r.size / GICR_FRAME) as usize;
            if r.contains(ipa) {
                let pair = ((ipa - r.base) / GICR_FRAME) as usize;
                let cpu = first_cpu + pair;
                return Some(if pair < frames && cpu < self.cpus {
                    GicFrame::Redistributor {
                        cpu,
                        offset: (ipa - r.base) % GICR_FRAME,
                    }
                } else {
                    GicFrame::NoCpu
                });
            }
            first_cpu += frames;
        }
        None
    }
}

/// What to do with a guest load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAction {
    /// Answer this value without touching the GIC.
    Value(u64),
    /// Read the hardware at the same address and width, answer it ANDed
    /// with `mask` (hides the hypervisor's own interrupts' bits).
    Hardware { mask: u64 },
}

/// What to do with a guest store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Drop it.
    Ignore,
    /// Write `value` to the same address and width. If `keep` is non-zero,
    /// first read the register and keep its bits under `keep`
    /// (read-modify-write of byte or 2-bit fields of reserved INTIDs).
    Hardware { value: u64, keep: u64 },
}

/// How a register is treated (the rows of `docs/gic-mediation.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Treatment {
    /// Read as zero, writes ignored (reserved, optional, LPI/ITS, message
    /// SPIs, non-secure-access, legacy and affinity-routing-disabled views).
    RazWi,
    /// Hardware value read, writes ignored.
    ReadOnly,
    /// Both ways, unchanged (SPI configuration: the guest owns every SPI).
    Pass,
    /// GICD_CTLR: group 1 and affinity routing forced on.
    DistributorControl,
    /// GICR_WAKER: reads "awake", writes ignored.
    Waker,
    /// One bit per INTID 0..31 (set/clear enable/pending/active): the
    /// `protected` bits are masked out of writes and reads.
    PrivateBits { protected: u32 },
    /// GICR_IPRIORITYR<n>: one byte per INTID, reserved bytes kept.
    PrivatePriority { first_intid: u32 },
    /// GICR_ICFGR1: two bits per PPI, reserved fields kept.
    PpiConfig,
}

/// Widths the architecture allows for a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Widths {
    /// A 32-bit register: word accesses.
    Word,
    /// Byte-accessible 32-bit register (priority bytes).
    ByteOrWord,
    /// A 64-bit register: doubleword, or a word to either half.
    Doubleword,
}

impl Widths {
    fn allow(self, offset: u64, size: u8) -> bool {
        match (self, size) {
            (_, 4) | (Widths::ByteOrWord, 1) => offset.is_multiple_of(u64::from(size)),
            (Widths::Doubleword, 8) => offset.is_multiple_of(8),
            _ => false,
        }
    }
}

/// A register block: `[start, start+len)` with its widths and treatment.
struct Block {
    start: u64,
    len: u64,
    widths: Widths,
    treatment: Treatment,
}

const fn block(start: u64, len: u64, widths: Widths, treatment: Treatment) -> Block {
    Block {
        start,
        len,
        widths,
        treatment,
    }
}

use Treatment::*;
use Widths::*;

/// GICD. With affinity routing the words/bytes for INTIDs 0..31 are RAZ/WI
/// (their GICR copies count), so those rows start at INTID 32.
const DISTRIBUTOR: &[Block] = &[
    block(0x0000, 4, Word, DistributorControl),
    block(0x0004, 12, Word, ReadOnly),       // TYPER, IIDR, TYPER2
    block(0x0010, 4, Word, RazWi),           // STATUSR
    block(0x0040, 0x18, Word, RazWi),        // SETSPI/CLRSPI_(N)SR: no message-based SPIs
    block(0x0084, 0x7c, Word, ReadOnly),     // IGROUPR<n>, n >= 1
    block(0x0104, 0x7c, Word, Pass),         // ISENABLER<n>
    block(0x0184, 0x7c, Word, Pass),         // ICENABLER<n>
    block(0x0204, 0x7c, Word, Pass),         // ISPENDR<n>
    block(0x0284, 0x7c, Word, Pass),         // ICPENDR<n>
    block(0x0304, 0x7c, Word, Pass),         // ISACTIVER<n>
    block(0x0384, 0x7c, Word, Pass),         // ICACTIVER<n>
    block(0x0420, 0x3e0, ByteOrWord, Pass),  // IPRIORITYR<n>, INTID 32..1019
    block(0x0800, 0x400, ByteOrWord, RazWi), // ITARGETSR<n>: legacy routing
    block(0x0c08, 0xf8, Word, Pass),         // ICFGR<n>, n >= 2
    block(0x0d04, 0x7c, Word, ReadOnly),     // IGRPMODR<n>, n >= 1
    block(0x0e00, 0x100, Word, RazWi),       // NSACR<n>
    block(0x0f00, 0x30, Word, RazWi),        // SGIR, C/SPENDSGIR: legacy SGIs
    block(0x6100, 0x1ee0, Doubleword, Pass), // IROUTER<n>, INTID 32..1019
    block(0xffd0, 0x30, Word, ReadOnly),     // identification registers
];

/// One CPU's RD_base and SGI_base frames.
const fn redistributor(reserved: Reserved) -> [Block; 21] {
    let own = reserved.0;
    [
        block(0x0000, 4, Word, ReadOnly), // CTLR: no LPIs, no DPG/UWP games
        block(0x0004, 4, Word, ReadOnly), // IIDR
        block(0x0008, 8, Doubleword, ReadOnly), // TYPER
        block(0x0014, 4, Word, Waker),
        block(0x0070, 16, Doubleword, RazWi), // PROPBASER, PENDBASER: no LPIs
        block(0xffd0, 0x30, Word, ReadOnly),  // identification registers
        block(GICR_SGI_BASE + 0x080, 4, Word, ReadOnly), // IGROUPR0
        block(
            GICR_SGI_BASE + 0x100,
            4,
            Word,
            PrivateBits { protected: own },
        ), // ISENABLER0
        block(
            GICR_SGI_BASE + 0x180,
            4,
            Word,
            PrivateBits { protected: own },
        ), // ICENABLER0
        block(
            GICR_SGI_BASE + 0x200,
            4,
            Word,
            PrivateBits {
                protected: own | ALL_SGIS,
            },
        ), // ISPENDR0
        block(
            GICR_SGI_BASE + 0x280,
            4,
            Word,
            PrivateBits { protected: own },
        ), // ICPENDR0
        block(
            GICR_SGI_BASE + 0x300,
            4,
            Word,
            PrivateBits {
                protected: own | ALL_SGIS,
            },
        ), // ISACTIVER0
        block(
            GICR_SGI_BASE + 0x380,
            4,
            Word,
            PrivateBits { protected: own },
        ), // ICACTIVER0
        block(
            GICR_SGI_BASE + 0x400,
            4,
            ByteOrWord,
            PrivatePriority { first_intid: 0 },
        ),
        block(
            GICR_SGI_BASE + 0x404,
            4,
            ByteOrWord,
            PrivatePriority { first_intid: 4 },
        ),
        block(
            GICR_SGI_BASE + 0x408,
            8,
            ByteOrWord,
            PrivatePriority { first_intid: 8 },
        ),
        block(
            GICR_SGI_BASE + 0x410,
            16,
            ByteOrWord,
            PrivatePriority { first_intid: 16 },
        ),
        block(GICR_SGI_BASE + 0xc00, 4, Word, ReadOnly), // ICFGR0 (SGIs: fixed edge)
        block(GICR_SGI_BASE + 0xc04, 4, Word, PpiConfig), // ICFGR1
        block(GICR_SGI_BASE + 0xd00, 4, Word, ReadOnly), // IGRPMODR0
        block(GICR_SGI_BASE + 0xe00, 4, Word, RazWi),    // NSACR
    ]
}

/// The decisions for one GIC, given the hypervisor's reserved INTIDs.
pub struct GicFilter {
    reserved: Reserved,
    redistributor: [Block; 21],
}

impl GicFilter {
    pub const fn new(reserved: Reserved) -> Self {
        Self {
            reserved,
            redistributor: redistributor(reserved),
        }
    }

    /// The register block and treatment of an access, or `None` (RAZ/WI).
    fn classify(&self, frame: GicFrame, size: u8) -> Option<(Treatment, u64)> {
        let (blocks, offset): (&[Block], u64) = match frame {
            GicFrame::Distributor(o) => (DISTRIBUTOR, o),
            GicFrame::Redistributor { offset, .. } => (&self.redistributor, offset),
            GicFrame::NoCpu => return None,
        };
        let b = blocks
            .iter()
            .find(|b| offset >= b.start && offset - b.start < b.len)?;
        if !b.widths.allow(offset, size) || offset - b.start + u64::from(size) > b.len {
            return None;
        }
        Some((b.treatment, offset - b.start))
    }

    /// What a guest load of `size` bytes at `frame` gets.
    pub fn read(&self, frame: GicFrame, size: u8) -> ReadAction {
        let full = width_mask(size);
        match self.classify(frame, size) {
            None | Some((RazWi, _)) => ReadAction::Value(0),
            Some((Waker, _)) => ReadAction::Value(GICR_WAKER_AWAKE),
            Some((PrivateBits { protected }, _)) => ReadAction::Hardware {
                mask: !u64::from(protected) & full,
            },
            Some(_) => ReadAction::Hardware { mask: full },
        }
    }

    /// What a guest store of `value` (`size` bytes) at `frame` becomes.
    pub fn write(&self, frame: GicFrame, size: u8, value: u64) -> WriteAction {
        let value = value & width_mask(size);
        let Some((treatment, within)) = self.classify(frame, size) else {
            return WriteAction::Ignore;
        };
        let pass = |value, keep| WriteAction::Hardware { value, keep };
        match treatment {
            RazWi | ReadOnly | Waker => WriteAction::Ignore,
            Pass => pass(value, 0),
            DistributorControl => pass(value | GICD_CTLR_ENABLE_GRP1 | GICD_CTLR_ARE, 0),
            PrivateBits { protected } => pass(value & !u64::from(protected), 0),
            PrivatePriority { first_intid } => {
                let first = first_intid + within as u32;
                let keep = (0..u32::from(size))
                    .filter(|i| self.reserved.0 >> (first + i) & 1 == 1)
                    .fold(0u64, |k, i| k | 0xff << (8 * i));
                pass(value & !keep, keep)
            }
            PpiConfig => {
                // ICFGR1 field n (bits 2n+1:2n) configures PPI INTID 16 + n.
                let keep = (0..16u32)
                    .filter(|n| self.reserved.0 >> (16 + n) & 1 == 1)
                    .fold(0u64, |k, n| k | 0b11 << (2 * n));
                pass(value & !keep, keep)
            }
        }
    }
}

const GICD_CTLR_ENABLE_GRP1: u64 = 1 << 1;
const GICD_CTLR_ARE: u64 = 1 << 4;

/// The guest's view of GICR_WAKER: awake, since it cannot put us to sleep.
pub const GICR_WAKER_AWAKE: u64 = 0;

fn width_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(size))) - 1
    }
}

/// Merges a filtered write with the register's current value (`keep` bits
/// from `current`).
pub fn merge(action_value: u64, keep: u64, current: u64) -> u64 {
    action_value & !keep | current & keep
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::vec;

    /// The hypervisor's reservation (SGIs 8, 9 and PPI 25), as in arch/gic.rs.
    const OWN: Reserved = Reserved(1 << 8 | 1 << 9 | 1 << 25);
    const F: GicFilter = GicFilter::new(OWN);
    #[allow(non_snake_case)]
    fn CPU1(offset: u64) -> GicFrame {
        GicFrame::Redistributor { cpu: 1, offset }
    }
    const SGI: u64 = GICR_SGI_BASE;

    fn w(frame: GicFrame, size: u8, value: u64) -> WriteAction {
        F.write(frame, size, value)
    }

    fn hw(value: u64) -> WriteAction {
        WriteAction::Hardware { value, keep: 0 }
    }

    /// QEMU virt at -smp 126: 123 frames in the first region, the rest in a
    /// second one at 256 GiB.
    fn qemu_126() -> GicLayout {
        GicLayout {
            distributor: MemRange::new(0x800_0000, 0x1_0000),
            regions: vec![
                MemRange::new(0x80a_0000, 0xf6_0000),
                MemRange::new(0x40_0000_0000, 0x400_0000),
            ],
            cpus: 126,
        }
    }

    #[test]
    fn layout_spans_every_region() {
        let l = qemu_126();
        assert_eq!(l.capacity(), 123 + 512);
        assert_eq!(l.redistributor_base(0), Some(0x80a_0000));
        assert_eq!(
            l.redistributor_base(122),
            Some(0x80a_0000 + 122 * GICR_FRAME)
        );
        assert_eq!(
            l.redistributor_base(123),
            Some(0x40_0000_0000),
            "cpu123 opens the second region"
        );
        assert_eq!(
            l.redistributor_base(125),
            Some(0x40_0000_0000 + 2 * GICR_FRAME)
        );
        assert_eq!(l.redistributor_base(635), None);
        assert_eq!(l.locate(0x800_0004), Some(GicFrame::Distributor(4)));
        assert_eq!(
            l.locate(0x80a_0000 + GICR_FRAME + 0x1_0100),
            Some(CPU1(0x1_0100))
        );
        assert_eq!(
            l.locate(0x40_0000_0000 + 2 * GICR_FRAME + 8),
            Some(GicFrame::Redistributor {
                cpu: 125,
                offset: 8
            })
        );
        assert_eq!(
            l.locate(0x40_0000_0000 + 3 * GICR_FRAME + 8),
            Some(GicFrame::NoCpu)
        );
        assert_eq!(l.locate(0x900_0000), None);
        assert!(l.owns(0x40_03ff_fffc) && !l.owns(0x40_0400_0000));
    }

    #[test]
    fn frames_past_the_last_cpu_are_raz_wi() {
        // The panic: one load at 0x080C_0008 with 1 vCPU.
        let l = GicLayout {
            cpus: 1,
            ..qemu_126()
        };
        let f = l.locate(0x080c_0008).unwrap();
        assert_eq!(f, GicFrame::NoCpu);
        for size in [1, 2, 4, 8] {
            assert_eq!(F.read(f, size), ReadAction::Value(0));
            assert_eq!(F.write(f, size, u64::MAX), WriteAction::Ignore);
        }
    }

    #[test]
    fn the_isactiver_exploits_are_filtered() {
        // Bit 8: CPU_ON never arrives; bit 9: FAST_STOP cannot stop the CPU;
        // bit 25: no maintenance interrupt. Other CPUs' frames alike.
        for bit in [8, 9, 25] {
            assert_eq!(
                w(CPU1(SGI + 0x300), 4, 1 << bit),
                hw(0),
                "ISACTIVER0 bit {bit}"
            );
            assert_eq!(
                w(CPU1(SGI + 0x200), 4, 1 << bit),
                hw(0),
                "ISPENDR0 bit {bit}"
            );
            assert_eq!(
                w(CPU1(SGI + 0x180), 4, 1 << bit),
                hw(0),
                "ICENABLER0 bit {bit}"
            );
            assert_eq!(
                w(CPU1(SGI + 0x380), 4, 1 << bit),
                hw(0),
                "ICACTIVER0 bit {bit}"
            );
            assert_eq!(
                w(CPU1(SGI + 0x280), 4, 1 << bit),
                hw(0),
                "ICPENDR0 bit {bit}"
            );
            assert_eq!(
                w(CPU1(SGI + 0x100), 4, 1 << bit),
                hw(0),
                "ISENABLER0 bit {bit}"
            );
        }
        // The guest's own PPIs go through; physical SGIs cannot be pended.
        assert_eq!(w(CPU1(SGI + 0x100), 4, u64::MAX), hw(0xfdff_fcff));
        assert_eq!(w(CPU1(SGI + 0x200), 4, 0xffff_ffff), hw(0xfdff_0000));
        assert_eq!(w(CPU1(SGI + 0x300), 4, 0xffff_ffff), hw(0xfdff_0000));
        assert_eq!(
            F.read(CPU1(SGI + 0x300), 4),
            ReadAction::Hardware { mask: 0xfdff_0000 }
        );
        assert_eq!(
            F.read(CPU1(SGI + 0x100), 4),
            ReadAction::Hardware { mask: 0xfdff_fcff }
        );
    }

    #[test]
    fn narrow_and_wide_accesses_to_filtered_registers_are_raz_wi() {
        for offset in [
            0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0xc04, 0x080, 0xd00,
        ] {
            for (o, size) in [(0, 1), (1, 1), (0, 2), (2, 2), (0, 8), (2, 4)] {
                let f = CPU1(SGI + offset + o);
                assert_eq!(
                    w(f, size, u64::MAX),
                    WriteAction::Ignore,
                    "{offset:#x}+{o} size {size}"
                );
                assert_eq!(
                    F.read(f, size),
                    ReadAction::Value(0),
                    "{offset:#x}+{o} size {size}"
                );
            }
        }
        // A doubleword over ICENABLER0..(reserved) and ISENABLER0+ICENABLER0 neighbours.
        assert_eq!(w(CPU1(SGI + 0x17c), 8, u64::MAX), WriteAction::Ignore);
        assert_eq!(
            w(GicFrame::Distributor(0), 8, 0),
            WriteAction::Ignore,
            "GICD_CTLR as doubleword"
        );
        assert_eq!(w(GicFrame::Distributor(0), 2, 0), WriteAction::Ignore);
        assert_eq!(w(GicFrame::Distributor(0), 1, 0), WriteAction::Ignore);
    }

    #[test]
    fn priorities_keep_the_reserved_bytes() {
        // IPRIORITYR2 holds INTIDs 8..11: bytes 0 and 1 keep the hardware value.
        assert_eq!(
            w(CPU1(SGI + 0x408), 4, 0xa0a0_a0a0),
            WriteAction::Hardware {
                value: 0xa0a0_0000,
                keep: 0xffff
            }
        );
        assert_eq!(merge(0xa0a0_0000, 0xffff, 0x8080_8080), 0xa0a0_8080);
        // Byte to INTID 9: nothing of the guest's value survives; INTID 10 passes.
        assert_eq!(
            w(CPU1(SGI + 0x409), 1, 0),
            WriteAction::Hardware {
                value: 0,
                keep: 0xff
            }
        );
        assert_eq!(w(CPU1(SGI + 0x40a), 1, 0x40), hw(0x40));
        // IPRIORITYR6 holds INTIDs 24..27: byte 1 (INTID 25) kept.
        assert_eq!(
            w(CPU1(SGI + 0x418), 4, 0),
            WriteAction::Hardware {
                value: 0,
                keep: 0xff00
            }
        );
        // Halfword and doubleword priority accesses are not architected.
        assert_eq!(w(CPU1(SGI + 0x408), 2, 0), WriteAction::Ignore);
        assert_eq!(w(CPU1(SGI + 0x408), 8, 0), WriteAction::Ignore);
        // Past IPRIORITYR7 is reserved (no extended PPIs).
        assert_eq!(w(CPU1(SGI + 0x420), 4, 0), WriteAction::Ignore);
    }

    #[test]
    fn ppi_configuration_keeps_the_maintenance_interrupt() {
        // ICFGR1 field 9 (bits 19:18) is PPI 25.
        assert_eq!(
            w(CPU1(SGI + 0xc04), 4, 0xffff_ffff),
            WriteAction::Hardware {
                value: 0xfff3_ffff,
                keep: 0b11 << 18
            }
        );
        assert_eq!(
            w(CPU1(SGI + 0xc00), 4, 0),
            WriteAction::Ignore,
            "ICFGR0 (SGIs)"
        );
    }

    #[test]
    fn group_and_power_registers_are_not_the_guests() {
        for offset in [
            SGI + 0x080,
            SGI + 0xd00,
            SGI + 0xe00,
            0x0000,
            0x0014,
            0x0070,
            0x0078,
            0x0040,
            0x00a0,
        ] {
            assert_eq!(w(CPU1(offset), 4, 0), WriteAction::Ignore, "{offset:#x}");
            assert_eq!(
                w(CPU1(offset), 4, u64::MAX),
                WriteAction::Ignore,
                "{offset:#x}"
            );
        }
        assert_eq!(
            F.read(CPU1(0x14), 4),
            ReadAction::Value(0),
            "WAKER reads awake"
        );
        assert_eq!(F.read(CPU1(0x70), 8), ReadAction::Value(0), "PROPBASER RAZ");
        assert_eq!(F.read(CPU1(0x78), 8), ReadAction::Value(0), "PENDBASER RAZ");
        assert_eq!(
            F.read(CPU1(SGI + 0xe00), 4),
            ReadAction::Value(0),
            "NSACR RAZ"
        );
        assert_eq!(
            F.read(CPU1(0x8), 8),
            ReadAction::Hardware { mask: u64::MAX },
            "TYPER"
        );
        assert_eq!(
            F.read(CPU1(0xc), 4),
            ReadAction::Hardware { mask: 0xffff_ffff },
            "TYPER high half"
        );
        assert_eq!(
            F.read(CPU1(0xffe8), 4),
            ReadAction::Hardware { mask: 0xffff_ffff },
            "PIDR2"
        );
        // Reserved and IMPLEMENTATION DEFINED space: RAZ/WI.
        for offset in [
            0x0030,
            0x8000,
            0xc000,
            0xffcc,
            SGI + 0x0004,
            SGI + 0x0f00,
            SGI + 0xc008,
            SGI + 0xfffc,
        ] {
            assert_eq!(F.read(CPU1(offset), 4), ReadAction::Value(0), "{offset:#x}");
            assert_eq!(w(CPU1(offset), 4, 1), WriteAction::Ignore, "{offset:#x}");
        }
    }

    #[test]
    fn distributor_rows() {
        let d = GicFrame::Distributor;
        assert_eq!(w(d(0), 4, 0), hw(0x12), "GICD_CTLR keeps group 1 and ARE");
        assert_eq!(
            w(d(0x104), 4, 0xffff_ffff),
            hw(0xffff_ffff),
            "SPI enables are the guest's"
        );
        assert_eq!(
            w(d(0x100), 4, 0xffff_ffff),
            WriteAction::Ignore,
            "ISENABLER0 is RAZ/WI with ARE"
        );
        assert_eq!(w(d(0x300), 4, 0xffff_ffff), WriteAction::Ignore);
        assert_eq!(w(d(0x084), 4, 0), WriteAction::Ignore, "SPIs stay group 1");
        assert_eq!(w(d(0x421), 1, 0x40), hw(0x40));
        assert_eq!(
            w(d(0x408), 1, 0x40),
            WriteAction::Ignore,
            "GICD priority of INTID 8"
        );
        assert_eq!(w(d(0x6100), 8, 0x100), hw(0x100), "IROUTER32");
        assert_eq!(w(d(0x6104), 4, 0x1), hw(0x1), "IROUTER32 high word");
        assert_eq!(
            w(d(0x6000), 8, 0),
            WriteAction::Ignore,
            "IROUTER for INTID 0..31"
        );
        assert_eq!(w(d(0x6102), 2, 0), WriteAction::Ignore);
        assert_eq!(w(d(0x0040), 4, 40), WriteAction::Ignore, "SETSPI_NSR");
        assert_eq!(
            w(d(0x0f00), 4, 0x0100_0008),
            WriteAction::Ignore,
            "GICD_SGIR"
        );
        assert_eq!(w(d(0x0800), 4, 0), WriteAction::Ignore, "ITARGETSR");
        assert_eq!(w(d(0x0e08), 4, 0), WriteAction::Ignore, "NSACR");
        assert_eq!(
            w(d(0x0d04), 4, 0xffff_ffff),
            WriteAction::Ignore,
            "IGRPMODR"
        );
        assert_eq!(
            F.read(d(0x4), 4),
            ReadAction::Hardware { mask: 0xffff_ffff }
        );
        assert_eq!(F.read(d(0xc000), 4), ReadAction::Value(0));
        assert_eq!(F.read(d(0x421), 1), ReadAction::Hardware { mask: 0xff });
    }

    #[test]
    fn every_offset_and_width_is_decided_without_touching_reserved_bits() {
        // Exhaustive over both redistributor frames: no write that reaches
        // the hardware may set or clear a reserved INTID's state.
        for offset in 0..GICR_FRAME {
            for size in [1u8, 2, 4, 8] {
                let f = CPU1(offset);
                if let WriteAction::Hardware { value, keep } = w(f, size, u64::MAX) {
                    let bitmap = (SGI + 0x100..SGI + 0x400).contains(&offset);
                    if bitmap {
                        assert_eq!(value & u64::from(OWN.0), 0, "{offset:#x}/{size}");
                    }
                    assert_eq!(value & keep, 0);
                }
            }
        }
    }
}
