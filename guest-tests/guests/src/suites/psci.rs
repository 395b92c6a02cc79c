//! PSCI conformance: every function of docs/psci-conformance.md, its answers and races.

use super::common::*;
use core::sync::atomic::{AtomicU64, Ordering::*};
use guestlib::abi::{self, *};
use guestlib::arch::call;
use guestlib::arch::smp::{self, EntryRecord, OnArgs, job_wait};
use guestlib::framework::{Suite, Test};
use guestlib::time::{delay_us, now_ns};
use guestlib::{Conduit, Env, Msg, TestResult, ensure, ensure_eq, msg, psci};

pub static SUITE: Suite<Env> = Suite {
    name: "psci",
    tests: &TESTS,
};

static TESTS: [Test<Env>; 36] = [
    Test::new("version", version),
    Test::new("features_implemented", features_implemented).skip_if(quirk_no_reset2_smccc),
    Test::new("features_unimplemented", features_unimplemented),
    Test::new("features_invalid_ids", features_invalid_ids),
    Test::new("unknown_function_ids", unknown_function_ids),
    Test::new("unknown_function_ids_smc", unknown_function_ids_smc).skip_if(skip_plain),
    Test::new("hvc_nonzero_immediate", hvc_nonzero_immediate).skip_if(skip_plain),
    Test::new("smccc_and_migrate_info", smccc_and_migrate_info).skip_if(quirk_no_reset2_smccc),
    Test::new("smc_conduit", smc_conduit).skip_if(skip_plain),
    Test::new("smccc_preserves_x4_x17", smccc_preserves_x4_x17),
    Test::new("smccc_preserves_x4_x17_smc", smccc_preserves_x4_x17_smc).skip_if(skip_plain),
    Test::new("system_reset2_invalid", system_reset2_invalid).skip_if(quirk_no_reset2_smccc),
    Test::new("boot_entry_state", boot_entry_state),
    Test::new("guest_dtb", guest_dtb).skip_if(skip_plain),
    Test::new("affinity_info_self", affinity_info_self),
    Test::new("affinity_info_invalid", affinity_info_invalid).skip_if(quirk_aff_level),
    Test::new("affinity_info_off_cpus", affinity_info_off_cpus).cpus(2),
    Test::new("cpu_on_entry_state", cpu_on_entry_state).cpus(2),
    Test::new("selfcheck_skip_detector", selfcheck_skip_detector).cpus(2),
    Test::new("cpu_on_already_on", cpu_on_already_on),
    Test::new("cpu_on_invalid_mpidr", cpu_on_invalid_mpidr),
    Test::new("cpu_on_invalid_address", cpu_on_invalid_address)
        .cpus(2)
        .skip_if(skip_plain),
    Test::new("cpu_on_race", cpu_on_race)
        .cpus(2)
        .skip_if(quirk_racy_cpu_on),
    Test::new("affinity_state_sequence", affinity_state_sequence)
        .cpus(2)
        .skip_if(quirk_racy_cpu_on),
    Test::new("cpu_off_all_at_once", cpu_off_all_at_once).cpus(2),
    Test::new("cpu_off_hvc_then_on", cpu_off_hvc_then_on).cpus(2),
    Test::new("cpu_off_smc_then_on", cpu_off_smc_then_on)
        .cpus(2)
        .skip_if(skip_plain),
    Test::new("stop_start_cycles", stop_start_cycles).cpus(2),
    Test::new("hotplug_stress", hotplug_stress)
        .cpus(2)
        .skip_if(quirk_racy_cpu_on),
    Test::new("cpu_suspend_standby", cpu_suspend_standby),
    Test::new("cpu_suspend_powerdown", cpu_suspend_powerdown)
        .cpus(2)
        .skip_if(skip_plain),
    // FEATURES agrees with behaviour over the whole PSCI range,
    // SYSTEM_OFF2, reserved power_state bits, the caller's endianness.
    Test::new("features_agree_every_psci_id", features_agree_every_psci_id).skip_if(skip_plain),
    Test::new("system_off2_arguments", system_off2_arguments).skip_if(skip_plain),
    Test::new("cpu_suspend_reserved_bits", cpu_suspend_reserved_bits).skip_if(skip_plain),
    Test::new("cpu_on_caller_endianness", cpu_on_caller_endianness)
        .cpus(2)
        .skip_if(skip_plain),
    Test::new(
        "cpu_suspend_powerdown_endianness",
        cpu_suspend_powerdown_endianness,
    )
    .cpus(2)
    .skip_if(skip_plain),
];

/// CPU `idx` went OFF for good: its CPU_OFF never returned.
fn expect_off_kept(idx: usize) -> TestResult {
    let returned = smp::slot(idx).off_returned.load(Acquire);
    ensure!(returned == 0, "CPU_OFF returned on cpu{}", idx);
    Ok(())
}

fn self_mpidr(env: &Env) -> u64 {
    env.mpidr(env.boot_idx)
}

fn version(_env: &Env) -> TestResult {
    expect_hex!(psci::hvc().version(), PSCI_VERSION_1_1, "PSCI_VERSION");
    Ok(())
}

fn features_implemented(_env: &Env) -> TestResult {
    for &(name, id) in PSCI_IMPLEMENTED {
        let r = psci::hvc().features(id);
        if id == PSCI_CPU_SUSPEND_32 || id == PSCI_CPU_SUSPEND_64 {
            // Flags word: bit 0 OS-initiated, bit 1 extended StateID.
            ensure!(
                r >= 0 && r & !3 == 0,
                "PSCI_FEATURES({}) = {:#x}, expected a flags word",
                name,
                r
            );
        } else {
            expect_ret!(r, SUCCESS, "PSCI_FEATURES({})", name);
        }
    }
    Ok(())
}

fn features_unimplemented(_env: &Env) -> TestResult {
    for &(name, id) in PSCI_UNIMPLEMENTED {
        let r = psci::hvc().features(id);
        expect_ret!(r, NOT_SUPPORTED, "PSCI_FEATURES({})", name);
    }
    Ok(())
}

fn features_invalid_ids(_env: &Env) -> TestResult {
    for &id in INVALID_IDS {
        let r = psci::hvc().features(id);
        expect_ret!(r, NOT_SUPPORTED, "PSCI_FEATURES({:#x})", id);
    }
    Ok(())
}

