//! A counting global allocator: the system allocator, plus two counters per thread, the heap
//! bytes the thread holds and the most it held since its last [`reset_peak`].
//!
//! `aex-metering` installs it in a module binary (`count_heap!()`) to report the peak heap of
//! each function invocation. The counters are thread-local and plain (no atomic operations,
//! no locks), so counting costs little next to the allocation itself (an earlier
//! process-wide counter with two atomic read-modify-writes per allocation made JSON parsing
//! about 25 % slower), and a call is charged for what its own
//! thread allocates, not for other threads' allocations in the meantime.
//!
//! A thread that frees memory another thread allocated counts it down: its count may go below
//! zero, and a peak is measured from the level at the reset, so that only what a call
//! allocated beyond what it freed counts.
//!
//! This is the workspace's only unsafe code: one `unsafe impl GlobalAlloc` whose methods pass
//! every call to [`System`] unchanged.
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    // `const` and without a destructor: reading them never allocates and never fails, also
    // while the thread is being torn down, as an allocator's bookkeeping must.
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting per thread. Install it with
/// `#[global_allocator] static A: CountingAllocator = CountingAllocator;`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

/// Adds `delta` bytes to this thread's count and raises its peak.
#[inline]
fn count(delta: isize) {
    let held = HELD.with(|h| {
        let held = h.get().wrapping_add(delta);
        h.set(held);
        held
    });
    PEAK.with(|p| {
        if held > p.get() {
            p.set(held);
        }
    });
}

/// A size as a signed count (allocations never exceed `isize::MAX` bytes).
#[inline]
fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; every method delegates to System"
)]
// SAFETY: every method passes its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract, and answers what `System` answered; the counting beside it touches
// only this thread's `Cell`s, never the memory, and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` (a non-zero-size layout) is `System.alloc`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(signed(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator, that is from `System`,
        // with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr` came from `System` with `layout` and that
        // `new_size` is valid for it; `System.realloc` has the same contract (and may grow in
        // place, which a counting wrapper must not prevent).
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(signed(new_size).wrapping_sub(signed(layout.size())));
        }
        new
    }
}

/// The heap bytes this thread holds, by its count (allocated minus freed, by this thread).
pub fn held() -> isize {
    HELD.with(Cell::get)
}

/// Lowers this thread's peak to what it holds now, and answers that level.
pub fn reset_peak() -> isize {
    let held = held();
    PEAK.with(|p| p.set(held));
    held
}

/// The most this thread held since its last [`reset_peak`].
pub fn peak() -> isize {
    PEAK.with(Cell::get)
}

/// Whether [`CountingAllocator`] is the process's global allocator (checked once: an
/// allocation that leaves this thread's count where it was is not counted).
pub fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let before = held();
        let probe = std::hint::black_box(Box::new(0u64));
        let counted = held() != before;
        drop(probe);
        counted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static A: CountingAllocator = CountingAllocator;

    #[test]
    fn counts_this_threads_heap_and_its_peak() {
        assert!(installed());
        let base = reset_peak();
        let mut v: Vec<u8> = Vec::with_capacity(1000);
        assert_eq!(held() - base, 1000);
        v.reserve_exact(3000);
        assert_eq!(held() - base, 3000, "a realloc counts its difference");
        drop(v);
        assert_eq!(held(), base);
        assert!(peak() - base >= 3000, "{} {}", peak(), base);
        // Another thread's allocations are its own.
        let base = reset_peak();
        std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1 << 20])))
            .join()
            .unwrap();
        assert!(peak() - base < 1 << 20, "{}", peak() - base);
    }
}
