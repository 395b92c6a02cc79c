//! Raw SMCCC calls through HVC #0 or SMC #0.

/// Which instruction makes the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

impl Conduit {
    pub const fn name(self) -> &'static str {
        match self {
            Conduit::Hvc => "HVC",
            Conduit::Smc => "SMC",
        }
    }
}

/// Makes an SMCCC call with x1..x3 as arguments; returns x0..x3. x4..x17
/// are treated as clobbered (SMCCC 1.0 allowed that).
#[inline(never)]
pub fn call(conduit: Conduit, fid: u32, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: an SMCCC call does not touch our memory (PSCI CPU_ON only
    // starts another CPU at an address we give it).
    unsafe {
        match conduit {
            Conduit::Hvc => core::arch::asm!(
                "hvc #0",
                inlateout("x0") fid as u64 => r0,
                inlateout("x1") a1 => r1,
                inlateout("x2") a2 => r2,
                inlateout("x3") a3 => r3,
                lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
                lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
                lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
                lateout("x16") _, lateout("x17") _,
                options(nostack),
            ),
            Conduit::Smc => core::arch::asm!(
                "smc #0",
                inlateout("x0") fid as u64 => r0,
                inlateout("x1") a1 => r1,
                inlateout("x2") a2 => r2,
                inlateout("x3") a3 => r3,
                lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
                lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
                lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
                lateout("x16") _, lateout("x17") _,
                options(nostack),
            ),
        }
    }
    [r0, r1, r2, r3]
}

/// Makes a call and checks that execution resumes at the very next
/// instruction: returns (x0, resumed_correctly). A hypervisor that returns
/// to the call instruction itself would loop (and time out); one that skips
/// one instruction too many skips the marker.
#[inline(never)]
pub fn call_check_resume(conduit: Conduit, fid: u32, a1: u64) -> (u64, bool) {
    let r0: u64;
    let marker: u64;
    // SAFETY: as for `call`.
    unsafe {
        match conduit {
            Conduit::Hvc => core::arch::asm!(
                "mov x9, #0",
                "hvc #0",
                "mov x9, #1",
                "nop",
                inlateout("x0") fid as u64 => r0,
                inlateout("x1") a1 => _,
                lateout("x2") _, lateout("x3") _,
                lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
                lateout("x8") _, out("x9") marker, lateout("x10") _, lateout("x11") _,
                lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
                lateout("x16") _, lateout("x17") _,
                options(nostack),
            ),
            Conduit::Smc => core::arch::asm!(
                "mov x9, #0",
                "smc #0",
                "mov x9, #1",
                "nop",
                inlateout("x0") fid as u64 => r0,
                inlateout("x1") a1 => _,
                lateout("x2") _, lateout("x3") _,
                lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
                lateout("x8") _, out("x9") marker, lateout("x10") _, lateout("x11") _,
                lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
                lateout("x16") _, lateout("x17") _,
                options(nostack),
            ),
        }
    }
    (r0, marker == 1)
}