fn unknown_ids_via(c: Conduit) -> TestResult {
    for &id in INVALID_IDS {
        let (x0, resumed) = guestlib::call::call_check_resume(c, id, 0x1234);
        let what = "did not resume at the next instruction";
        ensure!(resumed, "{} {:#x}: {}", c.name(), id, what);
        expect_ret!(status(x0), NOT_SUPPORTED, "{} {:#x}", c.name(), id);
    }
    // The machine still answers after all that.
    expect_hex!(
        psci::Psci(c).version(),
        PSCI_VERSION_1_1,
        "PSCI_VERSION afterwards"
    );
    Ok(())
}

fn unknown_function_ids(_env: &Env) -> TestResult {
    unknown_ids_via(Conduit::Hvc)
}

fn unknown_function_ids_smc(_env: &Env) -> TestResult {
    unknown_ids_via(Conduit::Smc)
}

/// SMCCC calls use `HVC #0`; another immediate is not a call: it must come
/// back NOT_SUPPORTED at the next instruction, not be run as PSCI.
fn hvc_nonzero_immediate(_env: &Env) -> TestResult {
    let (x0, resumed) = call::hvc_nonzero_immediate(PSCI_VERSION as u64);
    ensure!(resumed, "HVC #1 did not resume at the next instruction");
    expect_ret!(status(x0), NOT_SUPPORTED, "HVC #1 with x0 = PSCI_VERSION");
    Ok(())
}

fn smccc_and_migrate_info(_env: &Env) -> TestResult {
    let p = psci::hvc();
    expect_hex!(p.smccc_version() as u32, SMCCC_VERSION_1_1, "SMCCC_VERSION");
    let r = p.smccc_arch_features(1337);
    expect_ret!(r, NOT_SUPPORTED, "SMCCC_ARCH_FEATURES(1337)");
    // 2: no Trusted OS.
    expect_hex!(p.migrate_info_type(), 2, "MIGRATE_INFO_TYPE");
    Ok(())
}

fn smc_conduit(env: &Env) -> TestResult {
    let p = psci::smc();
    expect_hex!(p.version(), PSCI_VERSION_1_1, "PSCI_VERSION via SMC");
    let r = p.affinity_info(self_mpidr(env), 0);
    expect_aff!(r, AFF_ON, "AFFINITY_INFO(self) via SMC");
    let (x0, resumed) = guestlib::call::call_check_resume(Conduit::Smc, PSCI_VERSION, 0);
    let what = "did not resume at the next instruction";
    ensure!(resumed, "SMC PSCI_VERSION {}", what);
    expect_hex!(
        x0 as u32,
        PSCI_VERSION_1_1,
        "PSCI_VERSION via SMC (resume check)"
    );
    Ok(())
}

fn preserves_via(c: Conduit) -> TestResult {
    use guestlib::call::{PRESERVE_PATTERN, call_clobber_check};
    for fid in [
        PSCI_VERSION,
        PSCI_FEATURES,
        VENDOR_CALL_UID,
        1337,
        SMCCC_VERSION,
    ] {
        let (_x0, after) = call_clobber_check(c, fid);
        for (i, (&got, &want)) in after.iter().zip(PRESERVE_PATTERN.iter()).enumerate() {
            ensure!(
                got == want,
                "{} {:#x}: x{} changed from {:#x} to {:#x} (SMCCC 1.1 callee must preserve x4..x17)",
                c.name(),
                fid,
                i + 4,
                want,
                got
            );
        }
    }
    Ok(())
}

fn smccc_preserves_x4_x17(_env: &Env) -> TestResult {
    preserves_via(Conduit::Hvc)
}

fn smccc_preserves_x4_x17_smc(_env: &Env) -> TestResult {
    preserves_via(Conduit::Smc)
}

/// SYSTEM_RESET2 with reset types that are not valid must return (and not
/// reset: a reset here restarts the guest, which the harness catches).
fn system_reset2_invalid(_env: &Env) -> TestResult {
    let p = psci::hvc();
    for t in [1u32, 2, 0x7FFF_FFFF] {
        let r = p.system_reset2(t, 0);
        expect_ret!(
            r,
            INVALID_PARAMETERS,
            "SYSTEM_RESET2(architectural type {:#x})",
            t
        );
    }
    let r = p.system_reset2(0x8000_1234, 0);
    let call = "SYSTEM_RESET2(vendor type 0x80001234)";
    expect_ret!(r, [NOT_SUPPORTED, INVALID_PARAMETERS], "{}", call);
    Ok(())
}

