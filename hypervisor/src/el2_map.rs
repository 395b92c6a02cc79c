//! Which 1 GiB blocks of EL2's own identity map are RAM. The boot-time map
//! (`arch::el2::initial_pagetable`) is fixed before the DTB is read and
//! covers RAM up to 4 GiB only; the hypervisor writes guest RAM above that
//! too (the guest DTB at the top of RAM, SAVE_REGS areas), so once the memory
//! nodes are known every block that holds some RAM is mapped as well.

use crate::mem_range::MemRange;

/// Entries of EL2's level-1 table: 1 GiB each, 512 of them (39-bit VA).
pub const BLOCKS: usize = 512;
/// log2 of one level-1 block.
pub const BLOCK_SHIFT: u32 = 30;

/// Indexes of the level-1 blocks that hold some byte of `ram`, below
/// `limit` (the first block that is not RAM: the high MMIO region), in
/// ascending order, each once.
pub fn ram_blocks(ram: &[MemRange], limit: usize) -> impl Iterator<Item = usize> + '_ {
    let limit = limit.min(BLOCKS);
    (0..limit).filter(move |&block| {
        let start = (block as u64) << BLOCK_SHIFT;
        let end = start + (1 << BLOCK_SHIFT);
        ram.iter()
            .any(|r| !r.is_empty() && r.base < end && r.end() > start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const GIB: u64 = 1 << 30;

    #[test]
    fn blocks_cover_every_ram_byte_once() {
        // QEMU virt with 16 GiB: RAM at 1..17 GiB.
        let ram = [MemRange::new(GIB, 16 * GIB)];
        let b: Vec<usize> = ram_blocks(&ram, 256).collect();
        assert_eq!(b, (1..17).collect::<Vec<_>>());
        // Unaligned ranges: a block is in as soon as one byte of RAM is.
        let ram = [
            MemRange::new(GIB + 0x400_0000, 0x100),
            MemRange::new(5 * GIB - 1, 2),
            MemRange::new(9 * GIB, 0),
        ];
        let b: Vec<usize> = ram_blocks(&ram, 256).collect();
        assert_eq!(b, [1, 4, 5]);
    }

    #[test]
    fn blocks_stop_at_the_limit() {
        let ram = [MemRange::new(250 * GIB, 10 * GIB)];
        let b: Vec<usize> = ram_blocks(&ram, 256).collect();
        assert_eq!(b, (250..256).collect::<Vec<_>>());
        let ram = [MemRange::new(u64::MAX - GIB, GIB)];
        assert_eq!(ram_blocks(&ram, 1000).count(), 0);
    }
}
