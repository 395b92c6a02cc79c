//! Big-endian cell encoding: how `reg`, `interrupts` and friends store numbers.

use alloc::vec::Vec;

use super::MemRange;

/// Reads one number of `cells` 32-bit cells from the front of `bytes`, or
/// `None` if it is too short or the number is wider than 64 bits.
pub(crate) fn read(bytes: &[u8], cells: usize) -> Option<u64> {
    if cells > 2 || bytes.len() < cells * 4 {
        return None;
    }
    Some(bytes[..cells * 4].chunks_exact(4).fold(0, |acc, c| {
        (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }))
}

/// Splits a property into `<address size>` pairs. `None` when the length is
/// not a whole number of pairs (the telltale of wrong cell counts).
pub(crate) fn read_reg(
    value: &[u8],
    address_cells: usize,
    size_cells: usize,
) -> Option<Vec<MemRange>> {
    let entry = (address_cells + size_cells) * 4;
    if entry == 0 || !value.len().is_multiple_of(entry) {
        return None;
    }
    value
        .chunks_exact(entry)
        .map(|e| {
            let base = read(e, address_cells)?;
            let size = read(&e[address_cells * 4..], size_cells)?;
            Some(MemRange::new(base, size))
        })
        .collect()
}

/// The 32-bit cells of a property (e.g. `interrupts`), `None` if its length is
/// not a multiple of 4.
pub(crate) fn read_u32s(value: &[u8]) -> Option<Vec<u32>> {
    if !value.len().is_multiple_of(4) {
        return None;
    }
    Some(
        value
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Appends `value` as `cells` big-endian cells; `None` if it does not fit.
pub(crate) fn push(out: &mut Vec<u8>, value: u64, cells: usize) -> Option<()> {
    match cells {
        1 => out.extend_from_slice(&u32::try_from(value).ok()?.to_be_bytes()),
        2 => out.extend_from_slice(&value.to_be_bytes()),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reg_with_two_and_one_cells() {
        let v = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0x10, 0];
        assert_eq!(
            read_reg(&v, 2, 1),
            Some(alloc::vec![MemRange::new(0x1_0000_0002, 0x1000)])
        );
        assert_eq!(read_reg(&v, 2, 2), None);
    }

    #[test]
    fn push_refuses_overflow() {
        let mut out = Vec::new();
        assert_eq!(push(&mut out, 1 << 32, 1), None);
        assert_eq!(push(&mut out, 1 << 32, 2), Some(()));
        assert_eq!(read(&out, 2), Some(1 << 32));
    }
}