/// The DTB parkvisor writes for the guest (docs/architecture.md, "Guest
/// entry"): PSCI via HVC, RAM without the hypervisor's region, no multiboot
/// module nodes, placed 2 MiB aligned in RAM clear of the guest image.
fn guest_dtb(env: &Env) -> TestResult {
    use dtoolkit::{FdtStringListIterator, Node, Property};
    let fdt = guestlib::boot_fdt();
    let psci_node = fdt
        .find_node("/psci")
        .ok_or_else(|| msg!("no /psci node"))?;
    let compat_ok = psci_node
        .property("compatible")
        .and_then(|p| p.value_as::<FdtStringListIterator<'_>>().ok())
        .is_some_and(|mut it| it.any(|c| c == "arm,psci-1.0"));
    ensure!(compat_ok, "/psci is not compatible with arm,psci-1.0");
    let method = psci_node
        .property("method")
        .and_then(|p| p.value_as::<&str>().ok());
    ensure_eq!(method, Some("hvc"), "/psci method");
    ensure!(!env.psci_smc, "Env says PSCI via SMC");
    for &(base, size) in &env.mem[..env.nmem] {
        let end = base + size;
        ensure!(
            end <= 0x4000_0000 || base >= 0x4400_0000,
            "RAM range {:#x}..{:#x} overlaps the hypervisor's 0x40000000..0x44000000",
            base,
            end
        );
    }
    let (img_start, img_end) = guestlib::image_range();
    ensure!(
        env.in_ram(img_start, img_end - img_start),
        "guest image {:#x}..{:#x} is not inside the RAM the DTB lists",
        img_start,
        img_end
    );
    let dtb = env.dtb;
    let dtb_size = fdt.data().len() as u64;
    ensure!(
        dtb.is_multiple_of(0x20_0000),
        "DTB at {:#x} is not 2 MiB aligned",
        dtb
    );
    ensure!(
        env.in_ram(dtb, dtb_size),
        "DTB at {:#x} (+{:#x}) is not in guest RAM",
        dtb,
        dtb_size
    );
    ensure!(
        dtb + dtb_size <= img_start || dtb >= img_end,
        "DTB {:#x}..{:#x} overlaps the guest image {:#x}..{:#x}",
        dtb,
        dtb + dtb_size,
        img_start,
        img_end
    );
    if let Some(chosen) = fdt.find_node("/chosen") {
        for child in chosen.children() {
            let multiboot = child
                .property("compatible")
                .and_then(|p| p.value_as::<FdtStringListIterator<'_>>().ok())
                .is_some_and(|mut it| it.any(|c| c.starts_with("multiboot,")));
            ensure!(!multiboot, "/chosen/{} is a multiboot node", child.name());
        }
    }
    Ok(())
}

fn boot_entry_state(env: &Env) -> TestResult {
    let r = &smp::BOOT_RECORD;
    let x0 = r.x0.load(Acquire);
    if env.opts().plain() {
        ensure!(x0 == 0 || x0 == env.dtb, "boot x0 = {:#x}", x0);
    } else {
        ensure!(x0 != 0, "boot x0 = 0, expected the DTB address");
        expect_hex!(x0, env.dtb, "boot x0 (the DTB address)");
        ensure!(env.in_ram(x0, 8), "DTB at {:#x} is outside guest RAM", x0);
    }
    let (x1, x2, x3) = (r.x1.load(Acquire), r.x2.load(Acquire), r.x3.load(Acquire));
    ensure_eq!([x1, x2, x3], [0; 3], "boot x1..x3");
    // Same architectural state as a CPU_ON entry, minus x0 and the first-
    // instruction marker (the boot entry has none).
    r.skipped.store(0, Relaxed);
    r.check_cold_entry(x0)
}

fn affinity_info_self(env: &Env) -> TestResult {
    let p = psci::hvc();
    let me = self_mpidr(env);
    expect_aff!(p.affinity_info(me, 0), AFF_ON, "AFFINITY_INFO_64(self, 0)");
    expect_aff!(
        p.affinity_info32(me as u32, 0),
        AFF_ON,
        "AFFINITY_INFO_32(self, 0)"
    );
    // Higher levels: the self CPU is ON, so its cluster/etc. is ON; an
    // implementation may refuse levels > 0 (PSCI 1.x) with
    // INVALID_PARAMETERS, but must never call them OFF.
    for level in 1..=3 {
        let r = p.affinity_info(me, level);
        expect_aff!(
            r,
            [AFF_ON, INVALID_PARAMETERS],
            "AFFINITY_INFO(self, level {})",
            level
        );
    }
    Ok(())
}

fn affinity_info_invalid(env: &Env) -> TestResult {
    let p = psci::hvc();
    let me = self_mpidr(env);
    // (Not 1 << 32: the level is a uint32 argument, so an implementation
    // may legitimately look at the low half only.)
    for level in [4u64, 5, 0xFF, 0xFFFF_FFFF] {
        let r = p.affinity_info(me, level);
        expect_ret!(
            r,
            INVALID_PARAMETERS,
            "AFFINITY_INFO(self, level {:#x})",
            level
        );
    }
    let bad = env.unknown_mpidr();
    let r = p.affinity_info(bad, 0);
    expect_ret!(
        r,
        INVALID_PARAMETERS,
        "AFFINITY_INFO(unknown mpidr {:#x})",
        bad
    );
    let r = p.affinity_info32(bad as u32, 0);
    expect_ret!(
        r,
        INVALID_PARAMETERS,
        "AFFINITY_INFO_32(unknown mpidr {:#x})",
        bad
    );
    Ok(())
}

fn affinity_info_off_cpus(env: &Env) -> TestResult {
    let p = psci::hvc();
    for idx in env.secondaries() {
        let m = env.mpidr(idx);
        expect_aff!(
            p.affinity_info(m, 0),
            AFF_OFF,
            "AFFINITY_INFO_64(cpu{})",
            idx
        );
        expect_aff!(
            p.affinity_info32(m as u32, 0),
            AFF_OFF,
            "AFFINITY_INFO_32(cpu{})",
            idx
        );
    }
    Ok(())
}

fn check_record(idx: usize, rec: &EntryRecord, ctx: u64, tag: u64, env: &Env) -> TestResult {
    rec.check_cold_entry(ctx)
        .map_err(|e| msg!("cpu{}: {}", idx, e))?;
    let t = rec.tag.load(Acquire);
    ensure!(
        t == tag,
        "cpu{}: ran entry point #{}, not #{} (PC != entry)",
        idx,
        t,
        tag
    );
    let mpidr = abi::mpidr_aff(rec.mpidr.load(Acquire));
    expect_hex!(mpidr, env.mpidr(idx), "cpu{}: MPIDR_EL1", idx);
    Ok(())
}

fn cpu_on_entry_state(env: &Env) -> TestResult {
    for idx in env.secondaries() {
        let s = smp::slot(idx);
        // CPU_ON_64 at the standard entry with a 64-bit context_id.
        let before = s.entries();
        let c = smp::ctx(idx, cookie());
        let a = OnArgs {
            entry: guestlib::entry_point(),
            ctx: c,
            conduit: Conduit::Hvc,
            smc32: false,
        };
        let st = smp::cpu_on_with(env, idx, nop_job, Conduit::Hvc, a);
        expect_ret!(st, SUCCESS, "CPU_ON_64(cpu{})", idx);
        expect_entered(idx, before)?;
        expect_entries(idx, before, 1)?;
        check_record(idx, &s.rec, c, guestlib::TAG_ENTRY, env)?;
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;

        // CPU_ON_32 at the alternative entry with a 32-bit context_id.
        let before = s.entries();
        let c = smp::ctx(idx, cookie32());
        let a = OnArgs {
            entry: guestlib::entry_point_alt(),
            ctx: c,
            conduit: Conduit::Hvc,
            smc32: true,
        };
        let st = smp::cpu_on_with(env, idx, nop_job, Conduit::Hvc, a);
        expect_ret!(st, SUCCESS, "CPU_ON_32(cpu{})", idx);
        expect_entered(idx, before).map_err(|e| msg!("alt entry: {}", e))?;
        let x0 = s.rec.x0.load(Acquire);
        expect_hex!(x0 as u32, c as u32, "cpu{} (CPU_ON_32): x0", idx);
        s.rec.x0.store(c, Relaxed);
        check_record(idx, &s.rec, c, guestlib::TAG_ENTRY_ALT, env)?;
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    Ok(())
}

/// Proves the "first instruction executed" check can fail: a CPU_ON to the
/// second instruction of the entry must be recorded as a skip (and shows that
/// the entry PC is honoured to the instruction).
fn selfcheck_skip_detector(env: &Env) -> TestResult {
    let idx = env.secondaries().next().unwrap();
    let s = smp::slot(idx);
    let c = smp::ctx(idx, cookie());
    let before = s.entries();
    let a = OnArgs {
        entry: guestlib::entry_point() + 4,
        ctx: c,
        conduit: Conduit::Hvc,
        smc32: false,
    };
    let st = smp::cpu_on_with(env, idx, nop_job, Conduit::Hvc, a);
    expect_ret!(st, SUCCESS, "CPU_ON(cpu{}, entry+4)", idx);
    expect_entered(idx, before)?;
    let skipped = s.rec.skipped.load(Acquire);
    ensure!(
        skipped == 1,
        "entry+4 not detected as a skipped first instruction"
    );
    ensure_eq!(s.rec.x0.load(Acquire), c, "x0");
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    // And the real entry again reads as not skipped.
    smp::start(env, idx, nop_job, cookie())?;
    let skipped = s.rec.skipped.load(Acquire);
    ensure!(skipped == 0, "normal entry recorded as skipped");
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
}

fn cpu_on_already_on(env: &Env) -> TestResult {
    let p = psci::hvc();
    let st = p.cpu_on(
        self_mpidr(env),
        guestlib::entry_point(),
        smp::ctx(env.boot_idx, cookie()),
    );
    expect_ret!(st, ALREADY_ON, "CPU_ON(self)");
    let Some(idx) = env.secondaries().next() else {
        return Ok(());
    };
    start_held(env, idx)?;
    let before = smp::slot(idx).entries();
    let st = p.cpu_on(
        env.mpidr(idx),
        guestlib::entry_point(),
        smp::ctx(idx, cookie()),
    );
    expect_ret!(st, ALREADY_ON, "CPU_ON(running cpu{})", idx);
    let st = p.cpu_on32(env.mpidr(idx) as u32, guestlib::entry_point() as u32, 0);
    expect_ret!(st, ALREADY_ON, "CPU_ON_32(running cpu{})", idx);
    delay_us(10_000);
    expect_entries(idx, before, 0).map_err(|e| msg!("after a refused CPU_ON: {}", e))?;
    release(idx);
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
}

fn cpu_on_invalid_mpidr(env: &Env) -> TestResult {
    let p = psci::hvc();
    let e = guestlib::entry_point();
    for bad in [env.unknown_mpidr(), 0xFF_0000_0000, 0x00FF_0000, 0xFFFF] {
        if env.index_of(bad).is_some() {
            continue;
        }
        let st = p.cpu_on(bad, e, 0);
        expect_ret!(st, INVALID_PARAMETERS, "CPU_ON(mpidr {:#x})", bad);
    }
    let bad = env.unknown_mpidr() as u32;
    let st = p.cpu_on32(bad, e as u32, 0);
    expect_ret!(st, INVALID_PARAMETERS, "CPU_ON_32(mpidr {:#x})", bad);
    Ok(())
}

fn cpu_on_invalid_address(env: &Env) -> TestResult {
    let p = psci::hvc();
    let idx = env.secondaries().last().unwrap();
    let s = smp::slot(idx);
    s.set_job(nop_job);
    let before = s.entries();
    let bad = [
        0x4020_0000,                         // the hypervisor's own image
        0x4000_0000,                         // the hypervisor's DTB copy
        guestlib::arch::uart::base() as u64, // the UART (MMIO, not RAM)
        0,                                   // flash at 0, not guest RAM
        env.ram_end(),                       // one past guest RAM
        env.ram_end() + 0x1000_0000,
        0xFFFF_FFFF_FFFF_F000, // nowhere
    ];
    for addr in bad {
        if env.in_ram(addr, 4) {
            continue;
        }
        let st = p.cpu_on(env.mpidr(idx), addr, smp::ctx(idx, 1));
        expect_ret!(st, INVALID_ADDRESS, "CPU_ON(cpu{}, entry {:#x})", idx, addr);
        let a = p.affinity_info(env.mpidr(idx), 0);
        expect_aff!(
            a,
            AFF_OFF,
            "AFFINITY_INFO(cpu{}) after CPU_ON(entry {:#x})",
            idx,
            addr
        );
    }
    if (env.ram_end() >> 32) == 0 {
        let st = p.cpu_on32(env.mpidr(idx) as u32, 0x4020_0000, 0);
        expect_ret!(
            st,
            INVALID_ADDRESS,
            "CPU_ON_32(cpu{}, entry 0x40200000)",
            idx
        );
    }
    delay_us(10_000);
    expect_entries(idx, before, 0).map_err(|e| msg!("after refused CPU_ONs only: {}", e))?;
    // The CPU is still usable.
    smp::start(env, idx, nop_job, cookie())?;
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
}

static RACE_GO: AtomicU64 = AtomicU64::new(0);
static RACE_TARGET: AtomicU64 = AtomicU64::new(0);
static RACE_CTX: AtomicU64 = AtomicU64::new(0);
const S_RESULT: usize = 0;
const S_READY: usize = 1;
const S_DONE: usize = 2;

fn race_helper(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    let round = s.scratch[3].load(Acquire);
    s.scratch[S_READY].store(1, Release);
    if !job_wait(smp::JOB_WAIT_US, || RACE_GO.load(Acquire) == round) {
        return;
    }
    let st = psci::hvc().cpu_on(
        RACE_TARGET.load(Relaxed),
        guestlib::entry_point(),
        RACE_CTX.load(Relaxed),
    );
    s.scratch[S_RESULT].store(st as i64 as u64, Release);
    s.scratch[S_DONE].store(1, Release);
}

fn cpu_on_race(env: &Env) -> TestResult {
    let nsec = env.ncpus - 1;
    let rounds = if nsec >= 2 { nsec } else { 3 };
    for round in 0..rounds {
        // Target: a different secondary each round; helpers: all others.
        let target = env.secondaries().nth(round % nsec).unwrap();
        let helpers = || env.secondaries().filter(move |&i| i != target);
        let tag = 0x100 + round as u64;
        for h in helpers() {
            let s = smp::slot(h);
            s.clear_scratch();
            s.scratch[3].store(tag, Release);
            smp::start(env, h, race_helper, cookie())?;
        }
        for h in helpers() {
            let ready = || smp::slot(h).scratch[S_READY].load(Acquire) != 0;
            expect_within!(smp::ENTRY_TIMEOUT_US, ready, "helper cpu{} not ready", h);
        }
        let ts = smp::slot(target);
        // The target stays ON (held) until every racer has its answer, so a
        // late CPU_ON cannot legitimately succeed on an already-OFF target.
        ts.clear_scratch();
        ts.set_job(hold_job);
        ts.off_conduit.store(0, Release);
        let before = ts.entries();
        let c = smp::ctx(target, cookie());
        RACE_TARGET.store(env.mpidr(target), Relaxed);
        RACE_CTX.store(c, Relaxed);
        RACE_GO.store(tag, Release);
        let mine = psci::hvc().cpu_on(env.mpidr(target), guestlib::entry_point(), c);
        let mut results = [0i32; guestlib::MAX_CPUS];
        let mut n = 0;
        results[n] = mine;
        n += 1;
        for h in helpers() {
            let done = || smp::slot(h).scratch[S_DONE].load(Acquire) != 0;
            let what = "never returned from CPU_ON";
            expect_within!(smp::ENTRY_TIMEOUT_US, done, "helper cpu{} {}", h, what);
            results[n] = smp::slot(h).scratch[S_RESULT].load(Acquire) as i64 as i32;
            n += 1;
        }
        let res = &results[..n];
        let wins = res.iter().filter(|&&r| r == SUCCESS).count();
        let bad = res
            .iter()
            .any(|&r| r != SUCCESS && r != ALREADY_ON && r != ON_PENDING);
        ensure!(
            wins == 1 && !bad,
            "round {}: {} CPUs raced CPU_ON(cpu{}): results [{}], expected one 0 and the rest -4/-5",
            round,
            n,
            target,
            list(res)
        );
        expect_entered(target, before).map_err(|e| msg!("round {}: target: {}", round, e))?;
        release(target);
        smp::wait_off(env, target, smp::OFF_TIMEOUT_US)?;
        for h in helpers() {
            smp::wait_off(env, h, smp::OFF_TIMEOUT_US)?;
        }
        expect_entries(target, before, 1).map_err(|e| msg!("round {}: {}", round, e))?;
        ts.rec
            .check_cold_entry(c)
            .map_err(|e| msg!("round {}: cpu{}: {}", round, target, e))?;
    }
    Ok(())
}

const S_ENTERED: usize = 0;
const S_SAW_ON: usize = 1;

fn seq_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[S_ENTERED].store(1, Release);
    job_wait(smp::JOB_WAIT_US, || s.scratch[S_SAW_ON].load(Acquire) != 0);
}

fn affinity_state_sequence(env: &Env) -> TestResult {
    let p = psci::hvc();
    for idx in env.secondaries() {
        let m = env.mpidr(idx);
        let s = smp::slot(idx);
        s.clear_scratch();
        let first = p.affinity_info(m, 0);
        expect_aff!(first, AFF_OFF, "AFFINITY_INFO(cpu{}) before CPU_ON", idx);
        let mut seq = [0i32; 8];
        let mut n = 0;
        let mut push = |st: i32, seq: &mut [i32; 8]| {
            if n == 0 || seq[n - 1] != st {
                if n < seq.len() {
                    seq[n] = st;
                }
                n += 1;
            }
        };
        push(first, &mut seq);
        let st = smp::cpu_on(env, idx, seq_job, cookie());
        expect_ret!(st, SUCCESS, "CPU_ON(cpu{})", idx);
        // Phase 1: until the CPU runs its job: ON_PENDING or ON, never OFF.
        let deadline = now_ns() + smp::ENTRY_TIMEOUT_US * 1000;
        loop {
            let entered = s.scratch[S_ENTERED].load(Acquire) != 0;
            let a = p.affinity_info(m, 0);
            push(a, &mut seq);
            if entered {
                ensure!(
                    a == AFF_ON,
                    "cpu{} runs its job but AFFINITY_INFO = {} (states seen: {})",
                    idx,
                    a,
                    list(&seq[..n.min(8)])
                );
                break;
            }
            ensure!(
                a == AFF_ON || a == AFF_ON_PENDING,
                "cpu{} after CPU_ON: AFFINITY_INFO = {} (states: {})",
                idx,
                a,
                list(&seq[..n.min(8)])
            );
            ensure!(now_ns() < deadline, "cpu{} never ran", idx);
        }
        // Phase 2: let it go; ON until it is OFF, never back to ON_PENDING.
        s.scratch[S_SAW_ON].store(1, Release);
        let deadline = now_ns() + smp::ENTRY_TIMEOUT_US * 1000;
        loop {
            let a = p.affinity_info(m, 0);
            push(a, &mut seq);
            if a == AFF_OFF {
                break;
            }
            ensure!(
                a == AFF_ON,
                "cpu{} going off: AFFINITY_INFO = {} (states: {})",
                idx,
                a,
                list(&seq[..n.min(8)])
            );
            ensure!(now_ns() < deadline, "cpu{} never reached OFF", idx);
        }
        // Phase 3: stays OFF.
        for _ in 0..50 {
            let a = p.affinity_info(m, 0);
            expect_aff!(a, AFF_OFF, "AFFINITY_INFO(cpu{}) once OFF", idx);
        }
        expect_off_kept(idx)?;
        let seqs = &seq[..n.min(8)];
        let ok = matches!(seqs, [1, 0, 1] | [1, 2, 0, 1]);
        ensure!(
            ok,
            "cpu{}: states {} are not OFF(1) -> [ON_PENDING(2) ->] ON(0) -> OFF(1)",
            idx,
            list(seqs)
        );
    }
    Ok(())
}

static OFF_GO: AtomicU64 = AtomicU64::new(0);
const S_BEAT: usize = 0;

fn off_together_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[S_ALIVE].store(1, Release);
    while OFF_GO.load(Acquire) == 0 && !smp::aborting() {
        s.scratch[S_BEAT].fetch_add(1, Relaxed);
    }
    // Returning calls CPU_OFF right away.
}

fn cpu_off_all_at_once(env: &Env) -> TestResult {
    for round in 0..3 {
        OFF_GO.store(0, Release);
        for idx in env.secondaries() {
            let s = smp::slot(idx);
            s.clear_scratch();
            smp::start(env, idx, off_together_job, cookie())?;
        }
        for idx in env.secondaries() {
            let alive = || smp::slot(idx).scratch[S_ALIVE].load(Acquire) != 0;
            expect_within!(smp::ENTRY_TIMEOUT_US, alive, "cpu{} job never ran", idx);
        }
        OFF_GO.store(1, Release);
        let mut beats = [0u64; guestlib::MAX_CPUS];
        for idx in env.secondaries() {
            smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
                .map_err(|e| msg!("round {}: {}", round, e))?;
            beats[idx] = smp::slot(idx).scratch[S_BEAT].load(Acquire);
        }
        // Reported OFF: nothing may run on those CPUs any more.
        delay_us(20_000);
        for idx in env.secondaries() {
            let s = smp::slot(idx);
            ensure!(
                s.scratch[S_BEAT].load(Acquire) == beats[idx],
                "round {}: cpu{} still executing after AFFINITY_INFO said OFF",
                round,
                idx
            );
            expect_off_kept(idx).map_err(|e| msg!("round {}: {}", round, e))?;
            let a = psci::hvc().affinity_info(env.mpidr(idx), 0);
            expect_aff!(
                a,
                AFF_OFF,
                "round {}: AFFINITY_INFO(cpu{}) after OFF",
                round,
                idx
            );
        }
    }
    Ok(())
}

fn off_then_on(env: &Env, conduit: Conduit) -> TestResult {
    for idx in env.secondaries() {
        let s = smp::slot(idx);
        for cycle in 0..3 {
            // Off through `conduit` ...
            let c = smp::ctx(idx, cookie());
            // CPU_ON through the same conduit as the CPU_OFF.
            let a = OnArgs {
                entry: guestlib::entry_point(),
                ctx: c,
                conduit,
                smc32: false,
            };
            let before = s.entries();
            let st = smp::cpu_on_with(env, idx, nop_job, conduit, a);
            expect_ret!(st, SUCCESS, "cycle {}: CPU_ON(cpu{})", cycle, idx);
            expect_entered(idx, before).map_err(|e| msg!("cycle {}: {}", cycle, e))?;
            s.rec.check_cold_entry(c).map_err(|e| {
                msg!(
                    "cycle {}: cpu{} (after {} CPU_OFF): {}",
                    cycle,
                    idx,
                    conduit.name(),
                    e
                )
            })?;
            smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
                .map_err(|e| msg!("cycle {}: {} CPU_OFF: {}", cycle, conduit.name(), e))?;
        }
        // ... and the next CPU_ON entry must execute its first instruction.
        let c = smp::ctx(idx, cookie());
        let before = s.entries();
        let st = smp::cpu_on(env, idx, nop_job, c >> 8);
        expect_ret!(st, SUCCESS, "final CPU_ON(cpu{})", idx);
        expect_entered(idx, before)?;
        s.rec
            .check_cold_entry(c)
            .map_err(|e| msg!("cpu{} after {} CPU_OFF: {}", idx, conduit.name(), e))?;
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    Ok(())
}

fn cpu_off_hvc_then_on(env: &Env) -> TestResult {
    off_then_on(env, Conduit::Hvc)
}

fn cpu_off_smc_then_on(env: &Env) -> TestResult {
    off_then_on(env, Conduit::Smc)
}

fn count_job(idx: usize, ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[0].fetch_add(1, AcqRel);
    s.scratch[1].store(ctx, Release);
}

fn stop_start_cycles(env: &Env) -> TestResult {
    let idx = env.secondaries().last().unwrap();
    let s = smp::slot(idx);
    s.clear_scratch();
    let cycles = 40;
    let before = s.entries();
    for i in 0..cycles {
        let ck = cookie();
        smp::start(env, idx, count_job, ck).map_err(|e| msg!("cycle {}: {}", i, e))?;
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US).map_err(|e| msg!("cycle {}: {}", i, e))?;
        expect_hex!(
            s.scratch[1].load(Acquire),
            smp::ctx(idx, ck),
            "cycle {}: job's context",
            i
        );
    }
    let e = s.entries() - before;
    let j = s.scratch[0].load(Acquire);
    ensure!(
        e == cycles && j == cycles,
        "{} cycles: {} entries, {} job runs",
        cycles,
        e,
        j
    );
    Ok(())
}

fn stress_job(idx: usize, ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[0].fetch_add(1, AcqRel);
    // A little work of varying length.
    let spins = (ctx >> 8) % 2000;
    for _ in 0..spins {
        core::hint::spin_loop();
    }
}

fn hotplug_stress(env: &Env) -> TestResult {
    let p = psci::hvc();
    let mut starts = [0u64; guestlib::MAX_CPUS];
    let mut base = [0u64; guestlib::MAX_CPUS];
    for idx in env.secondaries() {
        smp::slot(idx).clear_scratch();
        base[idx] = smp::slot(idx).entries();
    }
    // Phase 1: all at once, several rounds.
    for round in 0..5 {
        for idx in env.secondaries() {
            let e0 = smp::slot(idx).entries();
            let st = smp::cpu_on(env, idx, stress_job, cookie());
            expect_ret!(st, SUCCESS, "round {}: CPU_ON(cpu{})", round, idx);
            starts[idx] += 1;
            let a = p.affinity_info(env.mpidr(idx), 0);
            ensure!(
                a != AFF_OFF || smp::slot(idx).entries() != e0,
                "round {}: cpu{} reads OFF right after a successful CPU_ON, before it ran",
                round,
                idx
            );
        }
        for idx in env.secondaries() {
            smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
                .map_err(|e| msg!("round {}: {}", round, e))?;
        }
    }
    // Phase 2: rolling restarts: whenever a CPU reads OFF, start it again.
    let total = 30 * (env.ncpus as u64 - 1);
    let mut done = 0;
    let deadline = now_ns() + 60_000_000_000;
    while done < total {
        for idx in env.secondaries() {
            if done >= total {
                break;
            }
            if p.affinity_info(env.mpidr(idx), 0) == AFF_OFF {
                let st = smp::cpu_on(env, idx, stress_job, cookie());
                expect_ret!(
                    st,
                    SUCCESS,
                    "rolling: CPU_ON(cpu{}) right after it read OFF",
                    idx
                );
                starts[idx] += 1;
                done += 1;
            }
        }
        ensure!(
            now_ns() < deadline,
            "rolling restarts: only {} of {} after 60 s",
            done,
            total
        );
    }
    for idx in env.secondaries() {
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    for idx in env.secondaries() {
        let s = smp::slot(idx);
        let e = s.entries() - base[idx];
        let j = s.scratch[0].load(Acquire);
        ensure!(
            e == starts[idx] && j == starts[idx],
            "cpu{}: {} successful CPU_ONs but {} entries / {} job runs",
            idx,
            starts[idx],
            e,
            j
        );
        expect_off_kept(idx)?;
    }
    Ok(())
}

fn suspend_once(env: &Env, idx: usize, use32: bool) -> TestResult {
    let me = env.mpidr(idx);
    guestlib::gic::enable_ppi(env, me, guestlib::gic::VTIMER_INTID)?;
    // A wake-up event in 2 ms in case the standby really waits for one.
    guestlib::gic::vtimer_arm(2_000);
    let t0 = now_ns();
    let st = if use32 {
        psci::hvc().cpu_suspend32(0, guestlib::entry_point() as u32, 0)
    } else {
        psci::hvc().cpu_suspend(0, guestlib::entry_point(), smp::ctx(idx, cookie()))
    };
    let dt = now_ns() - t0;
    guestlib::gic::vtimer_stop();
    guestlib::gic::disable_ppi(env, me, guestlib::gic::VTIMER_INTID);
    let width = if use32 { "_32" } else { "_64" };
    expect_ret!(st, SUCCESS, "CPU_SUSPEND{}(standby) on cpu{}", width, idx);
    ensure!(dt < 2_000_000_000, "CPU_SUSPEND took {} ms", dt / 1_000_000);
    Ok(())
}

static SUSPEND_RESULT: AtomicU64 = AtomicU64::new(0);

fn suspend_job(idx: usize, _ctx: u64) {
    let env = guestlib::env();
    let r = suspend_once(env, idx, false);
    // 1 = ok, 2 = failed.
    SUSPEND_RESULT.store(if r.is_ok() { 1 } else { 2 }, Release);
    smp::slot(idx).scratch[0].store(1, Release);
}

fn cpu_suspend_standby(env: &Env) -> TestResult {
    let me = env.boot_idx;
    suspend_once(env, me, false)?;
    suspend_once(env, me, true)?;
    // Still the same CPU, still ON, still answering.
    let a = psci::hvc().affinity_info(env.mpidr(me), 0);
    expect_aff!(a, AFF_ON, "AFFINITY_INFO(self) after CPU_SUSPEND");
    // A secondary suspends and continues too.
    if let Some(idx) = env.secondaries().next() {
        SUSPEND_RESULT.store(0, Release);
        smp::slot(idx).clear_scratch();
        smp::start(env, idx, suspend_job, cookie())?;
        let continued = || smp::slot(idx).scratch[0].load(Acquire) != 0;
        let what = "did not continue after CPU_SUSPEND";
        expect_within!(5_000_000, continued, "cpu{} {}", idx, what);
        ensure!(
            SUSPEND_RESULT.load(Acquire) == 1,
            "CPU_SUSPEND on cpu{} failed",
            idx
        );
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    }
    Ok(())
}

/// CPU_SUSPEND power_state: original format, StateType (bit 16) = powerdown.
const POWERDOWN: u32 = 1 << 16;
const S_PD_BADADDR: usize = 1;
const S_PD_CTX: usize = 2;
const S_PD_STATUS: usize = 3;
const S_PD_RETURNED: usize = 4;
const S_PD_RESUMED: usize = 5;

fn pd_resumed_job(idx: usize, _ctx: u64) {
    smp::slot(idx).scratch[S_PD_RESUMED].store(1, Release);
}

fn pd_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    let bad = psci::hvc().cpu_suspend(POWERDOWN, 0x4020_0000, smp::ctx(idx, 1));
    s.scratch[S_PD_BADADDR].store(bad as i64 as u64, Release);
    // Where a real power-down wakes up: the entry point, cold, as CPU_ON.
    s.set_job(pd_resumed_job);
    let c = smp::ctx(idx, cookie());
    s.scratch[S_PD_CTX].store(c, Release);
    let st = psci::hvc().cpu_suspend(POWERDOWN, guestlib::entry_point(), c);
    s.scratch[S_PD_STATUS].store(st as i64 as u64, Release);
    s.scratch[S_PD_RETURNED].store(1, Release);
}

/// Starts `idx` in `job`, which calls CPU_SUSPEND(powerdown), and waits
/// until the job reports through scratch word `returned` or the wake-up job
/// through `woke`. Returns the CPU's entry count before the start.
fn start_powerdown(
    env: &Env,
    idx: usize,
    job: smp::Job,
    returned: usize,
    woke: usize,
) -> Result<u64, Msg> {
    let s = smp::slot(idx);
    s.clear_scratch();
    let before = s.entries();
    smp::start(env, idx, job, cookie())?;
    let done = || s.scratch[returned].load(Acquire) != 0 || s.scratch[woke].load(Acquire) != 0;
    let what = "neither returned from nor woke up after CPU_SUSPEND(powerdown)";
    expect_within!(smp::ENTRY_TIMEOUT_US, done, "cpu{} {}", idx, what);
    Ok(before)
}

/// CPU_SUSPEND to a powerdown state: an entry point outside guest RAM is
/// INVALID_ADDRESS (and the CPU continues); a valid one either wakes the CPU
/// at the entry point with x0 = context_id in cold-boot state, or returns
/// SUCCESS (an immediate wake-up); the CPU stays usable either way.
fn cpu_suspend_powerdown(env: &Env) -> TestResult {
    let idx = env.secondaries().next().unwrap();
    let s = smp::slot(idx);
    let before = start_powerdown(env, idx, pd_job, S_PD_RETURNED, S_PD_RESUMED)?;
    let bad = s.scratch[S_PD_BADADDR].load(Acquire) as i64 as i32;
    expect_ret!(
        bad,
        INVALID_ADDRESS,
        "CPU_SUSPEND(powerdown, entry 0x40200000)"
    );
    if s.scratch[S_PD_RESUMED].load(Acquire) != 0 {
        ensure!(
            s.scratch[S_PD_RETURNED].load(Acquire) == 0,
            "CPU_SUSPEND(powerdown) both returned and woke at the entry point"
        );
        // Start + wake-up.
        expect_entries(idx, before, 2)?;
        let c = s.scratch[S_PD_CTX].load(Acquire);
        s.rec
            .check_cold_entry(c)
            .map_err(|e| msg!("cpu{} woke from powerdown: {}", idx, e))?;
    } else {
        let st = s.scratch[S_PD_STATUS].load(Acquire) as i64 as i32;
        expect_ret!(st, SUCCESS, "CPU_SUSPEND(powerdown) on cpu{}", idx);
    }
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    // Usable afterwards.
    smp::start(env, idx, nop_job, cookie())?;
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)
}

