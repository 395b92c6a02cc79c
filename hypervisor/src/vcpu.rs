//! vCPU power states and the park / CPU_ON handshake between physical CPUs.
//!
//! Each vCPU has one atomic *state word*: the power state in the low byte and,
//! above it, the generation of the last fast-stop this vCPU acknowledged. One
//! word means "I am parked" and "I acknowledge stop N" are a single release
//! store, so nobody can observe one without the other.
//!
//! Who may change the word:
//! * any CPU: `OFF -> CLAIMED` (CPU_ON won the race) and `CLAIMED -> ON_PENDING`
//!   (boot request published, by the same CPU that claimed);
//! * only the vCPU's own physical CPU: `ON_PENDING -> ON` (entering the guest),
//!   `ON/ON_PENDING -> OFF` (CPU_OFF, fast-stop, cancelled boot).
//!
//! `OFF` is published only by the vCPU's own CPU, after it has left guest
//! context and cleaned up, so AFFINITY_INFO never reports OFF for a CPU that
//! can still execute guest code.

use crate::physical_irqs::IntidSet;
use crate::stop_context::StopContext;
use crate::sync::{AtomicBool, AtomicU64, Ordering, fence};
use crate::trace_buffer::TraceRing;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64 as AtomicU64Plain};
use hashbrown::HashMap;
use spin::Mutex;

/// The most vCPUs parkvisor manages (QEMU virt with GICv3 allows 512).
pub const MAX_VCPUS: usize = 512;

pub use crate::power_state::PowerState;

const OFF: u64 = 0;
const CLAIMED: u64 = 1;
const ON_PENDING: u64 = 2;
const ON: u64 = 3;
const STATE_MASK: u64 = 0xff;
const GEN_SHIFT: u32 = 8;

const fn decode(word: u64) -> PowerState {
    match word & STATE_MASK {
        OFF => PowerState::Off,
        CLAIMED | ON_PENDING => PowerState::OnPending,
        _ => PowerState::On,
    }
}

/// How a vCPU starts when CPU_ON (or CPU_SUSPEND's powerdown) brings it up:
/// where, with which x0, and with the caller's endianness (PSCI enters the
/// new context with the endianness of the caller's EL1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootRequest {
    pub entry: u64,
    pub context_id: u64,
    /// SCTLR_EL1.EE of the new context.
    pub big_endian: bool,
}

/// The shared, lock-free part of one vCPU.
pub struct VcpuSlot {
    word: AtomicU64,
    /// The boot request, published as one record by the release store of
    /// ON_PENDING in `word` (written only while the claim excludes readers).
    entry: AtomicU64,
    context_id: AtomicU64,
    big_endian: AtomicBool,
}

impl Default for VcpuSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuSlot {
    /// A vCPU that starts OFF.
    pub fn new() -> Self {
        Self {
            word: AtomicU64::new(OFF),
            entry: AtomicU64::new(0),
            context_id: AtomicU64::new(0),
            big_endian: AtomicBool::new(false),
        }
    }

    /// A vCPU that starts ON (the boot vCPU).
    pub fn new_on() -> Self {
        let slot = Self::new();
        slot.word.store(ON, Ordering::Relaxed);
        slot
    }

    /// Current guest-visible state (acquire: pairs with the owner's publish).
    pub fn state(&self) -> PowerState {
        decode(self.word.load(Ordering::Acquire))
    }

    /// Generation of the last fast-stop this vCPU acknowledged.
    pub fn acked_generation(&self) -> u64 {
        self.word.load(Ordering::Acquire) >> GEN_SHIFT
    }

    /// State and acknowledged fast-stop generation from one load, so both
    /// describe the same moment.
    pub fn snapshot(&self) -> (PowerState, u64) {
        let word = self.word.load(Ordering::Acquire);
        (decode(word), word >> GEN_SHIFT)
    }

