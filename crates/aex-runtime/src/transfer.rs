//! State transfer, the module's side: how a state becomes a snapshot, and how a snapshot
//! crosses the deployer in chunks.
//!
//! **Automatic snapshots.** A state type that is `Serialize + Deserialize` is snapshotted as
//! JSON; any other type is not transferable (unless the module has `#[save]`/`#[restore]`).
//! `#[aex::module]` cannot see trait implementations, so it generates a call that method
//! resolution settles at compile time ("autoref specialization"): `(&Probe::<S>::new())
//! .snapshot(state)` finds [`ViaSerde`] (implemented for `Probe<S>`) when `S` is serializable,
//! and otherwise falls back to [`NotTransferable`] (implemented for `&Probe<S>`, one
//! auto-reference further). Module authors never name these items. JSON rather than a binary
//! format because the new instance may run newer code: a field added with `#[serde(default)]`
//! still restores from an old snapshot.
//!
//! **Chunks** (docs/PROTOCOL.md §5). A snapshot may be far larger than a frame, so it never
//! travels in one command: `Retire` answers its length and SHA-256 (`Retirement`), the
//! deployer reads it with `ReadState{offset}`, stages it in the new instance with
//! `WriteState{offset, data}` (`Staged`), and `Restore{len, digest}` applies the staged
//! bytes only if they are exactly the snapshot the old instance described.

use std::marker::PhantomData;

use aex_proto::{CommandReply, Retired, SnapshotInfo, StateBytes, STATE_CHUNK};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What an authentic `Retire` made of this instance: the answer it gave, and the snapshot,
/// answered again (the same) if asked again, and read in chunks.
pub(crate) struct Retirement {
    snapshot: Option<(SnapshotInfo, StateBytes)>,
}

impl Retirement {
    /// Retired with `snapshot` (`None`: the state is not transferable).
    pub(crate) fn new(snapshot: Option<Vec<u8>>) -> Self {
        Retirement {
            snapshot: snapshot.map(|bytes| (SnapshotInfo::of(&bytes), StateBytes(bytes))),
        }
    }

    /// The snapshot, if the state was transferable.
    pub(crate) fn snapshot(&self) -> Option<&[u8]> {
        self.snapshot.as_ref().map(|(_, bytes)| bytes.0.as_slice())
    }

    /// The answer to `Retire` (or `Checkpoint`): the snapshot's length and digest, and the
    /// sealed-state version a persistent instance commits it under.
    pub(crate) fn answer(&self, sealed: Option<u64>) -> CommandReply {
        let retired = Retired {
            state: self.snapshot.as_ref().map(|(info, _)| *info),
            sealed,
        };
        CommandReply::Done(retired.encode())
    }

    /// The answer to `ReadState{offset}`: up to [`STATE_CHUNK`] bytes from `offset`.
    pub(crate) fn read(&self, offset: u64) -> CommandReply {
        let Some((info, bytes)) = &self.snapshot else {
            return CommandReply::Failed("this instance retired with no transferable state".into());
        };
        match usize::try_from(offset) {
            Ok(start) if start < bytes.0.len() || (start == 0 && info.len == 0) => {
                let end = bytes.0.len().min(start.saturating_add(STATE_CHUNK));
                CommandReply::Done(bytes.0[start..end].to_vec())
            }
            _ => CommandReply::Failed(format!(
                "offset {offset} is outside the snapshot ({} bytes)",
                info.len
            )),
        }
    }
}

/// Snapshot bytes a fresh instance received with `WriteState`, waiting for `Restore`.
///
/// Kept as the chunks that arrived (each zeroized on drop) and joined once, at its exact
/// size, by `Restore`: a buffer grown chunk by chunk would leave copies of the state in
/// memory it freed.
#[derive(Default)]
pub(crate) struct Staged {
    chunks: Vec<StateBytes>,
    len: u64,
}

impl Staged {
    /// Appends `data` at `offset`, which must be what is staged so far; 0 starts over.
    pub(crate) fn write(&mut self, offset: u64, data: StateBytes) -> Result<(), String> {
        if data.0.len() > STATE_CHUNK {
            return Err(format!(
                "a state chunk holds at most {STATE_CHUNK} bytes, not {}",
                data.0.len()
            ));
        }
        if offset == 0 {
            self.chunks.clear();
            self.len = 0;
        } else if offset != self.len {
            return Err(format!(
                "state chunk at offset {offset}, but {} bytes are staged",
                self.len
            ));
        }
        self.len += data.0.len() as u64;
        self.chunks.push(data);
        Ok(())
    }

