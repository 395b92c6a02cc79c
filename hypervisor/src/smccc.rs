//! SMC Calling Convention (SMCCC) decoding.
//!
//! The guest calls parkvisor with `HVC #0` (or `SMC #0`, trapped by
//! HCR_EL2.TSC and handled identically). `x0` holds the function ID, `x1..x3`
//! the arguments. This module turns those four registers into a [`Call`] the
//! dispatcher matches on; it has no side effects and knows nothing about vCPU
//! state.
//!
//! Function ID layout (SMCCC, DEN0028):
//!
//! | bits  | meaning |
//! |-------|---------|
//! | 31    | 1 = fast call, 0 = yielding call |
//! | 30    | 1 = SMC64/HVC64 convention, 0 = SMC32/HVC32 |
//! | 29:24 | owning entity ([`Owner`]) |
//! | 23:16 | must be zero for fast calls (bit 16 is the SMCCC 1.3 SVE hint) |
//! | 15:0  | function number within the owner's range |
//!
//! parkvisor reports SMCCC 1.1, so a function ID with any of bits 23:16 set is
//! not one it implements and decodes as [`Call::Unknown`] (the SVE hint is only
//! defined from SMCCC 1.3 on, and a caller that read our version never sets
//! it). Yielding calls are never implemented either.
//!
//! Arguments of SMC32 calls are the `w` registers: [`decode`] masks them to
//! their low 32 bits so a guest cannot smuggle stale upper halves into, e.g.,
//! the entry point of a 32-bit `CPU_ON`.

pub use smccc::arch::{
    SMCCC_ARCH_FEATURES, SMCCC_ARCH_SOC_ID, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2,
    SMCCC_ARCH_WORKAROUND_3, SMCCC_VERSION,
};
pub use smccc::psci::{
    PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_DEFAULT_SUSPEND_32,
    PSCI_CPU_DEFAULT_SUSPEND_64, PSCI_CPU_FREEZE, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MEM_PROTECT,
    PSCI_MEM_PROTECT_CHECK_RANGE_32, PSCI_MEM_PROTECT_CHECK_RANGE_64, PSCI_MIGRATE_32,
    PSCI_MIGRATE_64, PSCI_MIGRATE_INFO_TYPE, PSCI_MIGRATE_INFO_UP_CPU_32,
    PSCI_MIGRATE_INFO_UP_CPU_64, PSCI_NODE_HW_STATE_32, PSCI_NODE_HW_STATE_64,
    PSCI_SET_SUSPEND_MODE, PSCI_STAT_COUNT_32, PSCI_STAT_COUNT_64, PSCI_STAT_RESIDENCY_32,
    PSCI_STAT_RESIDENCY_64, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_SYSTEM_RESET2_32,
    PSCI_SYSTEM_RESET2_64, PSCI_SYSTEM_SUSPEND_32, PSCI_SYSTEM_SUSPEND_64, PSCI_VERSION,
};

pub use parkvisor_abi::psci::{
    SYSTEM_OFF2_32 as PSCI_SYSTEM_OFF2_32, SYSTEM_OFF2_64 as PSCI_SYSTEM_OFF2_64,
};

/// Bit 31 of a function ID: fast call.
pub const FAST_CALL: u32 = 1 << 31;
/// Bit 30 of a function ID: SMC64/HVC64 calling convention.
pub const SMC64: u32 = 1 << 30;
/// Bits 23:16 of a function ID, which must be zero for a fast call under SMCCC 1.1.
pub const MBZ_MASK: u32 = 0x00FF_0000;

/// Vendor hypervisor service (owner 6): the numbers of `parkvisor_abi`,
/// with the flag and feature sets typed.
pub mod vendor {
    pub use parkvisor_abi::vendor::{
        CALL_UID, FAST_STOP, FAST_STOP_FLAGS, FEATURES, TRACE_MARK, UID, VCPU_STATE,
    };
    use parkvisor_abi::vendor::{fast_stop, feature};

    bitflags::bitflags! {
        /// FAST_STOP's x2.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct FastStopFlags: u64 {
            /// Record each stopped vCPU's guest registers into the save area
            /// at x3 (size in x4); see the `stop_context` module.
            const SAVE_REGS = fast_stop::SAVE_REGS;
            /// With SAVE_REGS: each entry also carries the stopped context's
            /// SP_EL0 (296-byte entries). Refused without SAVE_REGS.
            const SAVE_SP_EL0 = fast_stop::SAVE_SP_EL0;
        }
    }

    bitflags::bitflags! {
        /// The FEATURES answer: bit n set when function number n (the low
        /// 16 bits of its ID) is implemented.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Features: u64 {
            /// FEATURES itself.
            const FEATURES = feature::FEATURES;
            /// FAST_STOP.
            const FAST_STOP = feature::FAST_STOP;
            /// VCPU_STATE.
            const VCPU_STATE = feature::VCPU_STATE;
            /// TRACE_MARK.
            const TRACE_MARK = feature::TRACE_MARK;
            /// FAST_STOP_FLAGS.
            const FAST_STOP_FLAGS = feature::FAST_STOP_FLAGS;
        }
    }
}

/// Return codes of `parkvisor_abi`, widened to the x0 arithmetic here.
pub mod ret {
    use parkvisor_abi::ret as abi;

    /// Success.
    pub const SUCCESS: i64 = abi::SUCCESS as i64;
    /// Function not implemented / not supported.
    pub const NOT_SUPPORTED: i64 = abi::NOT_SUPPORTED as i64;
    /// PSCI: bad argument. (SMCCC arch calls: NOT_REQUIRED, see [`NOT_REQUIRED`].)
    pub const INVALID_PARAMETERS: i64 = abi::INVALID_PARAMETERS as i64;
    /// SMCCC_ARCH_FEATURES of a workaround: firmware does not need it.
    pub const NOT_REQUIRED: i64 = abi::ARCH_NOT_REQUIRED as i64;
    /// SMCCC arch calls: bad argument.
    pub const ARCH_INVALID_PARAMETER: i64 = abi::ARCH_INVALID_PARAMETER as i64;
    /// Operation refused.
    pub const DENIED: i64 = abi::DENIED as i64;
    /// CPU_ON of a CPU that is already on.
    pub const ALREADY_ON: i64 = abi::ALREADY_ON as i64;
    /// CPU_ON of a CPU that is being turned on.
    pub const ON_PENDING: i64 = abi::ON_PENDING as i64;
    /// Internal failure (FAST_STOP: deadline passed).
    pub const INTERNAL_FAILURE: i64 = abi::INTERNAL_FAILURE as i64;
    /// Trusted OS not present on the target.
    pub const NOT_PRESENT: i64 = abi::NOT_PRESENT as i64;
    /// CPU disabled.
    pub const DISABLED: i64 = abi::DISABLED as i64;
    /// Bad entry point address.
    pub const INVALID_ADDRESS: i64 = abi::INVALID_ADDRESS as i64;
}

