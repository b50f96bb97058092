//! The aex TEE backend layer.
//!
//! A TEE backend is the trusted platform part of a node: it measures a module, and produces
//! attestation evidence that binds the module's key-agreement public key and the deployer's
//! fresh challenge to that measurement. This crate holds both halves of every backend's
//! attestation scheme, so the format is defined once:
//!
//! * [`Backend`] — the node side: produce evidence for a started module;
//! * [`appraise`] — the deployer side: check evidence against what the deployer expects and,
//!   only on success, mint an [`Appraised`] proof.
//!
//! # Design overview
//!
//! * **Simulated quote-style backend (`sgx`, simulation).** The hardware root is an Ed25519
//!   platform attestation key kept in the node's data directory ([`SimPlatformKey`]). Evidence
//!   ([`SimQuote`]) is a signature by that key over the measurement, `SHA-256(module public
//!   key)` and the challenge. The deployer trusts the platform public key named in its
//!   descriptor (or provisioned by `aex up` for local nodes).
//! * **What simulation protects.** Against the network and against other parties without the
//!   node's data directory: forged, replayed or redirected evidence is refused. Against the
//!   node's operator: nothing. Whoever can read `platform.key` can sign any evidence. Real
//!   hardware puts that key in the CPU.
//! * **Appraisal is a pure function.** It does no I/O and trusts nothing in the evidence that
//!   it has not checked against the deployer's expectations.
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod appraise;
mod kind;
mod sim;

pub use appraise::{appraise, AppraisalError, Appraised, Expected};
pub use kind::{TeeKind, UnknownTeeKind};
pub use sim::{
    Backend, PlatformKeyError, SimPlatformKey, SimQuote, PLATFORM_KEY_FILE, PLATFORM_PUB_FILE,
};
