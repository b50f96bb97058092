//! One ledger entry and its encoding.
//!
//! An entry is a CBOR array (RFC 8949) of five items:
//!
//! ```text
//! [ seq: uint, time_ms: uint, kind: tstr, body: bstr, prev: bstr .size 32 ]
//! ```
//!
//! `seq` is its position (from 0), `time_ms` when it was appended (milliseconds since the Unix
//! epoch, by the appender's clock: informative, not trusted), `kind` what it records
//! (`proposal`, `ballot`, `action`, `signature`, …), `body` the record itself, and `prev` the
//! SHA-256 of the previous entry's encoding as stored (32 zero bytes for entry 0): the hash
//! chain. The Merkle tree's leaf for an entry is the entry's encoding as stored.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Problem};

/// The most bytes an entry's body may have.
pub const MAX_BODY: usize = 1 << 20;

/// The most bytes an entry's kind may have.
pub const MAX_KIND: usize = 64;

/// The kind of the entries that carry signed roots.
pub const SIGNATURE: &str = "signature";

/// The first byte of every entry: a CBOR array of five items (major type 4, length 5).
const ARRAY_OF_FIVE: u8 = 0x85;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// A ledger entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its position in the ledger, from 0.
    pub seq: u64,
    /// When it was appended, milliseconds since the Unix epoch (the appender's clock).
    pub time_ms: u64,
    /// What it records.
    pub kind: String,
    /// The record.
    pub body: Vec<u8>,
    /// The SHA-256 of the previous entry's encoding (zeros for entry 0).
    pub prev: Hash,
}

/// The wire form: a CBOR array of five.
#[derive(Serialize, Deserialize)]
struct Wire(
    u64,
    u64,
    String,
    #[serde(with = "serde_bytes")] Vec<u8>,
    #[serde(with = "serde_bytes")] Vec<u8>,
);

impl Entry {
    /// The entry's CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        let wire = Wire(
            self.seq,
            self.time_ms,
            self.kind.clone(),
            self.body.clone(),
            self.prev.to_vec(),
        );
        let mut out = Vec::with_capacity(self.body.len() + self.kind.len() + 64);
        // Invariant: writing plain integers, strings and byte strings to a Vec cannot fail.
        ciborium::into_writer(&wire, &mut out).unwrap_or_default();
        out
    }

    /// Decodes the entry at the start of `input`; returns it and the bytes it took. Never
    /// panics; `at` (the position expected there) only names the entry in the error.
    pub fn decode_prefix(input: &[u8], at: u64) -> Result<(Entry, usize), Error> {
        match input.first() {
            None => return Err(Error::at(at, Problem::Incomplete)),
            // Exactly an array of five, with its length up front: a decoder that read five
            // items of a longer array would leave the rest to be taken for the next entry.
            Some(&ARRAY_OF_FIVE) => {}
            Some(other) => {
                return Err(Error::at(
                    at,
                    Problem::Malformed(format!(
                    "it starts with byte {other:#04x}, not {ARRAY_OF_FIVE:#04x} (an array of five)"
                )),
                ))
            }
        }
        let mut rest = input;
        let wire: Wire = ciborium::from_reader(&mut rest).map_err(|e| {
            let what = match e {
                ciborium::de::Error::Io(_) => Problem::Incomplete,
                other => Problem::Malformed(other.to_string()),
            };
            Error::at(at, what)
        })?;
        let used = input.len() - rest.len();
        let Wire(seq, time_ms, kind, body, prev) = wire;
        check_sizes(&kind, &body).map_err(|why| Error::at(at, Problem::Malformed(why)))?;
        let prev: Hash = prev.try_into().map_err(|p: Vec<u8>| {
            Error::at(
                at,
                Problem::Malformed(format!(
                    "a previous-entry hash of {} bytes (not 32)",
                    p.len()
                )),
            )
        })?;
        Ok((
            Entry {
                seq,
                time_ms,
                kind,
                body,
                prev,
            },
            used,
        ))
    }
}

/// Whether an entry's kind and body are within [`MAX_KIND`] and [`MAX_BODY`]; if not, why.
/// One rule for entries read and entries appended.
pub(crate) fn check_sizes(kind: &str, body: &[u8]) -> Result<(), String> {
    if kind.len() > MAX_KIND {
        return Err(format!(
            "a kind of {} bytes (at most {MAX_KIND})",
            kind.len()
        ));
    }
    if body.len() > MAX_BODY {
        return Err(format!(
            "a body of {} bytes (at most {MAX_BODY})",
            body.len()
        ));
    }
    Ok(())
}

/// SHA-256 of `bytes`: what the next entry's `prev` holds for an entry encoded as `bytes`.
pub fn hash(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 7,
            time_ms: 1_700_000_000_000,
            kind: "ballot".into(),
            body: b"approve".to_vec(),
            prev: [9; 32],
        }
    }

    #[test]
    fn an_entry_is_a_cbor_array_of_five() {
        let bytes = entry().encode();
        // 0x85: an array of five items.
        assert_eq!(bytes[0], 0x85);
        let (back, used) = Entry::decode_prefix(&bytes, 7).unwrap();
        assert_eq!((back, used), (entry(), bytes.len()));
    }

    #[test]
    fn bad_entries_are_named_not_panicked_on() {
        let bytes = entry().encode();
        let torn = Entry::decode_prefix(&bytes[..bytes.len() - 3], 4).unwrap_err();
        assert_eq!(
            torn.to_string(),
            "entry 4: incomplete (the input ends inside it)"
        );
        let mut short_prev = entry();
        short_prev.kind = "x".repeat(MAX_KIND + 1);
        let e = Entry::decode_prefix(&short_prev.encode(), 2).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("entry 2: malformed: a kind of 65 bytes"),
            "{e}"
        );
        let e = Entry::decode_prefix(&[0xa1, 0x01, 0x02], 0).unwrap_err();
        assert!(e.to_string().starts_with("entry 0: malformed"), "{e}");
    }

    proptest! {
        #[test]
        fn entries_round_trip(seq: u64, time_ms: u64, kind in "[a-z]{0,64}", body in proptest::collection::vec(any::<u8>(), 0..512), prev: [u8; 32]) {
            let e = Entry { seq, time_ms, kind, body, prev };
            let bytes = e.encode();
            let (back, used) = Entry::decode_prefix(&bytes, seq).unwrap();
            prop_assert_eq!(back, e);
            prop_assert_eq!(used, bytes.len());
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Entry::decode_prefix(&bytes, 0);
        }
    }
}
