//! Receipts: proof, offline, that an entry is in the ledger.
//!
//! A receipt is a CBOR array of two byte strings, `[entry, signed]`: the entry's encoding as
//! stored, and the signed root that covers it (`root.rs`) with an inclusion proof in its
//! unprotected header, as draft-ietf-cose-merkle-tree-proofs lays out for RFC9162_SHA256:
//! label 396 (`vdp`) maps -1 (inclusion proofs) to an array holding one
//! `bstr .cbor [tree_size, leaf_index, [+ bstr]]`. One difference from the draft: the root is
//! the COSE payload rather than detached, so a verifier checks the proof against the root the
//! signature covers.
//!
//! Verifying needs nothing but the receipt and, to pin who signed, the signer's public key:
//! the entry's leaf hash and the proof's path give the root, which must be the signed one, and
//! the proof's tree size the signed size.

use aex_crypto::PUBLIC_IDENTITY_LEN;
use ciborium::Value;
use coset::{HeaderBuilder, TaggedCborSerializable};
use ct_merkle::{InclusionProof, RootHash};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::entry::Entry;
use crate::error::{Error, Problem};
use crate::root::{self, SignedRoot, VDP};

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The entry.
    pub entry: Entry,
    /// The signed root that covers it.
    pub root: SignedRoot,
}

#[derive(Serialize, Deserialize)]
struct Wire(
    #[serde(with = "serde_bytes")] Vec<u8>,
    #[serde(with = "serde_bytes")] Vec<u8>,
);

/// A receipt for the entry encoded as `entry` at `index`, in a tree of `size` entries, with the
/// inclusion proof `path` (RFC 9162 order, leaf to root), from `signed`, the signature entry's
/// signed root over those entries: the proof goes into its unprotected header, which the
/// signature does not cover, so anyone holding the ledger can make receipts, without the key.
pub(crate) fn build(
    signed: &[u8],
    entry: &[u8],
    index: u64,
    size: u64,
    path: &[u8],
) -> Result<Vec<u8>, String> {
    let hashes = path
        .chunks(32)
        .map(|h| Value::Bytes(h.to_vec()))
        .collect::<Vec<_>>();
    let proof = Value::Array(vec![size.into(), index.into(), Value::Array(hashes)]);
    let mut proof_bytes = Vec::new();
    // Invariant: an array of integers and byte strings always encodes.
    ciborium::into_writer(&proof, &mut proof_bytes).unwrap_or_default();
    let proofs = Value::Map(vec![(
        Value::Integer((-1).into()),
        Value::Array(vec![Value::Bytes(proof_bytes)]),
    )]);
    let mut sign1 = root::decode(signed)?;
    sign1.unprotected = HeaderBuilder::new().value(VDP, proofs).build();
    let signed = sign1
        .to_tagged_vec()
        .map_err(|e| format!("cannot encode the receipt: {e}"))?;
    let mut out = Vec::new();
    ciborium::into_writer(&Wire(entry.to_vec(), signed), &mut out)
        .map_err(|e| format!("cannot encode the receipt: {e}"))?;
    Ok(out)
}

/// Verifies a receipt: its signed root (signed by one of `trusted`, or by anyone if empty),
/// and the entry's inclusion under that root. Never panics.
pub fn verify(receipt: &[u8], trusted: &[[u8; PUBLIC_IDENTITY_LEN]]) -> Result<Proven, Error> {
    let bad = |why: String| Error::whole(Problem::BadReceipt(why));
    let not_a_receipt = || bad("not a CBOR array of an entry and a signed root".into());
    // Exactly an array of two (0x82), and nothing after it.
    if receipt.first() != Some(&0x82) {
        return Err(not_a_receipt());
    }
    let mut rest = receipt;
    let Wire(entry_bytes, signed) =
        ciborium::from_reader(&mut rest).map_err(|_| not_a_receipt())?;
    if !rest.is_empty() {
        return Err(bad("it has trailing bytes".into()));
    }
    let (entry, used) = Entry::decode_prefix(&entry_bytes, 0)
        .map_err(|e| bad(format!("its entry does not decode: {}", e.problem)))?;
    if used != entry_bytes.len() {
        return Err(bad("its entry has trailing bytes".into()));
    }
    let sign1 = root::decode(&signed).map_err(bad)?;
    let root = root::open_decoded(&sign1, trusted).map_err(bad)?;
    let proof = sign1
        .unprotected
        .rest
        .iter()
        .find(|(k, _)| *k == coset::Label::Int(VDP))
        .map(|(_, v)| v)
        .ok_or_else(|| bad("it carries no inclusion proof".into()))?;
    let (size, index, path) = inclusion(proof).map_err(bad)?;
    if size != root.size {
        return Err(bad(format!(
            "its proof is for {size} entries, its signed root for {}",
            root.size
        )));
    }
    if index != entry.seq {
        return Err(bad(format!(
            "its proof is for entry {index}, its entry is entry {}",
            entry.seq
        )));
    }
    let digest: sha2::digest::Output<Sha256> = root.root.into();
    RootHash::<Sha256>::new(digest, size)
        .verify_inclusion(&entry_bytes, index, &InclusionProof::from_bytes(path))
        .map_err(|e| {
            Error::at(
                entry.seq,
                Problem::BadReceipt(format!("not included under the signed root ({e:?})")),
            )
        })?;
    Ok(Proven { entry, root })
}

/// `{-1: [bstr .cbor [tree_size, leaf_index, [+ bstr]]]}` → its three parts.
fn inclusion(proofs: &Value) -> Result<(u64, u64, Vec<u8>), String> {
    let malformed = || "its inclusion proof is malformed".to_string();
    let Value::Map(map) = proofs else {
        return Err(malformed());
    };
    let list = map
        .iter()
        .find(|(k, _)| k.as_integer() == Some((-1).into()))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(malformed)?;
    let [Value::Bytes(one)] = list.as_slice() else {
        return Err("it carries other than one inclusion proof".into());
    };
    let parsed: Value = ciborium::from_reader(one.as_slice()).map_err(|_| malformed())?;
    let Value::Array(parts) = parsed else {
        return Err(malformed());
    };
    let [size, index, Value::Array(hashes)] = parts.as_slice() else {
        return Err(malformed());
    };
    let number = |v: &Value| {
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(malformed)
    };
    let mut path = Vec::with_capacity(hashes.len() * 32);
    for h in hashes.iter().take(64) {
        match h {
            Value::Bytes(b) if b.len() == 32 => path.extend_from_slice(b),
            _ => return Err(malformed()),
        }
    }
    if hashes.len() > 64 {
        return Err("its inclusion proof is longer than any tree's".into());
    }
    Ok((number(size)?, number(index)?, path))
}
