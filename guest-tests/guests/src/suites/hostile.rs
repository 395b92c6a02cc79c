//! `hostile`: what a guest does to its own interrupts that must not wedge
//! the hypervisor or lose a CPU. Each test also passes on plain QEMU
//! (where it makes sense), which is the reference behaviour.
//!
//! * spi_second_activation: take an SPI, clear its active state through
//!   GICD_ICACTIVER and pend it again before the EOI. The second activation
//!   waits behind the running priority (IAR1 reads 1023) and is taken after
//!   the EOI; afterwards nothing is left active. (The hypervisor queued it
//!   behind the HW-linked list register and asked for an underflow
//!   maintenance interrupt that then fired on every return to the guest:
//!   the vCPU never ran again.)
//! * cpu_on_keeps_another_cpus_spi: an SPI fires while CPU 1 is off and is
//!   held for it; the guest re-routes it to CPU 0, clears and pends it,
//!   takes it there, and starts CPU 1 while it is in service: it must stay
//!   active until CPU 0's EOI. (CPU 1's reset deactivated it.)
//! * held_spi_cleared_and_repended: thousands of rounds of clear-active +
//!   pend of an SPI routed to a parked CPU; the parked CPU holds it each
//!   time (at most one record per INTID), starting the CPU ends it.
//! * uart_store_bounded_under_trace_marks: CPU 1 makes TRACE_MARK calls
//!   back to back while CPU 0 writes one byte to the UART: the store takes
//!   well under a second (it printed trace lines as fast as CPU 1 made
//!   them, for as long as it made them).
//! * step_over_emulated_store: single-stepping (MDSCR_EL1.SS) a 16-bit
//!   Thumb store to the emulated PL011 at AArch32 EL0: the step exception
//!   comes right after the store (ELR + 2, the next instruction not run).
//!   SPSR_EL2.SS was left set when the PC was stepped, so one more
//!   instruction ran.
//! * it_block_emulated_store: an emulated store as the "then" of an ITE
//!   block: the "else" instruction must not run (the IT state advances).
//! * sgi_disabled_or_other_group: an SGI disabled in GICR_ICENABLER0
//!   stays pending (delivered once enabled); ICC_SGI0R_EL1 (Group 0) and
//!   ICC_ASGI1R_EL1 (the other Security state) deliver nothing to a guest
//!   whose SGIs are all Group 1. All three were delivered through IAR1.
//! * advertised_registers_do_not_trap: SCXTNUM_EL1 (ID_AA64PFR0_EL1.CSV2
//!   at least 2) and TPIDR2_EL0 (SME) can be written and read back.
//!   SCXTNUM trapped (HCR_EL2.EnSCXT 0) and was refused with an undefined
//!   instruction; TPIDR2_EL0 depends on HFGRTR/HFGWTR_EL2, which were
//!   never initialised.
//! * uart_config_is_not_the_guests: writes to UARTCR (disable), LCR_H,
//!   IBRD, FBRD and DMACR do not reach the UART that carries the
//!   hypervisor's output: it stays enabled, its baud rate unchanged.

use super::common::{S_RELEASE, release, skip_gicv2, skip_plain, skip_plain_or_gicv2, start_held};
use core::sync::atomic::Ordering::*;
use guestlib::Msg;
use guestlib::arch::{aarch32, cpu, gic, pstate, smp, spi, time, uart, vendor};
use guestlib::framework::{Suite, Test};
use guestlib::{Env, TestResult, ensure, msg};

pub static SUITE: Suite<Env> = Suite {
    name: "hostile",
    tests: &[
        Test::new("spi_second_activation", spi_second_activation).skip_if(skip_gicv2),
        Test::new("cpu_on_keeps_another_cpus_spi", cpu_on_keeps_spi)
            .cpus(2)
            .skip_if(skip_gicv2),
        Test::new("held_spi_cleared_and_repended", held_spi_repended)
            .cpus(2)
            .skip_if(skip_plain_or_gicv2),
        Test::new("uart_store_bounded_under_trace_marks", uart_store_bounded)
            .cpus(2)
            .skip_if(skip_plain),
        Test::new("uart_config_is_not_the_guests", uart_config).skip_if(skip_plain),
        Test::new("sgi_disabled_or_other_group", sgi_disabled_or_other_group).skip_if(skip_gicv2),
        Test::new("advertised_registers_do_not_trap", advertised_registers)
            .skip_if(nothing_advertised),
        Test::new("step_over_emulated_store", step_over_store).skip_if(no_aarch32_el0),
        Test::new("it_block_emulated_store", it_block_store).skip_if(no_aarch32_el0),
    ],
};

