//! Serialises a device tree into a flattened (DTB, version 17) blob.
//!
//! dtoolkit's in-place editor cannot add nodes without its `write` feature
//! (which pulls in hash maps), so the guest DTB is produced by streaming a new
//! blob: the rewriter walks the host tree and tells this writer what to emit.

use alloc::vec::Vec;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const END: u32 = 9;

/// Builds a DTB one token at a time. Nodes must be properly nested; `finish`
/// checks that in debug builds.
#[derive(Debug, Default)]
pub(crate) struct FdtWriter {
    reservations: Vec<(u64, u64)>,
    structure: Vec<u8>,
    strings: Vec<u8>,
    depth: usize,
}

impl FdtWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a `/memreserve/` entry.
    pub(crate) fn reserve(&mut self, address: u64, size: u64) {
        self.reservations.push((address, size));
    }

    /// Opens a node; the root's name is "".
    pub(crate) fn begin_node(&mut self, name: &str) {
        self.token(BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.pad();
        self.depth += 1;
    }

    pub(crate) fn end_node(&mut self) {
        debug_assert!(self.depth > 0, "end_node without begin_node");
        self.token(END_NODE);
        self.depth -= 1;
    }

    pub(crate) fn property(&mut self, name: &str, value: &[u8]) {
        let name_offset = self.string_offset(name);
        self.token(PROP);
        self.word(u32::try_from(value.len()).expect("property longer than 4 GiB"));
        self.word(name_offset);
        self.structure.extend_from_slice(value);
        self.pad();
    }

    /// A string property (NUL terminated).
    pub(crate) fn property_str(&mut self, name: &str, value: &str) {
        self.property_strs(name, &[value]);
    }

    /// A string-list property (`"a\0b\0"`).
    pub(crate) fn property_strs(&mut self, name: &str, values: &[&str]) {
        let mut v = Vec::new();
        for s in values {
            v.extend_from_slice(s.as_bytes());
            v.push(0);
        }
        self.property(name, &v);
    }

    pub(crate) fn property_u32(&mut self, name: &str, value: u32) {
        self.property(name, &value.to_be_bytes());
    }

    /// The finished blob; `boot_cpuid_phys` is copied into the header.
    pub(crate) fn finish(mut self, boot_cpuid_phys: u32) -> Vec<u8> {
        debug_assert_eq!(self.depth, 0, "unclosed node");
        self.token(END);
        let rsv_len = (self.reservations.len() + 1) * 16;
        let off_rsv = HEADER_LEN; // already 8-byte aligned, as the spec wants
        let off_struct = off_rsv + rsv_len;
        let off_strings = off_struct + self.structure.len();
        let total = off_strings + self.strings.len();
        let mut blob = Vec::with_capacity(total);
        for word in [
            MAGIC,
            to_u32(total),
            to_u32(off_struct),
            to_u32(off_strings),
            to_u32(off_rsv),
            17, // version
            16, // last compatible version
            boot_cpuid_phys,
            to_u32(self.strings.len()),
            to_u32(self.structure.len()),
        ] {
            blob.extend_from_slice(&word.to_be_bytes());
        }
        for (address, size) in self.reservations.iter().chain(&[(0, 0)]) {
            blob.extend_from_slice(&address.to_be_bytes());
            blob.extend_from_slice(&size.to_be_bytes());
        }
        blob.extend_from_slice(&self.structure);
        blob.extend_from_slice(&self.strings);
        blob
    }

    /// Offset of `name` in the strings block, adding it once.
    fn string_offset(&mut self, name: &str) -> u32 {
        let mut offset = 0;
        for s in self.strings.split(|&b| b == 0) {
            if s == name.as_bytes() && offset < self.strings.len() {
                return to_u32(offset);
            }
            offset += s.len() + 1;
        }
        let offset = self.strings.len();
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        to_u32(offset)
    }

    fn token(&mut self, token: u32) {
        self.word(token);
    }

    fn word(&mut self, word: u32) {
        self.structure.extend_from_slice(&word.to_be_bytes());
    }

    /// Tokens are 4-byte aligned; names and values are zero padded.
    fn pad(&mut self) {
        let len = self.structure.len().next_multiple_of(4);
        self.structure.resize(len, 0);
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("DTB larger than 4 GiB")
}

#[cfg(test)]
mod tests {
    use dtoolkit::fdt::Fdt;
    use dtoolkit::{Node, Property};

    use super::*;

    #[test]
    fn round_trips_through_dtoolkit() {
        let mut w = FdtWriter::new();
        w.reserve(0x1000, 0x2000);
        w.begin_node("");
        w.property_u32("#address-cells", 2);
        w.begin_node("child@1");
        w.property_str("name-ish", "abc");
        w.property_strs("compatible", &["a", "b"]);
        w.property("empty", &[]);
        w.property_u32("#address-cells", 1); // name reused from the strings block
        w.end_node();
        w.end_node();
        let blob = w.finish(3);

        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.boot_cpuid_phys(), 3);
        let rsv: Vec<_> = fdt
            .memory_reservations()
            .map(|r| (r.address(), r.size()))
            .collect();
        assert_eq!(rsv, [(0x1000, 0x2000)]);
        let child = fdt.find_node("/child@1").unwrap();
        assert_eq!(
            child.property("name-ish").unwrap().value_as::<&str>(),
            Ok("abc")
        );
        assert_eq!(child.property("compatible").unwrap().value(), b"a\0b\0");
        assert_eq!(child.property("empty").unwrap().value(), b"");
        assert_eq!(
            child.property("#address-cells").unwrap().value_as::<u32>(),
            Ok(1)
        );
        // "#address-cells" stored once.
        assert_eq!(
            blob.windows(14).filter(|w| w == b"#address-cells").count(),
            1
        );
    }
}
