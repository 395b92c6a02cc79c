//! vGIC bookkeeping, portable and host-tested: decoding the guest's
//! `ICC_SGI1R_EL1` writes, encoding GICv3 list registers, choosing a list
//! register for a new virtual interrupt. (Guest GICD/GICR accesses: see
//! `crate::gic_filter`.)

use crate::vcpu::VcpuTable;
use arm_sysregs::el1::registers::IccSgi1rEl1;

// ---------------------------------------------------------------------------
// ICC_SGI1R_EL1
// ---------------------------------------------------------------------------

/// A decoded `ICC_SGI1R_EL1` (or `ICC_SGI0R_EL1`/`ICC_ASGI1R_EL1`) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgiRequest {
    pub intid: u8,
    /// IRM: every PE but the sender.
    pub broadcast: bool,
    pub aff3: u8,
    pub aff2: u8,
    pub aff1: u8,
    /// Range selector: the target list covers Aff0 = 16 * rs + bit.
    pub rs: u8,
    pub target_list: u16,
}

impl SgiRequest {
    pub fn decode(value: u64) -> Self {
        let reg = IccSgi1rEl1::from_bits_retain(value);
        Self {
            intid: reg.intid() & 0xf,
            broadcast: reg.contains(IccSgi1rEl1::IRM),
            aff3: reg.aff3(),
            aff2: reg.aff2(),
            aff1: reg.aff1(),
            rs: reg.rs() & 0xf,
            target_list: reg.targetlist(),
        }
    }

    /// Linear indices of the targeted vCPUs that exist: every other vCPU
    /// for a broadcast, else the listed Aff0 values of the addressed cluster,
    /// each looked up by MPIDR (at most 16 look-ups, whatever the vCPU count).
    pub fn targets<'t>(
        &self,
        table: &VcpuTable<'t>,
        sender: usize,
    ) -> impl Iterator<Item = usize> + 't {
        let req = *self;
        let table = *table;
        let everyone = (0..table.len()).filter(move |&i| req.broadcast && i != sender);
        let cluster =
            u64::from(req.aff3) << 32 | u64::from(req.aff2) << 16 | u64::from(req.aff1) << 8;
        let listed = (0..16u64)
            .filter(move |&bit| !req.broadcast && req.target_list >> bit & 1 == 1)
            .filter_map(move |bit| table.index_of(cluster | (u64::from(req.rs) * 16 + bit)));
        everyone.chain(listed)
    }
}

// ---------------------------------------------------------------------------
// List registers
// ---------------------------------------------------------------------------

const LR_STATE_SHIFT: u32 = 62;
const LR_HW: u64 = 1 << 61;
/// With HW = 0: a maintenance interrupt once the guest has deactivated it
/// and the register is invalid (ICH_EISR_EL2).
const LR_EOI: u64 = 1 << 41;
const LR_PINTID_MASK: u64 = 0x3ff << LR_PINTID_SHIFT;
const LR_GROUP1: u64 = 1 << 60;
const LR_PRIORITY_SHIFT: u32 = 48;
const LR_PINTID_SHIFT: u32 = 32;

/// State field of a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    Invalid,
    Pending,
    Active,
    PendingActive,
}

/// A pending group-1 virtual interrupt. `hw` links it to physical INTID
/// `vintid`, so the guest's deactivation also deactivates the physical one.
pub fn lr_pending(vintid: u32, priority: u8, hw: bool) -> u64 {
    let mut lr = 1 << LR_STATE_SHIFT | LR_GROUP1 | u64::from(priority) << LR_PRIORITY_SHIFT;
    lr |= u64::from(vintid);
    if hw {
        lr |= LR_HW | u64::from(vintid & 0x3ff) << LR_PINTID_SHIFT;
    }
    lr
}

pub fn lr_state(lr: u64) -> LrState {
    match lr >> LR_STATE_SHIFT {
        0 => LrState::Invalid,
        1 => LrState::Pending,
        2 => LrState::Active,
        _ => LrState::PendingActive,
    }
}

/// Whether the list register is linked to a physical interrupt (HW).
#[cfg(test)]
pub fn lr_is_hw(lr: u64) -> bool {
    lr & LR_HW != 0
}

pub fn lr_vintid(lr: u64) -> u32 {
    lr as u32
}

/// Whether the list register stands for a physical activation that the
/// hypervisor still has to end: HW-linked and not yet deactivated by the
/// guest, or a second activation waiting for its EOI maintenance
/// interrupt (see [`choose_lr`]).
pub fn lr_holds_physical(lr: u64) -> bool {
    if lr & LR_HW != 0 {
        lr_state(lr) != LrState::Invalid
    } else {
        lr & LR_EOI != 0
    }
}

/// A second activation's list register the guest has deactivated: the
/// hypervisor deactivates the physical interrupt and frees the register.
pub fn lr_eoi_done(lr: u64) -> bool {
    lr & (LR_HW | LR_EOI) == LR_EOI && lr_state(lr) == LrState::Invalid
}

/// Where a new virtual interrupt goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrSlot {
    /// Already pending there: nothing to do (edge interrupts coalesce).
    Coalesced,
    /// Active there: make it pending+active (write this value back).
    Reuse(usize, u64),
    /// Write the new value into this empty register.
    Empty(usize),
    /// All registers are busy: keep it queued and ask for a maintenance
    /// interrupt when they drain.
    Full,
}

