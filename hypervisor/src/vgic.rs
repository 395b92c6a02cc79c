//! vGIC bookkeeping, portable and host-tested: decoding the guest's
//! `ICC_SGI1R_EL1` writes, encoding GICv3 list registers, choosing a list
//! register for a new virtual interrupt, and deciding which guest writes to
//! the (trapped) GICD/GICR registers reach the hardware.

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
    pub fn targets<'t>(&self, table: &VcpuTable<'t>, sender: usize) -> impl Iterator<Item = usize> + 't {
        let req = *self;
        let table = *table;
        let everyone = (0..table.len()).filter(move |&i| req.broadcast && i != sender);
        let cluster = u64::from(req.aff3) << 32 | u64::from(req.aff2) << 16 | u64::from(req.aff1) << 8;
        let listed = (0..16u64)
            .filter(move |&bit| !req.broadcast && req.target_list >> bit & 1 == 1)
            .filter_map(move |bit| table.index_of(cluster | u64::from(req.rs) * 16 + bit));
        everyone.chain(listed)
    }
}

// ---------------------------------------------------------------------------
// List registers
// ---------------------------------------------------------------------------

const LR_STATE_SHIFT: u32 = 62;
const LR_HW: u64 = 1 << 61;
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

pub fn lr_vintid(lr: u64) -> u32 {
    lr as u32
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
            // A HW-linked interrupt cannot be pending+active in an LR; it
            // waits until the guest deactivates it.
            LrState::Active if lr & LR_HW == 0 => {
                return LrSlot::Reuse(i, lr | 3 << LR_STATE_SHIFT);
            }
            LrState::Active => return LrSlot::Full,
            LrState::Invalid => {}
        }
    }
    match (0..lrs.len()).find(|&i| empty >> i & 1 == 1) {
        Some(i) => LrSlot::Empty(i),
        None => LrSlot::Full,
    }
}

// ---------------------------------------------------------------------------
// GICD / GICR mediation
// ---------------------------------------------------------------------------

/// SGIs and PPIs the hypervisor keeps for itself: the guest may not disable,
/// regroup, reprioritise or clear them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved(pub u32);

impl Reserved {
    /// Bitmask over INTIDs 0..32.
    pub fn mask(self) -> u32 {
        self.0
    }
}

/// What to do with a guest access to a GIC register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicWrite {
    /// Write this value to the same register.
    Write(u64),
    /// Drop the write (the guest keeps its illusion through `GicRead`).
    Ignore,
}

pub const GICD_CTLR: u64 = 0x0000;
const GICD_CTLR_ENABLE_GRP1NS: u64 = 1 << 1;
const GICD_CTLR_ARE_NS: u64 = 1 << 4;

/// GICR frame layout (GICv3: two 64 KiB frames per CPU).
pub const GICR_FRAME: u64 = 0x2_0000;
pub const GICR_SGI_BASE: u64 = 0x1_0000;
pub const GICR_WAKER: u64 = 0x0014;
const GICR_IGROUPR0: u64 = GICR_SGI_BASE + 0x0080;
const GICR_ICENABLER0: u64 = GICR_SGI_BASE + 0x0180;
const GICR_ICPENDR0: u64 = GICR_SGI_BASE + 0x0280;
const GICR_ICACTIVER0: u64 = GICR_SGI_BASE + 0x0380;
const GICR_IPRIORITYR0: u64 = GICR_SGI_BASE + 0x0400;
const GICR_IGRPMODR0: u64 = GICR_SGI_BASE + 0x0d00;

/// Filters a guest write to the distributor at `offset`. The guest may not
/// turn off group 1 or affinity routing: the hypervisor's own SGIs depend on
/// them (its view of GICD_CTLR is kept by the caller).
pub fn gicd_write(offset: u64, value: u64) -> GicWrite {
    match offset {
        GICD_CTLR => GicWrite::Write(value | GICD_CTLR_ENABLE_GRP1NS | GICD_CTLR_ARE_NS),
        _ => GicWrite::Write(value),
    }
}

