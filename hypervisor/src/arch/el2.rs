//! EL2 system registers: per-CPU hypervisor configuration, the guest's EL1
//! reset state, exception injection, cache maintenance.

use crate::el2_state::{self, Registers, Resume};
use aarch64_cpu::registers::*;
use aarch64_paging::descriptor::El23Attributes;
use aarch64_rt::InitialPagetable;
use arm_sysregs::el0::accessors as el0_regs;
use arm_sysregs::el1::accessors as el1_regs;
use arm_sysregs::el1::registers::{
    ElrEl1, EsrEl1, FarEl1, IdAa64mmfr1El1, IdAa64pfr0El1, IdAa64pfr1El1, SctlrEl1, SpsrEl1,
    VbarEl1,
};
use arm_sysregs::el2::accessors as el2_regs;
use arm_sysregs::el2::registers::{
    CntvoffEl2, HcrEl2, MairEl2, MdcrEl2, VmpidrEl2, VpidrEl2, VsesrEl2,
};
use core::arch::asm;
/// MAIR_EL2 attribute encodings: Device-nGnRE, and Normal memory
/// write-back (read/write-allocate, non-transient) inner and outer.
const MAIR_DEVICE_NGNRE: u8 = 0x04;
const MAIR_NORMAL_WB: u8 = 0xff;

/// MAIR_EL2: index 0 device-nGnRE, index 1 normal write-back.
pub const MAIR: u64 = MairEl2::empty()
    .with_attr(0, MAIR_DEVICE_NGNRE)
    .with_attr(1, MAIR_NORMAL_WB)
    .bits();

/// A valid level-1 block (no TABLE_OR_PAGE) of device memory, never executed.
const DEVICE_BLOCK: usize = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_0)
    .union(El23Attributes::ACCESSED)
    .union(El23Attributes::XN)
    .bits();
/// A valid level-1 block of normal, inner-shareable memory.
const NORMAL_BLOCK: usize = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_1)
    .union(El23Attributes::INNER_SHAREABLE)
    .union(El23Attributes::ACCESSED)
    .bits();

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
    table[HIGH_MMIO_BLOCK] = DEVICE_BLOCK | HIGH_MMIO_BLOCK << 30;
    InitialPagetable(table)
}

/// The level-1 block of QEMU virt's high MMIO region (256 GiB): RAM ends
/// below it.
const HIGH_MMIO_BLOCK: usize = 256;

/// A level-1 table, aligned as TTBR0_EL2 needs.
#[repr(C, align(4096))]
struct Level1Table([usize; crate::el2_map::BLOCKS]);

/// The full map's TTBR0_EL2 value, once `extend_identity_map` ran.
static IDENTITY_MAP: spin::Once<u64> = spin::Once::new();

/// Builds EL2's full identity map (boot CPU, once, before anything touches
/// RAM above 4 GiB): the initial map plus a normal-memory block for every
/// GiB that holds RAM, then installs it here. Other CPUs install it with
/// `install_identity_map`.
pub fn extend_identity_map(ram: &[crate::mem_range::MemRange]) {
    let mut table = alloc::boxed::Box::new(Level1Table(initial_pagetable().0));
    // Below 4 GiB, a block without RAM is MMIO (raspi4b's 0xfc000000..),
    // and RAM in the first GiB is RAM (raspi4b's RAM starts at 0).
    for block in 0..4 {
        table.0[block] = DEVICE_BLOCK | block << crate::el2_map::BLOCK_SHIFT;
    }
    for block in crate::el2_map::ram_blocks(ram, HIGH_MMIO_BLOCK) {
        table.0[block] = NORMAL_BLOCK | block << crate::el2_map::BLOCK_SHIFT;
    }
    // The table lives as long as the hypervisor: forever.
    let root = alloc::boxed::Box::leak(table) as *const Level1Table as u64;
    IDENTITY_MAP.call_once(|| root);
    install_identity_map();
}

