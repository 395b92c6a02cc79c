//! Everything AArch64-specific: boot, EL2 registers, exception vectors, stage 2,
//! the GIC and the console. The rest of the crate is portable.

pub mod console;
mod cpu_start;
mod el2;
mod firmware;
mod gic;
mod gic_mmio;
mod gicv2;
mod gicv3;
mod heap;
mod hypercall;
mod ich;
mod park;
mod stage2;
mod stop_save;
mod timer;
mod traps;
mod vectors;
mod vgic;

use crate::dtb::{self, Platform};
use crate::fast_stop::FastStop;
use crate::mem_range::MemRange;
use crate::trace::{Event, Filter, Reason};
use crate::trace_buffer::{Sequencer, TraceRing};
use crate::vcpu::{LiveCount, PowerState, VcpuTable, Vcpus};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Once;

/// The hypervisor's own RAM (see `linker/hypervisor.ld`): never mapped into the guest.
pub const HV_REGION: MemRange = MemRange {
    base: 0x4000_0000,
    size: 0x0400_0000,
};
/// Where QEMU virt leaves its DTB for an ELF `-kernel` (x0 is 0 then); a
/// raw Image (raspi4b) gets it in x0.
const QEMU_DTB_ADDR: usize = 0x4000_0000;
/// EL2 stack per secondary CPU, in 4 KiB pages.
pub const STACK_PAGES: usize = 8;

/// Hypervisor-wide state, written once by the boot CPU before any other CPU
/// runs hypervisor code that reads it.
pub struct Hypervisor {
    /// Every vCPU (and so every CPU): its protocol state and per-CPU data.
    pub vcpus: Vcpus,
    pub fast_stop: FastStop,
    pub guest_ram: Vec<MemRange>,
    /// Which trace events are printed (`trace=` option).
    pub trace_filter: Filter,
    pub uart: MemRange,
    /// vCPUs ON or ON_PENDING (see `LiveCount`).
    pub live: LiveCount,
    /// Secondaries that reached their park loop at boot.
    pub checked_in: AtomicUsize,
    /// Numbers the trace records of every CPU (their print order).
    pub trace_seq: Sequencer,
}

impl Hypervisor {
    pub fn table(&self) -> VcpuTable<'_> {
        self.vcpus.table()
    }

    pub fn is_guest_ram(&self, addr: u64) -> bool {
        self.guest_ram.iter().any(|r| r.contains(addr))
    }
}

static HV: Once<Hypervisor> = Once::new();

pub fn hv() -> &'static Hypervisor {
    HV.get()
        .expect("hypervisor state used before boot finished")
}

/// This CPU's linear index (kept in TPIDR_EL2 from early boot on).
pub fn cpu_index() -> usize {
    el2::cpu_index()
}

/// Records `event` as vCPU `cpu`'s trace line, if the `trace=` option
/// wants it, with the time taken now: into this CPU's trace ring, without a
/// lock or the UART (the console prints it later, see `console`). Before
/// the rings exist (early boot) it is printed at once.
///
/// The record's number orders it (`crate::trace_buffer`): call this before
/// the store that publishes the event, and after the loads that observed
/// its cause.
///
/// Inlined: at each call site the event is known, so a hot record folds to
/// a few dozen instructions (see `TraceRing::record_event`).
#[inline(always)]
pub fn emit(cpu: usize, event: &Event<'_>) {
    let Some(hv) = HV.get() else {
        console::emit_now(cpu, event);
        return;
    };
    if hv.trace_filter.allows(event.level()) {
        let me = cpu_index();
        hv.vcpus[me]
            .trace
            .record_event(&hv.trace_seq, me, cpu, timer::ticks, event);
    }
}

/// Records `event` (see [`emit`]) and then runs `action`, the store that
/// publishes it: any line about a consequence of `action` (recorded by a
/// CPU that saw its effect) is printed after this one.
#[inline(always)]
pub fn emit_before(cpu: usize, event: &Event<'_>, action: impl FnOnce()) {
    emit(cpu, event);
    action();
}

