//! GICv2 distributor mediation, portable and host-tested: which guest
//! accesses to the (trapped) GICD frame of a GICv2 reach the hardware, and
//! how; GICD_SGIR writes become virtual SGIs. The arch side
//! (`arch::gicv2`) only performs what this module decides. See
//! `docs/gic-mediation.md` for the table.
//!
//! An allow-list, as on GICv3 (`crate::gic_filter`): an access reaches
//! the GIC only if its offset names an architected GICv2 register (IHI 0048B
//! §4.3) at a width the spec permits for it (word everywhere, byte for the
//! priority and target bytes). Anything else -- halfwords, unaligned,
//! doublewords, reserved and IMPLEMENTATION DEFINED offsets, everything
//! past the 4 KiB register map -- reads as zero and ignores writes.

use crate::gic_filter::{ReadAction, Reserved, WriteAction};

/// GICv2 physical SGIs are the hypervisor's (the guest's are virtual): the
/// guest may not pend or activate any.
const ALL_SGIS: u32 = 0xffff;

/// GICD_CTLR bits kept set: group 0 and group 1 forwarding (the
/// hypervisor's own SGIs and PPIs go through the distributor).
const CTLR_ENABLE: u64 = 0b11;

/// What to do with a guest store to the GICv2 distributor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistributorWrite {
    /// The same as on GICv3 (ignore, or write through, keeping `keep`).
    Filtered(WriteAction),
    /// A GICD_SGIR write: deliver these virtual SGIs instead.
    Sgi(SgiWrite),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    RazWi,
    ReadOnly,
    Pass,
    Control,
    /// One bit per INTID 0..31, `protected` masked out both ways.
    PrivateBits {
        protected: u32,
    },
    /// GICD_IPRIORITYR0..7: one byte per INTID, reserved bytes kept.
    PrivatePriority,
    /// GICD_ICFGR1: two bits per PPI, reserved fields kept.
    PpiConfig,
    SoftwareInterrupt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Widths {
    Word,
    ByteOrWord,
}

struct Row {
    start: u64,
    len: u64,
    widths: Widths,
    rule: Rule,
}

const fn row(start: u64, len: u64, widths: Widths, rule: Rule) -> Row {
    Row {
        start,
        len,
        widths,
        rule,
    }
}

/// The GICv2 distributor's register map, given the reserved INTIDs.
const fn rows(own: u32) -> [Row; 28] {
    use Rule::*;
    use Widths::*;
    [
        row(0x000, 4, Word, Control),
        row(0x004, 8, Word, ReadOnly),    // TYPER, IIDR
        row(0x080, 0x80, Word, ReadOnly), // IGROUPR<n>: everything group 0
        row(0x100, 4, Word, PrivateBits { protected: own }), // ISENABLER0
        row(0x104, 0x7c, Word, Pass),
        row(0x180, 4, Word, PrivateBits { protected: own }), // ICENABLER0
        row(0x184, 0x7c, Word, Pass),
        row(
            0x200,
            4,
            Word,
            PrivateBits {
                protected: own | ALL_SGIS,
            },
        ), // ISPENDR0
        row(0x204, 0x7c, Word, Pass),
        row(0x280, 4, Word, PrivateBits { protected: own }), // ICPENDR0
        row(0x284, 0x7c, Word, Pass),
        row(
            0x300,
            4,
            Word,
            PrivateBits {
                protected: own | ALL_SGIS,
            },
        ), // ISACTIVER0
        row(0x304, 0x7c, Word, Pass),
        row(0x380, 4, Word, PrivateBits { protected: own }), // ICACTIVER0
        row(0x384, 0x7c, Word, Pass),
        row(0x400, 0x20, ByteOrWord, PrivatePriority), // IPRIORITYR0..7
        row(0x420, 0x3e0, ByteOrWord, Pass),           // IPRIORITYR8..
        row(0x800, 0x20, ByteOrWord, ReadOnly),        // ITARGETSR0..7: banked, fixed
        row(0x820, 0x3e0, ByteOrWord, Pass),           // ITARGETSR8..: SPI targets
        row(0xc00, 4, Word, ReadOnly),                 // ICFGR0: SGIs
        row(0xc04, 4, Word, PpiConfig),                // ICFGR1
        row(0xc08, 0xf8, Word, Pass),                  // ICFGR2..
        row(0xd00, 0x100, Word, RazWi),                // IMPLEMENTATION DEFINED (PPISR, SPISR)
        row(0xe00, 0x100, Word, RazWi),                // NSACR
        row(0xf00, 4, Word, SoftwareInterrupt),        // SGIR
        row(0xf10, 0x10, ByteOrWord, RazWi),           // CPENDSGIR: physical SGIs
        row(0xf20, 0x10, ByteOrWord, RazWi),           // SPENDSGIR
        row(0xfd0, 0x30, Word, ReadOnly),              // identification registers
    ]
}

