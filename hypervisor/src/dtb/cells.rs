//! Big-endian cell encoding, for the properties parkvisor writes (dtoolkit
//! reads them).

use alloc::vec::Vec;

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
    fn push_refuses_overflow() {
        let mut out = Vec::new();
        assert_eq!(push(&mut out, 1 << 32, 1), None);
        assert_eq!(push(&mut out, 1 << 32, 2), Some(()));
        assert_eq!(push(&mut out, 5, 1), Some(()));
        assert_eq!(out, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]);
    }
}