/// Records `event` as this CPU's trace line (see [`emit`]).
#[inline(always)]
pub fn emit_here(event: &Event<'_>) {
    emit(cpu_index(), event);
}

/// Every CPU's trace ring (none before boot has built them).
fn trace_rings() -> impl Iterator<Item = &'static TraceRing> + Clone {
    let vcpus = HV.get().map(|hv| &hv.vcpus);
    (0..vcpus.map_or(0, |v| v.len())).filter_map(move |i| vcpus.map(|v| &v[i].trace))
}

/// Prints every recorded trace line, waiting for the wire (non-critical
/// points only: boot, power-off).
pub fn flush_trace() {
    console::flush(trace_rings());
}

/// The boot CPU's EL2 timer fired: print what no guest UART access has
/// printed yet (a guest that stays silent, or hangs, still shows its
/// trace), without ever waiting, and re-arm. It works like a UART driver's
/// transmit interrupt: with the wire model (`console-baud=N`) it fills the
/// FIFO and comes back when half of it has drained, so a backlog goes out
/// at the wire's full rate; with the emulator's instant UART (each byte an
/// exit to the emulator) it prints for at most `TICK_BUDGET_DIVISOR`th of
/// its period and comes back after a gap of the same length while lines
/// remain. With nothing to print it comes back after the full period.
pub fn trace_tick() {
    let period = timer::tick_period();
    let slice = period / TICK_BUDGET_DIVISOR;
    let next = match console::tick_drain(trace_rings(), timer::ticks() + slice) {
        console::TickDrain::Empty | console::TickDrain::Busy => period,
        console::TickDrain::OutOfTime => slice,
        console::TickDrain::WireFull(half_drained_in) => half_drained_in,
    };
    timer::arm_tick(next.max(1));
}

/// A backlogged tick on the instant UART prints for 1/4 of the period
/// (5 ms), then lets the guest run as long again.
const TICK_BUDGET_DIVISOR: u64 = 4;

/// A guest access to the console UART (prints the ready trace lines first).
pub fn console_access(offset: usize, write: Option<u32>) -> u32 {
    console::guest_access(trace_rings(), offset, write)
}

/// Before the machine powers off or resets: every recorded line.
pub fn last_words() {
    console::final_flush(trace_rings(), cpu_index(), None);
}

aarch64_rt::entry!(boot_main, 16);
aarch64_rt::initial_pagetable!(el2::initial_pagetable(), el2::MAIR);

