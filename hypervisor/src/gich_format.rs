//! GICv2 virtual interface control registers (GICH_*), portable and
//! host-tested: conversion between the list-register format the vGIC
//! bookkeeping works in (GICv3's ICH_LR<n>_EL2, see `crate::vgic`) and
//! GICv2's 32-bit GICH_LR<n>, and the GICH_HCR/GICH_VMCR values of the
//! GICv3 ones. `arch::gich` applies them to the hardware, so
//! `crate::list_registers` drives both interfaces unchanged.
//!
//! GICH_LR<n> (IHI 0048B §5.3.11): VirtualID [9:0], PhysicalID [19:10]
//! (with HW; without it bits [12:10] are the SGI's source CPUID and bit 19
//! asks for an EOI maintenance interrupt), priority [27:23] (the top five
//! bits of the 8-bit priority), state [29:28], Grp1 [30], HW [31].

use arm_sysregs::el2::registers::{IchHcrEl2, IchVmcrEl2};

const V3_STATE_SHIFT: u32 = 62;
const V3_HW: u64 = 1 << 61;
const V3_GROUP1: u64 = 1 << 60;
const V3_PRIORITY_SHIFT: u32 = 48;
const V3_PINTID_SHIFT: u32 = 32;
/// With HW = 0: an EOI maintenance interrupt once the guest deactivates it.
const V3_EOI: u64 = 1 << 41;

const VIRTUAL_ID: u32 = 0x3ff;
const PHYSICAL_ID_SHIFT: u32 = 10;
const PRIORITY_SHIFT: u32 = 23;
const STATE_SHIFT: u32 = 28;
const HW: u32 = 1 << 31;
/// With HW = 0: GICv2's EOI maintenance request.
const EOI: u32 = 1 << 19;

/// The GICv2 list register for a GICv3-format one.
///
/// The group is dropped: a GICv2 guest without security extensions takes
/// its interrupts as group 0 (Linux enables only group 0 at GICC_CTLR), so
/// a virtual interrupt marked group 1 would never be signalled to it.
pub fn lr_to_gich(lr: u64) -> u32 {
    let state = (lr >> V3_STATE_SHIFT) as u32 & 0b11;
    let priority = (lr >> V3_PRIORITY_SHIFT) as u32 & 0xff;
    let mut v = lr as u32 & VIRTUAL_ID | state << STATE_SHIFT | (priority >> 3) << PRIORITY_SHIFT;
    if lr & V3_HW != 0 {
        v |= HW | ((lr >> V3_PINTID_SHIFT) as u32 & VIRTUAL_ID) << PHYSICAL_ID_SHIFT;
    } else if lr & V3_EOI != 0 {
        v |= EOI;
    }
    v
}

/// The GICv3-format list register for a GICv2 one (the inverse of
/// [`lr_to_gich`]: marked group 1, as the bookkeeping writes them).
pub fn lr_from_gich(v: u32) -> u64 {
    let state = u64::from(v >> STATE_SHIFT & 0b11);
    let priority = u64::from(v >> PRIORITY_SHIFT & 0x1f) << 3;
    let mut lr = u64::from(v & VIRTUAL_ID)
        | state << V3_STATE_SHIFT
        | priority << V3_PRIORITY_SHIFT
        | V3_GROUP1;
    if v & HW != 0 {
        lr |= V3_HW | u64::from(v >> PHYSICAL_ID_SHIFT & VIRTUAL_ID) << V3_PINTID_SHIFT;
    } else if v & EOI != 0 {
        lr |= V3_EOI;
    }
    lr
}

/// GICH_HCR for an ICH_HCR_EL2 value: En [0], UIE [1], LRENPIE [2],
/// NPIE [3], VGrp0EIE..VGrp1DIE [7:4] sit in the same bits in both; the
/// rest (EOIcount, the GICv3 trap bits) has no GICv2 meaning here.
pub fn hcr_to_gich(value: IchHcrEl2) -> u32 {
    value.bits() as u32 & 0xff
}

