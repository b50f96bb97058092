//! Automatic state transfer: a state type that is `Serialize + Deserialize` is snapshotted as
//! JSON; any other type is not transferable.
//!
//! `#[aex::module]` cannot see trait implementations, so it generates a call that method
//! resolution settles at compile time ("autoref specialization"): `(&Probe::<S>::new())
//! .snapshot(state)` finds [`ViaSerde`] (implemented for `Probe<S>`) when `S` is serializable,
//! and otherwise falls back to [`NotTransferable`] (implemented for `&Probe<S>`, one
//! auto-reference further). Module authors never name these items.
//!
//! JSON rather than a binary format because the new instance may run newer code: a field
//! added with `#[serde(default)]` still restores from an old snapshot.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The type whose transfer is being chosen.
pub struct Probe<S>(PhantomData<fn() -> S>);

impl<S> Probe<S> {
    /// A probe for `S`.
    #[allow(clippy::new_without_default)]
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
// The borrow is the mechanism: it is what lets the fallback apply when the first impl does not.
#[allow(clippy::needless_borrow)]
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
        #[allow(unused_imports)]
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
        #[allow(unused_imports)]
        use super::{NotTransferable as _, ViaSerde as _};
        assert!((&Probe::<Opaque>::new()).snapshot(&Opaque).is_none());
        assert!((&Probe::<Opaque>::new()).apply(&mut Opaque, b"{}").is_err());
    }
}