/// CPU0, from QEMU: bring up the hypervisor, start the other CPUs, enter the guest.
fn boot_main(x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    el2::set_cpu_index(0);
    el2::install_vectors();
    heap::init();
    log::set_logger(&LOGGER).ok();
    log::set_max_level(log::LevelFilter::Info);

    // Nothing can be printed before the DTB names the console UART: a
    // failure until then ends the run silently (as a firmware would).
    let dtb_addr = if x0 == 0 { QEMU_DTB_ADDR } else { x0 as usize };
    // SAFETY: the firmware's DTB is identity mapped, outside the image and
    // heap, and nothing writes it during boot.
    let host_dtb = unsafe { host_dtb_at(dtb_addr) }
        .unwrap_or_else(|e| fatal(format_args!("no usable DTB at {dtb_addr:#x}: {e}")));
    let platform = Platform::parse(host_dtb)
        .unwrap_or_else(|e| fatal(format_args!("cannot use the DTB: {e}")));
    // RAM as normal memory, the rest as device memory, from now on.
    el2::extend_identity_map(&platform.memory);
    if let Some(uart) = &platform.uart {
        // SAFETY: the console PL011 from the DTB, device memory in the
        // identity map; nothing else in the hypervisor touches it.
        unsafe { console::init(uart.regs.base as usize) };
    }
    firmware::init_power(&platform);
    let options = Options::parse(&platform.bootargs);

    let guest = crate::dtb::GuestConfig::new(&platform, HV_REGION)
        .unwrap_or_else(|e| fatal(format_args!("cannot build the guest: {e}")));
    let n = platform.cpus.len();
    let mpidrs: Vec<u64> = platform.cpus.iter().map(|c| c.mpidr).collect();
    let uart = platform
        .uart
        .as_ref()
        .map(|u| u.regs)
        .unwrap_or_else(|| fatal(format_args!("the DTB names no PL011 console")));
    HV.call_once(|| Hypervisor {
        vcpus: Vcpus::new(&mpidrs, |i| i == 0),
        fast_stop: FastStop::new(),
        guest_ram: guest.ram.clone(),
        trace_filter: options.trace_filter,
        uart,
        live: LiveCount::new(1),
        checked_in: AtomicUsize::new(0),
        trace_seq: Sequencer::new(),
    });
    console::set_baud(options.console_baud);
    let hv = hv();
    hv.vcpus[0]
        .stack_top
        .store(el2::boot_stack_top(), Ordering::Relaxed);

    gic::init(&platform);
    stage2::init(&platform, &guest.ram);
    el2::init_cpu(hv.vcpus[0].mpidr);

    let entry = load_guest(host_dtb, &platform, &guest);
    let ram = RamList(&guest.ram);
    let banner = format_args!(
        "parkvisor {}: {} CPUs, guest RAM {}, kernel entry {:#x}, dtb {:#x}, cpu start {}, power {}",
        env!("CARGO_PKG_VERSION"),
        n,
        ram,
        entry.pc,
        entry.dtb,
        start_method(&platform),
        firmware::power_backend(),
    );
    emit_here(&Event::Boot { message: &banner });
    if options.debug_panic {
        panic!("debug=panic: deliberate hypervisor panic");
    }

    start_secondaries(&platform);
    emit_here(&Event::State {
        from: PowerState::Off,
        to: PowerState::On,
        reason: Reason::Boot,
    });
    flush_trace();
    // From now on the boot CPU's EL2 timer prints what nothing else does.
    if options.trace_tick {
        timer::arm_tick(timer::tick_period());
    }
    let frame = vectors::GuestFrame::cold_boot(entry.pc, entry.dtb);
    el2::reset_guest_el1(false);
    vgic::reset_cpu(0);
    // SAFETY: the boot stack top is this CPU's stack and nothing on it is
    // needed after entering the guest.
    unsafe { vectors::enter_guest(&frame, el2::boot_stack_top()) }
}

struct RamList<'a>(&'a [MemRange]);

impl core::fmt::Display for RamList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{:#x}..{:#x}", r.base, r.base + r.size)?;
        }
        Ok(())
    }
}

struct GuestEntry {
    pc: u64,
    dtb: u64,
}

