//! EL2 system registers: per-CPU hypervisor configuration, the guest's EL1
//! reset state, exception injection, cache maintenance.

use aarch64_cpu::registers::*;
use aarch64_rt::InitialPagetable;
use core::arch::asm;

/// MAIR_EL2: index 0 device-nGnRE, index 1 normal write-back.
pub const MAIR: u64 = 0x04 | 0xff << 8;

const DEVICE_BLOCK: usize = 0x1 | 0 << 2 | 1 << 10 | 1 << 54; // valid block, attr 0, AF, XN
const NORMAL_BLOCK: usize = 0x1 | 1 << 2 | 3 << 8 | 1 << 10; // valid block, attr 1, inner shareable, AF

/// EL2's own identity map until (and after) Rust starts: 1 GiB blocks, the
/// first GiB (MMIO) as device memory, 1..4 GiB (RAM on QEMU virt) as normal
/// cacheable memory, and the high MMIO region at 256 GiB as device memory.
pub const fn initial_pagetable() -> InitialPagetable {
    let mut table = [0usize; 512];
    table[0] = DEVICE_BLOCK;
    let mut gib = 1;
    while gib < 4 {
        table[gib] = NORMAL_BLOCK | gib << 30;
        gib += 1;
    }
    table[256] = DEVICE_BLOCK | 256 << 30;
    InitialPagetable(table)
}

pub fn set_cpu_index(index: usize) {
    TPIDR_EL2.set(index as u64);
}

pub fn cpu_index() -> usize {
    TPIDR_EL2.get() as usize
}

