//! Just enough GIC to let one PPI (the virtual timer) wake a CPU from
//! WFI/standby while interrupts stay masked at the CPU (DAIF), and to send
//! and take SGIs: GICv3 (redistributors, ICC system registers) or GICv2
//! (banked distributor registers, memory-mapped CPU interface, GICD_SGIR).

use crate::env::Env;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// The GICv2 CPU interface base once a CPU set it up (0: GICv3).
static GICC: AtomicU64 = AtomicU64::new(0);
/// Each CPU's GICv2 interface mask (its banked GICD_ITARGETSR0), learnt
/// when it sets itself up; 0 until then.
static CPU_MASK: [AtomicU8; crate::MAX_CPUS] = [const { AtomicU8::new(0) }; crate::MAX_CPUS];

const GICD_ISENABLER0: usize = 0x100;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xf00;
const GICC_CTLR: usize = 0x0;
const GICC_PMR: usize = 0x4;
const GICC_IAR: usize = 0xc;
const GICC_EOIR: usize = 0x10;

/// The EL1 virtual timer PPI.
pub const VTIMER_INTID: u32 = 27;

const GICD_CTLR: usize = 0x0;
const GICR_STRIDE: usize = 0x20000;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x10000;
const GICR_IGROUPR0: usize = SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = SGI_BASE + 0x100;
const GICR_ICENABLER0: usize = SGI_BASE + 0x180;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x400;

fn rd32(a: usize) -> u32 {
    // SAFETY: GIC MMIO, identity mapped.
    unsafe { (a as *const u32).read_volatile() }
}

fn wr32(a: usize, v: u32) {
    // SAFETY: GIC MMIO, identity mapped.
    unsafe { (a as *mut u32).write_volatile(v) }
}

fn rd64(a: usize) -> u64 {
    rd32(a) as u64 | (rd32(a + 4) as u64) << 32
}

/// The redistributor frame of the CPU with this MPIDR affinity.
pub fn redistributor(env: &Env, mpidr: u64) -> Option<usize> {
    if env.gicr == 0 {
        return None;
    }
    let want = ((mpidr >> 32) & 0xFF) << 24 | (mpidr & 0xFF_FFFF);
    let mut rd = env.gicr as usize;
    for _ in 0..256 {
        let typer = rd64(rd + GICR_TYPER);
        if typer >> 32 == want {
            return Some(rd);
        }
        if typer & (1 << 4) != 0 {
            return None;
        }
        rd += GICR_STRIDE;
    }
    None
}

/// Enables group-1 delivery of PPI `intid` to the calling CPU (distributor,
/// its redistributor, CPU interface). Interrupts stay masked in DAIF.
pub fn enable_ppi(env: &Env, mpidr: u64, intid: u32) -> Result<(), crate::Msg> {
    enable_private(env, mpidr, 1 << intid)
}

/// Enables group-1 delivery, at priority 0x80, of the SGIs and PPIs whose
/// bits are set in `intids` to the CPU with this MPIDR (distributor, its
/// redistributor) and turns on the calling CPU's interface (PMR 0xff,
/// group 1). Interrupts stay masked in DAIF.
pub fn enable_private(env: &Env, mpidr: u64, intids: u32) -> Result<(), crate::Msg> {
    if env.is_gicv2() {
        return enable_private_v2(env, mpidr, intids);
    }
    crate::ensure!(env.gicd != 0, "no GICv3 in the DTB");
    let rd = redistributor(env, mpidr)
        .ok_or_else(|| crate::msg!("no redistributor for mpidr {:#x}", mpidr))?;
    // ARE_NS | EnableGrp1NS (bit 1) | EnableGrp1 in a single-security view.
    let d = env.gicd as usize;
    wr32(d + GICD_CTLR, rd32(d + GICD_CTLR) | (1 << 4) | (1 << 1) | 1);
    // Wake the redistributor.
    wr32(rd + GICR_WAKER, rd32(rd + GICR_WAKER) & !(1 << 1));
    let _ = super::time::spin_until(100_000, || rd32(rd + GICR_WAKER) & (1 << 2) == 0);
    wr32(rd + GICR_IGROUPR0, rd32(rd + GICR_IGROUPR0) | intids);
    for intid in (0..32).filter(|i| intids & (1 << i) != 0) {
        write_priority(rd, intid, 0x80);
    }
    wr32(rd + GICR_ISENABLER0, intids);
    // SAFETY: CPU interface system registers.
    unsafe {
        core::arch::asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack),
        );
    }
    Ok(())
}

