//! Atomics used by the cross-CPU protocols. Under `cfg(loom)` they are loom's
//! model-checked atomics, so the park / CPU_ON / fast-stop protocols are
//! exhaustively explored on the host by the `loom` tests.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

/// Spin-wait hint: lets loom switch threads, and is a plain spin elsewhere.
#[inline]
pub fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
