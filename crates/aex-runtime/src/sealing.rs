//! What a persistent module's runtime holds besides its state (docs/PROTOCOL.md §9): the
//! platform's sealing key, the counter and version of its last commit, and the effects held
//! for the next commit. The data only, so that `core.rs` can hold it without importing the
//! behaviour, which is `persist.rs`'s (`impl Core`).

use std::collections::BTreeMap;

use aex_crypto::SecretKey;
use aex_proto::FromModule;

/// A persistent module's side of sealing.
#[derive(Default)]
pub(crate) struct Persistence {
    /// The platform's sealing key (`ToModule::Sealing`).
    pub(crate) sealing: Option<SecretKey>,
    /// The command key, kept to seal it (set at attestation or resumption).
    pub(crate) command_key: Option<SecretKey>,
    /// The platform counter, once created.
    pub(crate) counter: Option<[u8; 16]>,
    /// The platform counter's value at the last commit.
    pub(crate) committed: u64,
    /// Logical versions are this much above the platform counter's values (blob versions,
    /// what status shows): a restored instance continues above its predecessor's.
    pub(crate) offset: u64,
    /// Something changed since the last commit.
    pub(crate) dirty: bool,
    /// Messages handled since the last commit.
    pub(crate) handled: usize,
    /// Effects waiting for the next commit.
    pub(crate) held: Vec<FromModule>,
    /// Answers to module threads' `Handle::call_committed`, sent once the state their call
    /// left is committed (dropped with the process otherwise, which fails the call).
    pub(crate) held_answers: Vec<Box<dyn FnOnce() + Send>>,
    /// Device writes held or released whose answer has not come: id and device (at most
    /// `HELD_WRITES`, the oldest forgotten first).
    pub(crate) held_writes: BTreeMap<u64, String>,
    /// A blob arriving in chunks for resumption: its version and bytes so far.
    pub(crate) incoming: Option<(u64, Vec<u8>)>,
    /// Why the blobs handed over so far were refused.
    pub(crate) refusals: Vec<String>,
    /// Resumed from a blob (later `Resume`s are ignored).
    pub(crate) resumed: bool,
    /// The id of the next counter call.
    pub(crate) next_call: u64,
}
