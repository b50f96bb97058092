//! A persistent test module sealed by signer: the test kit's `tally`
//! (`../../tally/src/total.rs`) with `#[aex::module(persistent(signer))]`, so that its sealing
//! key is its deployer's and its name's on the node, not its code's. An update of it (a new
//! measurement on the same node) opens what the old instance sealed, and takes its state from
//! there instead of from the deployer's copy.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

include!("../../tally/src/total.rs");

tally_module!(persistent(signer), outputs(receipt));

aex::main!(Tally);
