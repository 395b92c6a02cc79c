//! The physical interrupt activations the guest's vCPUs hold, bounded by
//! the number of INTIDs whatever the guest does: a vCPU's set of INTIDs
//! waiting for a list register or held while it is parked ([`IntidSet`],
//! one bit per INTID, no allocation), and for every INTID the CPU whose
//! acknowledge activated it last ([`Owners`]). A CPU deactivates an INTID
//! on the guest's behalf only while it is the owner: a guest that clears
//! an active interrupt through GICD_ICACTIVER and takes it again on another
//! CPU makes the first CPU's record stale, and a stale record must not end
//! the new owner's activation.

use core::sync::atomic::{AtomicU16, Ordering};

/// INTIDs a set or the owner table covers: SGIs, PPIs and SPIs (0..1019)
/// and the special INTIDs, which are never the guest's. LPIs (no ITS) never
/// reach the guest.
pub const INTIDS: usize = 1024;
const WORDS: usize = INTIDS / 64;

/// A set of INTIDs below [`INTIDS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntidSet {
    bits: [u64; WORDS],
}

impl IntidSet {
    pub const fn new() -> Self {
        Self { bits: [0; WORDS] }
    }

    /// Adds `intid`; false if it was already in, or is out of range.
    pub fn insert(&mut self, intid: u32) -> bool {
        let Some((w, bit)) = Self::position(intid) else {
            return false;
        };
        let was = self.bits[w] & bit != 0;
        self.bits[w] |= bit;
        !was
    }

    pub fn contains(&self, intid: u32) -> bool {
        Self::position(intid).is_some_and(|(w, bit)| self.bits[w] & bit != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// Keeps the INTIDs for which `keep` is true (ascending order).
    pub fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        for (w, word) in self.bits.iter_mut().enumerate() {
            let mut rest = *word;
            while rest != 0 {
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                if !keep((w * 64) as u32 + b) {
                    *word &= !(1 << b);
                }
            }
        }
    }

    /// Empties the set, calling `f` for every INTID it held (ascending).
    pub fn drain(&mut self, mut f: impl FnMut(u32)) {
        self.retain(|intid| {
            f(intid);
            false
        });
    }

    fn position(intid: u32) -> Option<(usize, u64)> {
        let i = intid as usize;
        (i < INTIDS).then(|| (i / 64, 1u64 << (i % 64)))
    }
}

/// No CPU owns the INTID.
const NOBODY: u16 = u16::MAX;

/// For every INTID, the CPU that activated it last for the guest.
pub struct Owners {
    cpu: [AtomicU16; INTIDS],
}

impl Default for Owners {
    fn default() -> Self {
        Self::new()
    }
}

impl Owners {
    pub const fn new() -> Self {
        Self {
            cpu: [const { AtomicU16::new(NOBODY) }; INTIDS],
        }
    }

    /// `cpu` acknowledged `intid` for the guest: it owns that activation.
    pub fn acknowledged(&self, intid: u32, cpu: usize) {
        if let Some(slot) = self.cpu.get(intid as usize) {
            slot.store(cpu as u16, Ordering::Release);
        }
    }

    /// Whether `cpu` may deactivate `intid`; if it may, it gives up the
    /// ownership (the caller deactivates right after).
    pub fn release(&self, intid: u32, cpu: usize) -> bool {
        self.cpu.get(intid as usize).is_some_and(|slot| {
            slot.compare_exchange(cpu as u16, NOBODY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// The CPU that owns `intid` (tests and diagnostics).
    pub fn owner(&self, intid: u32) -> Option<usize> {
        let v = self.cpu.get(intid as usize)?.load(Ordering::Acquire);
        (v != NOBODY).then_some(v as usize)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_each_intid_once() {
        let mut s = IntidSet::new();
        assert!(s.is_empty());
        assert!(s.insert(40));
        for _ in 0..100_000 {
            assert!(!s.insert(40), "a second activation adds nothing");
        }
        assert!(s.insert(27));
        assert!(s.insert(1019));
        assert!(!s.insert(1024), "out of range");
        assert!(!s.insert(u32::MAX));
        assert!(s.contains(40) && s.contains(27) && !s.contains(41));
        s.retain(|i| i != 27);
        assert!(!s.contains(27));
        let mut seen = Vec::new();
        s.drain(|i| seen.push(i));
        assert_eq!(seen, vec![40, 1019]);
        assert!(s.is_empty());
        assert_eq!(core::mem::size_of::<IntidSet>(), 128, "fixed size");
    }

    #[test]
    fn only_the_owner_releases() {
        let o = Owners::new();
        assert_eq!(o.owner(40), None);
        assert!(!o.release(40, 1), "nobody owns it");
        o.acknowledged(40, 1);
        // The guest cleared it and took it again on CPU 0: CPU 1's record
        // is stale.
        o.acknowledged(40, 0);
        assert!(!o.release(40, 1));
        assert_eq!(o.owner(40), Some(0));
        assert!(o.release(40, 0));
        assert!(!o.release(40, 0), "released once");
        o.acknowledged(5000, 0);
        assert!(!o.release(5000, 0));
    }
}
