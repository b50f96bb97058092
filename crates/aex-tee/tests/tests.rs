//! Integration tests of aex-tee: one binary, one module per backend and topic.
//!
//! Every backend is tested for the happy path, forged evidence, an untrusted anchor, a replayed
//! challenge, a mismatched measurement and policy refusals; `arbitrary.rs` runs the
//! backend-agnostic properties once per kind.

mod common;

mod arbitrary;
mod backend;
mod dcap;
mod native;
mod policy;
mod sgx_sim;
mod symmetric;
