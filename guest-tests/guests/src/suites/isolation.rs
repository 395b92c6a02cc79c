//! `isolation`: a hostile guest against parkvisor's device and GIC
//! boundaries (docs/architecture.md "Devices and DMA",
//! docs/gic-mediation.md).
//!
//! * DMA: the guest DTB lists no DMA master (fw_cfg, virtio-mmio, PCIe, the
//!   platform bus); every access to one aborts at EL1; the fw_cfg DMA
//!   attack (a descriptor aimed at the hypervisor's image) aborts and the
//!   hypervisor keeps serving; the passed-through RTC, GPIO and flash answer.
//! * GIC: a load from a redistributor frame past the last CPU reads zero
//!   (it used to panic the hypervisor); GICD_CTLR keeps group 1 and ARE;
//!   the hypervisor's kick SGI 8, stop SGI 9 and maintenance PPI 25 made
//!   active through other CPUs' GICR_ISACTIVER0 no longer lose CPU_ON,
//!   FAST_STOP or list-register refills; a sweep of every GICD/GICR offset
//!   at every width in every frame (own, other CPUs', past the last CPU),
//!   reads then all-ones then zeros, after which CPU_ON, FAST_STOP and IPIs
//!   still work.
//! * On a GICv2 board the same attacks aim at the GICv2 frames: each
//!   secondary activates the hypervisor's SGIs and PPIs in its own banked
//!   GICD_ISACTIVER0; the sweep covers GICD and the guest's GICC past the
//!   two pages of GICV mapped there; GICH and GICV's own address are not
//!   reachable (a load aborts at EL1).
//! * The devices, the DMA engine attacked and the GICv2 virtualization
//!   frames are the board's ([`board::targets`]): QEMU virt's fw_cfg,
//!   virtio, PCIe; a Raspberry Pi 4's DMA controller, mailbox, SD hosts and
//!   USB. Frame sizes come from the guest DTB (a GIC-400's GICD is 4 KiB).

use super::board::{self, Answer, DmaEngine};
use super::busy;
use super::common::{skip_gicv2, skip_plain};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use dtoolkit::{Node, Property, ToCellInt};
use guestlib::abi::*;
use guestlib::arch::call::{Conduit, call};
use guestlib::arch::vectors::{probe_load, probe_store};
use guestlib::arch::{programs, psci, time};
use guestlib::framework::{Suite, Test};
use guestlib::{Abort, Env, Msg, TestResult, ensure, gprintln, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "isolation",
    tests: &[
        Test::new("guest_dtb_has_no_dma_masters", dtb_has_no_dma_masters).skip_if(skip_plain),
        Test::new("withheld_devices_abort", withheld_devices_abort).skip_if(skip_plain),
        Test::new("passthrough_devices_answer", passthrough_devices_answer).skip_if(no_passthrough),
        Test::new("dma_engine_attack", dma_engine_attack).skip_if(skip_plain),
        Test::new("load_past_last_redistributor", load_past_last_redistributor)
            .skip_if(|e| skip_plain(e).or_else(|| skip_gicv2(e))),
        Test::new("gicd_ctlr_keeps_group1_and_are", gicd_ctlr).skip_if(skip_plain),
        Test::new("kick_sgi_made_active", kick_sgi_made_active)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("stop_sgi_made_active", stop_sgi_made_active)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("maintenance_made_active", maintenance_made_active)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("gic_sweep", gic_sweep).skip_if(skip_plain),
        Test::new("gich_gicv_unreachable", gich_gicv_unreachable)
            .skip_if(|e| skip_plain(e).or_else(|| skip_gicv3(e))),
        Test::new("after_sweep_on_stop", on_and_stop)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("after_sweep_ipis", after_sweep_ipis)
            .cpus(2)
            .skip_if(skip_plain),
    ],
};

