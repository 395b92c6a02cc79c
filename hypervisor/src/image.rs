//! Guest memory layout: recognise an arm64 Linux `Image`, decide where the
//! guest kernel runs, and pick a slot for the guest DTB.
//!
//! Everything here is arithmetic on addresses; the copying is done by the
//! caller (see [`LoadPlan`]). Placement rules follow the kernel's
//! `Documentation/arch/arm64/booting.rst`.

use core::fmt;

use crate::mem_range::MemRange;

/// Linux wants its image, and the guest DTB, on 2 MiB boundaries.
pub const SZ_2M: u64 = 2 << 20;

/// Bytes of a Linux `Image` header [`detect`] needs to look at.
pub const HEADER_LEN: usize = 64;

const MAGIC_OFFSET: usize = 0x38;
const MAGIC: &[u8; 4] = b"ARM\x64";
const FLAG_BIG_ENDIAN: u64 = 1 << 0;
/// Set: the 2 MiB aligned base may be anywhere in RAM. Clear (old kernels):
/// it should be as low as possible, memory below it is lost to the kernel.
const FLAG_PLACE_ANYWHERE: u64 = 1 << 3;

/// The fields of an arm64 Linux `Image` header that placement depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxHeader {
    /// Offset of the image from a 2 MiB aligned base.
    pub text_offset: u64,
    /// Bytes the running kernel occupies from its start, BSS included.
    pub image_size: u64,
    /// Endianness, page size and placement flags.
    pub flags: u64,
}

/// What kind of guest image a module holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// An arm64 Linux `Image`: placed by its header's rules.
    Linux(LinuxHeader),
    /// Anything else (e.g. a bare-metal test guest): run where it was loaded,
    /// entered at its first byte.
    Raw,
}

/// Recognises a Linux `Image` by its magic at 0x38; `image` is the start of
/// the module (at least [`HEADER_LEN`] bytes for a Linux image to be seen).
#[must_use]
pub fn detect(image: &[u8]) -> ImageKind {
    let Some(header) = image.get(..HEADER_LEN) else {
        return ImageKind::Raw;
    };
    if &header[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
        return ImageKind::Raw;
    }
    let le64 = |at: usize| {
        let mut b = [0; 8];
        b.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(b)
    };
    ImageKind::Linux(LinuxHeader {
        text_offset: le64(0x08),
        image_size: le64(0x10),
        flags: le64(0x18),
    })
}

/// Where the guest kernel runs. If `src != dst` the caller copies `len` bytes
/// from `src` to `dst` (the ranges never overlap) before entering at `entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    /// Where the module is now.
    pub src: u64,
    /// Where it must be.
    pub dst: u64,
    /// Bytes to copy (the module's size).
    pub len: u64,
    /// Where vCPU0 starts.
    pub entry: u64,
    /// Everything the running image owns: for Linux from its 2 MiB aligned
    /// base to the end of `image_size` (BSS included). Nothing else (DTB,
    /// initrd) may be placed here.
    pub footprint: MemRange,
}

impl LoadPlan {
    /// Whether the image has to be moved before it can run.
    #[must_use]
    pub fn needs_copy(&self) -> bool {
        self.src != self.dst
    }
}

/// Why no layout could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// The Linux image is big-endian; guests run little-endian.
    BigEndian,
    /// `image_size` is 0 (a pre-3.17 kernel): its footprint is unknown.
    NoImageSize,
    /// A raw image that does not lie inside guest RAM.
    NotInRam(MemRange),
    /// No free, suitably aligned slot of this many bytes in guest RAM.
    NoRoom(u64),
    /// A DTB larger than the 2 MiB Linux accepts.
    DtbTooBig(u64),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BigEndian => f.write_str("guest image: big-endian Linux Image not supported"),
            Self::NoImageSize => {
                f.write_str("guest image: Linux Image without image_size (pre-3.17) not supported")
            }
            Self::NotInRam(r) => write!(f, "guest image: {r} is not inside guest RAM"),
            Self::NoRoom(n) => write!(
                f,
                "guest image: no free 2 MiB aligned {n:#x} bytes in guest RAM"
            ),
            Self::DtbTooBig(n) => write!(f, "guest DTB: {n:#x} bytes, Linux accepts at most 2 MiB"),
        }
    }
}

