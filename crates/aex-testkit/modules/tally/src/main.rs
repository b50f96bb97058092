//! A persistent test module: a running total that must survive its process.
//!
//! `#[aex::module(persistent)]` makes the runtime seal the state (and the module's keys and
//! counters) into blobs its node stores, and the node restart the module when its process
//! dies. The sealed-state tests kill it, swap its blobs, copy them, and check that the total
//! neither resets, nor goes back, nor forks. Every event on `add` also emits a receipt (the
//! new total), so a test sees that outputs are released once the state that made them is
//! committed; `drive` writes a device, which is held the same way.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

include!("total.rs");

tally_module!(persistent, outputs(receipt));

aex::main!(Tally);
