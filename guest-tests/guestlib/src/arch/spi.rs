//! Shared peripheral interrupts through the distributor (GICD), driven by
//! software alone: set up, route, pend, clear active, read the state.
//! Enough to act as a device that raises an SPI, and as a hostile guest
//! that clears and re-pends it.

use crate::env::Env;

const GICD_IGROUPR: usize = 0x80;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_ISPENDR: usize = 0x200;
const GICD_ICPENDR: usize = 0x280;
const GICD_ISACTIVER: usize = 0x300;
const GICD_ICACTIVER: usize = 0x380;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ICFGR: usize = 0xc00;
const GICD_IROUTER: usize = 0x6000;

fn rd32(a: usize) -> u32 {
    // SAFETY: GIC distributor MMIO, identity mapped.
    unsafe { (a as *const u32).read_volatile() }
}

fn wr32(a: usize, v: u32) {
    // SAFETY: GIC distributor MMIO, identity mapped.
    unsafe { (a as *mut u32).write_volatile(v) }
}

fn bit_reg(env: &Env, base: usize, intid: u32) -> (usize, u32) {
    (
        env.gicd as usize + base + 4 * (intid as usize / 32),
        1 << (intid % 32),
    )
}

/// Makes SPI `intid` a group-1, edge-triggered interrupt at `priority`,
/// routed to the CPU with affinity `mpidr`, enabled, nothing pending or
/// active.
pub fn setup(env: &Env, intid: u32, priority: u8, mpidr: u64) {
    let d = env.gicd as usize;
    disable(env, intid);
    clear_pending(env, intid);
    clear_active(env, intid);
    let (g, b) = bit_reg(env, GICD_IGROUPR, intid);
    wr32(g, rd32(g) | b);
    let p = d + GICD_IPRIORITYR + (intid as usize & !3);
    let sh = (intid & 3) * 8;
    wr32(p, rd32(p) & !(0xff << sh) | u32::from(priority) << sh);
    let c = d + GICD_ICFGR + 4 * (intid as usize / 16);
    wr32(c, rd32(c) | 2 << (2 * (intid % 16)));
    route(env, intid, mpidr);
    let (e, b) = bit_reg(env, GICD_ISENABLER, intid);
    wr32(e, b);
}

/// Routes SPI `intid` to the CPU with affinity `mpidr` (IRM = 0).
pub fn route(env: &Env, intid: u32, mpidr: u64) {
    let a = env.gicd as usize + GICD_IROUTER + 8 * intid as usize;
    let aff = mpidr & 0xff_00ff_ffff;
    wr32(a, aff as u32);
    wr32(a + 4, (aff >> 32) as u32);
}

pub fn disable(env: &Env, intid: u32) {
    let (a, b) = bit_reg(env, GICD_ICENABLER, intid);
    wr32(a, b);
}

/// Sets the pending state, as a device raising it would.
pub fn pend(env: &Env, intid: u32) {
    let (a, b) = bit_reg(env, GICD_ISPENDR, intid);
    wr32(a, b);
}

pub fn clear_pending(env: &Env, intid: u32) {
    let (a, b) = bit_reg(env, GICD_ICPENDR, intid);
    wr32(a, b);
}

/// Clears the active state (GICD_ICACTIVER).
pub fn clear_active(env: &Env, intid: u32) {
    let (a, b) = bit_reg(env, GICD_ICACTIVER, intid);
    wr32(a, b);
}

pub fn is_pending(env: &Env, intid: u32) -> bool {
    let (a, b) = bit_reg(env, GICD_ISPENDR, intid);
    rd32(a) & b != 0
}

pub fn is_active(env: &Env, intid: u32) -> bool {
    let (a, b) = bit_reg(env, GICD_ISACTIVER, intid);
    rd32(a) & b != 0
}
