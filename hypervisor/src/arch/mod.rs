//! Everything AArch64-specific: boot, EL2 registers, exception vectors, stage 2,
//! the GIC and the console. The rest of the crate is portable.

mod console;
mod el2;
mod firmware;
mod gic;
mod heap;
mod park;
mod stage2;
mod stop_save;
mod timer;
mod traps;
mod vectors;
mod gic_mmio;
mod hypercall;
mod vgic;

use crate::dtb::{self, MemRange, Platform};
use crate::fast_stop::FastStop;
use crate::trace::{Event, Filter, Level, Reason};
use crate::vcpu::{LiveCount, PowerState, VcpuSlot, VcpuTable};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::Once;

/// The hypervisor's own RAM (see `linker/hypervisor.ld`): never mapped into the guest.
pub const HV_REGION: MemRange = MemRange { base: 0x4000_0000, size: 0x0400_0000 };
/// Where QEMU leaves its DTB for an ELF `-kernel` (x0 is 0 then).
const QEMU_DTB_ADDR: usize = 0x4000_0000;
/// PL011 used until the DTB has been read (QEMU virt's UART0).
const EARLY_UART: usize = 0x0900_0000;
/// EL2 stack per secondary CPU, in 4 KiB pages.
const STACK_PAGES: usize = 8;

/// Hypervisor-wide state, written once by the boot CPU before any other CPU
/// runs hypervisor code that reads it.
pub struct Hypervisor {
    pub slots: &'static [VcpuSlot],
    pub mpidrs: &'static [u64],
    pub stack_tops: Vec<AtomicU64>,
    pub fast_stop: FastStop,
    pub guest_ram: Vec<MemRange>,
    /// The most detailed trace level printed (`trace=` option).
    pub trace_level: Level,
    pub uart: MemRange,
    pub gicd: MemRange,
    pub gicr: Vec<MemRange>,
    /// vCPUs ON or ON_PENDING (see `LiveCount`).
    pub live: LiveCount,
    /// Per vCPU: guest SGIs (bit n = SGI n) waiting to enter its list registers.
    pub vsgi_pending: Vec<AtomicU32>,
    /// Secondaries that reached their park loop at boot.
    pub checked_in: AtomicUsize,
    /// Per vCPU: what it recorded when it last parked for a FAST_STOP
    /// (written by its own CPU, read by the caller: see `stop_save`).
    pub stop_contexts: Vec<spin::Mutex<crate::stop_context::StopContext>>,
}

impl Hypervisor {
    pub fn table(&self) -> VcpuTable<'static> {
        VcpuTable::new(self.slots, self.mpidrs)
    }

    pub fn is_guest_ram(&self, addr: u64) -> bool {
        self.guest_ram.iter().any(|r| r.contains(addr))
    }
}

static HV: Once<Hypervisor> = Once::new();

pub fn hv() -> &'static Hypervisor {
    HV.get().expect("hypervisor state used before boot finished")
}

/// This CPU's linear index (kept in TPIDR_EL2 from early boot on).
pub fn cpu_index() -> usize {
    el2::cpu_index()
}

fn wanted(event: &Event<'_>) -> bool {
    match HV.get() {
        None => true,
        Some(hv) => event.level() <= hv.trace_level,
    }
}

/// Prints `event` as vCPU `cpu`'s trace line if the `trace=` option wants it.
pub fn emit(cpu: usize, event: &Event<'_>) {
    if wanted(event) {
        console::emit(cpu, event);
    }
}

/// Runs `action` (a state publication) and, if wanted, prints `event` in
/// the same console critical section: the trace then shows state changes
/// in the order other CPUs can observe them.
pub fn emit_after(cpu: usize, event: &Event<'_>, action: impl FnOnce()) {
    if wanted(event) {
        console::emit_after(cpu, event, action);
    } else {
        action();
    }
}

/// Prints `event` as this CPU's trace line (see [`emit`]).
pub fn emit_here(event: &Event<'_>) {
    emit(cpu_index(), event);
}

aarch64_rt::entry!(boot_main, 16);
aarch64_rt::initial_pagetable!(el2::initial_pagetable(), el2::MAIR);