    /// CPU_ON, step 1, on the calling CPU: win the right to boot this vCPU.
    /// Fails with the state that made it lose (ON or ON_PENDING).
    pub fn try_claim(&self) -> Result<(), PowerState> {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            if cur & STATE_MASK != OFF {
                return Err(decode(cur));
            }
            let claimed = (cur & !STATE_MASK) | CLAIMED;
            match self
                .word
                .compare_exchange(cur, claimed, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// CPU_ON, step 2, on the calling CPU that claimed: publish where to start.
    /// The caller then wakes the target (SEV).
    pub fn publish_boot(&self, request: BootRequest) {
        self.entry.store(request.entry, Ordering::Relaxed);
        self.context_id.store(request.context_id, Ordering::Relaxed);
        self.big_endian.store(request.big_endian, Ordering::Relaxed);
        let cur = self.word.load(Ordering::Relaxed);
        debug_assert_eq!(cur & STATE_MASK, CLAIMED, "publish_boot without a claim");
        // Release: the whole request is visible before ON_PENDING.
        self.word
            .store((cur & !STATE_MASK) | ON_PENDING, Ordering::Release);
    }

    /// On the vCPU's own CPU, in the park loop: the pending boot request, if any.
    pub fn boot_request(&self) -> Option<BootRequest> {
        if self.word.load(Ordering::Acquire) & STATE_MASK != ON_PENDING {
            return None;
        }
        Some(BootRequest {
            entry: self.entry.load(Ordering::Relaxed),
            context_id: self.context_id.load(Ordering::Relaxed),
            big_endian: self.big_endian.load(Ordering::Relaxed),
        })
    }

    /// On the vCPU's own CPU: ON_PENDING -> ON, just before entering the guest.
    /// Sequentially consistent, and followed by a SeqCst fence that pairs with
    /// the one in `FastStop::run` after it publishes `active`: a fast-stop
    /// that starts concurrently either sees this vCPU ON or is seen by its
    /// post-entry check (store-load ordering needs a fence on both sides).
    pub fn mark_on(&self) {
        let cur = self.word.load(Ordering::Relaxed);
        debug_assert_eq!(
            cur & STATE_MASK,
            ON_PENDING,
            "mark_on from a non-pending state"
        );
        self.word.store((cur & !STATE_MASK) | ON, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// On the vCPU's own CPU, after it has left guest context and cleaned up:
    /// publish OFF, acknowledging fast-stop `generation` in the same store.
    /// `None` keeps the previous acknowledgement (CPU_OFF, cancelled boot).
    pub fn park(&self, generation: Option<u64>) {
        let cur = self.word.load(Ordering::Relaxed);
        let ack = generation.unwrap_or(cur >> GEN_SHIFT);
        self.word.store(ack << GEN_SHIFT | OFF, Ordering::Release);
    }
}

/// How many vCPUs are ON or ON_PENDING, as one number that can be read
/// atomically (scanning the slots one by one is not a snapshot: a slow CPU
/// can see a target OFF before a CPU_ON claims it and the claimer OFF after
/// it parked). Only a live vCPU can CPU_ON another, and the claim counts the
/// target before the claimer can park, so zero is final.
pub struct LiveCount(crate::sync::AtomicUsize);

impl LiveCount {
    /// `initially_on` vCPUs start running (the boot vCPU).
    pub fn new(initially_on: usize) -> Self {
        Self(crate::sync::AtomicUsize::new(initially_on))
    }

    /// A CPU_ON claim succeeded: one more vCPU will run.
    pub fn claimed(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// A live vCPU parked. True when it was the last one.
    pub fn parked(&self) -> bool {
        let before = self.0.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "more parks than live vCPUs");
        before == 1
    }
}

/// Everything parkvisor keeps for one vCPU, which is also its physical CPU
/// (1:1): the power-state word of the cross-CPU protocols, its identity, and
/// what only makes sense per CPU. One structure, so per-CPU state grows by a
/// field, not by another parallel array.
pub struct Vcpu {
    /// Power state and fast-stop acknowledgement (read by every CPU).
    pub slot: VcpuSlot,
    /// MPIDR affinity fields, from the DTB.
    pub mpidr: u64,
    /// Guest SGIs (bit n = SGI n) waiting to enter this vCPU's list
    /// registers: any CPU sets bits, the vCPU's own CPU drains them.
    pub pending_sgis: AtomicU32,
    /// Guest hardware interrupts waiting for a free list register, or held
    /// active while the vCPU is parked: one bit per INTID, so a guest that
    /// activates the same INTID again and again adds nothing. Only its own
    /// CPU takes this lock, so it is never contended.
    pub held_irqs: Mutex<IntidSet>,
    /// What it recorded when it last parked for a FAST_STOP (SAVE_REGS);
    /// written by its own CPU, read by the FAST_STOP caller.
    pub stop_context: Mutex<StopContext>,
    /// Top of this CPU's EL2 stack (0 until the boot CPU allocates it).
    pub stack_top: AtomicU64Plain,
    /// Trace events this CPU recorded and nobody printed yet.
    pub trace: TraceRing,
}

impl Vcpu {
    fn new(mpidr: u64, on: bool, trace_words: usize) -> Self {
        Self {
            slot: if on {
                VcpuSlot::new_on()
            } else {
                VcpuSlot::new()
            },
            mpidr,
            pending_sgis: AtomicU32::new(0),
            held_irqs: Mutex::new(IntidSet::new()),
            stop_context: Mutex::new(StopContext::default()),
            stack_top: AtomicU64Plain::new(0),
            trace: TraceRing::new(trace_words),
        }
    }
}

/// Words per trace ring: 4 MiB shared by all CPUs, 8 KiB to 128 KiB each
/// (at 64 vCPUs 64 KiB, about 900 state lines). The models use the least.
fn trace_ring_words(cpus: usize) -> usize {
    if cfg!(loom) {
        return 0;
    }
    ((4 << 20) / 8 / cpus.max(1)).clamp(1024, 16 * 1024)
}

/// Every vCPU, indexed by linear vCPU number (the order of the DTB's cpu
/// nodes), with an MPIDR index so CPU_ON, AFFINITY_INFO, VCPU_STATE and SGI
/// routing find a vCPU in constant time at 512 vCPUs.
pub struct Vcpus {
    list: Vec<Vcpu>,
    by_mpidr: HashMap<u64, usize>,
}

impl Vcpus {
    /// vCPU i has `mpidrs[i]` and starts ON if `on(i)` (the boot vCPU), OFF
    /// otherwise. A repeated MPIDR names the first vCPU that has it.
    pub fn new(mpidrs: &[u64], on: impl Fn(usize) -> bool) -> Self {
        let mut by_mpidr = HashMap::with_capacity(mpidrs.len());
        for (i, &m) in mpidrs.iter().enumerate() {
            by_mpidr.entry(m & MPIDR_AFF_MASK).or_insert(i);
        }
        let words = trace_ring_words(mpidrs.len());
        Self {
            list: mpidrs
                .iter()
                .enumerate()
                .map(|(i, &m)| Vcpu::new(m, on(i), words))
                .collect(),
            by_mpidr,
        }
    }

    /// The protocols' view of every vCPU.
    pub fn table(&self) -> VcpuTable<'_> {
        VcpuTable {
            list: &self.list,
            by_mpidr: &self.by_mpidr,
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl core::ops::Index<usize> for Vcpus {
    type Output = Vcpu;
    fn index(&self, index: usize) -> &Vcpu {
        &self.list[index]
    }
}

/// A borrowed view of [`Vcpus`], what PSCI, FAST_STOP and SGI routing take.
#[derive(Clone, Copy)]
pub struct VcpuTable<'a> {
    list: &'a [Vcpu],
    by_mpidr: &'a HashMap<u64, usize>,
}

/// The MPIDR affinity fields (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFF_MASK: u64 = 0xff_00ff_ffff;

/// The MPIDR_EL1 the guest reads on a vCPU: the architectural bits of the
/// physical CPU's own MPIDR_EL1 (bit 31 RES1, U bit 30, MT bit 24) with the
/// affinity fields the DTB gives the vCPU (the same ones: vCPU `n` runs on
/// physical CPU `n`). Matching of MPIDRs everywhere else uses the Aff fields.
pub const fn guest_mpidr(physical: u64, dtb_mpidr: u64) -> u64 {
    physical & !MPIDR_AFF_MASK | dtb_mpidr & MPIDR_AFF_MASK
}

impl<'a> VcpuTable<'a> {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn vcpu(&self, index: usize) -> &'a Vcpu {
        &self.list[index]
    }

    pub fn slot(&self, index: usize) -> &'a VcpuSlot {
        &self.list[index].slot
    }

    pub fn mpidr(&self, index: usize) -> u64 {
        self.list[index].mpidr
    }

    /// Linear index of the vCPU whose affinity fields equal `mpidr`'s.
    pub fn index_of(&self, mpidr: u64) -> Option<usize> {
        self.by_mpidr.get(&(mpidr & MPIDR_AFF_MASK)).copied()
    }

    /// vCPUs whose affinity matches `mpidr` at `level` and above
    /// (level 0: exactly that CPU; level 1: its cluster; ...).
    pub fn matching(&self, mpidr: u64, level: u32) -> impl Iterator<Item = usize> + 'a {
        let mask = affinity_mask_above(level);
        let want = mpidr & mask;
        let list = self.list;
        (0..list.len()).filter(move |&i| list[i].mpidr & mask == want)
    }
}

/// Mask of the MPIDR affinity fields at `level` and above.
fn affinity_mask_above(level: u32) -> u64 {
    match level {
        0 => MPIDR_AFF_MASK,
        1 => 0xff_00ff_ff00,
        2 => 0xff_00ff_0000,
        _ => 0xff_0000_0000,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn claim_publish_enter_park_cycle() {
        let slot = VcpuSlot::new();
        assert_eq!(slot.state(), PowerState::Off);
        assert_eq!(slot.boot_request(), None);
        slot.try_claim().unwrap();
        assert_eq!(slot.state(), PowerState::OnPending);
        // Claimed but not yet published: the target must not start.
        assert_eq!(slot.boot_request(), None);
        assert_eq!(slot.try_claim(), Err(PowerState::OnPending));
        let req = BootRequest {
            entry: 0x4800_1000,
            context_id: 7,
            big_endian: true,
        };
        slot.publish_boot(req);
        assert_eq!(slot.boot_request(), Some(req));
        slot.mark_on();
        assert_eq!(slot.state(), PowerState::On);
        assert_eq!(slot.try_claim(), Err(PowerState::On));
        slot.park(None);
        assert_eq!(slot.state(), PowerState::Off);
        assert_eq!(slot.boot_request(), None);
    }

    #[test]
    fn park_keeps_or_sets_the_fast_stop_acknowledgement() {
        let slot = VcpuSlot::new_on();
        slot.park(Some(5));
        assert_eq!(slot.acked_generation(), 5);
        slot.try_claim().unwrap();
        assert_eq!(slot.acked_generation(), 5, "a claim must not lose the ack");
        slot.publish_boot(BootRequest {
            entry: 0,
            context_id: 0,
            big_endian: false,
        });
        slot.mark_on();
        slot.park(None);
        assert_eq!(slot.acked_generation(), 5);
    }

    #[test]
    fn live_count_reaches_zero_only_with_the_last_park() {
        let live = LiveCount::new(1);
        live.claimed(); // cpu0 starts cpu1
        assert!(!live.parked(), "cpu0 parks, cpu1 is still pending");
        assert!(live.parked(), "cpu1 parks: nobody is left");
    }

    #[test]
    fn affinity_info_values_follow_psci() {
        assert_eq!(PowerState::On.affinity_info(), 0);
        assert_eq!(PowerState::Off.affinity_info(), 1);
        assert_eq!(PowerState::OnPending.affinity_info(), 2);
        for s in PowerState::ALL {
            assert_eq!(PowerState::from_affinity_info(s.affinity_info()), Some(s));
            assert_eq!(PowerState::from_name(s.name()), Some(s));
        }
        assert_eq!(PowerState::from_affinity_info(3), None);
        assert_eq!(PowerState::from_name("on"), None);
    }

    #[test]
    fn guest_mpidr_keeps_architectural_bits() {
        assert_eq!(guest_mpidr(0x8000_0001, 0x1), 0x8000_0001, "bit 31 is RES1");
        assert_eq!(
            guest_mpidr(0xC100_0203, 0x203),
            0xC100_0203,
            "U and MT kept"
        );
        assert_eq!(
            guest_mpidr(0x8000_0000, 0x7F_0000_0102),
            0x7F_8000_0102,
            "Aff3 from the DTB"
        );
    }

    #[test]
    fn mpidr_lookup_and_affinity_levels() {
        let vcpus = Vcpus::new(
            &[0x8000_0000, 0x8000_0001, 0x100, 0x1_0000_0000, 0x100],
            |_| false,
        );
        let t = vcpus.table();
        assert_eq!(t.index_of(0x1), Some(1), "MT/U bits are ignored");
        assert_eq!(t.index_of(0x100), Some(2));
        assert_eq!(t.index_of(0x1_0000_0000), Some(3));
        assert_eq!(t.index_of(0x2), None);
        let cluster0: Vec<_> = t.matching(0x5, 1).collect();
        assert_eq!(cluster0, vec![0, 1]);
        let all_aff3_0: Vec<_> = t.matching(0, 3).collect();
        assert_eq!(all_aff3_0, vec![0, 1, 2, 4]);
        assert_eq!(
            t.index_of(0x8000_0100),
            Some(2),
            "a repeated MPIDR names the first vCPU"
        );
    }
}