/// Places the kernel and the guest DTB in guest RAM.
fn load_guest(host_dtb: &[u8], platform: &Platform, guest: &dtb::GuestConfig) -> GuestEntry {
    let module = platform.kernel.image;
    // SAFETY: the module lies in RAM that QEMU loaded and that is identity
    // mapped at EL2; nothing else references it during boot.
    let image =
        unsafe { core::slice::from_raw_parts(module.base as *const u8, module.size as usize) };
    let initrd: Vec<MemRange> = guest.initrd.into_iter().collect();
    let plan = crate::image::plan_load(image, module, &guest.ram, &initrd)
        .unwrap_or_else(|e| fatal(format_args!("cannot load the guest kernel: {e}")));
    if plan.needs_copy() {
        // SAFETY: the plan keeps source and destination inside guest RAM;
        // `copy` handles overlap.
        unsafe {
            core::ptr::copy(
                plan.src as *const u8,
                plan.dst as *mut u8,
                plan.len as usize,
            )
        };
    }
    let blob = dtb::build_guest_dtb(host_dtb, guest)
        .unwrap_or_else(|e| fatal(format_args!("cannot write the guest DTB: {e}")));
    let mut avoid = initrd;
    avoid.push(plan.footprint);
    let at = crate::image::place_dtb(blob.len() as u64, &guest.ram, &avoid)
        .unwrap_or_else(|e| fatal(format_args!("cannot place the guest DTB: {e}")));
    // SAFETY: `place_dtb` returns a free 2 MiB block of guest RAM, and the
    // blob is smaller than that.
    unsafe { core::ptr::copy_nonoverlapping(blob.as_ptr(), at as *mut u8, blob.len()) };
    el2::clean_dcache_range(plan.dst, plan.len);
    el2::clean_dcache_range(at, blob.len() as u64);
    GuestEntry {
        pc: plan.entry,
        dtb: at,
    }
}

/// How the secondaries start, for the boot banner.
fn start_method(platform: &Platform) -> &'static str {
    let spin = |c: &dtb::Cpu| matches!(c.enable, dtb::EnableMethod::SpinTable { .. });
    match platform.cpus.iter().skip(1).filter(|c| spin(c)).count() {
        0 => "psci",
        k if k + 1 == platform.cpus.len() => "spin-table",
        _ => "psci, spin-table",
    }
}

/// A copy of the firmware's DTB in the heap, after checking its header.
/// Copied byte by byte: before the DTB is read, the identity map may have
/// the RAM it lies in as device memory (raspi4b's first GiB), where the
/// parser's unaligned loads would fault.
///
/// # Safety
/// `addr` must be identity-mapped memory that stays untouched meanwhile.
unsafe fn host_dtb_at(addr: usize) -> Result<&'static [u8], &'static str> {
    // SAFETY: per the caller.
    let header = unsafe { read_bytes(addr, 8) };
    let magic = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let size = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    if magic != 0xd00d_feed {
        return Err("bad magic");
    }
    if !(40..=(2 << 20)).contains(&size) {
        return Err("implausible totalsize");
    }
    // SAFETY: per the caller; the header says the blob is `size` bytes.
    Ok(Box::leak(
        unsafe { read_bytes(addr, size) }.into_boxed_slice(),
    ))
}

/// `len` bytes at `addr`, read one at a time.
///
/// # Safety
/// The bytes are identity mapped and readable.
unsafe fn read_bytes(addr: usize, len: usize) -> Vec<u8> {
    (0..len)
        // SAFETY: per the caller; byte accesses are aligned on any memory type.
        .map(|i| unsafe { ((addr + i) as *const u8).read_volatile() })
        .collect()
}

/// Starts every other physical CPU the way its DT node says (firmware
/// PSCI or spin table, see `cpu_start`); each parks as an OFF vCPU. Waits
/// (bounded) for each to check in before the next: a spin-table release
/// hands over through one shared slot.
fn start_secondaries(platform: &Platform) {
    let hv = hv();
    let deadline = timer::now_ns() + 5_000_000_000;
    let mut want = 0;
    for (index, cpu) in platform.cpus.iter().enumerate().skip(1) {
        let stack = Box::leak(Box::new(cpu_start::Stack::new()));
        let top = (stack as *mut _ as u64) + (STACK_PAGES * 4096) as u64;
        hv.vcpus[index].stack_top.store(top, Ordering::Release);
        let backend = cpu_start::for_cpu(cpu.enable);
        // SAFETY: the stack is freshly allocated, leaked, and used by that CPU only.
        let started = unsafe { backend.start(cpu.mpidr, stack, index, secondary_main) };
        match started {
            Ok(()) => want += 1,
            Err(e) => log::error!(
                "starting cpu{index} (mpidr {:#x}, {:?}) failed: {e:?}",
                cpu.mpidr,
                cpu.enable
            ),
        }
        while hv.checked_in.load(Ordering::Acquire) < want && timer::now_ns() < deadline {
            el2::wait_for_event();
        }
    }
    let want = platform.cpus.len() - 1;
    let got = hv.checked_in.load(Ordering::Acquire);
    if got < want {
        log::error!("only {got} of {want} secondary CPUs came up; the others cannot be started");
    }
}