/// Chooses a list register for `vintid` given the current register values
/// (`lrs[i]`) and the empty-register bitmap (ICH_ELRSR_EL2).
pub fn choose_lr(lrs: &[u64], empty: u64, vintid: u32) -> LrSlot {
    for (i, &lr) in lrs.iter().enumerate() {
        if empty >> i & 1 == 1 || lr_vintid(lr) != vintid {
            continue;
        }
        match lr_state(lr) {
            LrState::Pending | LrState::PendingActive => return LrSlot::Coalesced,
            LrState::Active if lr & LR_HW == 0 => {
                return LrSlot::Reuse(i, lr | 3 << LR_STATE_SHIFT);
            }
            // A second activation of a HW-linked interrupt the guest has
            // not deactivated (it cleared the first through ICACTIVER, so
            // the physical interrupt fired again). A HW-linked register
            // cannot be pending+active: unlink it, make it pending+active
            // (the new activation waits behind the running priority) and
            // ask for an EOI maintenance interrupt, at which the hypervisor
            // deactivates the physical interrupt. Waiting for a free
            // register instead would set UIE with the register still in
            // use: a maintenance interrupt on every return to the guest.
            LrState::Active => {
                let unlinked = lr & !(LR_HW | LR_PINTID_MASK) | LR_EOI;
                return LrSlot::Reuse(i, unlinked | 3 << LR_STATE_SHIFT);
            }
            LrState::Invalid => {}
        }
    }
    match (0..lrs.len()).find(|&i| empty >> i & 1 == 1) {
        Some(i) => LrSlot::Empty(i),
        None => LrSlot::Full,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vcpu::Vcpus;

    #[test]
    fn sgi1r_targets_list_affinity_and_broadcast() {
        // 16 CPUs in cluster 0 (Aff0 0..15), 4 in cluster 1.
        let mpidrs: Vec<u64> = (0..20u64)
            .map(|i| if i < 16 { i } else { 0x100 | (i - 16) })
            .collect();
        let v = Vcpus::new(&mpidrs, |_| false);
        let t = v.table();
        let one = SgiRequest::decode(3 << 24 | 0b1010);
        assert_eq!(one.intid, 3);
        assert_eq!(one.targets(&t, 0).collect::<Vec<_>>(), vec![1, 3]);
        let cluster1 = SgiRequest::decode(1 << 16 | 0b0110);
        assert_eq!(cluster1.targets(&t, 0).collect::<Vec<_>>(), vec![17, 18]);
        let all = SgiRequest::decode(1 << 40 | 5 << 24);
        assert!(all.broadcast);
        assert_eq!(all.targets(&t, 4).count(), 19);
        assert!(
            !all.targets(&t, 4).any(|i| i == 4),
            "IRM excludes the sender"
        );
        let none = SgiRequest::decode(0x1 << 44 | 1);
        assert_eq!(none.targets(&t, 0).count(), 0, "RS=1 addresses Aff0 16..31");
        let aff3 = SgiRequest::decode(1 << 48 | 1);
        assert_eq!(aff3.targets(&t, 0).count(), 0);
    }

    #[test]
    fn list_register_encoding() {
        let lr = lr_pending(27, 0xa0, true);
        assert_eq!(lr_state(lr), LrState::Pending);
        assert_eq!(lr_vintid(lr), 27);
        assert_eq!(lr >> 32 & 0x3ff, 27, "pINTID");
        assert_ne!(lr & LR_HW, 0);
        assert_eq!(lr >> 48 & 0xff, 0xa0);
        let sgi = lr_pending(1, 0x80, false);
        assert_eq!(sgi & LR_HW, 0);
        assert_eq!(sgi >> 32 & 0x3ff, 0);
        assert_ne!(sgi & LR_GROUP1, 0);
    }

    #[test]
    fn choosing_list_registers() {
        let pending1 = lr_pending(1, 0x80, false);
        let active2 = lr_pending(2, 0x80, false) & !(3 << 62) | 2 << 62;
        let active_hw = lr_pending(27, 0x80, true) & !(3 << 62) | 2 << 62;
        let lrs = [pending1, active2, active_hw, 0];
        let empty = 0b1000;
        assert_eq!(choose_lr(&lrs, empty, 1), LrSlot::Coalesced);
        assert_eq!(
            choose_lr(&lrs, empty, 2),
            LrSlot::Reuse(1, active2 | 3 << 62)
        );
        let second = lr_pending(27, 0x80, false) | LR_EOI | 3 << 62;
        assert_eq!(
            choose_lr(&lrs, empty, 27),
            LrSlot::Reuse(2, second),
            "HW active: unlinked, pending+active, EOI maintenance"
        );
        assert!(lr_holds_physical(active_hw) && lr_holds_physical(second));
        assert!(!lr_eoi_done(second));
        let done = second & !(3 << 62);
        assert!(lr_eoi_done(done) && lr_holds_physical(done));
        assert!(!lr_holds_physical(active2) && !lr_eoi_done(active2));
        assert!(!lr_holds_physical(active_hw & !(3 << 62)));
        assert_eq!(
            choose_lr(&[second], 0, 27),
            LrSlot::Coalesced,
            "a third activation joins the pending one"
        );
        assert_eq!(choose_lr(&lrs, empty, 5), LrSlot::Empty(3));
        assert_eq!(choose_lr(&lrs, 0, 5), LrSlot::Full);
        // A stale value in an empty register is not a match.
        assert_eq!(choose_lr(&[pending1], 0b1, 1), LrSlot::Empty(0));
    }
}
