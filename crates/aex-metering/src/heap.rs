//! Peak heap bytes per invocation: the counting global allocator of `aex-heap`, which the
//! module binary installs with [`count_heap!`](crate::count_heap).
//!
//! The allocator counts, per thread, the heap bytes the thread holds and the most it held
//! since a reset. An invocation resets the peak to the current level when it starts, and
//! reports the peak minus that level when it ends: the most heap the function's thread held at
//! once beyond what it held before the call. Other threads' allocations do not count (the
//! runtime's reader thread, or threads the function starts: their heap is not billed).

/// The counting allocator's type; `count_heap!()` installs it. Not for direct use.
#[doc(hidden)]
pub use aex_heap::CountingAllocator as CountingHeap;

/// Installs the counting allocator as the module binary's global allocator, so that receipts
/// carry the peak heap of each invocation. Write it once, in the module's `main.rs`:
///
/// ```text
/// aex::metering::count_heap!();
/// ```
///
/// Without it receipts say the heap was not counted (and carry 0 bytes).
#[macro_export]
macro_rules! count_heap {
    () => {
        #[global_allocator]
        static AEX_METERING_HEAP: $crate::heap::CountingHeap = $crate::heap::CountingHeap;
    };
}

/// The heap's level when a call starts, or `None` when the counting allocator is not
/// installed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start(Option<isize>);

/// Resets this thread's peak to its current level and answers the level.
pub(crate) fn start() -> Start {
    if !aex_heap::installed() {
        return Start(None);
    }
    Start(Some(aex_heap::reset_peak()))
}

/// The most bytes this thread held at once since `start`, above its level then.
pub(crate) fn peak_since(start: Start) -> Option<u64> {
    let base = start.0?;
    Some(u64::try_from(aex_heap::peak().saturating_sub(base)).unwrap_or(0))
}
