//! EL2 system registers: per-CPU hypervisor configuration, the guest's EL1
//! reset state, exception injection, cache maintenance.

use crate::exception::{self, PstateFeatures};
use aarch64_cpu::registers::*;
use aarch64_rt::InitialPagetable;
use arm_sysregs::el2::accessors as sysregs;
use arm_sysregs::el2::registers::VsesrEl2;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

/// MAIR_EL2: index 0 device-nGnRE, index 1 normal write-back.
pub const MAIR: u64 = 0x04 | 0xff << 8;

const DEVICE_BLOCK: usize = 0x1 | 1 << 10 | 1 << 54; // valid block, attr index 0, AF, XN
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
/// Virtual SError pending (cleared by the hardware when the guest takes it).
const HCR_VSE: u64 = 1 << 8;
const HCR_FB: u64 = 1 << 9;
const HCR_BSU_IS: u64 = 1 << 10;
const HCR_TSC: u64 = 1 << 19;
const HCR_RW: u64 = 1 << 31;
const HCR_APK: u64 = 1 << 40;
const HCR_API: u64 = 1 << 41;

/// What the guest runs under, bit by bit (every bit not named is 0, i.e. no
/// trap, no override):
/// - VM: stage 2 on (the guest's view of memory is the hypervisor's choice);
/// - SWIO: set/way invalidation upgraded to clean+invalidate (harmless, and
///   stale data can never appear in hypervisor memory through it);
/// - FMO/IMO/AMO: physical FIQ/IRQ/SError to EL2 (so the guest's IPIs trap,
///   fast-stop's SGI lands even with DAIF masked, and an SError of the guest
///   is seen by EL2 and re-injected as a virtual one, see `inject_serror`);
/// - FB, BSU=inner shareable: TLB/cache maintenance and barriers of the guest
///   are broadcast, as on bare metal (the guest migrates nothing, but its
///   own CPUs share memory);
/// - TSC: SMC trapped (PSCI via SMC is emulated like HVC);
/// - RW: EL1 is AArch64 (EL0 may be AArch32 where the CPU allows);
/// - APK/API: pointer authentication not trapped.
///
/// Left 0 on purpose: TWI/TWE (WFI/WFE run natively: 1:1 vCPU to pCPU),
/// TID* (ID registers read natively except MIDR/MPIDR, which VPIDR/VMPIDR
/// give), TVM/TRVM (the guest owns its stage 1), TGE/E2H (not a host OS),
/// TERR/TEA (RAS registers and external aborts stay the guest's).
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

/// CPTR_EL2 with E2H=0: RES1 bits only, so FP/SIMD, SVE and SME are not
/// trapped (TFP, TZ, TSM, TTA, TAM, TCPAC all 0: the vCPU owns its CPU).
const CPTR_NO_TRAPS: u64 = 1 << 13 | 1 << 11 | 1 << 9 | 0xff;

/// Configures this CPU's EL2 for running the guest; every trap and control
/// register is written here, each with the reason for its value. `mpidr` is
/// the vCPU's MPIDR from the DTB (affinity fields).
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
    // The virtual counter equals the physical one: one guest, never migrated.
    CNTVOFF_EL2.set(0);
    // MDCR_EL2: no debug, trace-filter or PMU traps (TDE, TDA, TDOSA, TDRA,
    // TPM, TPMCR, TTRF all 0: the vCPU owns its CPU's debug and PMU), and
    // HPMN = PMCR_EL0.N so every event counter is the guest's (HPMN = 0
    // would be CONSTRAINED UNPREDICTABLE). Without a PMU, HPMN is RES0.
    let dfr0 = ID_AA64DFR0_EL1.get();
    let pmu_version = (dfr0 >> 8) & 0xf;
    let hpmn = if pmu_version != 0 && pmu_version != 0xf {
        let pmcr: u64;
        // SAFETY: reading PMCR_EL0, which exists because a PMU is implemented.
        unsafe { asm!("mrs {}, pmcr_el0", out(reg) pmcr) };
        (pmcr >> 11) & 0x1f
    } else {
        0
    };
    MDCR_EL2.write(MDCR_EL2::HPMN.val(hpmn));
    // HSTR_EL2: no AArch32 CP15 register traps (EL0 may be AArch32 and owns them).
    sysregs::write_hstr_el2(0);
    // HACR_EL2: IMPLEMENTATION DEFINED traps, none wanted.
    // SAFETY: HACR_EL2 only adds traps of EL1/EL0 accesses; 0 adds none.
    unsafe { sysregs::write_hacr_el2(0) };
    if (pfr0 >> 28) & 0xf != 0 {
        // FEAT_RAS: the syndrome of a virtual SError starts as "no syndrome".
        sysregs::write_vsesr_el2(VsesrEl2::empty());
    }
    // The guest reads MIDR_EL1 and MPIDR_EL1 through VPIDR/VMPIDR: the real
    // MIDR (same CPU), and the real MPIDR's RES1/U/MT bits with the DTB's
    // affinity (see `vcpu::guest_mpidr`).
    // SAFETY: VPIDR_EL2 only changes what this CPU's EL1 reads from MIDR_EL1.
    unsafe { asm!("msr vpidr_el2, {}", in(reg) MIDR_EL1.get()) };
    VMPIDR_EL2.set(crate::vcpu::guest_mpidr(MPIDR_EL1.get(), mpidr));
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// SCTLR_EL1 architectural reset view: MMU and caches off, RES1 bits set.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// Per vCPU: whether its next cold boot starts big-endian (SCTLR_EL1.EE),
/// because PSCI enters the new context with the endianness of the caller.
/// Written by the caller of CPU_ON while it holds the claim, before the boot
/// request is published (Release); read by the target after it saw the
/// request (Acquire): Relaxed is enough here.
static BOOT_BIG_ENDIAN: [AtomicBool; crate::vcpu::MAX_VCPUS] =
    [const { AtomicBool::new(false) }; crate::vcpu::MAX_VCPUS];

