//! The deployer's own durable state: module keys, connection keys and counters.
//!
//! Invariants:
//! * the state lives beside the descriptor in an embedded transactional database,
//!   `.aex/state.redb` ([redb]), never inside the descriptor; the file is created with mode
//!   0600 before anything is written to it, and an existing file that others may read is
//!   narrowed back to 0600 (with a warning) before it is read;
//! * every [`StateFile::save`] is one write transaction, committed durably (fsynced) before it
//!   returns, so a crash — SIGKILL included — at any point leaves either the state before or
//!   the state after that save, never a torn one;
//! * a command counter is reserved and saved *before* the command is sent, so no counter is
//!   ever used twice under a module key, even across crashes;
//! * one process at a time: a [`StateFile`] holds an exclusive OS lock on `.aex/state.lock`
//!   from before it reads the state until it is dropped, so two `aex` commands on the same
//!   application (say a following `aex up` and an `aex output`) never work from stale copies
//!   and never reserve the same counter twice. A second `aex` waits for the first, told who
//!   holds it and, if it set a limit, no longer than that (`lock`).
//!
//! One file per concept: `records` holds the serialized types ([`State`] and the records in
//! it), `store` keeps them in the database ([`StateFile`]; its layout is described there), and
//! `legacy` imports the `.aex/state.json` of an older deployer once.

mod error;
#[cfg(test)]
mod fixtures;
mod legacy;
mod lock;
mod records;
mod store;

pub use error::StateError;
pub use lock::{LockHolder, LockWait};
pub use records::{
    slot_name, ConnectionRecord, LedgerMark, ModuleRecord, NodeRecord, RetiredInstance, Revocation,
    Snapshot, State, StoredKey,
};
pub use store::{node_data_dir, StateFile, STATE_DIR, STATE_FILE};
