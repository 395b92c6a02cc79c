//! ESR_EL2, the syndrome of a trap from the guest: the one place that reads
//! its exception class and ISS. `mmio` decodes a data abort's ISS further,
//! `exception` reads the IL bit; the trapped system register's ISS comes
//! from arm-sysregs' typed `EsrEl2::iss_sysreg`.

/// Exception classes (ESR_ELx.EC) parkvisor handles or injects.
pub const EC_UNKNOWN: u8 = 0x00;
pub const EC_HVC64: u8 = 0x16;
pub const EC_SMC64: u8 = 0x17;
pub const EC_SYSREG: u8 = 0x18;
pub const EC_IABT_LOWER: u8 = 0x20;
pub const EC_IABT_SAME: u8 = 0x21;
pub const EC_DABT_LOWER: u8 = 0x24;
pub const EC_DABT_SAME: u8 = 0x25;

/// ISS.WnR of a data abort: the access was a write.
pub const ISS_WNR: u32 = 1 << 6;

/// The exception class of an ESR value.
pub const fn exception_class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3F) as u8
}

/// The 25-bit ISS field of an ESR value.
pub const fn iss(esr: u64) -> u32 {
    (esr & 0x1FF_FFFF) as u32
}

/// What the guest's synchronous exception was, by exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// HVC #imm from AArch64.
    Hvc { imm: u16 },
    /// SMC #imm from AArch64, trapped by HCR_EL2.TSC.
    Smc { imm: u16 },
    /// A trapped MSR/MRS.
    SystemRegister,
    /// A stage-2 instruction abort from the guest.
    InstructionAbort,
    /// A stage-2 data abort from the guest (`mmio::decode` reads its ISS).
    DataAbort,
    /// Any other class.
    Other(u8),
}

impl Trap {
    pub const fn decode(esr: u64) -> Self {
        match exception_class(esr) {
            EC_HVC64 => Trap::Hvc { imm: esr as u16 },
            EC_SMC64 => Trap::Smc { imm: esr as u16 },
            EC_SYSREG => Trap::SystemRegister,
            EC_IABT_LOWER => Trap::InstructionAbort,
            EC_DABT_LOWER => Trap::DataAbort,
            ec => Trap::Other(ec),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_and_fields() {
        // HVC #0x1234, IL set.
        assert_eq!(Trap::decode(0x5A00_1234), Trap::Hvc { imm: 0x1234 });
        assert_eq!(Trap::decode(0x5E00_0000), Trap::Smc { imm: 0 });
        assert_eq!(Trap::decode(0x6200_0000), Trap::SystemRegister);
        assert_eq!(Trap::decode(0x8200_0000), Trap::InstructionAbort);
        assert_eq!(Trap::decode(0x9200_0040), Trap::DataAbort);
        assert_eq!(Trap::decode(0x9600_0000), Trap::Other(EC_DABT_SAME));
        assert_eq!(Trap::decode(0x0200_0000), Trap::Other(EC_UNKNOWN));
        assert_eq!(iss(0x9200_0040) & ISS_WNR, ISS_WNR);
        assert_eq!(iss(u64::MAX), 0x1FF_FFFF);
        assert_eq!(exception_class(u64::MAX), 0x3F);
    }
}