/// CPU0, from QEMU: bring up the hypervisor, start the other CPUs, enter the guest.
fn boot_main(x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    el2::set_cpu_index(0);
    el2::install_vectors();
    heap::init();
    // SAFETY: QEMU virt's UART0; nothing else in the hypervisor touches it.
    unsafe { console::init(EARLY_UART) };
    log::set_logger(&LOGGER).ok();
    log::set_max_level(log::LevelFilter::Info);

    let dtb_addr = if x0 == 0 { QEMU_DTB_ADDR } else { x0 as usize };
    // SAFETY: the firmware's DTB lies in the hypervisor region, which is
    // identity mapped and never handed to the guest.
    let host_dtb = unsafe { host_dtb_at(dtb_addr) }
        .unwrap_or_else(|e| fatal(format_args!("no usable DTB at {dtb_addr:#x}: {e}")));
    let platform = Platform::parse(host_dtb)
        .unwrap_or_else(|e| fatal(format_args!("cannot use the DTB: {e}")));
    let options = Options::parse(&platform.bootargs);

    let guest = crate::dtb::GuestConfig::new(&platform, HV_REGION)
        .unwrap_or_else(|e| fatal(format_args!("cannot build the guest: {e}")));
    let n = platform.cpus.len();
    let mpidrs: Vec<u64> = platform.cpus.iter().map(|c| c.mpidr).collect();
    let slots: Vec<VcpuSlot> =
        (0..n).map(|i| if i == 0 { VcpuSlot::new_on() } else { VcpuSlot::new() }).collect();
    let uart = platform.uart.as_ref().map(|u| u.regs).unwrap_or(MemRange {
        base: EARLY_UART as u64,
        size: 0x1000,
    });
    HV.call_once(|| Hypervisor {
        slots: Box::leak(slots.into_boxed_slice()),
        mpidrs: Box::leak(mpidrs.into_boxed_slice()),
        stack_tops: (0..n).map(|_| AtomicU64::new(0)).collect(),
        fast_stop: FastStop::new(),
        guest_ram: guest.ram.clone(),
        trace_level: options.trace_level,
        uart,
        gicd: platform.gic.distributor,
        gicr: platform.gic.redistributors.clone(),
        live: LiveCount::new(1),
        vsgi_pending: (0..n).map(|_| AtomicU32::new(0)).collect(),
        checked_in: AtomicUsize::new(0),
        stop_contexts: (0..n).map(|_| spin::Mutex::new(Default::default())).collect(),
    });
    let hv = hv();
    hv.stack_tops[0].store(el2::boot_stack_top(), Ordering::Relaxed);

    vgic::init(n);
    gic::init(&platform);
    stage2::init(&platform, &guest.ram);
    el2::init_cpu(hv.mpidrs[0]);

    let entry = load_guest(host_dtb, &platform, &guest);
    let ram = RamList(&guest.ram);
    let banner = format_args!(
        "parkvisor {}: {} CPUs, guest RAM {}, kernel entry {:#x}, dtb {:#x}",
        env!("CARGO_PKG_VERSION"),
        n,
        ram,
        entry.pc,
        entry.dtb
    );
    emit_here(&Event::Boot { message: &banner });

    start_secondaries(&platform);
    emit_here(&Event::State { from: PowerState::Off, to: PowerState::On, reason: Reason::Boot });
    let frame = vectors::GuestFrame::cold_boot(entry.pc, entry.dtb);
    el2::reset_guest_el1();
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
    let image = unsafe { core::slice::from_raw_parts(module.base as *const u8, module.size as usize) };
    let initrd: Vec<MemRange> = guest.initrd.into_iter().collect();
    let plan = crate::image::plan_load(image, module, &guest.ram, &initrd)
        .unwrap_or_else(|e| fatal(format_args!("cannot load the guest kernel: {e}")));
    if plan.needs_copy() {
        // SAFETY: the plan keeps source and destination inside guest RAM;
        // `copy` handles overlap.
        unsafe { core::ptr::copy(plan.src as *const u8, plan.dst as *mut u8, plan.len as usize) };
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
    GuestEntry { pc: plan.entry, dtb: at }
}

/// The firmware's DTB as a slice, after checking its header.
///
/// # Safety
/// `addr` must be identity-mapped memory that stays untouched while the
/// slice is used.
unsafe fn host_dtb_at(addr: usize) -> Result<&'static [u8], &'static str> {
    const FDT_MAGIC: u32 = 0xd00d_feed;
    const MAX_DTB: usize = 2 << 20;
    // SAFETY: the header's first 8 bytes are readable per the caller.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 8) };
    if u32::from_be_bytes(header[0..4].try_into().unwrap()) != FDT_MAGIC {
        return Err("bad magic");
    }
    let size = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    if !(40..=MAX_DTB).contains(&size) {
        return Err("implausible totalsize");
    }
    // SAFETY: the header says the blob is `size` bytes long; the caller
    // guarantees the memory is mapped and stable.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, size) })
}

/// Starts every other physical CPU through the firmware's PSCI; each parks
/// as an OFF vCPU. Waits (bounded) until they have checked in.
fn start_secondaries(platform: &Platform) {
    let hv = hv();
    for (index, cpu) in platform.cpus.iter().enumerate().skip(1) {
        let stack = Box::leak(Box::new(aarch64_rt::Stack::<STACK_PAGES>::new()));
        let top = (stack as *mut _ as u64) + (STACK_PAGES * 4096) as u64;
        hv.stack_tops[index].store(top, Ordering::Release);
        // SAFETY: the stack is freshly allocated, leaked, and used by that CPU only.
        let started = unsafe {
            aarch64_rt::start_core::<smccc::Smc, _, STACK_PAGES>(cpu.mpidr, stack, move || {
                secondary_main(index)
            })
        };
        if let Err(e) = started {
            log::error!("firmware CPU_ON for cpu{index} (mpidr {:#x}) failed: {e:?}", cpu.mpidr);
        }
    }
    let deadline = timer::now_ns() + 5_000_000_000;
    let want = platform.cpus.len() - 1;
    while hv.checked_in.load(Ordering::Acquire) < want && timer::now_ns() < deadline {
        el2::wait_for_event();
    }
    let got = hv.checked_in.load(Ordering::Acquire);
    if got < want {
        log::error!("only {got} of {want} secondary CPUs came up; the others cannot be started");
    }
}

/// A secondary CPU's first Rust code at EL2.
fn secondary_main(index: usize) -> ! {
    el2::set_cpu_index(index);
    el2::install_vectors();
    let hv = hv();
    gic::init_cpu(index);
    stage2::init_cpu();
    el2::init_cpu(hv.mpidrs[index]);
    vgic::reset_cpu(index);
    hv.checked_in.fetch_add(1, Ordering::Release);
    el2::signal_event();
    let frame = park::park_until_boot(index, None);
    // SAFETY: this CPU's stack top; nothing on the stack is needed any more.
    unsafe { vectors::enter_guest(&frame, hv.stack_tops[index].load(Ordering::Relaxed)) }
}

/// Hypervisor options from `/chosen/bootargs` (QEMU `-append`).
struct Options {
    trace_level: Level,
}

impl Options {
    fn parse(bootargs: &str) -> Self {
        let mut o = Options { trace_level: Level::State };
        for word in bootargs.split_whitespace() {
            if let Some(Some(filter)) = word.strip_prefix("trace=").map(Filter::from_option) {
                o.trace_level = match filter {
                    Filter::Off => Level::Error,
                    Filter::State => Level::State,
                    Filter::Calls => Level::Calls,
                };
                continue;
            }
            match word {
                // Tests only: QEMU must then run with semihosting enabled.
                "panic-exit=semihosting" => firmware::exit_failure_by_semihosting(),
                // Tests only: proves that a hypervisor panic is reported and
                // ends the run with a failure.
                "debug=panic" => panic!("debug=panic: deliberate hypervisor panic"),
                _ => log::warn!("ignoring unknown hypervisor option {word:?}"),
            }
        }
        o
    }
}

/// Unrecoverable boot error: say so, then end the run as a failure.
fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    console::emergency_emit(cpu_index(), &Event::Panic { location: &"boot", message: &args });
    firmware::exit_failure()
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        emit_here(&Event::Log { level: record.level(), message: record.args() });
    }
    fn flush(&self) {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let message = info.message();
    match info.location() {
        Some(location) => {
            console::emergency_emit(cpu_index(), &Event::Panic { location, message: &message })
        }
        None => console::emergency_emit(cpu_index(), &Event::Panic { location: &"?", message: &message }),
    }
    firmware::exit_failure()
}