/// QEMU docs/specs/fw_cfg.rst: selector (16-bit, BE) at +8, DMA address
/// (64-bit, BE; writing the low word at +0x14 starts the transfer) at +0x10.
const FW_CFG_SELECTOR: u64 = 0x8;
const FW_CFG_DMA_HIGH: u64 = 0x10;
const FW_CFG_DMA_LOW: u64 = 0x14;
/// FWCfgDmaAccess.control: select the item in bits 31:16, then read it.
const FW_CFG_DMA_SELECT: u32 = 1 << 3;
const FW_CFG_DMA_READ: u32 = 1 << 1;
/// parkvisor's image (linked at 0x4020_0000): QEMU would write the
/// signature and then zeros (reads past an item's end) over its code.
const HV_IMAGE: u64 = 0x4020_0000;

const GICR_STRIDE: u64 = 0x2_0000;
const SGI_BASE: u64 = 0x1_0000;
const GICR_ISACTIVER0: u64 = SGI_BASE + 0x300;
/// QEMU virt's first redistributor region holds 123 CPUs.
const FIRST_REGION_CPUS: usize = 123;

// ---------------------------------------------------------------------------
// Accesses
// ---------------------------------------------------------------------------

fn check_abort(what: &str, addr: u64, r: Result<u64, Abort>) -> TestResult {
    match r {
        Ok(v) => Err(msg!("{} {:#x} did not abort (value {:#x})", what, addr, v)),
        Err(ab) => {
            ensure!(
                ab.is_data_abort_same_el() && ab.far == addr,
                "{} {:#x}: ESR {:#x} FAR {:#x}, expected a data abort at the address",
                what,
                addr,
                ab.esr,
                ab.far
            );
            Ok(())
        }
    }
}

fn still_served() -> TestResult {
    let v = psci::hvc().version();
    ensure!(v == PSCI_VERSION_1_1, "PSCI_VERSION afterwards = {:#x}", v);
    Ok(())
}

/// CPU `idx`'s redistributor (QEMU virt: consecutive frames, 123 per region).
fn gicr(env: &Env, idx: usize) -> u64 {
    env.gicr + idx as u64 * GICR_STRIDE
}

// ---------------------------------------------------------------------------
// DMA isolation
// ---------------------------------------------------------------------------

fn dtb_has_no_dma_masters(env: &Env) -> TestResult {
    let blob = guestlib::boot_fdt().data();
    let size = blob.len();
    ensure!((64..=(2 << 20)).contains(&size), "DTB size {}", size);
    let has = |needle: &str| blob.windows(needle.len()).any(|w| w == needle.as_bytes());
    let t = board::targets(env);
    for needle in t.dtb_lacks {
        ensure!(!has(needle), "the guest DTB still lists {}", needle);
    }
    for needle in t.dtb_keeps.iter().chain(&["arm,pl011"]) {
        ensure!(has(needle), "the guest DTB lost {}", needle);
    }
    if env.is_gicv2() {
        ensure!(
            has("arm,cortex-a15-gic") || has("arm,gic-400"),
            "the guest DTB lost its GICv2"
        );
    } else {
        ensure!(has("arm,gic-v3"), "the guest DTB lost arm,gic-v3");
    }
    Ok(())
}

fn withheld_devices_abort(env: &Env) -> TestResult {
    for &(what, addr) in board::targets(env).withheld {
        check_abort(what, addr, probe_load(addr, 4))?;
        check_abort(what, addr, probe_store(addr, 4, 0xffff_ffff).map(|()| 0))?;
    }
    still_served()
}

fn no_passthrough(env: &Env) -> Option<Msg> {
    board::targets(env)
        .passthrough
        .is_empty()
        .then(|| msg!("this board passes no device through"))
}

fn passthrough_devices_answer(env: &Env) -> TestResult {
    let t = board::targets(env);
    for &(what, addr, answer) in t.passthrough {
        let load =
            |a| probe_load(a, 4).map_err(|ab| msg!("{} {:#x} aborted: ESR {:#x}", what, a, ab.esr));
        let v = load(addr)?;
        match answer {
            Answer::Any => {}
            Answer::Equals(want) => ensure!(
                v == u64::from(want),
                "{} {:#x} reads {:#x}, expected {:#x}",
                what,
                addr,
                v,
                want
            ),
        }
    }
    Ok(())
}

/// A DMA engine told to write over memory that is not the guest's: every
/// store that would start it must abort, and the hypervisor must still
/// answer afterwards.
fn dma_engine_attack(env: &Env) -> TestResult {
    match board::targets(env).dma {
        DmaEngine::FwCfg(base) => fw_cfg_dma_attack(base),
        DmaEngine::Bcm2835(channel) => bcm2835_dma_attack(channel),
    }
}