/// The SMCCC version parkvisor reports (1.1). PSCI's has its own home,
/// `psci::VERSION`.
pub const VERSION: u64 = parkvisor_abi::version::SMCCC as u64;

/// 32- or 64-bit calling convention (bit 30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// Arguments and results are the low 32 bits of the registers.
    Smc32,
    /// Arguments and results are the full 64-bit registers.
    Smc64,
}

impl Convention {
    /// Reduces a raw argument register to what this convention passes.
    pub const fn arg(self, reg: u64) -> u64 {
        match self {
            Convention::Smc32 => reg & 0xFFFF_FFFF,
            Convention::Smc64 => reg,
        }
    }
}

/// Owning entity of a function ID (bits 29:24).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// 0: Arm architecture calls (SMCCC_VERSION, ARCH_FEATURES, workarounds).
    Arch,
    /// 1: CPU service calls.
    Cpu,
    /// 2: Silicon partner (SiP) service calls.
    Sip,
    /// 3: OEM service calls.
    Oem,
    /// 4: Standard secure service calls (PSCI, SDEI, TRNG, ...).
    StandardSecure,
    /// 5: Standard hypervisor service calls.
    StandardHyp,
    /// 6: Vendor-specific hypervisor service calls (parkvisor's own service).
    VendorHyp,
    /// 7: Vendor-specific EL3 monitor calls (SMCCC 1.4).
    VendorEl3Monitor,
    /// 8..=47: reserved for future use.
    Reserved(u8),
    /// 48..=49: Trusted Application calls.
    TrustedApp(u8),
    /// 50..=63: Trusted OS calls.
    TrustedOs(u8),
}

impl Owner {
    /// The owner with the given 6-bit number.
    pub const fn from_number(n: u8) -> Owner {
        match n & 0x3F {
            0 => Owner::Arch,
            1 => Owner::Cpu,
            2 => Owner::Sip,
            3 => Owner::Oem,
            4 => Owner::StandardSecure,
            5 => Owner::StandardHyp,
            6 => Owner::VendorHyp,
            7 => Owner::VendorEl3Monitor,
            n @ 8..=47 => Owner::Reserved(n),
            n @ 48..=49 => Owner::TrustedApp(n),
            n => Owner::TrustedOs(n),
        }
    }
}

/// A raw SMCCC function ID (the low 32 bits of x0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionId(pub u32);

impl FunctionId {
    /// Takes the function ID from x0 (W0: the upper half is ignored).
    pub const fn from_x0(x0: u64) -> FunctionId {
        FunctionId(x0 as u32)
    }

    /// True for a fast call (bit 31); yielding calls are never implemented.
    pub const fn is_fast(self) -> bool {
        self.0 & FAST_CALL != 0
    }

    /// Bit 30.
    pub const fn convention(self) -> Convention {
        if self.0 & SMC64 != 0 {
            Convention::Smc64
        } else {
            Convention::Smc32
        }
    }

    /// Bits 29:24.
    pub const fn owner(self) -> Owner {
        Owner::from_number((self.0 >> 24) as u8 & 0x3F)
    }

    /// Bits 23:16 (must be zero for every call parkvisor implements).
    pub const fn mbz_bits(self) -> u32 {
        (self.0 & MBZ_MASK) >> 16
    }
}

impl core::fmt::Display for FunctionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Arm architecture calls (owner 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchCall {
    /// SMCCC_VERSION: parkvisor answers 1.1.
    Version,
    /// SMCCC_ARCH_FEATURES(function ID in w1).
    Features {
        /// The queried function ID.
        function_id: u32,
    },
    /// SMCCC_ARCH_SOC_ID(type in w1): parkvisor answers NOT_SUPPORTED.
    SocId {
        /// 0 = SoC version, 1 = SoC revision.
        soc_id_type: u32,
    },
    /// SMCCC_ARCH_WORKAROUND_1/2/3 (the number): answered NOT_SUPPORTED.
    Workaround(u8),
}

/// PSCI calls (owner 4, function numbers 0x00..=0x1F).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciCall {
    /// PSCI_VERSION.
    Version,
    /// PSCI_FEATURES(function ID in w1).
    Features {
        /// The queried function ID.
        function_id: u32,
    },
    /// CPU_SUSPEND (32 or 64).
    CpuSuspend {
        /// Which variant the guest used (arguments already masked).
        conv: Convention,
        /// power_state parameter (always 32 bits).
        power_state: u32,
        /// Resume address for powerdown states.
        entry: u64,
        /// Handed back in x0 on resume.
        context_id: u64,
    },
    /// CPU_OFF.
    CpuOff,
    /// CPU_ON (32 or 64).
    CpuOn {
        /// Which variant the guest used (arguments already masked).
        conv: Convention,
        /// MPIDR (Aff fields) of the CPU to start.
        target_mpidr: u64,
        /// Guest physical entry address.
        entry: u64,
        /// Value for x0 at entry.
        context_id: u64,
    },
    /// AFFINITY_INFO (32 or 64).
    AffinityInfo {
        /// Which variant the guest used (arguments already masked).
        conv: Convention,
        /// MPIDR (Aff fields) of the affinity instance.
        target_affinity: u64,
        /// Lowest affinity level to consider (always 32 bits).
        lowest_level: u32,
    },
    /// MIGRATE_INFO_TYPE.
    MigrateInfoType,
    /// SYSTEM_OFF.
    SystemOff,
    /// SYSTEM_RESET.
    SystemReset,
    /// SYSTEM_OFF2 (32 or 64, PSCI 1.3).
    SystemOff2 {
        /// Which variant the guest used (arguments already masked).
        conv: Convention,
        /// Off type (always 32 bits): 0 or 1 = HIBERNATE_OFF.
        off_type: u32,
        /// Must be 0.
        cookie: u64,
    },
    /// SYSTEM_RESET2 (32 or 64).
    SystemReset2 {
        /// Which variant the guest used (arguments already masked).
        conv: Convention,
        /// Reset type (always 32 bits; bit 31 = vendor-specific).
        reset_type: u32,
        /// Vendor cookie.
        cookie: u64,
    },
    /// A function PSCI 1.1 defines that parkvisor does not implement
    /// (MIGRATE, CPU_FREEZE, SYSTEM_SUSPEND, STAT_*, MEM_PROTECT, ...): the
    /// dispatcher answers NOT_SUPPORTED, the trace still names it.
    Unimplemented(FunctionId),
}