    /// The staged snapshot, if it is `len` bytes with SHA-256 `digest`; what was staged is
    /// consumed either way.
    pub(crate) fn take(&mut self, len: u64, digest: &[u8; 32]) -> Result<StateBytes, String> {
        let chunks = std::mem::take(&mut self.chunks);
        let staged = std::mem::replace(&mut self.len, 0);
        if staged != len {
            return Err(format!(
                "the staged snapshot holds {staged} bytes, not {len} (stage it with WriteState first)"
            ));
        }
        let mut joined = StateBytes(Vec::with_capacity(chunks.iter().map(|c| c.0.len()).sum()));
        for chunk in &chunks {
            joined.0.extend_from_slice(&chunk.0);
        }
        if SnapshotInfo::of(&joined.0).digest != *digest {
            return Err("the staged snapshot's SHA-256 differs from the retired state's".into());
        }
        Ok(joined)
    }
}

/// The type whose transfer is being chosen.
pub struct Probe<S>(PhantomData<fn() -> S>);

impl<S> Probe<S> {
    /// A probe for `S`.
    #[allow(
        clippy::new_without_default,
        reason = "only the macro's expansion makes probes, with `new`; a `Default` would go unused"
    )]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

/// Chosen when the state is serializable.
pub trait ViaSerde<S> {
    /// The state as JSON.
    fn snapshot(&self, state: &S) -> Option<Result<Vec<u8>, String>>;
    /// Replaces `state` with a JSON snapshot.
    fn apply(&self, state: &mut S, snapshot: &[u8]) -> Result<(), String>;
}

impl<S: Serialize + DeserializeOwned> ViaSerde<S> for Probe<S> {
    fn snapshot(&self, state: &S) -> Option<Result<Vec<u8>, String>> {
        Some(serde_json::to_vec(state).map_err(|e| format!("cannot serialize the state: {e}")))
    }

    fn apply(&self, state: &mut S, snapshot: &[u8]) -> Result<(), String> {
        *state = serde_json::from_slice(snapshot)
            .map_err(|e| format!("the snapshot does not decode as this module's state: {e}"))?;
        Ok(())
    }
}

/// The fallback for state that is not serializable.
pub trait NotTransferable<S> {
    /// Nothing to transfer.
    fn snapshot(&self, state: &S) -> Option<Result<Vec<u8>, String>>;
    /// Refuses: there is no format to read.
    fn apply(&self, state: &mut S, snapshot: &[u8]) -> Result<(), String>;
}

impl<S> NotTransferable<S> for &Probe<S> {
    fn snapshot(&self, _: &S) -> Option<Result<Vec<u8>, String>> {
        None
    }

    fn apply(&self, _: &mut S, _: &[u8]) -> Result<(), String> {
        Err("this module's state is not serializable and it has no #[restore] method".into())
    }
}

#[cfg(test)]
#[allow(
    clippy::needless_borrow,
    reason = "the borrow is the mechanism: it is what lets the fallback apply when the first impl does not"
)]
mod tests {
    use super::*;

    #[derive(Default, Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Counter {
        count: u64,
    }

    #[derive(Default)]
    struct Opaque;

    #[test]
    fn serializable_state_round_trips() {
        let s = Counter { count: 7 };
        #[allow(
            unused_imports,
            reason = "as in the macro's expansion, both traits are in scope and the probe picks one"
        )]
        use super::{NotTransferable as _, ViaSerde as _};
        let snap = (&Probe::<Counter>::new()).snapshot(&s).unwrap().unwrap();
        let mut t = Counter::default();
        (&Probe::<Counter>::new()).apply(&mut t, &snap).unwrap();
        assert_eq!(t, s);
        assert!((&Probe::<Counter>::new())
            .apply(&mut t, b"{\"count\": \"x\"}")
            .is_err());
    }

    #[test]
    fn other_state_is_not_transferable() {
        #[allow(
            unused_imports,
            reason = "as in the macro's expansion, both traits are in scope and the probe picks one"
        )]
        use super::{NotTransferable as _, ViaSerde as _};
        assert!((&Probe::<Opaque>::new()).snapshot(&Opaque).is_none());
        assert!((&Probe::<Opaque>::new()).apply(&mut Opaque, b"{}").is_err());
    }
}
