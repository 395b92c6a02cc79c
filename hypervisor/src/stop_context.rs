//! FAST_STOP's register save (flag `SAVE_REGS`, see `docs/abi.md`): the
//! guest's save area, its validation and the layout of one entry.
//!
//! A crash dump needs every CPU's registers at the moment it stopped, and a
//! CPU spinning with interrupts masked cannot save them itself. Each stopped
//! vCPU records its own guest context in hypervisor memory before it
//! acknowledges (`StopContext`); once the wait is over the caller alone
//! copies the confirmed ones into the guest's area. So no other CPU ever
//! writes guest memory, not even one that acknowledges after the deadline.

use crate::mem_range::MemRange;
use crate::smccc::ret;

/// Entry sizes (with and without SP_EL0) and status words of the guest's
/// save area.
pub use parkvisor_abi::save_regs::{ENTRY_BYTES, ENTRY_BYTES_SP_EL0, STATUS_EMPTY, STATUS_SAVED};
use parkvisor_abi::save_regs::{
    MPIDR_OFFSET, REGS_OFFSET, REGS_WORDS, SP_EL0_OFFSET, STATUS_OFFSET,
};
/// u64 words of the larger entry.
const ENTRY_WORDS: usize = (ENTRY_BYTES_SP_EL0 / 8) as usize;

/// A stopped vCPU's guest registers, in the order of Linux arm64's
/// `struct user_pt_regs`: x0..x30, sp, pc, pstate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRegs(pub [u64; 34]);

impl UserRegs {
    /// From the trapped general purpose registers, the return state and the
    /// two stack pointers, taking the one the interrupted context used:
    /// SP_EL1 for EL1h (M = 0b0101), SP_EL0 otherwise.
    pub fn new(x: &[u64; 31], pc: u64, pstate: u64, sp_el0: u64, sp_el1: u64) -> Self {
        const MODE_EL1H: u64 = 0b0101;
        let mut regs = [0; 34];
        regs[..31].copy_from_slice(x);
        regs[31] = if pstate & 0x1f == MODE_EL1H {
            sp_el1
        } else {
            sp_el0
        };
        regs[32] = pc;
        regs[33] = pstate;
        Self(regs)
    }
}

/// What one vCPU recorded when it last parked for a FAST_STOP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopContext {
    /// The stop generation it acknowledged (0: none yet).
    pub generation: u64,
    /// Its guest registers, or `None` when it left no guest context (a vCPU
    /// started during the stop parks before running any guest code).
    pub regs: Option<UserRegs>,
    /// Its SP_EL0 (in a Linux kernel context: the running task), with `regs`.
    pub sp_el0: u64,
}

/// A validated guest save area: `vcpus` entries of `entry_bytes` from
/// `base`, all in one range of guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveArea {
    pub base: u64,
    pub vcpus: usize,
    pub entry_bytes: u64,
}

impl SaveArea {
    /// Checks the guest's x3 (address) and x4 (size in bytes) for `vcpus`
    /// entries (of [`ENTRY_BYTES_SP_EL0`] with `with_sp_el0`, else
    /// [`ENTRY_BYTES`]). INVALID_PARAMETERS unless the area is 8-byte
    /// aligned, large enough and inside a single range of guest RAM: the
    /// hypervisor must never write its own memory or a device on the guest's
    /// behalf.
    pub fn validate(
        base: u64,
        len: u64,
        vcpus: usize,
        with_sp_el0: bool,
        guest_ram: &[MemRange],
    ) -> Result<Self, i64> {
        let entry_bytes = if with_sp_el0 {
            ENTRY_BYTES_SP_EL0
        } else {
            ENTRY_BYTES
        };
        let need = entry_bytes
            .checked_mul(vcpus as u64)
            .ok_or(ret::INVALID_PARAMETERS)?;
        let end = base.checked_add(need).ok_or(ret::INVALID_PARAMETERS)?;
        let inside = guest_ram.iter().any(|r| r.base <= base && end <= r.end());
        if !base.is_multiple_of(8) || len < need || !inside {
            return Err(ret::INVALID_PARAMETERS);
        }
        Ok(Self {
            base,
            vcpus,
            entry_bytes,
        })
    }

    /// Guest physical address of vCPU `index`'s entry.
    pub fn entry_addr(&self, index: usize) -> u64 {
        self.base + self.entry_bytes * index as u64
    }

    /// u64 words of one entry.
    pub fn entry_words(&self) -> usize {
        (self.entry_bytes / 8) as usize
    }
}

