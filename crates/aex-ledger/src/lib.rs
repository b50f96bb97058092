//! aex's governance ledger: an append-only, hash-chained record whose signed Merkle roots
//! yield receipts that anyone can verify offline.
//!
//! * [`entry`]: an entry (a CBOR array: position, time, kind, body, previous entry's hash);
//! * [`ledger`]: the file (a CBOR sequence of entries, each synced as it is appended), signing
//!   (a `signature` entry holds a signed root over every entry before it), receipts, and
//!   [`ledger::verify`], which checks a whole ledger offline and names the first bad entry;
//! * [`root`]: signed roots, COSE_Sign1 (RFC 9052) over the RFC 9162 Merkle root;
//! * [`receipt`]: an entry with a signed root and its inclusion proof, laid out as
//!   draft-ietf-cose-merkle-tree-proofs does (the layout CCF's receipts use).
//!
//! docs/PROTOCOL.md ("Ledger") gives the formats. This crate is outside the module TCB: the
//! deployer and whatever holds a ledger's signing key link it.

pub mod entry;
pub mod error;
pub mod ledger;
pub mod receipt;
pub mod root;

pub use entry::Entry;
pub use error::{Error, Problem};
pub use ledger::{receipt_for, verify, Expect, Ledger, Opened, SignPolicy, Summary};