/// A secondary CPU's first Rust code at EL2.
fn secondary_main(index: usize) -> ! {
    el2::set_cpu_index(index);
    el2::install_vectors();
    el2::install_identity_map();
    let hv = hv();
    gic::init_cpu(index);
    stage2::init_cpu();
    el2::init_cpu(hv.vcpus[index].mpidr);
    vgic::reset_cpu(index);
    hv.checked_in.fetch_add(1, Ordering::Release);
    el2::signal_event();
    let frame = park::park_until_boot(index, None);
    // SAFETY: this CPU's stack top; nothing on the stack is needed any more.
    unsafe { vectors::enter_guest(&frame, hv.vcpus[index].stack_top.load(Ordering::Relaxed)) }
}

/// Hypervisor options from `/chosen/bootargs` (QEMU `-append`).
struct Options {
    trace_filter: Filter,
    /// `console-baud=N`: the console behaves like a PL011 at N baud (each
    /// byte 10 bit times on the wire, behind a 32-byte FIFO); 0: instant.
    console_baud: u64,
    /// `trace-tick=off`: the boot CPU's EL2 timer never prints; lines then
    /// reach the UART only when a guest uses it and at power-off (for a
    /// run that wants no EL2 timer at all; QEMU 7.2's `-icount` round robin
    /// needed it, QEMU 10 does not: `docs/trace.md`).
    trace_tick: bool,
    /// `debug=panic` (tests only): panic once the boot events are recorded
    /// but not yet printed, to show that a panic prints them first.
    debug_panic: bool,
}

impl Options {
    fn parse(bootargs: &str) -> Self {
        let mut o = Options {
            trace_filter: Filter::default(),
            console_baud: 0,
            trace_tick: true,
            debug_panic: false,
        };
        for word in bootargs.split_whitespace() {
            if let Some(Some(filter)) = word.strip_prefix("trace=").map(Filter::from_option) {
                o.trace_filter = filter;
                continue;
            }
            if let Some(value) = word.strip_prefix("console-baud=") {
                match value.parse::<u64>() {
                    Ok(baud) => o.console_baud = baud,
                    Err(_) => log::warn!("ignoring {word:?}: the baud rate must be a number"),
                }
                continue;
            }
            match word {
                // Tests only: QEMU must then run with semihosting enabled.
                "panic-exit=semihosting" => firmware::exit_failure_by_semihosting(),
                // Tests only: proves that a hypervisor panic is reported
                // (after the pending trace) and ends the run with a failure.
                "debug=panic" => o.debug_panic = true,
                "trace-tick=off" => o.trace_tick = false,
                _ => log::warn!("ignoring unknown hypervisor option {word:?}"),
            }
        }
        o
    }
}

/// Unrecoverable boot error: say so, then end the run as a failure.
fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    console::final_flush(
        trace_rings(),
        cpu_index(),
        Some(&Event::Panic {
            location: &"boot",
            message: &args,
        }),
    );
    firmware::exit_failure()
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        emit_here(&Event::Log {
            level: record.level(),
            message: record.args(),
        });
    }
    fn flush(&self) {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // The events recorded before the panic first, then the panic line.
    let message = info.message();
    let location: &dyn core::fmt::Display = match info.location() {
        Some(location) => location,
        None => &"?",
    };
    console::final_flush(
        trace_rings(),
        cpu_index(),
        Some(&Event::Panic {
            location,
            message: &message,
        }),
    );
    firmware::exit_failure()
}