/// parkvisor's vendor hypervisor service (owner 6), see `abi.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorCall {
    /// CALL_UID (0x8600FF01).
    CallUid,
    /// FEATURES (0x86000000).
    Features,
    /// FAST_STOP (0xC6000001).
    FastStop {
        /// Deadline in µs as passed (0 means the 1 s default: see [`VendorCall::fast_stop_timeout_us`]).
        timeout_us: u64,
        /// 0, or [`vendor::FastStopFlags`]; unknown bits: INVALID_PARAMETERS.
        flags: u64,
        /// SAVE_REGS: guest physical address of the save area (x3).
        save_area: u64,
        /// SAVE_REGS: size of the save area in bytes (x4).
        save_len: u64,
    },
    /// VCPU_STATE (0xC6000002).
    VcpuState {
        /// MPIDR (Aff fields) of the vCPU asked about.
        target_mpidr: u64,
    },
    /// TRACE_MARK (0x86000003).
    TraceMark {
        /// The 32-bit value to print.
        value: u32,
    },
    /// FAST_STOP_FLAGS (0x86000004).
    FastStopFlags,
}

impl VendorCall {
    /// For FAST_STOP: the effective deadline in µs (0 → 1 000 000).
    pub const fn fast_stop_timeout_us(timeout_us: u64) -> u64 {
        if timeout_us == 0 {
            parkvisor_abi::vendor::fast_stop::DEFAULT_TIMEOUT_US
        } else {
            timeout_us
        }
    }
}

/// The family of a call, and the word that introduces its trace line
/// (the call's trace names live here, with its decoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// `psci`: PSCI functions (owner 4).
    Psci,
    /// `smccc`: SMCCC architecture calls (owner 0).
    Smccc,
    /// `hvc`: parkvisor's vendor hypervisor service (owner 6).
    Hvc,
    /// `call`: an unknown function ID (always NOT_SUPPORTED).
    Unknown,
}

impl CallClass {
    /// The event word.
    pub const fn word(self) -> &'static str {
        match self {
            CallClass::Psci => "psci",
            CallClass::Smccc => "smccc",
            CallClass::Hvc => "hvc",
            CallClass::Unknown => "call",
        }
    }

    /// Inverse of [`CallClass::word`].
    pub fn from_word(w: &str) -> Option<CallClass> {
        match w {
            "psci" => Some(CallClass::Psci),
            "smccc" => Some(CallClass::Smccc),
            "hvc" => Some(CallClass::Hvc),
            "call" => Some(CallClass::Unknown),
            _ => None,
        }
    }
}

/// A decoded guest call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// SMCCC architecture call.
    Arch(ArchCall),
    /// PSCI call.
    Psci(PsciCall),
    /// parkvisor vendor hypervisor call.
    Vendor(VendorCall),
    /// Anything else, including every yielding call and every ID with bits
    /// 23:16 set: answer NOT_SUPPORTED (-1) in x0 and continue.
    Unknown(FunctionId),
}

/// Up to three call arguments as they are printed in a trace line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Args {
    vals: [u64; 3],
    len: u8,
}

impl Args {
    /// No arguments.
    pub const NONE: Args = Args {
        vals: [0; 3],
        len: 0,
    };

    /// Builds from a slice of at most three values (extra values are dropped).
    pub fn new(vals: &[u64]) -> Args {
        let mut a = Args::NONE;
        for (slot, v) in a.vals.iter_mut().zip(vals) {
            *slot = *v;
            a.len += 1;
        }
        a
    }

    /// The arguments.
    pub fn as_slice(&self) -> &[u64] {
        &self.vals[..self.len as usize]
    }
}

/// The decoded shape of a function: which [`Call`] it becomes. Several
/// table rows share a shape (the SMC32 and SMC64 variants of a call, every
/// unimplemented PSCI function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    ArchVersion,
    ArchFeatures,
    ArchSocId,
    ArchWorkaround(u8),
    PsciVersion,
    PsciFeatures,
    CpuSuspend,
    CpuOff,
    CpuOn,
    AffinityInfo,
    MigrateInfoType,
    SystemOff,
    SystemReset,
    SystemOff2,
    SystemReset2,
    PsciUnimplemented,
    CallUid,
    VendorFeatures,
    FastStop,
    VcpuState,
    TraceMark,
    FastStopFlags,
}

/// One function parkvisor decodes: a row of [`FUNCTIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its function ID.
    pub id: u32,
    /// The name printed in trace lines (PSCI names without the `PSCI_`
    /// prefix; the SMC32 variant of a dual-convention function ends in `_32`).
    pub name: &'static str,
    /// The trace word of its family.
    pub class: CallClass,
    /// What it decodes to, and so which arguments it takes.
    pub shape: Shape,
    /// PSCI_FEATURES reports it as implemented.
    pub psci_feature: bool,
}

const fn f(id: u32, name: &'static str, class: CallClass, shape: Shape) -> Function {
    Function {
        id,
        name,
        class,
        shape,
        psci_feature: false,
    }
}

/// Reported by PSCI_FEATURES.
const fn psci(id: u32, name: &'static str, shape: Shape) -> Function {
    Function {
        psci_feature: true,
        ..f(id, name, CallClass::Psci, shape)
    }
}

/// Decoded and traced by name, answered NOT_SUPPORTED.
const fn psci_unimplemented(id: u32, name: &'static str) -> Function {
    f(id, name, CallClass::Psci, Shape::PsciUnimplemented)
}

const fn vendor(id: u32, name: &'static str, shape: Shape) -> Function {
    f(id, name, CallClass::Hvc, shape)
}

