//! The hypervisor heap: everything between the end of the image and the end
//! of the hypervisor region (see `linker/hypervisor.ld`).

use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<33> = LockedHeap::empty();

unsafe extern "C" {
    static dma_region: u8;
    static hv_region_end: u8;
}

pub fn init() {
    let (start, end) = (
        &raw const dma_region as usize,
        &raw const hv_region_end as usize,
    );
    // SAFETY: [start, end) is hypervisor RAM after the image that nothing else
    // uses (the linker script reserves it), identity mapped as normal memory.
    unsafe { HEAP.lock().init(start, end - start) };
}