/// PSCI functions that end or park the caller whatever their arguments: the
/// iteration below never calls them (their behaviour is tested by the
/// `system_off`/`system_reset` suites and the CPU_OFF tests); FEATURES must
/// report them, as PSCI makes them mandatory.
const NEVER_RETURN: &[u32] = &[PSCI_CPU_OFF, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET];

/// For every function ID of the PSCI range (0x8400_0000..=0x8400_001F and
/// 0xC400_0000..=0xC400_001F): PSCI_FEATURES says NOT_SUPPORTED exactly
/// when the call itself answers NOT_SUPPORTED. Calls are made with
/// arguments that make every implemented function return an error instead
/// of acting (an invalid MPIDR, power_state, reset or off type, entry 0).
fn features_agree_every_psci_id(_env: &Env) -> TestResult {
    let p = psci::hvc();
    for id in (0x8400_0000u32..=0x8400_001F).chain(0xC400_0000..=0xC400_001F) {
        let f = p.features(id);
        if NEVER_RETURN.contains(&id) {
            expect_ret!(f, SUCCESS, "PSCI_FEATURES({:#x}) (mandatory)", id);
            continue;
        }
        // PSCI_FEATURES itself answers NOT_SUPPORTED for an unknown ID: ask
        // it about one it must know.
        let a1 = if id == PSCI_FEATURES {
            u64::from(PSCI_VERSION)
        } else {
            0x7FFF_FFFF
        };
        let r = status(p.raw(id, a1, 0, 0)[0]);
        let says_unsupported = f == NOT_SUPPORTED;
        let is_unsupported = r == NOT_SUPPORTED;
        ensure!(
            says_unsupported == is_unsupported,
            "{:#x}: PSCI_FEATURES = {} ({}) but the call answered {} ({})",
            id,
            f,
            status_name(f),
            r,
            status_name(r)
        );
    }
    Ok(())
}