/// GICv2: the same for the calling CPU (`mpidr` must be its own: the
/// distributor's SGI/PPI registers are banked per CPU); group 0, which
/// GICC_CTLR bit 0 enables.
fn enable_private_v2(env: &Env, mpidr: u64, intids: u32) -> Result<(), crate::Msg> {
    let me = super::cpu::mpidr() & 0xFF_00FF_FFFF;
    crate::ensure!(
        mpidr & 0xFF_00FF_FFFF == me,
        "GICv2: cpu {:#x} cannot set up cpu {:#x}'s banked registers",
        me,
        mpidr
    );
    let d = env.gicd as usize;
    let c = env.gicc as usize;
    GICC.store(env.gicc, Ordering::Relaxed);
    if let Some(idx) = env.index_of(mpidr) {
        let mask = rd32(d + GICD_ITARGETSR) as u8;
        CPU_MASK[idx].store(mask, Ordering::Relaxed);
    }
    wr32(d, rd32(d) | 1);
    for intid in (0..32).filter(|i| intids & (1 << i) != 0) {
        let a = d + GICD_IPRIORITYR + (intid as usize & !3);
        let sh = (intid & 3) * 8;
        wr32(a, (rd32(a) & !(0xFF << sh)) | (0x80 << sh));
    }
    wr32(d + GICD_ISENABLER0, intids);
    wr32(c + GICC_PMR, 0xff);
    wr32(c + GICC_CTLR, rd32(c + GICC_CTLR) | 1);
    Ok(())
}

/// GICv2: sends SGI `sgi` to the CPUs in `targets` (bit per linear index)
/// with one GICD_SGIR write (their interface masks; `1 << index` for a CPU
/// that has not set itself up yet).
pub fn send_sgi_v2(env: &Env, sgi: u32, targets: u64) {
    let mut list = 0u32;
    for i in (0..env.ncpus.min(8)).filter(|i| targets >> i & 1 == 1) {
        let mask = CPU_MASK[i].load(Ordering::Relaxed);
        list |= u32::from(if mask == 0 { 1 << i } else { mask });
    }
    wr32(env.gicd as usize + GICD_SGIR, list << 16 | (sgi & 0xf));
}

/// GICv2: SGI `sgi` to every CPU but this one (TargetListFilter 1).
pub fn send_sgi_others_v2(env: &Env, sgi: u32) {
    wr32(env.gicd as usize + GICD_SGIR, 1 << 24 | (sgi & 0xf));
}

fn write_priority(rd: usize, intid: u32, pri: u8) {
    let a = rd + GICR_IPRIORITYR + (intid as usize & !3);
    let sh = (intid & 3) * 8;
    wr32(a, (rd32(a) & !(0xFF << sh)) | ((pri as u32) << sh));
}

/// Sets the priority of SGI/PPI `intid` in the redistributor of the CPU
/// with this MPIDR; returns the priority it reads back.
pub fn set_priority(env: &Env, mpidr: u64, intid: u32, pri: u8) -> Result<u8, crate::Msg> {
    if env.is_gicv2() {
        // Banked GICD_IPRIORITYR: only the calling CPU's own.
        let me = super::cpu::mpidr() & 0xFF_00FF_FFFF;
        crate::ensure!(
            mpidr & 0xFF_00FF_FFFF == me,
            "GICv2: cpu {:#x} cannot set cpu {:#x}'s banked priorities",
            me,
            mpidr
        );
        let a = env.gicd as usize + GICD_IPRIORITYR + (intid as usize & !3);
        let sh = (intid & 3) * 8;
        wr32(a, (rd32(a) & !(0xFF << sh)) | ((pri as u32) << sh));
        return Ok((rd32(a) >> sh) as u8);
    }
    let rd = redistributor(env, mpidr)
        .ok_or_else(|| crate::msg!("no redistributor for mpidr {:#x}", mpidr))?;
    write_priority(rd, intid, pri);
    let a = rd + GICR_IPRIORITYR + (intid as usize & !3);
    Ok((rd32(a) >> ((intid & 3) * 8)) as u8)
}