/// The words of the larger entry: MPIDR, status, the registers, SP_EL0. An
/// area without SP_EL0 takes the first [`ENTRY_BYTES`] of them.
pub fn entry_words(mpidr: u64, regs: Option<(&UserRegs, u64)>) -> [u64; ENTRY_WORDS] {
    const MPIDR: usize = (MPIDR_OFFSET / 8) as usize;
    const STATUS: usize = (STATUS_OFFSET / 8) as usize;
    const REGS: usize = (REGS_OFFSET / 8) as usize;
    const SP_EL0: usize = (SP_EL0_OFFSET / 8) as usize;
    let mut words = [0; ENTRY_WORDS];
    words[MPIDR] = mpidr;
    if let Some((regs, sp_el0)) = regs {
        words[STATUS] = STATUS_SAVED;
        words[REGS..REGS + REGS_WORDS as usize].copy_from_slice(&regs.0);
        words[SP_EL0] = sp_el0;
    } else {
        words[STATUS] = STATUS_EMPTY;
    }
    words
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const RAM: [MemRange; 2] = [
        MemRange {
            base: 0x4400_0000,
            size: 0x1000_0000,
        },
        MemRange {
            base: 0x8000_0000,
            size: 0x1000,
        },
    ];

    #[test]
    fn entry_layout_is_user_pt_regs_after_two_words() {
        let x: [u64; 31] = core::array::from_fn(|i| i as u64 + 100);
        let regs = UserRegs::new(&x, 0xffff_8000_1234, 0x3c5, 0xe0, 0xe1);
        let w = entry_words(0x103, Some((&regs, 0xffff_0000_cafe)));
        assert_eq!(w.len() * 8, ENTRY_BYTES_SP_EL0 as usize);
        assert_eq!((w[0], w[1]), (0x103, STATUS_SAVED));
        assert_eq!(w[2], 100, "x0 at +16");
        assert_eq!(w[32], 130, "x30 at +256");
        assert_eq!(w[33], 0xe1, "EL1h uses SP_EL1");
        assert_eq!(
            (w[34], w[35]),
            (0xffff_8000_1234, 0x3c5),
            "pc at +272, pstate at +280"
        );
        assert_eq!(w[36], 0xffff_0000_cafe, "SP_EL0 at +288");
        assert_eq!(
            entry_words(7, None)[1..],
            [0; 36],
            "no registers: status 0 and zeros"
        );
    }

    #[test]
    fn the_stack_pointer_follows_the_interrupted_mode() {
        let x = [0; 31];
        assert_eq!(UserRegs::new(&x, 0, 0b0100, 0xa, 0xb).0[31], 0xa, "EL1t");
        assert_eq!(UserRegs::new(&x, 0, 0b0000, 0xa, 0xb).0[31], 0xa, "EL0t");
        assert_eq!(
            UserRegs::new(&x, 0, 0x3c5, 0xa, 0xb).0[31],
            0xb,
            "EL1h with DAIF masked"
        );
    }

    #[test]
    fn save_areas_must_be_aligned_large_enough_and_in_guest_ram() {
        let ok = SaveArea::validate(0x4400_1000, 4 * ENTRY_BYTES, 4, false, &RAM).unwrap();
        assert_eq!(ok.entry_addr(3), 0x4400_1000 + 3 * 288);
        assert_eq!(ok.entry_words(), 36);
        let with_sp = SaveArea::validate(0x4400_1000, 4 * 296, 4, true, &RAM).unwrap();
        assert_eq!(with_sp.entry_addr(3), 0x4400_1000 + 3 * 296);
        assert_eq!(with_sp.entry_words(), 37);
        assert_eq!(
            SaveArea::validate(0x4400_1000, 4 * ENTRY_BYTES, 4, true, &RAM),
            Err(ret::INVALID_PARAMETERS),
            "too small for entries with SP_EL0"
        );
        let bad = Err(ret::INVALID_PARAMETERS);
        assert_eq!(
            SaveArea::validate(0x4400_1004, 4 * ENTRY_BYTES, 4, false, &RAM),
            bad,
            "misaligned"
        );
        assert_eq!(
            SaveArea::validate(0x4400_1000, 4 * ENTRY_BYTES - 1, 4, false, &RAM),
            bad,
            "too small"
        );
        assert_eq!(
            SaveArea::validate(0x4000_0000, 4 * ENTRY_BYTES, 4, false, &RAM),
            bad,
            "hypervisor memory"
        );
        assert_eq!(
            SaveArea::validate(0x53ff_ff00, 4 * ENTRY_BYTES, 4, false, &RAM),
            bad,
            "runs off the end of RAM"
        );
        assert_eq!(
            SaveArea::validate(0x8000_0000, 16 * ENTRY_BYTES, 16, false, &RAM),
            bad,
            "spans past a small range"
        );
        assert_eq!(
            SaveArea::validate(u64::MAX - 15, u64::MAX, 4, false, &RAM),
            bad,
            "wraps"
        );
    }
}