/// SPIs no QEMU virt device uses.
const SPI_A: u32 = 200;
const SPI_B: u32 = 201;
const SPI_C: u32 = 202;

const SPURIOUS: u64 = 1023;

/// Acknowledges (IAR1, interrupts masked in DAIF) until something other
/// than spurious comes, or `timeout_us` passes (then spurious).
fn ack_within(timeout_us: u64) -> u64 {
    let mut iar = SPURIOUS;
    time::spin_until(timeout_us, || {
        iar = gic::acknowledge() & 0xff_ffff;
        iar != SPURIOUS
    });
    iar
}

fn spi_second_activation(env: &Env) -> TestResult {
    let me = cpu::mpidr();
    gic::enable_private(env, me, 0)?;
    spi::setup(env, SPI_A, 0x80, me);
    let r = second_activation(env);
    spi::disable(env, SPI_A);
    spi::clear_pending(env, SPI_A);
    spi::clear_active(env, SPI_A);
    r
}

fn second_activation(env: &Env) -> TestResult {
    spi::pend(env, SPI_A);
    let first = ack_within(1_000_000);
    ensure!(
        first == SPI_A as u64,
        "IAR1 = {}, expected SPI {}",
        first,
        SPI_A
    );
    spi::clear_active(env, SPI_A);
    spi::pend(env, SPI_A);
    // A hypervisor that livelocks on the second activation never comes back here.
    time::delay_us(20_000);
    let early = ack_within(1_000);
    ensure!(
        early == SPURIOUS,
        "IAR1 = {} before the EOI: the second activation must wait behind the running priority",
        early
    );
    gic::end_of_interrupt(first);
    let second = ack_within(1_000_000);
    ensure!(
        second == SPI_A as u64,
        "after the EOI IAR1 = {}, expected the second activation of {}",
        second,
        SPI_A
    );
    gic::end_of_interrupt(second);
    let third = ack_within(20_000);
    ensure!(third == SPURIOUS, "a third activation {} appeared", third);
    ensure!(
        time::spin_until(1_000_000, || !spi::is_active(env, SPI_A)),
        "SPI {} still active at the GIC after both EOIs",
        SPI_A
    );
    Ok(())
}

fn cpu_on_keeps_spi(env: &Env) -> TestResult {
    let me = cpu::mpidr();
    let idx = env
        .secondaries()
        .next()
        .ok_or_else(|| msg!("no secondary"))?;
    gic::enable_private(env, me, 0)?;
    spi::setup(env, SPI_B, 0x80, env.mpidr(idx));
    let r = keep_spi(env, idx);
    spi::disable(env, SPI_B);
    spi::clear_pending(env, SPI_B);
    spi::clear_active(env, SPI_B);
    r
}

fn keep_spi(env: &Env, idx: usize) -> TestResult {
    spi::pend(env, SPI_B);
    if !env.opts().plain() {
        // The hypervisor's CPU under the parked vCPU took it and holds it.
        ensure!(
            time::spin_until(1_000_000, || spi::is_active(env, SPI_B)
                && !spi::is_pending(env, SPI_B)),
            "SPI {} routed to parked cpu{} was not held",
            SPI_B,
            idx
        );
        // Let that CPU finish recording what it acknowledged: clearing an
        // activation while the hypervisor acknowledges it is a race this
        // test is not about (docs/hostile-guest.md).
        time::delay_us(10_000);
    }
    spi::route(env, SPI_B, cpu::mpidr());
    spi::clear_active(env, SPI_B);
    spi::pend(env, SPI_B);
    let iar = ack_within(1_000_000);
    ensure!(
        iar == SPI_B as u64,
        "IAR1 = {}, expected SPI {}",
        iar,
        SPI_B
    );
    let before = spi::is_active(env, SPI_B);
    let started = start_held(env, idx);
    let active = spi::is_active(env, SPI_B);
    release(idx);
    let off = smp::wait_off(env, idx, smp::OFF_TIMEOUT_US);
    gic::end_of_interrupt(iar);
    started?;
    off?;
    ensure!(before, "SPI {} not active after cpu0 took it", SPI_B);
    ensure!(
        active,
        "starting cpu{} deactivated SPI {}, which cpu0 has in service",
        idx,
        SPI_B
    );
    ensure!(
        time::spin_until(1_000_000, || !spi::is_active(env, SPI_B)),
        "SPI {} still active after cpu0's EOI",
        SPI_B
    );
    let again = ack_within(20_000);
    ensure!(
        again == SPURIOUS,
        "IAR1 = {} after the EOI, expected nothing",
        again
    );
    Ok(())
}