/// CALL_UID still answers with parkvisor's UID.
fn uid_still_answers() -> TestResult {
    let r = call(Conduit::Hvc, 0x8600_FF01, 0, 0, 0);
    ensure!(
        r[0] == 0xCD11_84F9,
        "CALL_UID after the attack: {:#x}",
        r[0]
    );
    Ok(())
}

/// The stage-2 escape on QEMU virt: a DMA descriptor telling QEMU's fw_cfg
/// to write an item (then zeros) over the hypervisor's image.
fn fw_cfg_dma_attack(fw_cfg: u64) -> TestResult {
    #[repr(C, align(16))]
    struct Descriptor([AtomicU32; 4]);
    static DESC: Descriptor = Descriptor([const { AtomicU32::new(0) }; 4]);
    let control = FW_CFG_DMA_SELECT | FW_CFG_DMA_READ; // item 0: signature
    let words = [
        control.to_be(),
        0x0010_0000u32.to_be(), // 1 MiB: "QEMU" then zeros
        ((HV_IMAGE >> 32) as u32).to_be(),
        (HV_IMAGE as u32).to_be(),
    ];
    for (w, v) in DESC.0.iter().zip(words) {
        w.store(v, SeqCst);
    }
    let addr = &raw const DESC as u64;
    let high = ((addr >> 32) as u32).to_be();
    let low = (addr as u32).to_be();
    // The whole attack first, then the verdicts: on a hypervisor that lets
    // the stores through, QEMU overwrites its code here.
    let (sel, dhigh, dlow) = (
        fw_cfg + FW_CFG_SELECTOR,
        fw_cfg + FW_CFG_DMA_HIGH,
        fw_cfg + FW_CFG_DMA_LOW,
    );
    let selector = probe_store(sel, 2, 0);
    let dma_high = probe_store(dhigh, 4, high.into());
    let dma_low = probe_store(dlow, 4, low.into());
    let dma_both = probe_store(dhigh, 8, u64::from(high) | u64::from(low) << 32);
    // The hypervisor's vectors and code must be intact: traps still work.
    still_served()?;
    check_abort("fw_cfg selector", sel, selector.map(|()| 0))?;
    check_abort("fw_cfg DMA high", dhigh, dma_high.map(|()| 0))?;
    check_abort("fw_cfg DMA low", dlow, dma_low.map(|()| 0))?;
    check_abort("fw_cfg DMA", dhigh, dma_both.map(|()| 0))?;
    uid_still_answers()
}

/// BCM2835 DMA channel registers: control/status (ACTIVE is bit 0) and the
/// control block's bus address.
const DMA_CS: u64 = 0x0;
const DMA_CONBLK_AD: u64 = 0x4;
/// Control block transfer information: increment source and destination.
const DMA_TI_SRC_INC: u32 = 1 << 8;
const DMA_TI_DEST_INC: u32 = 1 << 4;
/// The DMA's bus view of RAM (BCM2711 /soc dma-ranges: bus 0xc0000000 is
/// physical 0).
const DMA_BUS_RAM: u32 = 0xc000_0000;

/// On a Raspberry Pi 4: a control block copying 64 KiB over physical 0
/// (the spin-table stub's page, never guest RAM) and the stores that would
/// start channel 0 on it.
fn bcm2835_dma_attack(channel: u64) -> TestResult {
    #[repr(C, align(32))]
    struct ControlBlock([AtomicU32; 8]);
    static CB: ControlBlock = ControlBlock([const { AtomicU32::new(0) }; 8]);
    let cb = &raw const CB as u64;
    let words = [
        DMA_TI_SRC_INC | DMA_TI_DEST_INC,
        DMA_BUS_RAM | cb as u32, // source: the guest's own memory
        DMA_BUS_RAM,             // destination: physical 0
        0x1_0000,                // length
        0,
        0, // no next control block
        0,
        0,
    ];
    for (w, v) in CB.0.iter().zip(words) {
        w.store(v, SeqCst);
    }
    let (cs, conblk) = (channel + DMA_CS, channel + DMA_CONBLK_AD);
    let set_cb = probe_store(conblk, 4, u64::from(DMA_BUS_RAM | cb as u32));
    let start = probe_store(cs, 4, 1);
    let both = probe_store(cs, 8, u64::from(DMA_BUS_RAM | cb as u32) << 32 | 1);
    still_served()?;
    check_abort("DMA CONBLK_AD", conblk, set_cb.map(|()| 0))?;
    check_abort("DMA CS", cs, start.map(|()| 0))?;
    check_abort("DMA CS+CONBLK_AD", cs, both.map(|()| 0))?;
    uid_still_answers()
}

