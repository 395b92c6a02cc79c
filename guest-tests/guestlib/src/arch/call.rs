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

/// An HVC with x1..x4 as arguments (SMCCC allows up to six for SMC64
/// calls); returns x0..x3.
#[inline(never)]
pub fn hvc5(fid: u32, a1: u64, a2: u64, a3: u64, a4: u64) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: as for `call`; the callee may write guest memory only where a
    // call's arguments point (FAST_STOP's save area).
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inlateout("x0") fid as u64 => r0,
            inlateout("x1") a1 => r1,
            inlateout("x2") a2 => r2,
            inlateout("x3") a3 => r3,
            inlateout("x4") a4 => _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack),
        )
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

/// Values [`call_clobber_check`] loads into x4..x17 before the call.
pub const PRESERVE_PATTERN: [u64; 14] = {
    let mut p = [0u64; 14];
    let mut i = 0;
    while i < 14 {
        p[i] = 0xA5C3_0000_0000_0000 | ((i as u64 + 4) << 40) | (0x1111_1111 * (i as u64 + 1));
        i += 1;
    }
    p
};

/// Makes a call with x4..x17 set to [`PRESERVE_PATTERN`] and returns x0 and
/// the values of x4..x17 after it (SMCCC 1.1: the callee preserves them).
#[inline(never)]
pub fn call_clobber_check(conduit: Conduit, fid: u32) -> (u64, [u64; 14]) {
    let mut after = [0u64; 14];
    let r0: u64;
    macro_rules! body {
        ($insn:literal) => {
            // SAFETY: the call touches no memory of ours; x20/x21 point at
            // our own arrays and are preserved across the call.
            unsafe {
                core::arch::asm!(
                    "ldp x4, x5, [x20, #0]",
                    "ldp x6, x7, [x20, #16]",
                    "ldp x8, x9, [x20, #32]",
                    "ldp x10, x11, [x20, #48]",
                    "ldp x12, x13, [x20, #64]",
                    "ldp x14, x15, [x20, #80]",
                    "ldp x16, x17, [x20, #96]",
                    $insn,
                    "stp x4, x5, [x21, #0]",
                    "stp x6, x7, [x21, #16]",
                    "stp x8, x9, [x21, #32]",
                    "stp x10, x11, [x21, #48]",
                    "stp x12, x13, [x21, #64]",
                    "stp x14, x15, [x21, #80]",
                    "stp x16, x17, [x21, #96]",
                    in("x20") PRESERVE_PATTERN.as_ptr(),
                    in("x21") after.as_mut_ptr(),
                    inlateout("x0") fid as u64 => r0,
                    inlateout("x1") 0u64 => _,
                    inlateout("x2") 0u64 => _,
                    inlateout("x3") 0u64 => _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                    options(nostack),
                )
            }
        };
    }
    match conduit {
        Conduit::Hvc => body!("hvc #0"),
        Conduit::Smc => body!("smc #0"),
    }
    (r0, after)
}

/// Makes an HVC call with SCTLR_EL1.EE = 1 (big-endian EL1 data) and all
/// interrupts masked for its duration, then restores both: PSCI starts the
/// context that CPU_ON or CPU_SUSPEND(powerdown) creates with the caller's
/// endianness. Nothing touches memory while EE is set.
#[inline(never)]
pub fn hvc_big_endian(fid: u32, a1: u64, a2: u64, a3: u64) -> u64 {
    let r0: u64;
    // SAFETY: no memory access happens while EE = 1; SCTLR_EL1 and DAIF are
    // restored before the block ends. The call itself as for `call`.
    unsafe {
        core::arch::asm!(
            "mrs x9, daif",
            "msr daifset, #0xf",
            "mrs x10, sctlr_el1",
            "orr x11, x10, #(1 << 25)",
            "msr sctlr_el1, x11",
            "isb",
            "hvc #0",
            "msr sctlr_el1, x10",
            "isb",
            "msr daif, x9",
            inlateout("x0") fid as u64 => r0,
            inlateout("x1") a1 => _,
            inlateout("x2") a2 => _,
            inlateout("x3") a3 => _,
            lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
            lateout("x8") _, out("x9") _, out("x10") _, out("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack),
        )
    }
    r0
}

/// `HVC #1` with x0 = `x0`: SMCCC calls use immediate 0, so this one must
/// come back at the next instruction without being run as a call. Returns
/// x0 afterwards and whether execution resumed at the next instruction.
#[inline(never)]
pub fn hvc_nonzero_immediate(x0: u64) -> (u64, bool) {
    let r0: u64;
    let marker: u64;
    // SAFETY: as for `call`; whatever the hypervisor does with it, it is a
    // call that touches none of our memory.
    unsafe {
        core::arch::asm!(
            "mov x9, #0",
            "hvc #1",
            "mov x9, #1",
            inlateout("x0") x0 => r0,
            lateout("x1") _, lateout("x2") _, lateout("x3") _,
            out("x9") marker,
            options(nostack),
        );
    }
    (r0, marker == 1)
}