/// SYSTEM_OFF2 (PSCI 1.3, as KVM ships it): FEATURES reports HIBERNATE_OFF
/// (bit 0) for both variants; an unknown type or a non-zero cookie is
/// INVALID_PARAMETERS and the call returns. (Type 0 / HIBERNATE_OFF with
/// cookie 0 powers off: the `system_off2` suite.)
fn system_off2_arguments(_env: &Env) -> TestResult {
    let p = psci::hvc();
    for id in [PSCI_SYSTEM_OFF2_32, PSCI_SYSTEM_OFF2_64] {
        // Bit 0: HIBERNATE_OFF.
        let f = p.features(id);
        expect_hex!(
            f,
            PSCI_OFF_TYPE_HIBERNATE_OFF,
            "PSCI_FEATURES(SYSTEM_OFF2 {:#x})",
            id
        );
        for (off_type, cookie) in [(2u64, 0u64), (0x8000_0001, 0), (1, 1), (0, 0x55)] {
            let r = status(p.raw(id, off_type, cookie, 0)[0]);
            expect_ret!(
                r,
                INVALID_PARAMETERS,
                "SYSTEM_OFF2 {:#x}(type {:#x}, cookie {:#x})",
                id,
                off_type,
                cookie
            );
        }
    }
    Ok(())
}