/// Switches this CPU from the initial map to the full one. Every mapping of
/// the initial map is the same in the full one, so no entry changes under
/// a TLB entry (no break-before-make needed); only blocks are added.
pub fn install_identity_map() {
    let root = *IDENTITY_MAP.get().expect("identity map not built");
    // SAFETY: the new table maps everything the old one did, identically
    // (code, stack, heap, MMIO keep their translation); the stores that
    // wrote it are made visible to the table walker by the dsb, and stale
    // TLB entries of this CPU are dropped after the switch.
    unsafe {
        asm!(
            "dsb ish",
            "msr ttbr0_el2, {root}",
            "isb",
            "tlbi alle2",
            "dsb nsh",
            "isb",
            root = in(reg) root,
            options(nostack),
        )
    };
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

/// This CPU's registers, as `crate::el2_state` and
/// `crate::list_registers` access them (arm-sysregs' typed accessors).
pub struct Cpu;

impl Registers for Cpu {
    fn hcr_el2(&self) -> HcrEl2 {
        el2_regs::read_hcr_el2()
    }
    fn set_hcr_el2(&mut self, value: HcrEl2) {
        // SAFETY: HCR_EL2 only changes how this CPU's EL1/EL0 (the guest)
        // run; EL2's own execution does not depend on it: every value
        // written is `hcr_guest`, with or without VSE, so E2H and TGE stay 0.
        unsafe { el2_regs::write_hcr_el2(value) }
    }
    fn set_vsesr_el2(&mut self, value: VsesrEl2) {
        el2_regs::write_vsesr_el2(value);
    }
    fn sctlr_el1(&self) -> SctlrEl1 {
        el1_regs::read_sctlr_el1()
    }
    fn set_sctlr_el1(&mut self, value: SctlrEl1) {
        // SAFETY: the guest's EL1 control register; EL2 runs under its own
        // SCTLR_EL2 and translation regime, and the guest is not running.
        unsafe { el1_regs::write_sctlr_el1(value) }
    }
    fn vbar_el1(&self) -> VbarEl1 {
        el1_regs::read_vbar_el1()
    }
    fn set_vbar_el1(&mut self, value: VbarEl1) {
        // SAFETY: the guest's vector base; exceptions of EL2 use VBAR_EL2.
        unsafe { el1_regs::write_vbar_el1(value) }
    }
    fn set_esr_el1(&mut self, value: EsrEl1) {
        el1_regs::write_esr_el1(value);
    }
    fn set_far_el1(&mut self, value: FarEl1) {
        // SAFETY: a guest syndrome register, only read by the guest's EL1.
        unsafe { el1_regs::write_far_el1(value) }
    }
    fn set_elr_el1(&mut self, value: ElrEl1) {
        // SAFETY: the guest's EL1 return address; EL2 returns through ELR_EL2.
        unsafe { el1_regs::write_elr_el1(value) }
    }
    fn set_spsr_el1(&mut self, value: SpsrEl1) {
        // SAFETY: the guest's EL1 saved PSTATE; EL2 returns through SPSR_EL2.
        unsafe { el1_regs::write_spsr_el1(value) }
    }
    fn id_aa64pfr0_el1(&self) -> IdAa64pfr0El1 {
        el1_regs::read_id_aa64pfr0_el1()
    }
    fn id_aa64pfr1_el1(&self) -> IdAa64pfr1El1 {
        el1_regs::read_id_aa64pfr1_el1()
    }
    fn id_aa64mmfr1_el1(&self) -> IdAa64mmfr1El1 {
        el1_regs::read_id_aa64mmfr1_el1()
    }
}

/// Configures this CPU's EL2 for running the guest; every trap and control
/// register is written here, each with the reason for its value (the trap
/// configuration itself is `crate::el2_state`'s). `mpidr` is the vCPU's
/// MPIDR from the DTB (affinity fields).
pub fn init_cpu(mpidr: u64) {
    // SAFETY: CPTR_EL2 only traps EL1/EL0 (and EL2) use of FP/SIMD, SVE,
    // SME and friends; the value traps none of them.
    unsafe { el2_regs::write_cptr_el2(el2_state::CPTR_GUEST) };
    isb();
    let pfr0 = el1_regs::read_id_aa64pfr0_el1();
    if pfr0.sve() != 0 {
        // SVE: let EL1 use the full vector length. ZCR_EL2 has no accessor
        // in aarch64-cpu or arm-sysregs.
        // SAFETY: the register exists because SVE is implemented.
        unsafe { asm!("msr S3_4_C1_C2_0, {}", in(reg) ZCR_EL2_MAX_LEN) };
    }
    if el1_regs::read_id_aa64pfr1_el1().sme() != 0 {
        // SME: SMCR_EL2 (no accessor in either crate), full streaming vector
        // length, no FA64 or ZT0 restriction.
        // SAFETY: the register exists because SME is implemented.
        unsafe { asm!("msr S3_4_C1_C2_6, {}", in(reg) SMCR_EL2_FULL) };
    }
    Cpu.set_hcr_el2(el2_state::hcr_guest(&Cpu));
    if el1_regs::read_id_aa64mmfr0_el1().fgt() != 0 {
        // FEAT_FGT: the fine-grained trap registers reset to UNKNOWN values
        // (no accessor in either crate).
        // SAFETY: the registers exist because FEAT_FGT is implemented; the
        // values trap nothing (see `el2_state::HFGXTR_NO_TRAPS`).
        unsafe {
            asm!(
                "msr S3_4_C1_C1_4, {rw}", // HFGRTR_EL2
                "msr S3_4_C1_C1_5, {rw}", // HFGWTR_EL2
                "msr S3_4_C1_C1_6, xzr",  // HFGITR_EL2
                "msr S3_4_C3_C1_4, xzr",  // HDFGRTR_EL2
                "msr S3_4_C3_C1_5, xzr",  // HDFGWTR_EL2
                rw = in(reg) el2_state::HFGXTR_NO_TRAPS,
                options(nostack),
            )
        };
    }
    if el1_regs::read_id_aa64mmfr1_el1().hcx() != 0 {
        // SAFETY: HCRX_EL2 exists (FEAT_HCX); the value only enables EL1/EL0
        // instructions and registers of the guest's own (no trap to EL2).
        unsafe { el2_regs::write_hcrx_el2(el2_state::HCRX_GUEST) };
    }
    el2_regs::write_cnthctl_el2(el2_state::CNTHCTL_GUEST);
    // The virtual counter equals the physical one: one guest, never migrated.
    el2_regs::write_cntvoff_el2(CntvoffEl2::empty());
    // MDCR_EL2: no debug, trace-filter or PMU traps (TDE, TDA, TDOSA, TDRA,
    // TPM, TPMCR, TTRF all 0: the vCPU owns its CPU's debug and PMU), and
    // HPMN = PMCR_EL0.N so every event counter is the guest's (HPMN = 0
    // would be CONSTRAINED UNPREDICTABLE). Without a PMU, HPMN is RES0.
    let pmu_version = el1_regs::read_id_aa64dfr0_el1().pmuver();
    let hpmn = if pmu_version != 0 && pmu_version != 0xf {
        // PMCR_EL0 exists because a PMU is implemented.
        el0_regs::read_pmcr_el0().n()
    } else {
        0
    };
    el2_regs::write_mdcr_el2(MdcrEl2::empty().with_hpmn(hpmn));
    // HSTR_EL2: no AArch32 CP15 register traps (EL0 may be AArch32 and owns them).
    el2_regs::write_hstr_el2(0);
    // HACR_EL2: IMPLEMENTATION DEFINED traps, none wanted.
    // SAFETY: HACR_EL2 only adds traps of EL1/EL0 accesses; 0 adds none.
    unsafe { el2_regs::write_hacr_el2(0) };
    if el2_state::has_ras(&Cpu) {
        // FEAT_RAS: the syndrome of a virtual SError starts as "no syndrome".
        el2_regs::write_vsesr_el2(VsesrEl2::empty());
    }
    // The guest reads MIDR_EL1 and MPIDR_EL1 through VPIDR/VMPIDR: the real
    // MIDR (same CPU), and the real MPIDR's RES1/U/MT bits with the DTB's
    // affinity (see `vcpu::guest_mpidr`).
    let midr = el1_regs::read_midr_el1();
    el2_regs::write_vpidr_el2(VpidrEl2::from_bits_retain(midr.bits()));
    let vmpidr = crate::vcpu::guest_mpidr(el1_regs::read_mpidr_el1().bits(), mpidr);
    el2_regs::write_vmpidr_el2(VmpidrEl2::from_bits_retain(vmpidr));
    isb();
}

/// ZCR_EL2.LEN = 0xf: EL1 may use the largest vector length (the value
/// saturates at what the CPU implements).
const ZCR_EL2_MAX_LEN: u64 = 0xf;
/// SMCR_EL2: FA64 (bit 31) and EZT0 (bit 30) not trapped, LEN = 0xf.
const SMCR_EL2_FULL: u64 = 1 << 31 | 1 << 30 | 0xf;

fn isb() {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// True when this CPU's EL1 runs big-endian (SCTLR_EL1.EE).
pub fn guest_big_endian() -> bool {
    Cpu.sctlr_el1().bits() & crate::exception::sctlr::EE != 0
}

/// Puts this CPU's EL1 into the cold-boot state PSCI CPU_ON promises (see
/// `el2_state::reset_el1`), big-endian if `big_endian` (the boot request's
/// endianness), with no stale TLB entries or instructions for the new code.
pub fn reset_guest_el1(big_endian: bool) {
    el2_state::reset_el1(&mut Cpu, big_endian);
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

/// Hands an SError the guest caused back to it as a virtual SError (see
/// `el2_state::inject_serror`).
pub fn inject_serror(esr: u64) {
    el2_state::inject_serror(&mut Cpu, esr);
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
    // DSB orders the preceding stores before the event.
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
    aarch64_cpu::asm::sev();
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
    Cpu.vbar_el1().bits()
}

/// Makes the guest take a synchronous exception at EL1 with `esr`/`far` as if
/// the hardware had delivered it, by rewriting the trapped frame (see
/// `el2_state::inject_sync`).
pub fn inject_sync(frame: &mut super::vectors::GuestFrame, esr: u64, far: u64) {
    let from = Resume {
        pc: frame.elr,
        pstate: frame.spsr,
    };
    let to = el2_state::inject_sync(&mut Cpu, from, esr, far);
    frame.elr = to.pc;
    frame.spsr = to.pstate;
}

/// Reads, or writes and reads back, SCXTNUM_EL0 (`el0`) or SCXTNUM_EL1 for
/// the guest (FEAT_CSV2_2; only called when the guest's access trapped,
/// so the register exists).
pub fn scxtnum(el0: bool, write: Option<u64>) -> u64 {
    let v: u64;
    // SAFETY: the guest's software context number registers, which only
    // steer speculation restrictions of its own contexts; EL2 has none.
    unsafe {
        match (el0, write) {
            (false, Some(w)) => asm!("msr S3_0_C13_C0_7, {}", in(reg) w, options(nomem, nostack)),
            (true, Some(w)) => asm!("msr S3_3_C13_C0_7, {}", in(reg) w, options(nomem, nostack)),
            _ => {}
        }
        if el0 {
            asm!("mrs {}, S3_3_C13_C0_7", out(reg) v, options(nomem, nostack));
        } else {
            asm!("mrs {}, S3_0_C13_C0_7", out(reg) v, options(nomem, nostack));
        }
    }
    v
}
