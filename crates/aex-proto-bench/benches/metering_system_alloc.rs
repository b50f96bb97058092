//! The `metering` bench under the system allocator: the meter without heap counting against
//! the direct call, and the direct call's baseline that shows what the counting allocator
//! itself costs (see `metering.rs`).
#![allow(
    clippy::disallowed_macros,
    reason = "a benchmark: the figures go to stdout"
)]

#[path = "metering/harness.rs"]
mod harness;

fn main() {
    harness::run("system");
}