/// Every function parkvisor decodes, each ID once; any other ID is
/// [`Call::Unknown`]. Decoding, the trace names, PSCI_FEATURES and the vendor
/// FEATURES answer all come from here.
pub static FUNCTIONS: &[Function] = &[
    // SMCCC architecture calls (owner 0). PSCI_FEATURES reports
    // SMCCC_VERSION so guests use SMCCC 1.1.
    Function {
        psci_feature: true,
        ..f(
            SMCCC_VERSION,
            "VERSION",
            CallClass::Smccc,
            Shape::ArchVersion,
        )
    },
    f(
        SMCCC_ARCH_FEATURES,
        "ARCH_FEATURES",
        CallClass::Smccc,
        Shape::ArchFeatures,
    ),
    f(
        SMCCC_ARCH_SOC_ID,
        "ARCH_SOC_ID",
        CallClass::Smccc,
        Shape::ArchSocId,
    ),
    f(
        SMCCC_ARCH_WORKAROUND_1,
        "ARCH_WORKAROUND_1",
        CallClass::Smccc,
        Shape::ArchWorkaround(1),
    ),
    f(
        SMCCC_ARCH_WORKAROUND_2,
        "ARCH_WORKAROUND_2",
        CallClass::Smccc,
        Shape::ArchWorkaround(2),
    ),
    f(
        SMCCC_ARCH_WORKAROUND_3,
        "ARCH_WORKAROUND_3",
        CallClass::Smccc,
        Shape::ArchWorkaround(3),
    ),
    // PSCI (owner 4).
    psci(PSCI_VERSION, "VERSION", Shape::PsciVersion),
    psci(PSCI_FEATURES, "FEATURES", Shape::PsciFeatures),
    psci(PSCI_CPU_SUSPEND_32, "CPU_SUSPEND_32", Shape::CpuSuspend),
    psci(PSCI_CPU_SUSPEND_64, "CPU_SUSPEND", Shape::CpuSuspend),
    psci(PSCI_CPU_OFF, "CPU_OFF", Shape::CpuOff),
    psci(PSCI_CPU_ON_32, "CPU_ON_32", Shape::CpuOn),
    psci(PSCI_CPU_ON_64, "CPU_ON", Shape::CpuOn),
    psci(
        PSCI_AFFINITY_INFO_32,
        "AFFINITY_INFO_32",
        Shape::AffinityInfo,
    ),
    psci(PSCI_AFFINITY_INFO_64, "AFFINITY_INFO", Shape::AffinityInfo),
    psci(
        PSCI_MIGRATE_INFO_TYPE,
        "MIGRATE_INFO_TYPE",
        Shape::MigrateInfoType,
    ),
    psci(PSCI_SYSTEM_OFF, "SYSTEM_OFF", Shape::SystemOff),
    psci(PSCI_SYSTEM_RESET, "SYSTEM_RESET", Shape::SystemReset),
    psci(PSCI_SYSTEM_OFF2_32, "SYSTEM_OFF2_32", Shape::SystemOff2),
    psci(PSCI_SYSTEM_OFF2_64, "SYSTEM_OFF2", Shape::SystemOff2),
    psci(
        PSCI_SYSTEM_RESET2_32,
        "SYSTEM_RESET2_32",
        Shape::SystemReset2,
    ),
    psci(PSCI_SYSTEM_RESET2_64, "SYSTEM_RESET2", Shape::SystemReset2),
    psci_unimplemented(PSCI_MIGRATE_32, "MIGRATE_32"),
    psci_unimplemented(PSCI_MIGRATE_64, "MIGRATE"),
    psci_unimplemented(PSCI_MIGRATE_INFO_UP_CPU_32, "MIGRATE_INFO_UP_CPU_32"),
    psci_unimplemented(PSCI_MIGRATE_INFO_UP_CPU_64, "MIGRATE_INFO_UP_CPU"),
    psci_unimplemented(PSCI_CPU_FREEZE, "CPU_FREEZE"),
    psci_unimplemented(PSCI_CPU_DEFAULT_SUSPEND_32, "CPU_DEFAULT_SUSPEND_32"),
    psci_unimplemented(PSCI_CPU_DEFAULT_SUSPEND_64, "CPU_DEFAULT_SUSPEND"),
    psci_unimplemented(PSCI_NODE_HW_STATE_32, "NODE_HW_STATE_32"),
    psci_unimplemented(PSCI_NODE_HW_STATE_64, "NODE_HW_STATE"),
    psci_unimplemented(PSCI_SYSTEM_SUSPEND_32, "SYSTEM_SUSPEND_32"),
    psci_unimplemented(PSCI_SYSTEM_SUSPEND_64, "SYSTEM_SUSPEND"),
    psci_unimplemented(PSCI_SET_SUSPEND_MODE, "SET_SUSPEND_MODE"),
    psci_unimplemented(PSCI_STAT_RESIDENCY_32, "STAT_RESIDENCY_32"),
    psci_unimplemented(PSCI_STAT_RESIDENCY_64, "STAT_RESIDENCY"),
    psci_unimplemented(PSCI_STAT_COUNT_32, "STAT_COUNT_32"),
    psci_unimplemented(PSCI_STAT_COUNT_64, "STAT_COUNT"),
    psci_unimplemented(PSCI_MEM_PROTECT, "MEM_PROTECT"),
    psci_unimplemented(
        PSCI_MEM_PROTECT_CHECK_RANGE_32,
        "MEM_PROTECT_CHECK_RANGE_32",
    ),
    psci_unimplemented(PSCI_MEM_PROTECT_CHECK_RANGE_64, "MEM_PROTECT_CHECK_RANGE"),
    // parkvisor's vendor hypervisor service (owner 6).
    vendor(vendor::CALL_UID, "CALL_UID", Shape::CallUid),
    vendor(vendor::FEATURES, "FEATURES", Shape::VendorFeatures),
    vendor(vendor::FAST_STOP, "FAST_STOP", Shape::FastStop),
    vendor(vendor::VCPU_STATE, "VCPU_STATE", Shape::VcpuState),
    vendor(vendor::TRACE_MARK, "TRACE_MARK", Shape::TraceMark),
    vendor(
        vendor::FAST_STOP_FLAGS,
        "FAST_STOP_FLAGS",
        Shape::FastStopFlags,
    ),
];

/// The row of a function ID.
pub fn function(id: u32) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.id == id)
}

/// Whether PSCI_FEATURES reports `id` as implemented.
pub fn psci_feature(id: u32) -> bool {
    function(id).is_some_and(|f| f.psci_feature)
}

/// The vendor FEATURES answer: bit n for each vendor function numbered n
/// (CALL_UID, numbered 0xFF01, is outside the bitmap).
pub fn vendor_features() -> u64 {
    FUNCTIONS
        .iter()
        .filter(|f| f.class == CallClass::Hvc && f.id & 0xFFFF < 64)
        .fold(0, |bits, f| bits | 1 << (f.id & 0xFFFF))
}

/// A call argument, from one register (already reduced to the convention).
trait FromArg {
    fn from_arg(reg: u64) -> Self;
}

impl FromArg for u64 {
    fn from_arg(reg: u64) -> u64 {
        reg
    }
}