/// Rounds of clear + pend: each one is a new activation of the same INTID.
const ROUNDS: u32 = 3000;

fn held_spi_repended(env: &Env) -> TestResult {
    let idx = env
        .secondaries()
        .next()
        .ok_or_else(|| msg!("no secondary"))?;
    gic::enable_private(env, cpu::mpidr(), 0)?;
    spi::setup(env, SPI_C, 0x80, env.mpidr(idx));
    let r = repend(env, idx);
    spi::disable(env, SPI_C);
    spi::clear_pending(env, SPI_C);
    spi::clear_active(env, SPI_C);
    r
}

fn repend(env: &Env, idx: usize) -> TestResult {
    for round in 0..ROUNDS {
        spi::clear_active(env, SPI_C);
        spi::pend(env, SPI_C);
        ensure!(
            time::spin_until(1_000_000, || spi::is_active(env, SPI_C)
                && !spi::is_pending(env, SPI_C)),
            "round {}: SPI {} routed to parked cpu{} was not held",
            round,
            SPI_C,
            idx
        );
    }
    start_held(env, idx)?;
    release(idx);
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    ensure!(
        !spi::is_active(env, SPI_C),
        "SPI {} still active after cpu{} started: its reset must end what it held",
        SPI_C,
        idx
    );
    Ok(())
}

/// CPU 1: TRACE_MARK calls back to back until released (at most 3 s).
fn mark_job(idx: usize, _ctx: u64) {
    let s = smp::slot(idx);
    s.scratch[S_MARKS].store(0, Release);
    let end = time::now_ns() + 3_000_000_000;
    while s.scratch[S_RELEASE].load(Acquire) == 0 && time::now_ns() < end {
        vendor::trace_mark(0x0bad_0bad);
        s.scratch[S_MARKS].fetch_add(1, Release);
    }
}

const S_MARKS: usize = 2;
/// A UART store may print trace lines first, but only for a bounded time.
const UART_STORE_MAX_NS: u64 = 300_000_000;

fn uart_store_bounded(env: &Env) -> TestResult {
    let idx = env
        .secondaries()
        .next()
        .ok_or_else(|| msg!("no secondary"))?;
    let s = smp::slot(idx);
    s.clear_scratch();
    smp::start(env, idx, mark_job, super::common::cookie())?;
    let started = time::spin_until(1_000_000, || s.scratch[S_MARKS].load(Acquire) > 100);
    let t0 = time::now_ns();
    uart::write_reg(0, u32::from(b'.'));
    let took = time::now_ns() - t0;
    release(idx);
    smp::wait_off(env, idx, smp::OFF_TIMEOUT_US)?;
    ensure!(started, "cpu{} made no TRACE_MARK calls", idx);
    ensure!(
        took < UART_STORE_MAX_NS,
        "one UART store took {} ms while cpu{} made trace lines",
        took / 1_000_000,
        idx
    );
    Ok(())
}

const UARTIBRD: usize = 0x24;
const UARTFBRD: usize = 0x28;
const UARTLCR_H: usize = 0x2c;
const UARTCR: usize = 0x30;
const UARTDMACR: usize = 0x48;

fn uart_config(_env: &Env) -> TestResult {
    let (cr, ibrd, fbrd, lcr) = (
        uart::read_reg(UARTCR),
        uart::read_reg(UARTIBRD),
        uart::read_reg(UARTFBRD),
        uart::read_reg(UARTLCR_H),
    );
    uart::with_lock(|| {
        uart::write_reg(UARTCR, 1 << 7); // loopback, UART and transmitter off
        uart::write_reg(UARTIBRD, ibrd ^ 0x5);
        uart::write_reg(UARTFBRD, fbrd ^ 0x3);
        uart::write_reg(UARTLCR_H, 0x02); // 5 bits, parity
        uart::write_reg(UARTDMACR, 0x3);
    });
    let after = (
        uart::read_reg(UARTCR),
        uart::read_reg(UARTIBRD),
        uart::read_reg(UARTFBRD),
        uart::read_reg(UARTLCR_H),
        uart::read_reg(UARTDMACR),
    );
    uart::write_reg(UARTCR, cr);
    ensure!(
        after.0 & 0x181 == 0x101,
        "UARTCR = {:#x} after the guest disabled it: UARTEN and TXE must stay set, LBE clear",
        after.0
    );
    ensure!(
        (after.1, after.2, after.3) == (ibrd, fbrd, lcr),
        "IBRD/FBRD/LCR_H {:#x}/{:#x}/{:#x}, were {:#x}/{:#x}/{:#x}",
        after.1,
        after.2,
        after.3,
        ibrd,
        fbrd,
        lcr
    );
    ensure!(after.4 & 0x3 == 0, "UARTDMACR = {:#x}", after.4);
    Ok(())
}