// ---------------------------------------------------------------------------
// GIC mediation
// ---------------------------------------------------------------------------

fn load_past_last_redistributor(env: &Env) -> TestResult {
    ensure!(env.gicr != 0, "no GICv3 in the DTB");
    if env.ncpus >= FIRST_REGION_CPUS {
        return Ok(());
    }
    let past = gicr(env, env.ncpus);
    // The panic: 0x080C_0008 with 1 vCPU (GICR_TYPER of no CPU).
    for (offset, size) in [
        (0x8, 8),
        (0x8, 4),
        (0xffe8, 4),
        (SGI_BASE + 0x100, 4),
        (0x0, 1),
    ] {
        match probe_load(past + offset, size) {
            Ok(0) => {}
            Ok(v) => {
                return Err(msg!(
                    "{:#x} reads {:#x}, expected 0 (RAZ)",
                    past + offset,
                    v
                ));
            }
            Err(ab) => return Err(msg!("{:#x} aborted: ESR {:#x}", past + offset, ab.esr)),
        }
        if let Err(ab) = probe_store(past + offset, size, u64::MAX) {
            return Err(msg!(
                "store {:#x} aborted: ESR {:#x}",
                past + offset,
                ab.esr
            ));
        }
    }
    still_served()
}

fn gicd_ctlr(env: &Env) -> TestResult {
    ensure!(env.gicd != 0, "no GIC in the DTB");
    // GICv3: EnableGrp1 and ARE; GICv2: group 0 and group 1 forwarding.
    let kept = if env.is_gicv2() { 0x3 } else { 0x12 };
    let before =
        probe_load(env.gicd, 4).map_err(|a| msg!("GICD_CTLR load aborted: {:#x}", a.esr))?;
    let _ = probe_store(env.gicd, 4, 0);
    let after =
        probe_load(env.gicd, 4).map_err(|a| msg!("GICD_CTLR load aborted: {:#x}", a.esr))?;
    ensure!(
        after & kept == kept,
        "GICD_CTLR {:#x} after writing 0 (was {:#x}): enable bits {:#x} gone",
        after,
        before,
        kept
    );
    Ok(())
}

/// GICv2: the bits the attack job sets in its own GICD_ISACTIVER0, and
/// where that register is.
static ATTACK_BITS: AtomicU32 = AtomicU32::new(0);
static ATTACK_AT: AtomicU64 = AtomicU64::new(0);

/// GICv2 job: set [`ATTACK_BITS`] in this CPU's banked GICD_ISACTIVER0,
/// then go OFF.
fn activate_own_job(_idx: usize, _ctx: u64) {
    let _ = probe_store(ATTACK_AT.load(Acquire), 4, ATTACK_BITS.load(Acquire).into());
}

/// Sets `bits` in every secondary's GICR_ISACTIVER0 (other CPUs' frames);
/// on a GICv2, whose GICD_ISACTIVER0 is banked, each secondary sets them
/// in its own and goes OFF.
fn activate_on_secondaries(env: &Env, bits: u32) {
    if env.is_gicv2() {
        ATTACK_BITS.store(bits, Release);
        ATTACK_AT.store(env.gicd + 0x300, Release);
        for idx in env.secondaries() {
            let started =
                guestlib::arch::smp::start(env, idx, activate_own_job, super::common::cookie());
            if started.is_ok() {
                let _ = guestlib::arch::smp::wait_off(env, idx, 1_000_000);
            }
        }
        return;
    }
    for idx in env.secondaries() {
        let _ = probe_store(gicr(env, idx) + GICR_ISACTIVER0, 4, bits.into());
    }
}