impl FromArg for u32 {
    /// Parameters the specifications define as 32-bit, even under SMC64.
    fn from_arg(reg: u64) -> u32 {
        reg as u32
    }
}

/// The shapes with arguments, each written once: a field list in register
/// order (x1, x2, ...) builds the call in [`build`], and the same list read
/// back in [`Call::args`] is what the trace prints (at most three).
macro_rules! shapes_with_args {
    ($($shape:ident => $wrap:ident($enum_:ident::$variant:ident $([$conv:ident])? { $($field:ident),+ });)*) => {
        /// Builds the call of a shape with arguments from x1.. (reduced).
        fn build_with_args(shape: Shape, conv: Convention, regs: [u64; 4]) -> Option<Call> {
            let _ = conv;
            let mut regs = regs.into_iter();
            let mut next = move || regs.next().unwrap_or(0);
            Some(match shape {
                $(Shape::$shape => Call::$wrap($enum_::$variant {
                    $($conv: conv,)?
                    $($field: FromArg::from_arg(next()),)+
                }),)*
                _ => return None,
            })
        }

        /// The arguments of a call with some, in register order.
        fn args_of(call: &Call) -> Option<Args> {
            match *call {
                $(Call::$wrap($enum_::$variant { $($field,)+ .. }) => {
                    Some(Args::new(&[$(u64::from($field)),+]))
                })*
                _ => None,
            }
        }
    };
}

shapes_with_args! {
    ArchFeatures => Arch(ArchCall::Features { function_id });
    ArchSocId => Arch(ArchCall::SocId { soc_id_type });
    PsciFeatures => Psci(PsciCall::Features { function_id });
    CpuSuspend => Psci(PsciCall::CpuSuspend [conv] { power_state, entry, context_id });
    CpuOn => Psci(PsciCall::CpuOn [conv] { target_mpidr, entry, context_id });
    AffinityInfo => Psci(PsciCall::AffinityInfo [conv] { target_affinity, lowest_level });
    SystemOff2 => Psci(PsciCall::SystemOff2 [conv] { off_type, cookie });
    SystemReset2 => Psci(PsciCall::SystemReset2 [conv] { reset_type, cookie });
    FastStop => Vendor(VendorCall::FastStop { timeout_us, flags, save_area, save_len });
    VcpuState => Vendor(VendorCall::VcpuState { target_mpidr });
    TraceMark => Vendor(VendorCall::TraceMark { value });
}

/// Builds the call of `shape` for function `id` from x1..x4 (reduced to
/// the convention).
fn build(shape: Shape, id: FunctionId, regs: [u64; 4]) -> Call {
    if let Some(call) = build_with_args(shape, id.convention(), regs) {
        return call;
    }
    match shape {
        Shape::ArchVersion => Call::Arch(ArchCall::Version),
        Shape::ArchWorkaround(n) => Call::Arch(ArchCall::Workaround(n)),
        Shape::PsciVersion => Call::Psci(PsciCall::Version),
        Shape::CpuOff => Call::Psci(PsciCall::CpuOff),
        Shape::MigrateInfoType => Call::Psci(PsciCall::MigrateInfoType),
        Shape::SystemOff => Call::Psci(PsciCall::SystemOff),
        Shape::SystemReset => Call::Psci(PsciCall::SystemReset),
        Shape::PsciUnimplemented => Call::Psci(PsciCall::Unimplemented(id)),
        Shape::CallUid => Call::Vendor(VendorCall::CallUid),
        Shape::VendorFeatures => Call::Vendor(VendorCall::Features),
        Shape::FastStopFlags => Call::Vendor(VendorCall::FastStopFlags),
        _ => Call::Unknown(id),
    }
}

/// Decodes a guest call from x0..x3 (the values at the trapping HVC/SMC).
pub fn decode(x0: u64, x1: u64, x2: u64, x3: u64) -> Call {
    decode_regs(&[x0, x1, x2, x3, 0])
}

/// Decodes a guest call from x0..x4 (FAST_STOP with SAVE_REGS takes x4).
pub fn decode_regs(&[x0, x1, x2, x3, x4]: &[u64; 5]) -> Call {
    let id = FunctionId::from_x0(x0);
    if !id.is_fast() || id.mbz_bits() != 0 {
        return Call::Unknown(id);
    }
    let conv = id.convention();
    match function(id.0) {
        Some(f) => build(f.shape, id, [x1, x2, x3, x4].map(|r| conv.arg(r))),
        None => Call::Unknown(id),
    }
}

impl Call {
    /// Its shape and, for calls that exist in both conventions, the one used.
    fn shape(&self) -> Option<(Shape, Option<Convention>)> {
        let (shape, conv) = match *self {
            Call::Arch(a) => match a {
                ArchCall::Version => (Shape::ArchVersion, None),
                ArchCall::Features { .. } => (Shape::ArchFeatures, None),
                ArchCall::SocId { .. } => (Shape::ArchSocId, None),
                ArchCall::Workaround(n) => (Shape::ArchWorkaround(n), None),
            },
            Call::Psci(p) => match p {
                PsciCall::Version => (Shape::PsciVersion, None),
                PsciCall::Features { .. } => (Shape::PsciFeatures, None),
                PsciCall::CpuSuspend { conv, .. } => (Shape::CpuSuspend, Some(conv)),
                PsciCall::CpuOff => (Shape::CpuOff, None),
                PsciCall::CpuOn { conv, .. } => (Shape::CpuOn, Some(conv)),
                PsciCall::AffinityInfo { conv, .. } => (Shape::AffinityInfo, Some(conv)),
                PsciCall::MigrateInfoType => (Shape::MigrateInfoType, None),
                PsciCall::SystemOff => (Shape::SystemOff, None),
                PsciCall::SystemReset => (Shape::SystemReset, None),
                PsciCall::SystemOff2 { conv, .. } => (Shape::SystemOff2, Some(conv)),
                PsciCall::SystemReset2 { conv, .. } => (Shape::SystemReset2, Some(conv)),
                PsciCall::Unimplemented(_) => return None,
            },
            Call::Vendor(v) => match v {
                VendorCall::CallUid => (Shape::CallUid, None),
                VendorCall::Features => (Shape::VendorFeatures, None),
                VendorCall::FastStop { .. } => (Shape::FastStop, None),
                VendorCall::VcpuState { .. } => (Shape::VcpuState, None),
                VendorCall::TraceMark { .. } => (Shape::TraceMark, None),
                VendorCall::FastStopFlags => (Shape::FastStopFlags, None),
            },
            Call::Unknown(_) => return None,
        };
        Some((shape, conv))
    }