/// Filters a 32-bit (or narrower) guest write at `offset` within one CPU's
/// redistributor frames (`offset < GICR_FRAME`). `current` reads the
/// register's present hardware value (for read-modify-write of byte fields).
pub fn gicr_write(offset: u64, size: u8, value: u64, reserved: Reserved, current: impl Fn() -> u64) -> GicWrite {
    let keep = u64::from(reserved.mask());
    match offset {
        // Putting the redistributor to sleep would silence the hypervisor's SGIs.
        GICR_WAKER => GicWrite::Ignore,
        GICR_ICENABLER0 | GICR_ICPENDR0 | GICR_ICACTIVER0 => GicWrite::Write(value & !keep),
        GICR_IGROUPR0 => GicWrite::Write(value | keep),
        GICR_IGRPMODR0 => GicWrite::Write(value & !keep),
        o if (GICR_IPRIORITYR0..GICR_IPRIORITYR0 + 32).contains(&o) => {
            // One byte per INTID: keep the reserved ones' bytes as they are.
            let first = (o - GICR_IPRIORITYR0) as u32;
            let touched = (first..first + u32::from(size)).filter(|i| reserved.mask() >> i & 1 == 1);
            if touched.clone().next().is_none() {
                return GicWrite::Write(value);
            }
            let old = current();
            let mut merged = value;
            for intid in touched {
                let shift = (intid - first) * 8;
                merged = merged & !(0xff << shift) | old & 0xff << shift;
            }
            GicWrite::Write(merged)
        }
        _ => GicWrite::Write(value),
    }
}

/// The guest's view of GICR_WAKER: awake, since it cannot put us to sleep.
pub const GICR_WAKER_AWAKE: u64 = 0;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vcpu::Vcpus;

    #[test]
    fn sgi1r_targets_list_affinity_and_broadcast() {
        // 16 CPUs in cluster 0 (Aff0 0..15), 4 in cluster 1.
        let mpidrs: Vec<u64> = (0..20u64).map(|i| if i < 16 { i } else { 0x100 | (i - 16) }).collect();
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
        assert!(!all.targets(&t, 4).any(|i| i == 4), "IRM excludes the sender");
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
        assert_eq!(choose_lr(&lrs, empty, 2), LrSlot::Reuse(1, active2 | 3 << 62));
        assert_eq!(choose_lr(&lrs, empty, 27), LrSlot::Full, "HW active: wait for deactivation");
        assert_eq!(choose_lr(&lrs, empty, 5), LrSlot::Empty(3));
        assert_eq!(choose_lr(&lrs, 0, 5), LrSlot::Full);
        // A stale value in an empty register is not a match.
        assert_eq!(choose_lr(&[pending1], 0b1, 1), LrSlot::Empty(0));
    }

    #[test]
    fn gic_writes_cannot_take_the_hypervisor_sgis_away() {
        let reserved = Reserved(1 << 8 | 1 << 9);
        assert_eq!(gicd_write(GICD_CTLR, 0), GicWrite::Write(0x12));
        assert_eq!(gicd_write(0x100, 0xffff_ffff), GicWrite::Write(0xffff_ffff));
        assert_eq!(gicr_write(GICR_WAKER, 4, 2, reserved, || 0), GicWrite::Ignore);
        assert_eq!(gicr_write(GICR_ICENABLER0, 4, 0xffff_ffff, reserved, || 0), GicWrite::Write(0xffff_fcff));
        assert_eq!(gicr_write(GICR_ICACTIVER0, 4, 0x300, reserved, || 0), GicWrite::Write(0));
        assert_eq!(gicr_write(GICR_IGROUPR0, 4, 0, reserved, || 0), GicWrite::Write(0x300));
        // IPRIORITYR2 holds INTIDs 8..11: bytes 0 and 1 keep the hardware value.
        let w = gicr_write(GICR_IPRIORITYR0 + 8, 4, 0xa0a0_a0a0, reserved, || 0x8080_8080);
        assert_eq!(w, GicWrite::Write(0xa0a0_8080));
        // A byte write to INTID 9 changes nothing; to INTID 10 goes through.
        assert_eq!(gicr_write(GICR_IPRIORITYR0 + 9, 1, 0, reserved, || 0x80), GicWrite::Write(0x80));
        assert_eq!(gicr_write(GICR_IPRIORITYR0 + 10, 1, 0x40, reserved, || 0x80), GicWrite::Write(0x40));
    }
}