/// The decisions for one GICv2 distributor.
pub struct DistributorFilter {
    reserved: Reserved,
    rows: [Row; 28],
}

impl DistributorFilter {
    pub const fn new(reserved: Reserved) -> Self {
        Self {
            reserved,
            rows: rows(reserved.0),
        }
    }

    fn classify(&self, offset: u64, size: u8) -> Option<(Rule, u64)> {
        let r = self
            .rows
            .iter()
            .find(|r| offset >= r.start && offset - r.start < r.len)?;
        let width_ok = match (r.widths, size) {
            (_, 4) | (Widths::ByteOrWord, 1) => offset.is_multiple_of(u64::from(size)),
            _ => false,
        };
        if !width_ok || offset - r.start + u64::from(size) > r.len {
            return None;
        }
        Some((r.rule, offset - r.start))
    }

    /// What a guest load of `size` bytes at `offset` gets.
    pub fn read(&self, offset: u64, size: u8) -> ReadAction {
        let full = width_mask(size);
        match self.classify(offset, size) {
            None | Some((Rule::RazWi | Rule::SoftwareInterrupt, _)) => ReadAction::Value(0),
            Some((Rule::PrivateBits { protected }, _)) => ReadAction::Hardware {
                mask: !u64::from(protected) & full,
            },
            Some(_) => ReadAction::Hardware { mask: full },
        }
    }

    /// What a guest store of `value` (`size` bytes) at `offset` becomes.
    pub fn write(&self, offset: u64, size: u8, value: u64) -> DistributorWrite {
        let value = value & width_mask(size);
        let ignore = DistributorWrite::Filtered(WriteAction::Ignore);
        let pass = |value, keep| DistributorWrite::Filtered(WriteAction::Hardware { value, keep });
        let Some((rule, within)) = self.classify(offset, size) else {
            return ignore;
        };
        match rule {
            Rule::RazWi | Rule::ReadOnly => ignore,
            Rule::Pass => pass(value, 0),
            Rule::Control => pass(value | CTLR_ENABLE, 0),
            Rule::PrivateBits { protected } => pass(value & !u64::from(protected), 0),
            Rule::PrivatePriority => {
                let first = within as u32;
                let keep = (0..u32::from(size))
                    .filter(|i| self.reserved.0 >> (first + i) & 1 == 1)
                    .fold(0u64, |k, i| k | 0xff << (8 * i));
                pass(value & !keep, keep)
            }
            Rule::PpiConfig => {
                let keep = (0..16u32)
                    .filter(|n| self.reserved.0 >> (16 + n) & 1 == 1)
                    .fold(0u64, |k, n| k | 0b11 << (2 * n));
                pass(value & !keep, keep)
            }
            Rule::SoftwareInterrupt => DistributorWrite::Sgi(SgiWrite::decode(value as u32)),
        }
    }
}

fn width_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(size))) - 1
    }
}

/// A decoded GICD_SGIR write: SGI INTID [3:0], CPUTargetList [23:16]
/// (CPU interface masks), TargetListFilter [25:24].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgiWrite {
    pub intid: u8,
    filter: u8,
    list: u8,
}