/// CPU_ON of every secondary must come ON (bounded), then one FAST_STOP
/// (bounded deadline) must stop them all; all are OFF afterwards.
fn on_and_stop_within(env: &Env, deadline_us: u64) -> TestResult {
    let n = busy::start_all(env, busy::masked_job, None)?;
    super::fast_stop::stop_all_checked(env, n, deadline_us)
}

fn on_and_stop(env: &Env) -> TestResult {
    on_and_stop_within(env, super::fast_stop::deadline_us())
}

/// Physical SGI 8 (the hypervisor's kick) active on every secondary: CPU_ON
/// used to succeed while the CPU never came ON.
fn kick_sgi_made_active(env: &Env) -> TestResult {
    activate_on_secondaries(env, 1 << 8);
    on_and_stop(env)
}

/// Physical SGI 9 (FAST_STOP's) active: the CPU used to be unstoppable.
fn stop_sgi_made_active(env: &Env) -> TestResult {
    activate_on_secondaries(env, 1 << 9);
    // 5 s: plenty for a stop that works, short for one that never will.
    super::fast_stop::rescue(on_and_stop_within(env, 5_000_000))
}

/// PPI 25 (maintenance) active on the target: list-register refills used to
/// stop, so SGIs beyond the list registers never arrived.
fn maintenance_made_active(env: &Env) -> TestResult {
    activate_on_secondaries(env, 1 << 25);
    super::ipi::masked_burst(env, 8)
}

// ---------------------------------------------------------------------------
// The sweep
// ---------------------------------------------------------------------------

/// Where the architected registers are in a 64 KiB frame (GICD, RD_base
/// or SGI_base): the control/bitmap/priority/config block, the GICD
/// IROUTER block and the ID registers. Narrow (byte, halfword) accesses are
/// swept where they could overlap a filtered register.
const DENSE: [(u64, u64); 3] = [(0x0000, 0x1000), (0x6000, 0x8000), (0xffc0, 0x1_0000)];
const NARROW: [(u64, u64); 5] = [
    (0x0000, 0x0440),
    (0x0c00, 0x0d10),
    (0x0e00, 0x0e10),
    (0x0f00, 0x0f30),
    (0xffc0, 0x1_0000),
];

/// The offsets swept at `size` bytes in a 64 KiB frame: every aligned one
/// in the register blocks, and one per 256 bytes of the reserved rest
/// (RAZ/WI throughout; the host tests cover every offset of the decision).
fn offsets(size: u8, frame: u64) -> impl Iterator<Item = u64> {
    let narrow = size < 4;
    (0..frame.min(0x1_0000))
        .step_by(usize::from(size))
        .filter(move |&o| {
            let windows: &[(u64, u64)] = if narrow { &NARROW } else { &DENSE };
            windows.iter().any(|&(lo, hi)| (lo..hi).contains(&o)) || (!narrow && o % 0x100 == 0)
        })
}

/// GICD, two frames per CPU the guest knows, four past the last CPU.
const MAX_FRAMES: usize = 1 + 2 * guestlib::MAX_CPUS + 4;

/// Every frame: GICD, each CPU's pair, and (within the DTB's first GICR
/// region) the pair after the last CPU and the region's last pair.
fn frames(env: &Env, out: &mut [u64; MAX_FRAMES]) -> usize {
    let mut n = 0;
    let mut push = |base: u64| {
        if n < out.len() && !out[..n].contains(&base) {
            out[n] = base;
            n += 1;
        }
    };
    push(env.gicd);
    for idx in 0..env.ncpus.min(FIRST_REGION_CPUS) {
        push(gicr(env, idx));
        push(gicr(env, idx) + SGI_BASE);
    }
    if env.ncpus < FIRST_REGION_CPUS {
        push(gicr(env, env.ncpus));
        push(gicr(env, env.ncpus) + SGI_BASE);
        push(gicr(env, FIRST_REGION_CPUS - 1));
        push(gicr(env, FIRST_REGION_CPUS - 1) + SGI_BASE);
    }
    n
}

