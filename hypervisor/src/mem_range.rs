//! Physical address ranges and the arithmetic the memory layout needs.

use alloc::vec::Vec;
use core::fmt;

/// A half-open physical address range `[base, base + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MemRange {
    /// The range `[base, base + size)`.
    #[must_use]
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte. Saturates so a range reaching the top of the
    /// address space still compares sensibly.
    #[must_use]
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether the range holds no byte.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Whether `addr` lies inside the range.
    #[must_use]
    pub const fn contains(&self, addr: u64) -> bool {
        self.base <= addr && addr < self.end()
    }

    /// Whether all of `other` lies inside this range.
    #[must_use]
    pub const fn contains_range(&self, other: &MemRange) -> bool {
        self.base <= other.base && other.end() <= self.end()
    }

    /// Whether the two ranges share at least one byte.
    #[must_use]
    pub const fn overlaps(&self, other: &MemRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.base < other.end() && other.base < self.end()
    }
}

impl fmt::Display for MemRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, {:#x})", self.base, self.end())
    }
}

/// `ranges` with `hole` cut out, in the same order; a range split by the hole
/// becomes two. Used to turn "all RAM" into "guest RAM".
#[must_use]
pub fn subtract(ranges: &[MemRange], hole: MemRange) -> Vec<MemRange> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for r in ranges {
        if !r.overlaps(&hole) {
            out.push(*r);
            continue;
        }
        if r.base < hole.base {
            out.push(MemRange::new(r.base, hole.base - r.base));
        }
        if hole.end() < r.end() {
            out.push(MemRange::new(hole.end(), r.end() - hole.end()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HV: MemRange = MemRange::new(0x4000_0000, 0x400_0000);

    #[test]
    fn subtract_cuts_the_front() {
        let ram = [MemRange::new(0x4000_0000, 0x4000_0000)];
        assert_eq!(
            subtract(&ram, HV),
            [MemRange::new(0x4400_0000, 0x3c00_0000)]
        );
    }

    #[test]
    fn subtract_splits_and_skips() {
        let ram = [
            MemRange::new(0x3000_0000, 0x2000_0000),
            MemRange::new(0x8000_0000, 0x1000),
        ];
        assert_eq!(
            subtract(&ram, HV),
            [
                MemRange::new(0x3000_0000, 0x1000_0000),
                MemRange::new(0x4400_0000, 0x0c00_0000),
                MemRange::new(0x8000_0000, 0x1000),
            ]
        );
    }

    #[test]
    fn subtract_swallows_whole_range() {
        assert!(subtract(&[HV], HV).is_empty());
    }

    #[test]
    fn overlap_is_strict() {
        let a = MemRange::new(0x1000, 0x1000);
        assert!(!a.overlaps(&MemRange::new(0x2000, 0x1000)));
        assert!(a.overlaps(&MemRange::new(0x1fff, 1)));
        assert!(!a.overlaps(&MemRange::new(0x1800, 0)));
    }
}
