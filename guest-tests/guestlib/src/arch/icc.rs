//! Every GICv3 CPU interface system register by name, read and written
//! with any value (for the fuzzer; the ordinary paths are in `gic`).

/// An ICC_*_EL1 register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icc {
    Iar1,
    Iar0,
    Eoir1,
    Eoir0,
    Dir,
    Hppir1,
    Hppir0,
    Rpr,
    Pmr,
    Bpr1,
    Bpr0,
    Ctlr,
    Sre,
    Igrpen1,
    Igrpen0,
    Ap1r0,
    Ap0r0,
    Sgi1r,
    Sgi0r,
    Asgi1r,
}

macro_rules! access {
    ($reg:expr, $($name:ident => $enc:literal),+ $(,)?) => {
        /// Reads `reg` (an acknowledge register acknowledges; a write-only
        /// register reads as whatever the CPU gives, or traps).
        pub fn read(reg: Icc) -> u64 {
            let v: u64;
            match reg {
                $(
                    // SAFETY: a GIC CPU interface register read: it changes
                    // at most this CPU's interrupt state, never memory.
                    Icc::$name => unsafe {
                        core::arch::asm!(concat!("mrs {}, ", $enc), out(reg) v, options(nostack))
                    },
                )+
            }
            v
        }

        /// Writes `value` to `reg` (then ISB).
        pub fn write(reg: Icc, value: u64) {
            match reg {
                $(
                    // SAFETY: a GIC CPU interface register write: it changes
                    // at most this CPU's interrupt state or sends an SGI,
                    // never memory.
                    Icc::$name => unsafe {
                        core::arch::asm!(concat!("msr ", $enc, ", {}"), "isb", in(reg) value, options(nostack))
                    },
                )+
            }
        }
    };
}

access!(
    reg,
    Iar1 => "S3_0_C12_C12_0",
    Iar0 => "S3_0_C12_C8_0",
    Eoir1 => "S3_0_C12_C12_1",
    Eoir0 => "S3_0_C12_C8_1",
    Dir => "S3_0_C12_C11_1",
    Hppir1 => "S3_0_C12_C12_2",
    Hppir0 => "S3_0_C12_C8_2",
    Rpr => "S3_0_C12_C11_3",
    Pmr => "S3_0_C4_C6_0",
    Bpr1 => "S3_0_C12_C12_3",
    Bpr0 => "S3_0_C12_C8_3",
    Ctlr => "S3_0_C12_C12_4",
    Sre => "S3_0_C12_C12_5",
    Igrpen1 => "S3_0_C12_C12_7",
    Igrpen0 => "S3_0_C12_C12_6",
    Ap1r0 => "S3_0_C12_C9_0",
    Ap0r0 => "S3_0_C12_C8_4",
    Sgi1r => "S3_0_C12_C11_5",
    Sgi0r => "S3_0_C12_C11_7",
    Asgi1r => "S3_0_C12_C11_6",
);
