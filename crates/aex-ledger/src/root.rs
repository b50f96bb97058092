//! Signed roots: a COSE_Sign1 (RFC 9052) by the ledger's signer over the Merkle root of the
//! entries before it.
//!
//! The protected header holds `alg` (EdDSA, -8), `kid` (the signer's 32-byte Ed25519 public
//! key), `vds` (label 395, the verifiable data structure of draft-ietf-cose-merkle-tree-proofs:
//! 1, RFC9162_SHA256) and the tree size the root covers (private label -65537). The payload is
//! the 32-byte root. A receipt (`receipt.rs`) is the same COSE_Sign1 with an inclusion proof
//! in its unprotected header.

use aex_crypto::{verify_signature, SigningIdentity, PUBLIC_IDENTITY_LEN, SIGNATURE_LEN};
use coset::iana::Algorithm;
use coset::{CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};

use crate::entry::Hash;

/// Header label of the verifiable data structure (draft-ietf-cose-merkle-tree-proofs).
pub const VDS: i64 = 395;
/// Header label of the verifiable data proofs (draft-ietf-cose-merkle-tree-proofs).
pub const VDP: i64 = 396;
/// `vds` value: the Merkle tree of RFC 9162 with SHA-256.
pub const RFC9162_SHA256: i64 = 1;
/// Private header label: how many entries the root covers.
pub const TREE_SIZE: i64 = -65_537;

/// A root whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRoot {
    /// Entries the root covers (entries 0 to `size - 1`).
    pub size: u64,
    /// The Merkle root (RFC 9162, SHA-256) of those entries.
    pub root: Hash,
    /// The signer's Ed25519 public key.
    pub signer: [u8; PUBLIC_IDENTITY_LEN],
}

/// Signs `root` over `size` entries as `signer`: a tagged COSE_Sign1.
pub fn sign(signer: &SigningIdentity, size: u64, root: &Hash) -> Vec<u8> {
    let protected = HeaderBuilder::new()
        .algorithm(Algorithm::EdDSA)
        .key_id(signer.public().to_vec())
        .value(VDS, RFC9162_SHA256.into())
        .value(TREE_SIZE, size.into())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(root.to_vec())
        .create_signature(&[], |tbs| signer.sign(tbs).to_vec())
        .build();
    // Invariant: a COSE_Sign1 of byte strings and integers always encodes.
    sign1.to_tagged_vec().unwrap_or_default()
}

/// Decodes a tagged (or untagged) COSE_Sign1.
pub(crate) fn decode(bytes: &[u8]) -> Result<CoseSign1, String> {
    CoseSign1::from_tagged_slice(bytes)
        .or_else(|_| CoseSign1::from_slice(bytes))
        .map_err(|e| format!("not a COSE_Sign1: {e}"))
}

/// Checks a signed root: its headers, its signature under the key it names, and that the key
/// is one of `trusted` (any key if `trusted` is empty; the caller then reports the signer).
pub fn open(bytes: &[u8], trusted: &[[u8; PUBLIC_IDENTITY_LEN]]) -> Result<SignedRoot, String> {
    open_decoded(&decode(bytes)?, trusted)
}

pub(crate) fn open_decoded(
    sign1: &CoseSign1,
    trusted: &[[u8; PUBLIC_IDENTITY_LEN]],
) -> Result<SignedRoot, String> {
    let header = &sign1.protected.header;
    if header.alg
        != Some(coset::RegisteredLabelWithPrivate::Assigned(
            Algorithm::EdDSA,
        ))
    {
        return Err("its algorithm is not EdDSA".into());
    }
    let signer: [u8; PUBLIC_IDENTITY_LEN] = header
        .key_id
        .as_slice()
        .try_into()
        .map_err(|_| "its key id is not a 32-byte Ed25519 public key".to_string())?;
    if !trusted.is_empty() && !trusted.contains(&signer) {
        return Err(format!(
            "signed by {}, which is not a trusted signer",
            hex::encode(signer)
        ));
    }
    let label = |l: i64| {
        header
            .rest
            .iter()
            .find(|(k, _)| *k == coset::Label::Int(l))
            .map(|(_, v)| v)
    };
    let vds = label(VDS).and_then(|v| v.as_integer()).map(i128::from);
    if vds != Some(i128::from(RFC9162_SHA256)) {
        return Err("its verifiable data structure is not RFC9162_SHA256".into());
    }
    let size = label(TREE_SIZE)
        .and_then(|v| v.as_integer())
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| "it names no tree size".to_string())?;
    let root: Hash = sign1
        .payload
        .as_deref()
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| "its payload is not a 32-byte root".to_string())?;
    sign1.verify_signature(&[], |sig, tbs| {
        let sig: &[u8; SIGNATURE_LEN] = sig
            .try_into()
            .map_err(|_| "its signature is not 64 bytes".to_string())?;
        verify_signature(&signer, tbs, sig).map_err(|_| "its signature does not verify".to_string())
    })?;
    Ok(SignedRoot { size, root, signer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_root_opens_and_a_changed_one_does_not() {
        let signer = SigningIdentity::from_seed(&[5; 32]);
        let signed = sign(&signer, 12, &[3; 32]);
        let root = open(&signed, &[]).unwrap();
        assert_eq!(
            root,
            SignedRoot {
                size: 12,
                root: [3; 32],
                signer: signer.public()
            }
        );
        assert!(open(&signed, &[signer.public()]).is_ok());
        let other = SigningIdentity::from_seed(&[6; 32]).public();
        assert!(open(&signed, &[other])
            .unwrap_err()
            .contains("not a trusted signer"));
        // Any byte changed: the signature, the root or the headers no longer hold.
        for i in 0..signed.len() {
            let mut bad = signed.clone();
            bad[i] ^= 0x01;
            if let Ok(root) = open(&bad, &[signer.public()]) {
                panic!("byte {i} changed and still opened: {root:?}");
            }
        }
    }
}