impl SgiWrite {
    pub fn decode(value: u32) -> Self {
        Self {
            intid: (value & 0xf) as u8,
            filter: (value >> 24 & 0b11) as u8,
            list: (value >> 16) as u8,
        }
    }

    /// The targeted vCPUs: `masks[i]` is CPU *i*'s interface mask (read
    /// from its banked GICD_ITARGETSR0 at boot, not assumed to be
    /// `1 << i`). Filter 0: the listed interfaces; 1: every CPU but the
    /// sender; 2: the sender; 3 (reserved): nobody.
    pub fn targets<'m>(&self, sender: usize, masks: &'m [u8]) -> impl Iterator<Item = usize> + 'm {
        let me = *self;
        (0..masks.len()).filter(move |&i| match me.filter {
            0 => masks[i] & me.list != 0,
            1 => i != sender,
            2 => i == sender,
            _ => false,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// SGIs 8, 9, the maintenance PPI 25 and the tick PPI 26.
    const OWN: Reserved = Reserved(1 << 8 | 1 << 9 | 1 << 25 | 1 << 26);
    const F: DistributorFilter = DistributorFilter::new(OWN);

    fn hw(value: u64) -> DistributorWrite {
        DistributorWrite::Filtered(WriteAction::Hardware { value, keep: 0 })
    }
    const IGNORE: DistributorWrite = DistributorWrite::Filtered(WriteAction::Ignore);

    #[test]
    fn the_hypervisors_interrupts_cannot_be_touched() {
        for (offset, name) in [
            (0x100, "ISENABLER0"),
            (0x180, "ICENABLER0"),
            (0x200, "ISPENDR0"),
            (0x280, "ICPENDR0"),
            (0x300, "ISACTIVER0"),
            (0x380, "ICACTIVER0"),
        ] {
            for bit in [8, 9, 25, 26] {
                assert_eq!(F.write(offset, 4, 1 << bit), hw(0), "{name} bit {bit}");
            }
            let ReadAction::Hardware { mask } = F.read(offset, 4) else {
                panic!("{name} reads the hardware");
            };
            assert_eq!(mask & u64::from(OWN.0), 0, "{name} hides the bits");
        }
        assert_eq!(F.write(0x100, 4, u64::MAX), hw(0xf9ff_fcff));
        assert_eq!(
            F.write(0x200, 4, u64::MAX),
            hw(0xf9ff_0000),
            "no SGI pended"
        );
        assert_eq!(
            F.write(0x300, 4, u64::MAX),
            hw(0xf9ff_0000),
            "no SGI activated"
        );
        assert_eq!(
            F.write(0x104, 4, u64::MAX),
            hw(0xffff_ffff),
            "SPIs are the guest's"
        );
    }

    #[test]
    fn priorities_keep_the_reserved_bytes() {
        // IPRIORITYR2 = INTIDs 8..11.
        assert_eq!(
            F.write(0x408, 4, 0xa0a0_a0a0),
            DistributorWrite::Filtered(WriteAction::Hardware {
                value: 0xa0a0_0000,
                keep: 0xffff
            })
        );
        assert_eq!(
            F.write(0x419, 1, 0),
            DistributorWrite::Filtered(WriteAction::Hardware {
                value: 0,
                keep: 0xff
            }),
            "INTID 25"
        );
        assert_eq!(F.write(0x41b, 1, 0x40), hw(0x40), "INTID 27 is the guest's");
        assert_eq!(F.write(0x421, 1, 0x40), hw(0x40));
        assert_eq!(F.write(0x408, 2, 0), IGNORE, "halfword");
    }

    #[test]
    fn targets_of_private_interrupts_are_fixed_spis_are_the_guests() {
        assert_eq!(
            F.write(0x808, 4, 0xffff_ffff),
            IGNORE,
            "ITARGETSR2 (SGIs 8..11)"
        );
        assert_eq!(F.write(0x819, 1, 0xff), IGNORE, "ITARGETSR of PPI 25");
        assert_eq!(F.read(0x800, 4), ReadAction::Hardware { mask: 0xffff_ffff });
        assert_eq!(F.write(0x821, 1, 0x2), hw(0x2), "SPI 33");
        assert_eq!(F.write(0x820, 2, 0x2), IGNORE);
    }

    #[test]
    fn ppi_configuration_keeps_the_reserved_fields() {
        // Fields 9 and 10 (bits 21:18) are PPIs 25 and 26.
        assert_eq!(
            F.write(0xc04, 4, 0xffff_ffff),
            DistributorWrite::Filtered(WriteAction::Hardware {
                value: 0xffc3_ffff,
                keep: 0b1111 << 18
            })
        );
        assert_eq!(F.write(0xc00, 4, 0), IGNORE, "ICFGR0");
    }

    #[test]
    fn control_stays_enabled_and_groups_stay_put() {
        assert_eq!(F.write(0, 4, 0), hw(0b11));
        assert_eq!(F.write(0x080, 4, 0), IGNORE, "IGROUPR0");
        assert_eq!(F.write(0x084, 4, u64::MAX), IGNORE, "IGROUPR1");
        assert_eq!(F.write(0xe00, 4, u64::MAX), IGNORE, "NSACR");
        assert_eq!(F.write(0xf10, 4, u64::MAX), IGNORE, "CPENDSGIR");
        assert_eq!(F.write(0xf20, 1, 0xff), IGNORE, "SPENDSGIR");
        assert_eq!(F.read(0xf20, 4), ReadAction::Value(0));
        assert_eq!(F.read(0xf00, 4), ReadAction::Value(0), "SGIR is write-only");
        assert_eq!(F.read(0x4, 4), ReadAction::Hardware { mask: 0xffff_ffff });
    }

    #[test]
    fn every_offset_and_width_is_decided_without_touching_reserved_bits() {
        for offset in 0..0x1_0000u64 {
            for size in [1u8, 2, 4, 8] {
                match F.write(offset, size, u64::MAX) {
                    DistributorWrite::Filtered(WriteAction::Hardware { value, keep }) => {
                        assert!(offset < 0x1000 && size <= 4, "{offset:#x}/{size}");
                        if (0x100..0x400).contains(&offset) && offset % 0x80 == 0 {
                            assert_eq!(value & u64::from(OWN.0), 0, "{offset:#x}/{size}");
                        }
                        assert_eq!(value & keep, 0);
                    }
                    DistributorWrite::Sgi(_) => assert_eq!((offset, size), (0xf00, 4)),
                    DistributorWrite::Filtered(WriteAction::Ignore) => {}
                }
                if size == 2 || size == 8 || offset >= 0x1000 || offset % u64::from(size) != 0 {
                    assert_eq!(
                        F.read(offset, size),
                        ReadAction::Value(0),
                        "{offset:#x}/{size}"
                    );
                }
            }
        }
    }

    #[test]
    fn sgir_targets_go_by_interface_mask() {
        // Interface masks that are not 1 << index.
        let masks = [0x02, 0x01, 0x08, 0x04];
        let ids = |v: u32, sender| {
            SgiWrite::decode(v)
                .targets(sender, &masks)
                .collect::<Vec<_>>()
        };
        assert_eq!(SgiWrite::decode(0x0001_0003).intid, 3);
        assert_eq!(ids(0x0001_0003, 0), vec![1], "mask 0x01 is CPU 1");
        assert_eq!(ids(0x000c_0000, 0), vec![2, 3]);
        assert_eq!(ids(0x0100_0000, 2), vec![0, 1, 3], "all but the sender");
        assert_eq!(ids(0x0200_0000, 2), vec![2], "the sender only");
        assert_eq!(ids(0x0300_ff00, 2), Vec::<usize>::new(), "reserved filter");
        assert_eq!(
            ids(0x00f0_0000, 0),
            Vec::<usize>::new(),
            "no such interfaces"
        );
    }
}