/// Decides where the kernel in `module` runs.
///
/// `header` is the start of the module, `ram` the guest RAM, `avoid` what the
/// kernel must not overlap (the initrd). A Linux image runs in place when its
/// module already sits at a 2 MiB aligned base + `text_offset` with room for
/// `image_size`; otherwise it goes to the lowest slot that fits. A raw image
/// always runs in place.
///
/// # Errors
///
/// See [`ImageError`].
pub fn plan_load(
    header: &[u8],
    module: MemRange,
    ram: &[MemRange],
    avoid: &[MemRange],
) -> Result<LoadPlan, ImageError> {
    let linux = match detect(header) {
        ImageKind::Raw => {
            if !ram.iter().any(|r| r.contains_range(&module)) {
                return Err(ImageError::NotInRam(module));
            }
            return Ok(LoadPlan {
                src: module.base,
                dst: module.base,
                len: module.size,
                entry: module.base,
                footprint: module,
            });
        }
        ImageKind::Linux(h) => h,
    };
    if linux.flags & FLAG_BIG_ENDIAN != 0 {
        return Err(ImageError::BigEndian);
    }
    if linux.image_size == 0 {
        return Err(ImageError::NoImageSize);
    }
    // From the aligned base to the end of the image (BSS included, and never
    // less than the bytes we copy).
    let span = linux.text_offset + linux.image_size.max(module.size);
    let fits = |base: u64| {
        let footprint = MemRange::new(base, span);
        ram.iter().any(|r| r.contains_range(&footprint))
            && !avoid.iter().any(|a| a.overlaps(&footprint))
    };

    let in_place = module
        .base
        .checked_sub(linux.text_offset)
        .filter(|base| base % SZ_2M == 0 && fits(*base));
    let lowest = || find_slot(span, ram, avoid, Some(module), false);
    let base = match in_place {
        // An old kernel wants the lowest slot; running in place is fine only
        // if that is where it already is.
        Some(b) if linux.flags & FLAG_PLACE_ANYWHERE != 0 => b,
        Some(b) if find_slot(span, ram, avoid, None, false) == Some(b) => b,
        _ => lowest().ok_or(ImageError::NoRoom(span))?,
    };
    let dst = base + linux.text_offset;
    Ok(LoadPlan {
        src: module.base,
        dst,
        len: module.size,
        entry: dst,
        footprint: MemRange::new(base, span),
    })
}

/// Picks the guest DTB's address: the highest whole 2 MiB block of guest RAM
/// that overlaps nothing in `avoid` (pass the kernel's
/// [`LoadPlan::footprint`], its module if it is copied, and the initrd).
/// A whole block because Linux maps the DTB with 2 MiB block mappings and
/// requires it not to exceed 2 MiB; high so it stays out of the way of
/// allocations Linux makes low in memory.
///
/// # Errors
///
/// [`ImageError::DtbTooBig`] over 2 MiB, [`ImageError::NoRoom`] if no block
/// is free.
pub fn place_dtb(dtb_len: u64, ram: &[MemRange], avoid: &[MemRange]) -> Result<u64, ImageError> {
    if dtb_len > SZ_2M {
        return Err(ImageError::DtbTooBig(dtb_len));
    }
    find_slot(SZ_2M, ram, avoid, None, true).ok_or(ImageError::NoRoom(SZ_2M))
}