/// CPU_SUSPEND with a reserved bit of the power_state format that
/// PSCI_FEATURES(CPU_SUSPEND) reports (original: bit 1 clear) is
/// INVALID_PARAMETERS, for standby and powerdown, 32- and 64-bit.
fn cpu_suspend_reserved_bits(env: &Env) -> TestResult {
    let p = psci::hvc();
    let f = p.features(PSCI_CPU_SUSPEND_64);
    ensure!(
        f >= 0 && f & 2 == 0,
        "PSCI_FEATURES(CPU_SUSPEND) = {:#x}: expected the original format",
        f
    );
    let entry = guestlib::entry_point();
    let c = smp::ctx(env.boot_idx, cookie());
    for bit in 0..32 {
        let reserved = 1u32 << bit;
        if reserved & POWER_STATE_RESERVED == 0 {
            continue;
        }
        for ps in [reserved, reserved | POWERDOWN] {
            for use32 in [false, true] {
                let r = if use32 {
                    p.cpu_suspend32(ps, entry as u32, c as u32)
                } else {
                    p.cpu_suspend(ps, entry, c)
                };
                let width = if use32 { "_32" } else { "" };
                expect_ret!(
                    r,
                    INVALID_PARAMETERS,
                    "CPU_SUSPEND{}(power_state {:#x})",
                    width,
                    ps
                );
            }
        }
    }
    Ok(())
}