/// One access at every offset [`offsets`] gives in each frame of `frame`
/// bytes.
fn sweep_pass(frames: &[u64], frame: u64, write: Option<u64>) -> Result<u64, Msg> {
    let mut count = 0;
    for &base in frames {
        for size in [8u8, 4, 2, 1] {
            for o in offsets(size, frame) {
                let r = match write {
                    None => probe_load(base + o, size).map(|_| ()),
                    Some(v) => probe_store(base + o, size, v),
                };
                if let Err(ab) = r {
                    return Err(msg!(
                        "{} of {} bytes at {:#x} aborted: ESR {:#x}",
                        if write.is_some() { "store" } else { "load" },
                        size,
                        base + o,
                        ab.esr
                    ));
                }
                count += 1;
            }
        }
    }
    Ok(count)
}

fn gic_sweep(env: &Env) -> TestResult {
    if env.is_gicv2() {
        return gic_sweep_v2(env);
    }
    ensure!(env.gicd != 0 && env.gicr != 0, "no GICv3 in the DTB");
    let mut all = [0u64; MAX_FRAMES];
    let n = frames(env, &mut all);
    let want = 1
        + 2 * env.ncpus.min(FIRST_REGION_CPUS)
        + if env.ncpus < FIRST_REGION_CPUS { 4 } else { 0 };
    ensure!(
        n == want || env.cpus_truncated,
        "sweeping {} frames, expected {}",
        n,
        want
    );
    let t0 = time::now_ns();
    let mut count = sweep_pass(&all[..n], 0x1_0000, None)?;
    count += sweep_pass(&all[..n], 0x1_0000, Some(u64::MAX))?;
    count += sweep_pass(&all[..n], 0x1_0000, Some(0))?;
    gprintln!(
        "isolation: swept {} frames, {} accesses in {} ms",
        n,
        count,
        (time::now_ns() - t0) / 1_000_000
    );
    still_served()
}

/// GICv2: the distributor frame (as the DTB sizes it: 64 KiB on QEMU virt,
/// 4 KiB on a GIC-400), then the guest's GICC past GICV's two pages
/// (trapped, RAZ/WI) at every width, every 256 bytes, where the DTB's GICC
/// frame is larger than those pages (QEMU virt's 64 KiB; a GIC-400's is
/// just the two pages, with GICH right after).
fn gic_sweep_v2(env: &Env) -> TestResult {
    ensure!(
        env.gicd_size >= 0x1000 && env.gicc_size >= GICV_PAGES,
        "GICD size {:#x}, GICC size {:#x} in the DTB",
        env.gicd_size,
        env.gicc_size
    );
    let t0 = time::now_ns();
    let mut count = 0;
    for write in [None, Some(u64::MAX), Some(0)] {
        count += sweep_pass(&[env.gicd], env.gicd_size, write)?;
        for o in (GICV_PAGES..env.gicc_size.min(GICC_FRAME)).step_by(0x100) {
            for size in [8u8, 4, 2, 1] {
                let a = env.gicc + o;
                match write {
                    None => match probe_load(a, size) {
                        Ok(0) => {}
                        Ok(v) => {
                            return Err(msg!("{} bytes at {:#x} read {:#x}, not 0", size, a, v));
                        }
                        Err(ab) => return Err(msg!("load at {:#x} aborted: ESR {:#x}", a, ab.esr)),
                    },
                    Some(v) => probe_store(a, size, v)
                        .map_err(|ab| msg!("store at {:#x} aborted: ESR {:#x}", a, ab.esr))?,
                }
                count += 1;
            }
        }
    }
    gprintln!(
        "isolation: swept GICD ({:#x} bytes) and GICC+{:#x}..{:#x}, {} accesses in {} ms",
        env.gicd_size,
        GICV_PAGES,
        env.gicc_size.min(GICC_FRAME),
        count,
        (time::now_ns() - t0) / 1_000_000
    );
    still_served()
}

/// GICV's two pages mapped at the guest's GICC; the most of a GICC frame
/// swept.
const GICV_PAGES: u64 = 0x2000;
const GICC_FRAME: u64 = 0x1_0000;

fn skip_gicv3(env: &Env) -> Option<Msg> {
    (!env.is_gicv2()).then(|| msg!("GICv2 only"))
}