/// The lowest (or highest, `top_down`) 2 MiB aligned base of `len` bytes
/// inside one `ram` range and clear of `avoid` and `also_avoid`.
fn find_slot(
    len: u64,
    ram: &[MemRange],
    avoid: &[MemRange],
    also_avoid: Option<MemRange>,
    top_down: bool,
) -> Option<u64> {
    let blockers = || avoid.iter().chain(also_avoid.as_ref());
    let mut best: Option<u64> = None;
    for r in ram {
        let Some(mut base) = r.base.checked_next_multiple_of(SZ_2M) else {
            continue;
        };
        // Step upwards past each blocker; remember the last (or first) fit.
        while base.checked_add(len).is_some_and(|end| end <= r.end()) {
            let slot = MemRange::new(base, len);
            match blockers()
                .filter(|b| b.overlaps(&slot))
                .map(MemRange::end)
                .max()
            {
                Some(end) => match end.checked_next_multiple_of(SZ_2M) {
                    Some(next) => base = next,
                    None => break,
                },
                None => {
                    if !top_down {
                        return Some(base);
                    }
                    best = best.max(Some(base));
                    base += SZ_2M;
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const RAM: [MemRange; 1] = [MemRange::new(0x4400_0000, 0x3c00_0000)];
    const INITRD: MemRange = MemRange::new(0x6000_0000, 0x200_0000);

    /// A synthetic `Image` header.
    fn linux(text_offset: u64, image_size: u64, flags: u64) -> [u8; HEADER_LEN] {
        let mut h = [0; HEADER_LEN];
        h[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        h[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&flags.to_le_bytes());
        h[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(MAGIC);
        h
    }

    /// A modern kernel: 4K pages, place anywhere.
    const MODERN: u64 = 0b1010;

    #[test]
    fn detects_linux_and_raw() {
        assert_eq!(
            detect(&linux(0, 36 * MIB, MODERN)),
            ImageKind::Linux(LinuxHeader {
                text_offset: 0,
                image_size: 36 * MIB,
                flags: MODERN,
            })
        );
        assert_eq!(detect(&[0x14; 4096]), ImageKind::Raw);
        assert_eq!(detect(&linux(0, 1, 0)[..HEADER_LEN - 1]), ImageKind::Raw);
    }

    #[test]
    fn aligned_linux_runs_in_place() {
        let module = MemRange::new(0x4800_0000, 33 * MIB);
        let plan = plan_load(&linux(0, 36 * MIB, MODERN), module, &RAM, &[INITRD]).unwrap();
        assert!(!plan.needs_copy());
        assert_eq!(plan.entry, 0x4800_0000);
        assert_eq!(plan.footprint, MemRange::new(0x4800_0000, 36 * MIB));
    }

    #[test]
    fn text_offset_is_counted_from_the_aligned_base() {
        let module = MemRange::new(0x4808_0000, MIB);
        let plan = plan_load(&linux(0x8_0000, 4 * MIB, MODERN), module, &RAM, &[]).unwrap();
        assert!(!plan.needs_copy());
        assert_eq!(
            plan.footprint,
            MemRange::new(0x4800_0000, 0x8_0000 + 4 * MIB)
        );
    }

    #[test]
    fn misaligned_linux_moves_to_lowest_slot() {
        let module = MemRange::new(0x4801_0000, MIB);
        let plan = plan_load(&linux(0, 4 * MIB, MODERN), module, &RAM, &[INITRD]).unwrap();
        assert!(plan.needs_copy());
        assert_eq!(
            (plan.src, plan.dst, plan.len),
            (0x4801_0000, 0x4400_0000, MIB)
        );
        assert_eq!(plan.entry, 0x4400_0000);
    }

    #[test]
    fn copy_never_overlaps_its_source() {
        // Misaligned near the start of RAM: the lowest slot would overlap it.
        let module = MemRange::new(0x4401_0000, 3 * MIB);
        let plan = plan_load(&linux(0, 8 * MIB, MODERN), module, &RAM, &[]).unwrap();
        assert!(!MemRange::new(plan.dst, plan.len).overlaps(&module));
        assert_eq!(plan.dst, 0x4440_0000);
    }

    #[test]
    fn bss_overlapping_initrd_moves_the_kernel() {
        let module = MemRange::new(0x5f00_0000, MIB);
        let plan = plan_load(&linux(0, 32 * MIB, MODERN), module, &RAM, &[INITRD]).unwrap();
        assert!(plan.needs_copy());
        assert!(!plan.footprint.overlaps(&INITRD));
    }

    #[test]
    fn old_kernel_goes_as_low_as_possible() {
        let module = MemRange::new(0x4800_0000, MIB);
        let plan = plan_load(&linux(0, 4 * MIB, 0b0010), module, &RAM, &[]).unwrap();
        assert_eq!(plan.dst, 0x4400_0000);
        let at_bottom = MemRange::new(0x4400_0000, MIB);
        let plan = plan_load(&linux(0, 4 * MIB, 0b0010), at_bottom, &RAM, &[]).unwrap();
        assert!(!plan.needs_copy());
    }

    #[test]
    fn linux_errors() {
        let module = MemRange::new(0x4800_0000, MIB);
        let be = linux(0, 4 * MIB, MODERN | FLAG_BIG_ENDIAN);
        assert_eq!(
            plan_load(&be, module, &RAM, &[]),
            Err(ImageError::BigEndian)
        );
        assert_eq!(
            plan_load(&linux(0, 0, MODERN), module, &RAM, &[]),
            Err(ImageError::NoImageSize)
        );
        let huge = linux(0, 0x4000_0000, MODERN);
        assert_eq!(
            plan_load(&huge, module, &RAM, &[]),
            Err(ImageError::NoRoom(0x4000_0000))
        );
    }

    #[test]
    fn raw_image_runs_where_loaded() {
        let module = MemRange::new(0x4800_1000, 0x3000);
        let plan = plan_load(&[0; 16], module, &RAM, &[INITRD]).unwrap();
        assert_eq!(
            (plan.dst, plan.entry, plan.footprint),
            (0x4800_1000, 0x4800_1000, module)
        );
        let outside = MemRange::new(0x4000_0000, 0x1000);
        assert_eq!(
            plan_load(&[0; 16], outside, &RAM, &[]),
            Err(ImageError::NotInRam(outside))
        );
    }

    #[test]
    fn dtb_goes_in_the_highest_free_block() {
        let kernel = MemRange::new(0x4800_0000, 36 * MIB);
        assert_eq!(place_dtb(0x2000, &RAM, &[kernel, INITRD]), Ok(0x7fe0_0000));
        // A blocker in the top block pushes it down to the next whole block.
        let top = MemRange::new(0x7ff0_0000, 0x1000);
        assert_eq!(place_dtb(0x2000, &RAM, &[top]), Ok(0x7fc0_0000));
        // Unaligned RAM end: only whole blocks count.
        let ram = [MemRange::new(0x4400_0000, 0x30_1000)];
        assert_eq!(place_dtb(0x2000, &ram, &[]), Ok(0x4400_0000));
    }

    #[test]
    fn dtb_errors() {
        assert_eq!(
            place_dtb(SZ_2M + 1, &RAM, &[]),
            Err(ImageError::DtbTooBig(SZ_2M + 1))
        );
        assert_eq!(place_dtb(0x100, &RAM, &RAM), Err(ImageError::NoRoom(SZ_2M)));
        let tiny = [MemRange::new(0x4400_0000, MIB)];
        assert_eq!(place_dtb(0x100, &tiny, &[]), Err(ImageError::NoRoom(SZ_2M)));
    }
}