fn no_aarch32_el0(_env: &Env) -> Option<Msg> {
    (!pstate::el0_aarch32()).then(|| msg!("this CPU has no AArch32 EL0"))
}

const EC_SVC32: u64 = 0x11;
const EC_SOFTWARE_STEP_LOWER: u64 = 0x32;

fn step_over_store(_env: &Env) -> TestResult {
    let code = aarch32::store_step_program();
    let e = aarch32::step_thumb(code, [uart::base() as u32, 0, 0, 0]);
    ensure!(
        e.ec() == EC_SOFTWARE_STEP_LOWER,
        "expected a software step exception (EC 0x32), got EC {:#x} ESR {:#x} ELR {:#x}",
        e.ec(),
        e.esr,
        e.elr
    );
    ensure!(
        e.elr == code + 2 && e.regs[2] == 0,
        "step over the emulated store ended at +{} with r2 = {}: expected +2, r2 = 0",
        e.elr.wrapping_sub(code),
        e.regs[2]
    );
    Ok(())
}

fn it_block_store(_env: &Env) -> TestResult {
    let code = aarch32::it_store_program();
    let e = aarch32::run_thumb(code, [uart::base() as u32, 0, 0, 0]);
    ensure!(
        e.ec() == EC_SVC32 && e.elr == code + 10,
        "expected the SVC after the IT block, got EC {:#x} ELR +{}",
        e.ec(),
        e.elr.wrapping_sub(code)
    );
    ensure!(
        e.regs[2] == 0,
        "r2 = {}: the else-instruction of the IT block ran after the emulated store",
        e.regs[2]
    );
    Ok(())
}

fn sgi_disabled_or_other_group(env: &Env) -> TestResult {
    let me = cpu::mpidr();
    gic::enable_private(env, me, 0xffff)?;
    gic::disable_ppi(env, me, 5);
    gic::write_sgi1r(gic::sgi_to(me, 5));
    let disabled = ack_within(20_000);
    gic::write_sgi0r(gic::sgi_to(me, 6));
    let group0 = ack_within(20_000);
    gic::write_asgi1r(gic::sgi_to(me, 7));
    let other = ack_within(20_000);
    // Enabling SGI 5 delivers what stayed pending.
    gic::enable_private(env, me, 1 << 5)?;
    let later = ack_within(100_000);
    for iar in [disabled, group0, other, later] {
        if iar != SPURIOUS {
            gic::end_of_interrupt(iar);
        }
    }
    ensure!(
        disabled == SPURIOUS,
        "SGI 5, disabled in GICR_ICENABLER0, was delivered (IAR1 {})",
        disabled
    );
    ensure!(
        group0 == SPURIOUS,
        "ICC_SGI0R_EL1 delivered IAR1 {}",
        group0
    );
    ensure!(other == SPURIOUS, "ICC_ASGI1R_EL1 delivered IAR1 {}", other);
    ensure!(
        later == 5,
        "after enabling SGI 5, IAR1 = {}: the pending SGI was lost",
        later
    );
    Ok(())
}

fn has_csv2_2() -> bool {
    pstate::id_aa64pfr().0 >> 56 & 0xf >= 2
}

fn has_sme() -> bool {
    pstate::id_aa64pfr().1 >> 24 & 0xf != 0
}

fn nothing_advertised(_env: &Env) -> Option<Msg> {
    (!has_csv2_2() && !has_sme()).then(|| msg!("neither FEAT_CSV2_2 nor SME"))
}

fn advertised_registers(_env: &Env) -> TestResult {
    use guestlib::arch::vectors::expecting_abort;
    if has_csv2_2() {
        let (v, abort) = expecting_abort(|| pstate::scxtnum_el1_roundtrip(0x5c7));
        ensure!(
            abort.is_none() && v == 0x5c7,
            "SCXTNUM_EL1 (advertised by CSV2 >= 2): read back {:#x}, exception {:?}",
            v,
            abort
        );
        pstate::scxtnum_el1_roundtrip(0);
    }
    if has_sme() {
        let (v, abort) = expecting_abort(|| pstate::tpidr2_el0_roundtrip(0x7d2));
        ensure!(
            abort.is_none() && v == 0x7d2,
            "TPIDR2_EL0 (advertised by SME): read back {:#x}, exception {:?}",
            v,
            abort
        );
    }
    Ok(())
}