/// GICH (the list registers) and GICV at its own address are not mapped
/// for the guest: a load or store aborts at EL1, and the hypervisor
/// keeps serving.
fn gich_gicv_unreachable(env: &Env) -> TestResult {
    let (gich, gicv) = board::targets(env)
        .gich_gicv
        .ok_or_else(|| msg!("no GICH/GICV known for this board"))?;
    for base in [gich, gich + 0x100, gicv, gicv + 0x1000] {
        ensure!(
            probe_load(base, 4).is_err(),
            "a load at {:#x} did not abort",
            base
        );
        ensure!(
            probe_store(base, 4, u64::MAX).is_err(),
            "a store at {:#x} did not abort",
            base
        );
    }
    still_served()
}

fn after_sweep_ipis(env: &Env) -> TestResult {
    super::ipi::target_list(env)
}

// ---------------------------------------------------------------------------
// Scale: the second redistributor region
// ---------------------------------------------------------------------------

/// `scale`: CPU_ON of the last CPUs (past 123 vCPUs their redistributors
/// are in QEMU virt's second GICR region) and FAST_STOP, twice. Cheap at
/// any vCPU count: only the last three CPUs ever run, and they run a
/// stackless counting loop, so the guest needs no slot for them (guestlib
/// keeps per-CPU state for its first `MAX_CPUS` only).
pub static SCALE: Suite<Env> = Suite {
    name: "scale",
    tests: &[
        Test::new(
            "every_cpu_has_its_redistributor",
            every_cpu_has_its_redistributor,
        )
        .skip_if(|e| skip_plain(e).or_else(|| skip_gicv2(e))),
        Test::new("last_cpus_on_and_stop", last_cpus_on_and_stop)
            .cpus(2)
            .skip_if(skip_plain),
    ],
};

/// Every CPU of the DTB finds its own GICR_TYPER (affinity = its MPIDR) at
/// the *i*-th frame pair counting through every GICR region, the last CPU
/// of each region has TYPER.Last, and the pair after it reads as zero.
fn every_cpu_has_its_redistributor(_env: &Env) -> TestResult {
    let fdt = guestlib::boot_fdt();
    let gic = fdt
        .root()
        .children()
        .find(|n| {
            n.property("compatible")
                .is_some_and(|p| p.value().starts_with(b"arm,gic-v3\0"))
        })
        .ok_or_else(|| msg!("no arm,gic-v3 node"))?;
    let mut regions = [(0u64, 0u64); 4];
    let mut nregions = 0;
    let regs = gic
        .reg()
        .ok()
        .flatten()
        .ok_or_else(|| msg!("GIC node without reg"))?;
    for (i, r) in regs.enumerate() {
        let (Ok(base), Ok(size)) = (r.address::<u64>(), r.size::<u64>()) else {
            return Err(msg!("GIC reg entry {} unreadable", i));
        };
        // reg[0] is the GICD; QEMU virt lists no GICC/GICH/GICV with GICv3.
        if i > 0 && nregions < regions.len() {
            regions[nregions] = (base, size);
            nregions += 1;
        }
    }
    let cpus = fdt.cpus().map_err(|_| msg!("no /cpus"))?;
    let (mut region, mut frame, mut checked) = (0usize, 0u64, 0usize);
    for cpu in cpus.cpus() {
        let mpidr: u64 = cpu
            .ids()
            .ok()
            .and_then(|mut i| i.next())
            .and_then(|r| r.to_int().ok())
            .ok_or_else(|| msg!("bad cpu reg"))?;
        if (frame + 1) * GICR_STRIDE > regions[region].1 {
            region += 1;
            frame = 0;
            ensure!(
                region < nregions,
                "cpu mpidr {:#x} has no GICR frame left",
                mpidr
            );
        }
        let rd = regions[region].0 + frame * GICR_STRIDE;
        let typer = probe_load(rd + 0x8, 8)
            .map_err(|a| msg!("GICR_TYPER at {:#x}: ESR {:#x}", rd, a.esr))?;
        let want = mpidr & 0xff_ffff | (mpidr >> 32 & 0xff) << 24;
        ensure!(
            typer >> 32 == want,
            "GICR_TYPER at {:#x} = {:#x}: affinity is not mpidr {:#x}",
            rd + 0x8,
            typer,
            mpidr
        );
        if typer & (1 << 4) != 0 {
            // Last in its region: the rest of the region has no CPU.
            let past = rd + GICR_STRIDE;
            if past + GICR_STRIDE <= regions[region].0 + regions[region].1 {
                let v = probe_load(past + 0x8, 8)
                    .map_err(|a| msg!("{:#x}: ESR {:#x}", past + 8, a.esr))?;
                ensure!(v == 0, "frame after the last CPU reads {:#x}", v);
            }
            region += 1;
            frame = 0;
        } else {
            frame += 1;
        }
        checked += 1;
    }
    ensure!(checked > 0, "no CPUs");
    gprintln!(
        "scale: {} CPUs found their redistributors in {} GICR region(s)",
        checked,
        region.max(1)
    );
    Ok(())
}