pub fn install_vectors() {
    VBAR_EL2.set(super::vectors::vector_table());
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

unsafe extern "C" {
    static boot_stack_end: u8;
}

/// Top of the boot CPU's stack (from aarch64-rt's linker script).
pub fn boot_stack_top() -> u64 {
    &raw const boot_stack_end as u64
}

const HCR_VM: u64 = 1 << 0;
const HCR_SWIO: u64 = 1 << 1;
const HCR_FMO: u64 = 1 << 3;
const HCR_IMO: u64 = 1 << 4;
const HCR_AMO: u64 = 1 << 5;
const HCR_FB: u64 = 1 << 9;
const HCR_BSU_IS: u64 = 1 << 10;
const HCR_TSC: u64 = 1 << 19;
const HCR_RW: u64 = 1 << 31;
const HCR_APK: u64 = 1 << 40;
const HCR_API: u64 = 1 << 41;

/// What the guest runs under: stage 2 on, physical IRQ/FIQ/SError to EL2
/// (so the guest's IPIs trap and fast-stop's SGI lands even with DAIF
/// masked), SMC trapped (PSCI via SMC is emulated like HVC), AArch64 EL1,
/// pointer authentication not trapped.
pub const HCR_GUEST: u64 = HCR_VM
    | HCR_SWIO
    | HCR_FMO
    | HCR_IMO
    | HCR_AMO
    | HCR_FB
    | HCR_BSU_IS
    | HCR_TSC
    | HCR_RW
    | HCR_APK
    | HCR_API;

/// CPTR_EL2 with E2H=0: RES1 bits only, so FP/SIMD, SVE and SME are not trapped.
const CPTR_NO_TRAPS: u64 = 1 << 13 | 1 << 11 | 1 << 9 | 0xff;

/// Configures this CPU's EL2 for running the guest. `mpidr` is what the guest
/// reads from MPIDR_EL1 (1:1 vCPU to pCPU, so the physical value).
pub fn init_cpu(mpidr: u64) {
    // SAFETY: writes to EL2 control registers of this CPU only.
    unsafe {
        asm!("msr cptr_el2, {}", in(reg) CPTR_NO_TRAPS);
        asm!("isb");
    }
    let pfr0 = ID_AA64PFR0_EL1.get();
    if (pfr0 >> 32) & 0xf != 0 {
        // SVE: let EL1 use the full vector length. ZCR_EL2.
        // SAFETY: the register exists because SVE is implemented.
        unsafe { asm!("msr S3_4_C1_C2_0, {}", in(reg) 0xfu64) };
    }
    let pfr1 = ID_AA64PFR1_EL1.get();
    if (pfr1 >> 24) & 0xf != 0 {
        // SME: SMCR_EL2, full streaming vector length, no FA64 restriction.
        // SAFETY: the register exists because SME is implemented.
        unsafe { asm!("msr S3_4_C1_C2_6, {}", in(reg) (1u64 << 31 | 1 << 30 | 0xf)) };
    }
    HCR_EL2.set(HCR_GUEST);
    // EL1 may read the physical counter and use the physical timer
    // (EL1PCTEN, EL1PCEN). The event stream (EVNTEN, bit 14 of the counter,
    // about every 0.5 ms at 62.5 MHz) bounds every WFE wait of the
    // hypervisor, so a wait for something that never comes still sees its
    // deadline.
    CNTHCTL_EL2.set(0b11 | 1 << 2 | 14 << 4);
    CNTVOFF_EL2.set(0);
    // SAFETY: VPIDR_EL2 only changes what this CPU's EL1 reads from MIDR_EL1.
    unsafe { asm!("msr vpidr_el2, {}", in(reg) MIDR_EL1.get()) };
    VMPIDR_EL2.set(mpidr);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// SCTLR_EL1 architectural reset view: MMU and caches off, RES1 bits set.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// Puts this CPU's EL1 into the cold-boot state PSCI CPU_ON promises: MMU
/// off, no stale TLB entries or instructions for the new code.
pub fn reset_guest_el1() {
    SCTLR_EL1.set(SCTLR_EL1_RESET);
    VBAR_EL1.set(0);
    // SAFETY: local TLB and I-cache maintenance for the guest's VMID, which
    // is current in VTTBR_EL2; no hypervisor mapping is affected.
    unsafe {
        asm!(
            "isb",
            "tlbi vmalls12e1",
            "ic iallu",
            "dsb nsh",
            "isb",
            options(nostack)
        );
    }
}

/// Drops this CPU's cached guest translations (stage 1 and 2, the guest's
/// VMID) when the vCPU leaves the guest for good.
pub fn forget_guest_translations() {
    // SAFETY: local TLB maintenance for the current VMID only.
    unsafe { asm!("dsb ishst", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
}

/// Waits for an event (SEV from another CPU, or the event stream). Used by
/// every cross-CPU wait: unlike a spin with YIELD, it also lets an emulator
/// run the CPU being waited for (QEMU with -icount starves it otherwise).
pub fn wait_for_event() {
    aarch64_cpu::asm::wfe();
}

/// Wakes CPUs waiting in `wait_for_event`, after this CPU's stores.
pub fn signal_event() {
    // SAFETY: DSB orders the preceding stores before the event; SEV has no
    // other effect.
    unsafe { asm!("dsb ish", "sev", options(nostack)) };
}

/// Silences the guest's EL1 timers, whose state dies with the vCPU: a
/// still-firing timer would otherwise keep waking the parked CPU.
pub fn stop_guest_timers() {
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
}

/// Cleans the data cache to the point of coherency for `[base, base + len)`,
/// so code the hypervisor wrote is seen by a guest running with caches off.
pub fn clean_dcache_range(base: u64, len: u64) {
    const LINE: u64 = 64;
    let mut addr = base & !(LINE - 1);
    while addr < base + len {
        // SAFETY: cache maintenance by VA on identity-mapped guest RAM.
        unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack)) };
        addr += LINE;
    }
    // SAFETY: barriers only.
    unsafe { asm!("dsb sy", "ic iallu", "dsb sy", "isb", options(nostack)) };
}

/// ESR_EL2 of the current trap.
pub fn esr() -> u64 {
    ESR_EL2.get()
}

/// FAR_EL2 of the current trap.
pub fn far() -> u64 {
    FAR_EL2.get()
}

/// HPFAR_EL2 of the current stage-2 abort.
pub fn hpfar() -> u64 {
    HPFAR_EL2.get()
}

/// Faulting IPA of the current stage-2 abort.
pub fn fault_ipa() -> u64 {
    crate::mmio::fault_ipa(far(), hpfar())
}

/// The guest's EL1 vector base.
pub fn guest_vbar() -> u64 {
    VBAR_EL1.get()
}

/// The offsets in VBAR_EL1 of a synchronous exception, by where it came from.
const VECTOR_CURRENT_SP0: u64 = 0x000;
const VECTOR_CURRENT_SPX: u64 = 0x200;
const VECTOR_LOWER_A64: u64 = 0x400;

/// Makes the guest take a synchronous exception at EL1 with `esr`/`far` as if
/// the hardware had delivered it, by rewriting the trapped frame.
pub fn inject_sync(frame: &mut super::vectors::GuestFrame, esr: u64, far: u64) {
    let mode = frame.spsr & 0xf;
    let offset = match mode {
        0b0101 => VECTOR_CURRENT_SPX,
        0b0100 => VECTOR_CURRENT_SP0,
        _ => VECTOR_LOWER_A64,
    };
    ESR_EL1.set(esr);
    FAR_EL1.set(far);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + offset;
    frame.spsr = super::vectors::SPSR_EL1H_MASKED;
}