    /// Its row of [`FUNCTIONS`] (`None` for an unknown call).
    pub fn function(&self) -> Option<&'static Function> {
        match *self {
            Call::Psci(PsciCall::Unimplemented(id)) => function(id.0),
            Call::Unknown(_) => None,
            _ => {
                let (shape, conv) = self.shape()?;
                FUNCTIONS.iter().find(|f| {
                    f.shape == shape && conv.is_none_or(|c| FunctionId(f.id).convention() == c)
                })
            }
        }
    }

    /// The function ID this call was decoded from.
    pub fn function_id(&self) -> u32 {
        match (self, self.function()) {
            (Call::Unknown(id), _) => id.0,
            (_, Some(f)) => f.id,
            (_, None) => unreachable!("every decoded call has a row"),
        }
    }

    /// Which trace word introduces this call (`smccc`, `psci`, `hvc`, `call`).
    pub fn class(&self) -> CallClass {
        self.function().map_or(CallClass::Unknown, |f| f.class)
    }

    /// The name printed in trace lines (see [`Function::name`]). Unknown
    /// calls have the empty name (they print as `call 0x<id>`).
    pub fn name(&self) -> &'static str {
        self.function().map_or("", |f| f.name)
    }

    /// The arguments printed in trace lines (already masked for SMC32): the
    /// first three the call takes, FAST_STOP without flags only two.
    pub fn args(&self) -> Args {
        match *self {
            Call::Vendor(VendorCall::FastStop {
                timeout_us,
                flags: 0,
                ..
            }) => Args::new(&[timeout_us, 0]),
            _ => args_of(self).unwrap_or(Args::NONE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNK: u64 = 0xDEAD_BEEF_0000_0000;

    #[test]
    fn function_id_fields() {
        let id = FunctionId(0xC400_0003);
        assert!(id.is_fast());
        assert_eq!(id.convention(), Convention::Smc64);
        assert_eq!(id.owner(), Owner::StandardSecure);
        let id = FunctionId(0x8600_FF01);
        assert_eq!(id.convention(), Convention::Smc32);
        assert_eq!(id.owner(), Owner::VendorHyp);
        assert!(!FunctionId(0x0400_0000).is_fast());
        assert_eq!(FunctionId(0x8500_0000).owner(), Owner::StandardHyp);
        assert_eq!(FunctionId(0x8000_0000).owner(), Owner::Arch);
        assert_eq!(FunctionId(0x8100_0000).owner(), Owner::Cpu);
        assert_eq!(FunctionId(0x8200_0000).owner(), Owner::Sip);
        assert_eq!(FunctionId(0x8300_0000).owner(), Owner::Oem);
        assert_eq!(FunctionId(0x8700_0000).owner(), Owner::VendorEl3Monitor);
        assert_eq!(FunctionId(0x8800_0000).owner(), Owner::Reserved(8));
        assert_eq!(FunctionId(0xAF00_0000).owner(), Owner::Reserved(47));
        assert_eq!(FunctionId(0xB000_0000).owner(), Owner::TrustedApp(48));
        assert_eq!(FunctionId(0xB100_0000).owner(), Owner::TrustedApp(49));
        assert_eq!(FunctionId(0xB200_0000).owner(), Owner::TrustedOs(50));
        assert_eq!(FunctionId(0xFF00_0000).owner(), Owner::TrustedOs(63));
        assert_eq!(
            FunctionId::from_x0(0xFFFF_FFFF_8400_0000),
            FunctionId(PSCI_VERSION)
        );
    }

    #[test]
    fn smccc_arch_ids() {
        assert_eq!(decode(0x8000_0000, 0, 0, 0), Call::Arch(ArchCall::Version));
        assert_eq!(
            decode(0x8000_0001, JUNK | 0x8000_8000, 0, 0),
            Call::Arch(ArchCall::Features {
                function_id: 0x8000_8000
            })
        );
        assert_eq!(
            decode(0x8000_0002, 1, 0, 0),
            Call::Arch(ArchCall::SocId { soc_id_type: 1 })
        );
        assert_eq!(
            decode(0x8000_8000, 0, 0, 0),
            Call::Arch(ArchCall::Workaround(1))
        );
        assert_eq!(
            decode(0x8000_7FFF, 0, 0, 0),
            Call::Arch(ArchCall::Workaround(2))
        );
        assert_eq!(
            decode(0x8000_3FFF, 0, 0, 0),
            Call::Arch(ArchCall::Workaround(3))
        );
        // SMC64 flavours of the arch calls do not exist.
        assert!(matches!(decode(0xC000_0000, 0, 0, 0), Call::Unknown(_)));
        assert!(matches!(decode(0x8000_0003, 0, 0, 0), Call::Unknown(_)));
    }

    #[test]
    fn psci_ids_of_abi() {
        assert_eq!(decode(0x8400_0000, 0, 0, 0), Call::Psci(PsciCall::Version));
        assert_eq!(
            decode(0x8400_000A, 0xC400_0003, 0, 0),
            Call::Psci(PsciCall::Features {
                function_id: 0xC400_0003
            })
        );
        assert_eq!(decode(0x8400_0002, 0, 0, 0), Call::Psci(PsciCall::CpuOff));
        assert_eq!(
            decode(0x8400_0006, 0, 0, 0),
            Call::Psci(PsciCall::MigrateInfoType)
        );
        assert_eq!(
            decode(0x8400_0008, 0, 0, 0),
            Call::Psci(PsciCall::SystemOff)
        );
        assert_eq!(
            decode(0x8400_0009, 0, 0, 0),
            Call::Psci(PsciCall::SystemReset)
        );
        assert_eq!(
            decode(0xC400_0012, 0x8000_0001, 0x1234_5678_9ABC, 0),
            Call::Psci(PsciCall::SystemReset2 {
                conv: Convention::Smc64,
                reset_type: 0x8000_0001,
                cookie: 0x1234_5678_9ABC
            })
        );
        assert_eq!(
            decode(0x8400_0012, JUNK | 1, JUNK | 2, 0),
            Call::Psci(PsciCall::SystemReset2 {
                conv: Convention::Smc32,
                reset_type: 1,
                cookie: 2
            })
        );
    }

    #[test]
    fn cpu_on_64_keeps_full_registers() {
        let c = decode(
            0xC400_0003,
            0x1_0000_0101,
            0x1_4800_1000,
            0xFFFF_0000_0000_0005,
        );
        assert_eq!(
            c,
            Call::Psci(PsciCall::CpuOn {
                conv: Convention::Smc64,
                target_mpidr: 0x1_0000_0101,
                entry: 0x1_4800_1000,
                context_id: 0xFFFF_0000_0000_0005,
            })
        );
        assert_eq!(c.name(), "CPU_ON");
        assert_eq!(c.function_id(), PSCI_CPU_ON_64);
    }

    #[test]
    fn cpu_on_32_masks_arguments() {
        let c = decode(0x8400_0003, JUNK | 0x101, JUNK | 0x4800_1000, JUNK | 5);
        assert_eq!(
            c,
            Call::Psci(PsciCall::CpuOn {
                conv: Convention::Smc32,
                target_mpidr: 0x101,
                entry: 0x4800_1000,
                context_id: 5,
            })
        );
        assert_eq!(c.name(), "CPU_ON_32");
        assert_eq!(c.function_id(), PSCI_CPU_ON_32);
        assert_eq!(c.args().as_slice(), &[0x101, 0x4800_1000, 5]);
    }

    #[test]
    fn cpu_suspend_and_affinity_info_both_conventions() {
        assert_eq!(
            decode(0xC400_0001, JUNK | 0x1_0000, JUNK | 0x4800_0000, JUNK),
            Call::Psci(PsciCall::CpuSuspend {
                conv: Convention::Smc64,
                power_state: 0x1_0000, // power_state is 32-bit even in SMC64
                entry: JUNK | 0x4800_0000,
                context_id: JUNK,
            })
        );
        assert_eq!(
            decode(0x8400_0001, JUNK | 0x1_0000, JUNK | 0x4800_0000, JUNK | 7),
            Call::Psci(PsciCall::CpuSuspend {
                conv: Convention::Smc32,
                power_state: 0x1_0000,
                entry: 0x4800_0000,
                context_id: 7,
            })
        );
        assert_eq!(
            decode(0xC400_0004, 0x80_0000_0002, JUNK, 0),
            Call::Psci(PsciCall::AffinityInfo {
                conv: Convention::Smc64,
                target_affinity: 0x80_0000_0002,
                lowest_level: 0,
            })
        );
        assert_eq!(
            decode(0x8400_0004, JUNK | 2, JUNK | 1, 0),
            Call::Psci(PsciCall::AffinityInfo {
                conv: Convention::Smc32,
                target_affinity: 2,
                lowest_level: 1,
            })
        );
    }

    #[test]
    fn psci_ids_without_64_bit_variant_are_unknown() {
        for id in [
            0xC400_0000u32,
            0xC400_0002,
            0xC400_0006,
            0xC400_0008,
            0xC400_0009,
            0xC400_000A,
        ] {
            assert_eq!(
                decode(id.into(), 0, 0, 0),
                Call::Unknown(FunctionId(id)),
                "{id:#x}"
            );
        }
    }

    #[test]
    fn unimplemented_psci_is_named() {
        let c = decode(PSCI_SYSTEM_SUSPEND_64.into(), 0, 0, 0);
        assert_eq!(
            c,
            Call::Psci(PsciCall::Unimplemented(FunctionId(PSCI_SYSTEM_SUSPEND_64)))
        );
        assert_eq!(c.name(), "SYSTEM_SUSPEND");
        assert_eq!(decode(PSCI_CPU_FREEZE.into(), 0, 0, 0).name(), "CPU_FREEZE");
        assert_eq!(decode(PSCI_MIGRATE_32.into(), 0, 0, 0).name(), "MIGRATE_32");
        // Other standard-secure services (SDEI, TRNG) are unknown.
        assert!(matches!(decode(0xC400_0020, 0, 0, 0), Call::Unknown(_)));
        assert!(matches!(decode(0x8400_0050, 0, 0, 0), Call::Unknown(_)));
    }

    #[test]
    fn vendor_ids_of_abi() {
        assert_eq!(
            decode(0x8600_FF01, 0, 0, 0),
            Call::Vendor(VendorCall::CallUid)
        );
        assert_eq!(
            decode(0x8600_0000, 0, 0, 0),
            Call::Vendor(VendorCall::Features)
        );
        assert_eq!(
            decode(0xC600_0001, 0x1_0000_0000, 1, 0),
            Call::Vendor(VendorCall::FastStop {
                timeout_us: 0x1_0000_0000,
                flags: 1,
                save_area: 0,
                save_len: 0,
            })
        );
        assert_eq!(
            decode_regs(&[0xC600_0001, 5, 1, 0x4800_0000, 0x1_0000_0120]),
            Call::Vendor(VendorCall::FastStop {
                timeout_us: 5,
                flags: 1,
                save_area: 0x4800_0000,
                save_len: 0x1_0000_0120,
            }),
            "SAVE_REGS takes the save area in x3 and its full 64-bit size in x4"
        );
        assert_eq!(
            decode(0x8600_0004, 0, 0, 0),
            Call::Vendor(VendorCall::FastStopFlags)
        );
        assert_eq!(
            decode(0xC600_0002, 0x100_0000_0003, 0, 0),
            Call::Vendor(VendorCall::VcpuState {
                target_mpidr: 0x100_0000_0003
            })
        );
        assert_eq!(
            decode(0x8600_0003, JUNK | 0xCAFE_F00D, 0, 0),
            Call::Vendor(VendorCall::TraceMark { value: 0xCAFE_F00D })
        );
        // Wrong convention for each vendor call → unknown.
        for id in [
            0xC600_FF01u32,
            0xC600_0000,
            0x8600_0001,
            0x8600_0002,
            0xC600_0003,
        ] {
            assert_eq!(
                decode(id.into(), 0, 0, 0),
                Call::Unknown(FunctionId(id)),
                "{id:#x}"
            );
        }
        // Deprecated CALL_COUNT and REVISION are not part of the ABI.
        assert!(matches!(decode(0x8600_FF00, 0, 0, 0), Call::Unknown(_)));
        assert!(matches!(decode(0x8600_FF03, 0, 0, 0), Call::Unknown(_)));
        assert_eq!(vendor::Features::all().bits(), 0b1_1111);
        assert_eq!(VendorCall::fast_stop_timeout_us(0), 1_000_000);
        assert_eq!(VendorCall::fast_stop_timeout_us(5), 5);
    }

    #[test]
    fn yielding_calls_are_unknown() {
        // Bit 31 clear: the same IDs as yielding calls are not supported.
        for id in [
            0x0400_0003u32,
            0x4400_0003,
            0x0000_0000,
            0x0600_0001,
            0x4600_0001,
        ] {
            let c = decode(id.into(), 0, 0, 0);
            assert_eq!(c, Call::Unknown(FunctionId(id)));
            assert_eq!(c.class(), CallClass::Unknown);
        }
    }

    #[test]
    fn mbz_bits_make_a_call_unknown() {
        for id in [
            0x8401_0000u32,
            0xC401_0003,
            0x8480_0000,
            0x8610_0000,
            0x8001_0000,
        ] {
            assert_eq!(
                decode(id.into(), 0, 0, 0),
                Call::Unknown(FunctionId(id)),
                "{id:#x}"
            );
        }
    }

    #[test]
    fn upper_half_of_x0_is_ignored() {
        assert_eq!(
            decode(0xFFFF_FFFF_8400_0002, 0, 0, 0),
            Call::Psci(PsciCall::CpuOff)
        );
        assert_eq!(decode(0x1_C600_0001, 0, 0, 0).name(), "FAST_STOP");
    }

    #[test]
    fn other_owners_are_unknown() {
        for id in [
            0x8100_0000u32,
            0x8200_0000,
            0xC200_0001,
            0x8300_0000,
            0x8500_0000,
            0x8700_0000,
            0xB200_0000,
            0xBF00_FF01,
        ] {
            assert_eq!(
                decode(id.into(), 0, 0, 0),
                Call::Unknown(FunctionId(id)),
                "{id:#x}"
            );
        }
    }

    #[test]
    fn function_id_round_trips() {
        let ids = [
            SMCCC_VERSION,
            SMCCC_ARCH_FEATURES,
            SMCCC_ARCH_SOC_ID,
            SMCCC_ARCH_WORKAROUND_1,
            SMCCC_ARCH_WORKAROUND_2,
            SMCCC_ARCH_WORKAROUND_3,
            PSCI_VERSION,
            PSCI_FEATURES,
            PSCI_CPU_SUSPEND_32,
            PSCI_CPU_SUSPEND_64,
            PSCI_CPU_OFF,
            PSCI_CPU_ON_32,
            PSCI_CPU_ON_64,
            PSCI_AFFINITY_INFO_32,
            PSCI_AFFINITY_INFO_64,
            PSCI_MIGRATE_INFO_TYPE,
            PSCI_SYSTEM_OFF,
            PSCI_SYSTEM_RESET,
            PSCI_SYSTEM_RESET2_32,
            PSCI_SYSTEM_RESET2_64,
            PSCI_SYSTEM_OFF2_32,
            PSCI_SYSTEM_OFF2_64,
            PSCI_STAT_COUNT_64,
            vendor::CALL_UID,
            vendor::FEATURES,
            vendor::FAST_STOP,
            vendor::VCPU_STATE,
            vendor::TRACE_MARK,
            0x8500_0000,
        ];
        for id in ids {
            let c = decode(id.into(), 0, 0, 0);
            assert_eq!(c.function_id(), id, "{id:#x}");
            if !matches!(c, Call::Unknown(_)) {
                assert!(!c.name().is_empty());
            }
        }
    }

    #[test]
    fn classes_and_names() {
        assert_eq!(decode(0x8000_0000, 0, 0, 0).class(), CallClass::Smccc);
        assert_eq!(decode(0x8000_0000, 0, 0, 0).name(), "VERSION");
        assert_eq!(decode(0x8400_0000, 0, 0, 0).class(), CallClass::Psci);
        assert_eq!(decode(0xC600_0001, 0, 0, 0).class(), CallClass::Hvc);
        assert_eq!(decode(0x8600_0003, 0, 0, 0).name(), "TRACE_MARK");
        assert_eq!(decode(0x8400_0012, 0, 0, 0).name(), "SYSTEM_RESET2_32");
        assert_eq!(decode(0xC400_0015, 0, 0, 0).name(), "SYSTEM_OFF2");
        assert_eq!(decode(0x8400_0015, 0, 0, 0).name(), "SYSTEM_OFF2_32");
        assert_eq!(
            decode(0x8400_0015, JUNK | 1, JUNK | 2, 0),
            Call::Psci(PsciCall::SystemOff2 {
                conv: Convention::Smc32,
                off_type: 1,
                cookie: 2
            })
        );
    }

    #[test]
    fn table_rows_are_consistent() {
        for (i, f) in FUNCTIONS.iter().enumerate() {
            assert!(
                FUNCTIONS[i + 1..].iter().all(|g| g.id != f.id),
                "{:#x} twice",
                f.id
            );
            let c = decode(f.id.into(), 0, 0, 0);
            assert_eq!(c.function(), Some(f), "{:#x}", f.id);
            assert_eq!(c.class(), f.class, "{:#x}", f.id);
            let owner = FunctionId(f.id).owner();
            let want = match f.class {
                CallClass::Smccc => Owner::Arch,
                CallClass::Psci => Owner::StandardSecure,
                CallClass::Hvc => Owner::VendorHyp,
                CallClass::Unknown => unreachable!(),
            };
            assert_eq!(owner, want, "{}", f.name);
        }
    }

    #[test]
    fn psci_features_set_is_the_implemented_one() {
        let mut got: Vec<u32> = FUNCTIONS
            .iter()
            .filter(|f| f.psci_feature)
            .map(|f| f.id)
            .collect();
        let mut want = vec![
            PSCI_VERSION,
            PSCI_CPU_SUSPEND_32,
            PSCI_CPU_SUSPEND_64,
            PSCI_CPU_OFF,
            PSCI_CPU_ON_32,
            PSCI_CPU_ON_64,
            PSCI_AFFINITY_INFO_32,
            PSCI_AFFINITY_INFO_64,
            PSCI_MIGRATE_INFO_TYPE,
            PSCI_SYSTEM_OFF,
            PSCI_SYSTEM_RESET,
            PSCI_SYSTEM_RESET2_32,
            PSCI_SYSTEM_RESET2_64,
            PSCI_SYSTEM_OFF2_32,
            PSCI_SYSTEM_OFF2_64,
            PSCI_FEATURES,
            SMCCC_VERSION,
        ];
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(!psci_feature(SMCCC_ARCH_FEATURES));
        assert!(!psci_feature(vendor::FAST_STOP));
        assert!(!psci_feature(PSCI_CPU_FREEZE));
    }

    #[test]
    fn vendor_features_come_from_the_table() {
        assert_eq!(vendor_features(), vendor::Features::all().bits());
        assert_eq!(vendor_features(), parkvisor_abi::vendor::feature::ALL);
    }
}