static SCALE_COUNTERS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// The MPIDRs of the last (up to) three CPUs of the DTB, not the boot CPU.
fn last_mpidrs(env: &Env, out: &mut [u64; 3]) -> Result<usize, Msg> {
    let fdt = guestlib::boot_fdt();
    let cpus = fdt.cpus().map_err(|_| msg!("no /cpus"))?;
    let boot = env.mpidr(env.boot_idx);
    let mut n = 0;
    for cpu in cpus.cpus() {
        let id: u64 = cpu
            .ids()
            .ok()
            .and_then(|mut i| i.next())
            .and_then(|r| r.to_int().ok())
            .ok_or_else(|| msg!("bad cpu reg"))?;
        if id == boot {
            continue;
        }
        // Keep the last three in DT order.
        if n == out.len() {
            out.rotate_left(1);
            n -= 1;
        }
        out[n] = id;
        n += 1;
    }
    Ok(n)
}

fn last_cpus_on_and_stop(env: &Env) -> TestResult {
    let mut mpidrs = [0u64; 3];
    let n = last_mpidrs(env, &mut mpidrs)?;
    let entry = programs::counting_entry();
    for round in 0..2 {
        for (k, &mpidr) in mpidrs[..n].iter().enumerate() {
            let counter = &SCALE_COUNTERS[k];
            counter.store(0, SeqCst);
            let st = psci::hvc().cpu_on(mpidr, entry, counter.as_ptr() as u64);
            ensure!(
                st == SUCCESS,
                "round {}: CPU_ON(mpidr {:#x}) = {}",
                round,
                mpidr,
                st
            );
            ensure!(
                time::spin_until(super::busy::entry_wait_us(), || counter.load(Relaxed) > 0),
                "round {}: CPU_ON(mpidr {:#x}) succeeded but the CPU never ran",
                round,
                mpidr
            );
        }
        let r = call(
            Conduit::Hvc,
            0xC600_0001,
            super::fast_stop::deadline_us(),
            0,
            0,
        );
        ensure!(
            status(r[0]) == SUCCESS && r[1] == n as u64 && r[2] == 0,
            "round {}: FAST_STOP x0 {} x1 {} x2 {}, expected 0 {} 0",
            round,
            status(r[0]),
            r[1],
            r[2],
            n
        );
        for &mpidr in &mpidrs[..n] {
            let a = psci::hvc().affinity_info(mpidr, 0);
            ensure!(
                a == AFF_OFF,
                "round {}: mpidr {:#x} AFFINITY_INFO {}",
                round,
                mpidr,
                a
            );
        }
        let before: [u64; 3] = core::array::from_fn(|k| SCALE_COUNTERS[k].load(Relaxed));
        time::delay_us(20_000);
        for k in 0..n {
            ensure!(
                SCALE_COUNTERS[k].load(Relaxed) == before[k],
                "round {}: mpidr {:#x} still counting after FAST_STOP",
                round,
                mpidrs[k]
            );
        }
    }
    gprintln!(
        "scale: the last {} CPUs (mpidr {:#x} {:#x} {:#x}) started and stopped twice",
        n,
        mpidrs[0],
        mpidrs[1],
        mpidrs[2]
    );
    Ok(())
}