/// Acknowledges the highest-priority pending group-1 interrupt: returns
/// ICC_IAR1_EL1 (INTID in bits 0..23; 1020..1023 = none).
pub fn acknowledge() -> u64 {
    let gicc = GICC.load(Ordering::Relaxed) as usize;
    if gicc != 0 {
        return u64::from(rd32(gicc + GICC_IAR));
    }
    let iar: u64;
    // SAFETY: CPU interface acknowledge; affects only the GIC's state.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nostack)) };
    iar
}

/// Ends the interrupt `iar` (from [`acknowledge`]); with EOImode 0 this
/// also deactivates it.
pub fn end_of_interrupt(iar: u64) {
    let gicc = GICC.load(Ordering::Relaxed) as usize;
    if gicc != 0 {
        wr32(gicc + GICC_EOIR, iar as u32);
        return;
    }
    // SAFETY: CPU interface end of interrupt; affects only the GIC's state.
    unsafe { core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar, options(nostack)) };
}

/// Writes ICC_SGI1R_EL1: generates the group-1 SGI it describes.
pub fn write_sgi1r(v: u64) {
    // SAFETY: generating an SGI (trapped by the hypervisor); no memory.
    unsafe { core::arch::asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nostack)) };
}

/// Writes ICC_SGI0R_EL1 (a Group 0 SGI).
pub fn write_sgi0r(v: u64) {
    // SAFETY: generating an SGI (trapped by the hypervisor); no memory.
    unsafe { core::arch::asm!("msr icc_sgi0r_el1, {}", "isb", in(reg) v, options(nostack)) };
}

/// Writes ICC_ASGI1R_EL1 (a Group 1 SGI of the other Security state).
pub fn write_asgi1r(v: u64) {
    // SAFETY: generating an SGI (trapped by the hypervisor); no memory.
    unsafe { core::arch::asm!("msr icc_asgi1r_el1, {}", "isb", in(reg) v, options(nostack)) };
}

/// The ICC_SGI*R_EL1 value that sends SGI `intid` to the CPU with this
/// MPIDR alone.
pub const fn sgi_to(mpidr: u64, intid: u32) -> u64 {
    let aff0 = mpidr & 0xff;
    (mpidr >> 32 & 0xff) << 48
        | (mpidr >> 16 & 0xff) << 32
        | (aff0 / 16) << 44
        | (intid as u64 & 0xf) << 24
        | (mpidr >> 8 & 0xff) << 16
        | 1 << (aff0 % 16)
}

/// Disables PPI `intid` at the calling CPU's redistributor.
pub fn disable_ppi(env: &Env, mpidr: u64, intid: u32) {
    if env.is_gicv2() {
        // GICD_ICENABLER0, banked: the calling CPU's.
        wr32(env.gicd as usize + 0x180, 1 << intid);
        return;
    }
    if let Some(rd) = redistributor(env, mpidr) {
        wr32(rd + GICR_ICENABLER0, 1 << intid);
    }
}

/// Arms the EL1 virtual timer to fire `us` from now (interrupt unmasked at
/// the timer, still masked in DAIF).
pub fn vtimer_arm(us: u64) {
    let cval = super::time::counter() + super::time::us_to_ticks(us);
    // SAFETY: EL1 virtual timer registers.
    unsafe {
        core::arch::asm!(
            "msr cntv_cval_el0, {c}",
            "mov {t}, #1",
            "msr cntv_ctl_el0, {t}",
            "isb",
            c = in(reg) cval,
            t = out(reg) _,
            options(nostack),
        );
    }
}

/// Stops the virtual timer; returns CNTV_CTL_EL0 as it was (bit 2 ISTATUS).
pub fn vtimer_stop() -> u64 {
    let ctl: u64;
    // SAFETY: EL1 virtual timer registers.
    unsafe {
        core::arch::asm!(
            "mrs {c}, cntv_ctl_el0",
            "msr cntv_ctl_el0, xzr",
            "isb",
            c = out(reg) ctl,
            options(nostack),
        );
    }
    ctl
}