const SCTLR_EE: u64 = 1 << 25;

/// CPU_ON issued while the caller runs big-endian (SCTLR_EL1.EE = 1) starts
/// the target big-endian; one issued little-endian starts it little-endian.
fn cpu_on_caller_endianness(env: &Env) -> TestResult {
    let idx = env.secondaries().next().unwrap_or(env.boot_idx);
    let s = smp::slot(idx);
    for big in [true, false] {
        s.clear_scratch();
        s.set_job(nop_job);
        s.off_conduit.store(0, Release);
        let before = s.entries();
        let c = smp::ctx(idx, cookie());
        let r = if big {
            status(guestlib::call::hvc_big_endian(
                PSCI_CPU_ON_64,
                env.mpidr(idx),
                guestlib::entry_point(),
                c,
            ))
        } else {
            psci::hvc().cpu_on(env.mpidr(idx), guestlib::entry_point(), c)
        };
        expect_ret!(
            r,
            SUCCESS,
            "CPU_ON(cpu{}) (big-endian caller: {})",
            idx,
            big
        );
        expect_entered(idx, before)?;
        smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
        let ee = s.rec.sctlr.load(Acquire) & SCTLR_EE != 0;
        ensure!(
            ee == big,
            "CPU_ON from a {}-endian caller: the target started with SCTLR_EL1.EE = {}",
            if big { "big" } else { "little" },
            ee as u8
        );
    }
    Ok(())
}