/// True when this CPU's EL1 runs big-endian (SCTLR_EL1.EE).
pub fn guest_big_endian() -> bool {
    SCTLR_EL1.get() & crate::exception::sctlr::EE != 0
}

/// Records the endianness vCPU `index` starts with at its next cold boot.
pub fn set_boot_endianness(index: usize, big: bool) {
    if let Some(flag) = BOOT_BIG_ENDIAN.get(index) {
        flag.store(big, Ordering::Relaxed);
    }
}

/// Puts this CPU's EL1 into the cold-boot state PSCI CPU_ON promises: MMU
/// off, endianness of the caller of CPU_ON (or CPU_SUSPEND), no pending
/// virtual SError of a previous life, no stale TLB entries or instructions
/// for the new code.
pub fn reset_guest_el1() {
    let big = BOOT_BIG_ENDIAN
        .get(super::cpu_index())
        .is_some_and(|f| f.load(Ordering::Relaxed));
    let ee = if big { crate::exception::sctlr::EE } else { 0 };
    SCTLR_EL1.set(SCTLR_EL1_RESET | ee);
    VBAR_EL1.set(0);
    HCR_EL2.set(HCR_EL2.get() & !HCR_VSE);
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

/// Hands an SError the guest caused back to it as a virtual SError with the
/// same syndrome (ESR ISS, IDS included), taken when its PSTATE.A allows,
/// as a physical one would be. Without FEAT_RAS there is no VSESR_EL2 and
/// the guest sees an IMPLEMENTATION DEFINED syndrome.
pub fn inject_serror(esr: u64) {
    if (ID_AA64PFR0_EL1.get() >> 28) & 0xf != 0 {
        // VSESR_EL2 exists with FEAT_RAS: ISS[24:0] of the SError, IDS included.
        sysregs::write_vsesr_el2(VsesrEl2::from_bits_retain(esr & 0x1ff_ffff));
    }
    HCR_EL2.set(HCR_EL2.get() | HCR_VSE);
}

/// Drops this CPU's cached guest translations (stage 1 and 2, the guest's
/// VMID) when the vCPU leaves the guest for good.
pub fn forget_guest_translations() {
    // SAFETY: local TLB maintenance for the current VMID only.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            options(nostack)
        )
    };
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

/// Which optional PSTATE fields this CPU implements (ID registers).
fn pstate_features() -> PstateFeatures {
    let pfr0 = ID_AA64PFR0_EL1.get();
    let pfr1 = ID_AA64PFR1_EL1.get();
    let mmfr1 = ID_AA64MMFR1_EL1.get();
    PstateFeatures {
        pan: (mmfr1 >> 20) & 0xf != 0,
        ssbs: (pfr1 >> 4) & 0xf != 0,
        dit: (pfr0 >> 48) & 0xf != 0,
        mte: (pfr1 >> 8) & 0xf != 0,
    }
}

/// Makes the guest take a synchronous exception at EL1 with `esr`/`far` as if
/// the hardware had delivered it, by rewriting the trapped frame: the Arm
/// ARM's vector offset and PSTATE (see `crate::exception`).
pub fn inject_sync(frame: &mut super::vectors::GuestFrame, esr: u64, far: u64) {
    let offset = exception::sync_vector_offset(frame.spsr);
    ESR_EL1.set(esr);
    FAR_EL1.set(far);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + offset;
    frame.spsr = exception::pstate_on_entry(frame.spsr, SCTLR_EL1.get(), pstate_features());
}
