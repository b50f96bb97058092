//! Peak heap bytes per invocation: a counting global allocator that the module binary
//! installs with [`count_heap!`](crate::count_heap).
//!
//! The allocator (`peak_alloc`) wraps the system allocator and keeps two process-wide
//! counters, the bytes allocated now and the most allocated at once since the last reset. An
//! invocation resets the peak to the current level when it starts, and reports the peak minus
//! that level when it ends: the most heap the call held at once beyond what was allocated
//! before it. The counters are the process's, not the thread's: allocations by the runtime's
//! other threads during the call count too (the runtime's reader thread holds incoming frames;
//! docs/SECURITY.md "Metering and receipts" says what that means for billing).

use peak_alloc::PeakAlloc;

/// The counting allocator's type; `count_heap!()` installs it. Not for direct use.
#[doc(hidden)]
pub use peak_alloc::PeakAlloc as CountingHeap;

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
pub(crate) struct Start(Option<usize>);

/// Resets the peak to the current level and answers the level.
pub(crate) fn start() -> Start {
    let now = PeakAlloc.current_usage();
    // Every process has allocated something (arguments, environment, buffers) before a
    // function runs: a level of 0 means the counter is not the process's allocator.
    if now == 0 {
        return Start(None);
    }
    PeakAlloc.reset_peak_usage();
    Start(Some(now))
}

/// The most bytes held at once since `start`, above its level.
pub(crate) fn peak_since(start: Start) -> Option<u64> {
    let base = start.0?;
    Some(PeakAlloc.peak_usage().saturating_sub(base) as u64)
}