const S_PDE_RESUMED: usize = 0;
const S_PDE_STATUS: usize = 1;

fn pd_be_resumed_job(idx: usize, _ctx: u64) {
    smp::slot(idx).scratch[S_PDE_RESUMED].store(1, Release);
}

fn pd_be_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.set_job(pd_be_resumed_job);
    let c = smp::ctx(idx, cookie());
    let r = guestlib::call::hvc_big_endian(
        PSCI_CPU_SUSPEND_64,
        POWERDOWN.into(),
        guestlib::entry_point(),
        c,
    );
    s.scratch[S_PDE_STATUS].store(r | 1 << 63, Release);
}

/// CPU_SUSPEND(powerdown) issued big-endian wakes up at the entry point
/// big-endian (the caller's endianness).
fn cpu_suspend_powerdown_endianness(env: &Env) -> TestResult {
    let idx = env.secondaries().next().unwrap_or(env.boot_idx);
    let s = smp::slot(idx);
    let before = start_powerdown(env, idx, pd_be_job, S_PDE_STATUS, S_PDE_RESUMED)?;
    let st = s.scratch[S_PDE_STATUS].load(Acquire);
    ensure!(
        st == 0,
        "CPU_SUSPEND(powerdown) returned {}",
        status(st & !(1 << 63))
    );
    // Start + wake-up.
    expect_entries(idx, before, 2)?;
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    let ee = s.rec.sctlr.load(Acquire) & SCTLR_EE != 0;
    ensure!(
        ee,
        "woke from a big-endian CPU_SUSPEND(powerdown) with SCTLR_EL1.EE = 0"
    );
    Ok(())
}
