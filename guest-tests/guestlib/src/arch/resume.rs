//! Resuming a CPU where it was stopped: a CPU that FAST_STOP takes out in
//! the middle of [`ResumePoint::run`] can be started again (CPU_ON, fresh
//! stack) into a job that calls [`ResumePoint::resume`], and carries on as
//! if `run` had returned `true` (setjmp/longjmp).

use super::smp::this_cpu;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// No CPU is inside `run`.
const NOBODY: usize = usize::MAX;

core::arch::global_asm!(
    r#"
    // The callee-saved registers but sp, in the buffer at x0: `op` is stp
    // (save) or ldp (restore). sp goes at offset 96.
    .macro pv_jmpbuf op
    \op     x19, x20, [x0, #0]
    \op     x21, x22, [x0, #16]
    \op     x23, x24, [x0, #32]
    \op     x25, x26, [x0, #48]
    \op     x27, x28, [x0, #64]
    \op     x29, x30, [x0, #80]
    \op     d8, d9, [x0, #104]
    \op     d10, d11, [x0, #120]
    \op     d12, d13, [x0, #136]
    \op     d14, d15, [x0, #152]
    .endm

    .text
    .balign 4
    // x0 = 21-word buffer: x19..x30, sp, d8..d15. Returns 0.
    .global pv_setjmp
pv_setjmp:
    pv_jmpbuf stp
    mov     x9, sp
    str     x9, [x0, #96]
    mov     x0, #0
    ret

    // x0 = a buffer pv_setjmp filled: returns from that pv_setjmp with 1.
    .global pv_longjmp
pv_longjmp:
    pv_jmpbuf ldp
    ldr     x9, [x0, #96]
    mov     sp, x9
    mov     x0, #1
    ret
"#
);

unsafe extern "C" {
    fn pv_setjmp(buf: *mut [u64; 21]) -> u64;
    fn pv_longjmp(buf: *const [u64; 21]) -> !;
}

/// Where a stopped CPU can carry on (one CPU inside [`run`](Self::run) at a
/// time).
pub struct ResumePoint {
    regs: UnsafeCell<[u64; 21]>,
    /// The CPU inside `run`, or [`NOBODY`].
    owner: AtomicUsize,
}

// SAFETY: `regs` is written only by the CPU entering `run` while `owner` says
// nobody is inside (checked), and read only by that same CPU in `resume`.
unsafe impl Sync for ResumePoint {}

impl ResumePoint {
    pub const fn new() -> Self {
        Self {
            regs: UnsafeCell::new([0; 21]),
            owner: AtomicUsize::new(NOBODY),
        }
    }

    /// Runs `f` on the calling CPU and returns false. If the CPU is stopped
    /// while in `f` and later calls [`resume`](Self::resume) (from a job,
    /// after CPU_ON), `run` returns true instead, on the stack it was
    /// called on.
    #[inline(never)]
    pub fn run(&self, f: impl FnOnce()) -> bool {
        let me = this_cpu();
        let was = self.owner.compare_exchange(NOBODY, me, AcqRel, Acquire);
        assert!(was.is_ok(), "resume point already used by cpu{:?}", was);
        // SAFETY: `regs` is ours (owner claimed above). The second return
        // (from `resume`) restores the callee-saved registers and stack
        // pointer of this frame, which is still live: `resume` only runs
        // while `owner` is this CPU, i.e. this call has not returned; and
        // that path reads nothing from the frame but returns a constant.
        if unsafe { pv_setjmp(self.regs.get()) } != 0 {
            return true;
        }
        f();
        self.owner.store(NOBODY, Release);
        false
    }

    /// Carries on in the [`run`](Self::run) the calling CPU was stopped in.
    /// Panics if the calling CPU is not inside this point's `run`.
    pub fn resume(&self) -> ! {
        let me = this_cpu();
        let owner = self.owner.load(Acquire);
        assert!(
            owner == me,
            "cpu{} resumes a point owned by {:#x}",
            me,
            owner
        );
        self.owner.store(NOBODY, Release);
        // SAFETY: this CPU is inside `run` (owner) and now executes here on
        // another stack, so `run`'s frame is live and nobody else uses it;
        // `regs` was filled by its pv_setjmp.
        unsafe { pv_longjmp(self.regs.get()) }
    }
}

impl Default for ResumePoint {
    fn default() -> Self {
        Self::new()
    }
}