/// GICH_VMCR for an ICH_VMCR_EL2 value: the enables, AckCtl, FIQEn, CBPR
/// [4:0], VEOIM [9], the binary points [23:18] share their bits; the
/// priority mask keeps its top five bits [31:27].
pub fn vmcr_to_gich(value: IchVmcrEl2) -> u32 {
    let v = value.bits() as u32;
    v & (0x1f | 1 << 9 | 0x3f << 18) | v & 0xf800_0000
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vgic::{LrState, lr_is_hw, lr_pending, lr_state, lr_vintid};

    #[test]
    fn a_hardware_linked_interrupt_keeps_its_fields() {
        let lr = lr_pending(27, 0xa0, true);
        let v = lr_to_gich(lr);
        assert_eq!(v & 0x3ff, 27, "VirtualID");
        assert_eq!(v >> 10 & 0x3ff, 27, "PhysicalID");
        assert_eq!(v >> 23 & 0x1f, 0xa0 >> 3, "priority, top 5 bits");
        assert_eq!(v >> 28 & 3, 1, "pending");
        assert_eq!(v >> 30 & 1, 0, "group 0");
        assert_eq!(v >> 31, 1, "HW");
        let back = lr_from_gich(v);
        assert_eq!(back, lr, "round trip");
        assert!(lr_is_hw(back));
        assert_eq!(lr_state(back), LrState::Pending);
    }

    #[test]
    fn an_sgi_has_no_physical_side() {
        let v = lr_to_gich(lr_pending(3, 0x80, false));
        assert_eq!(v, 3 | 1 << 28 | (0x80 >> 3) << 23);
        assert_eq!(lr_vintid(lr_from_gich(v)), 3);
        assert!(!lr_is_hw(lr_from_gich(v)));
    }

    /// A second activation's register (unlinked, EOI maintenance) keeps
    /// its request: the maintenance interrupt ends the physical activation.
    #[test]
    fn an_eoi_request_survives_both_ways() {
        let second = lr_pending(40, 0x80, false) | V3_EOI | 3 << 62;
        let v = lr_to_gich(second);
        assert_eq!(v & EOI, EOI);
        assert_eq!(v & HW, 0);
        assert_eq!(lr_from_gich(v), second);
        assert!(crate::vgic::lr_holds_physical(lr_from_gich(v)));
        let done = lr_from_gich(v & !(3 << 28));
        assert!(crate::vgic::lr_eoi_done(done));
    }

    #[test]
    fn every_state_maps_both_ways() {
        for (bits, state) in [
            (0u64, LrState::Invalid),
            (1, LrState::Pending),
            (2, LrState::Active),
            (3, LrState::PendingActive),
        ] {
            let lr = lr_pending(40, 0x78, true) & !(3 << 62) | bits << 62;
            let v = lr_to_gich(lr);
            assert_eq!(u64::from(v >> 28 & 3), bits);
            assert_eq!(lr_state(lr_from_gich(v)), state);
        }
        assert_eq!(lr_to_gich(0), 0, "an empty register stays empty");
    }

    #[test]
    fn the_largest_intid_fits() {
        let v = lr_to_gich(lr_pending(1019, 0xf8, true));
        assert_eq!(v & 0x3ff, 1019);
        assert_eq!(v >> 10 & 0x3ff, 1019);
        assert_eq!(lr_from_gich(v), lr_pending(1019, 0xf8, true));
    }

    #[test]
    fn control_registers() {
        assert_eq!(hcr_to_gich(IchHcrEl2::EN), 1);
        assert_eq!(hcr_to_gich(IchHcrEl2::EN | IchHcrEl2::UIE), 0b11);
        assert_eq!(vmcr_to_gich(IchVmcrEl2::empty()), 0);
        assert_eq!(
            vmcr_to_gich(IchVmcrEl2::from_bits_retain(0xff00_0203)),
            0xf800_0203,
            "VPMR top bits, VEOIM, VENG0/1"
        );
    }
}
