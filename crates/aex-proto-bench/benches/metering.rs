//! Metering overhead (issue 19 item 6): the same real-work function (JSON validation) called
//! directly and through the meter, alternating in one run, with the counting allocator
//! installed as a metered module has it. `metering_system_alloc` measures both under the
//! system allocator (the heap then uncounted), so that the allocator's own share shows too.
//!
//! `cargo bench -p aex-proto-bench --bench metering --bench metering_system_alloc`.
//! `BENCHMARKS.md` lists the figures.
#![allow(
    clippy::disallowed_macros,
    reason = "a benchmark: the figures go to stdout"
)]

#[path = "metering/harness.rs"]
mod harness;

aex_metering::count_heap!();

fn main() {
    harness::run("counting");
}
