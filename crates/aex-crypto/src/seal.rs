//! Sealing: what a module writes to storage it does not trust, and the answers of the
//! platform's monotonic counters.
//!
//! The platform gives each module a **sealing key** bound to its identity on that platform
//! (docs/PROTOCOL.md §9): on `sgx` from the platform's sealing root and the measurement, on
//! `trustzone`/`sancus` from the module key (so from the stakeholder's provider key too), on
//! `native` from a root the node's files hold. This file builds two things on that key:
//!
//! * **Sealed blobs** ([`seal_blob`], [`open_blob`]): a fresh random 32-byte salt per blob, a
//!   blob key `HKDF-SHA-256(salt, sealing key, "aex/v1 blob key")`, and AES-256-GCM under it
//!   with nonce 0 (the key is used once). The salt makes the nonce question disappear: two
//!   blobs sealed from the same state by two processes that crashed at the same point still get
//!   different keys, where a counter nonce would repeat.
//! * **Counter answers** ([`CounterAnswer`]): the platform's monotonic counter service
//!   authenticates each answer with an HMAC under `HKDF(sealing key, "aex/v1 counter key")`,
//!   bound to the module's fresh nonce, the counter's id, the operation, its value and the
//!   digest of the blob committed at that value, so the node agent that relays it can neither
//!   forge a value nor replay an old answer.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::aead::{Algorithm, Nonce, OpenError, SealingKey, TAG_LEN};
use crate::keys::{random_bytes, SecretKey};
use crate::measure::Measurement;

/// Bytes a sealed blob adds to its plaintext: the salt and the tag.
pub const BLOB_OVERHEAD: usize = SALT_LEN + TAG_LEN;

/// Length of a blob's salt.
const SALT_LEN: usize = 32;

/// Length of a platform counter's id.
pub const COUNTER_ID_LEN: usize = 16;

/// The sealing key of the module measured `measurement` on a platform whose sealing root is
/// `root`, for the kind named `kind` (`sgx`, `native`): `HKDF-SHA-256(ikm = root, info = "aex/v1
/// sealing key " || kind || measurement)`.
pub fn sealing_key(root: &SecretKey, kind: &str, measurement: &Measurement) -> SecretKey {
    derive(
        root,
        None,
        &[b"aex/v1 sealing key ", kind.as_bytes(), &measurement.0],
    )
}

/// The sealing key of a module that seals by signer (`#[aex::module(persistent(signer))]`, the
/// MRSIGNER policy of SGX): `HKDF-SHA-256(ikm = root, info = "aex/v1 signer sealing key " ||
/// kind || signer (32) || len(product) (u32 be) || product)`. Not the code: every instance of
/// `product` that `signer` deploys on this platform derives it, so an update (new code, new
/// measurement) opens what its predecessor sealed.
pub fn signer_sealing_key(
    root: &SecretKey,
    kind: &str,
    signer: &[u8; 32],
    product: &str,
) -> SecretKey {
    let len = u32::try_from(product.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    derive(
        root,
        None,
        &[
            b"aex/v1 signer sealing key ",
            kind.as_bytes(),
            signer,
            &len,
            product.as_bytes(),
        ],
    )
}

/// The sealing key of a module on a symmetric platform: `HKDF-SHA-256(ikm = module key, info
/// = "aex/v1 symmetric sealing key")`. The module key already binds the provider and the
/// measurement.
pub fn symmetric_sealing_key(module_key: &SecretKey) -> SecretKey {
    derive(module_key, None, &[b"aex/v1 symmetric sealing key"])
}

/// A key for `purpose` derived from a module's sealing key: `HKDF-SHA-256(ikm = sealing key,
/// info = "aex/v1 sealed purpose key " || purpose)`. Module code gets such keys (never the
/// sealing key itself) for secrets that must survive restarts without being stored, such as
/// the receipt signing key of `aex-metering`; the distinct info keeps them apart from the blob
/// keys ([`seal_blob`]).
pub fn purpose_key(sealing: &SecretKey, purpose: &str) -> SecretKey {
    derive(
        sealing,
        None,
        &[b"aex/v1 sealed purpose key ", purpose.as_bytes()],
    )
}

/// Seals `plaintext` under `key` (a sealing key), authenticating `aad` too: `salt (32) ||
/// AES-256-GCM(blob key, nonce 0, aad, plaintext) || tag`.
pub fn seal_blob(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let salt = random_bytes::<SALT_LEN>();
    let cipher = SealingKey::new(Algorithm::AesGcm, &blob_key(key, &salt));
    let sealed = cipher.seal(Nonce::new(0, 0), aad, plaintext);
    let mut out = Vec::with_capacity(SALT_LEN + sealed.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a blob [`seal_blob`] made under `key` with the same `aad`.
pub fn open_blob(key: &SecretKey, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, OpenError> {
    let Some((salt, sealed)) = blob.split_first_chunk::<SALT_LEN>() else {
        return Err(OpenError);
    };
    let cipher = SealingKey::new(Algorithm::AesGcm, &blob_key(key, salt));
    cipher.open(Nonce::new(0, 0), aad, sealed)
}

fn blob_key(key: &SecretKey, salt: &[u8; SALT_LEN]) -> SecretKey {
    derive(key, Some(salt), &[b"aex/v1 blob key"])
}

/// What a platform counter operation was, bound into its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// A new counter, at 0.
    Create,
    /// The current value.
    Read,
    /// The value after adding one.
    Increment,
    /// A compare-and-advance that found the counter at another value: it stays there.
    Stayed,
}

impl CounterOp {
    fn label(self) -> &'static [u8] {
        match self {
            CounterOp::Create => b"create",
            CounterOp::Read => b"read",
            CounterOp::Increment => b"increment",
            CounterOp::Stayed => b"stayed",
        }
    }
}

/// An answer of the platform's counter service: the counter's value after `op`, for the
/// module's `nonce`, and the platform's MAC over all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterAnswer {
    /// The counter.
    pub id: [u8; COUNTER_ID_LEN],
    /// Its value after the operation.
    pub value: u64,
    /// The digest the counter holds with its value: the SHA-256 of the blob committed at that
    /// value (zeros for a new counter), so that two blobs of one version (a fork's) are told
    /// apart.
    pub digest: [u8; 32],
    /// HMAC-SHA-256 under the counter key (see the file's documentation).
    pub mac: [u8; 32],
}

impl CounterAnswer {
    /// The platform's answer: counter `id` at `value` holding `digest` after `op`, asked with
    /// `nonce`, by the module whose sealing key is `sealing_key`.
    pub fn sign(
        sealing_key: &SecretKey,
        op: CounterOp,
        nonce: &[u8; 16],
        id: [u8; COUNTER_ID_LEN],
        (value, digest): (u64, [u8; 32]),
    ) -> Self {
        let mac = counter_mac(sealing_key, op, nonce, &id, value, &digest);
        CounterAnswer {
            id,
            value,
            digest,
            mac,
        }
    }

    /// Whether this is the platform's answer to `op` with `nonce` (in constant time).
    pub fn verify(&self, sealing_key: &SecretKey, op: CounterOp, nonce: &[u8; 16]) -> bool {
        counter_mac(sealing_key, op, nonce, &self.id, self.value, &self.digest)
            .ct_eq(&self.mac)
            .into()
    }
}

fn counter_mac(
    sealing_key: &SecretKey,
    op: CounterOp,
    nonce: &[u8; 16],
    id: &[u8; COUNTER_ID_LEN],
    value: u64,
    digest: &[u8; 32],
) -> [u8; 32] {
    let key = derive(sealing_key, None, &[b"aex/v1 counter key"]);
    // Invariant: HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
        .expect("HMAC takes any key length");
    for part in [
        b"aex/v1 counter ".as_slice(),
        op.label(),
        nonce,
        id,
        &value.to_be_bytes(),
        digest,
    ] {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn derive(ikm: &SecretKey, salt: Option<&[u8]>, info: &[&[u8]]) -> SecretKey {
    let hk = Hkdf::<Sha256>::new(salt, ikm.expose_secret());
    let mut out = [0u8; 32];
    // Invariant: 32 bytes is far below HKDF-SHA-256's limit of 255 * 32.
    hk.expand_multi_info(info, &mut out)
        .expect("32 bytes is a valid HKDF output length");
    SecretKey::from_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    #[test]
    fn blobs_open_under_their_key_and_aad_only() {
        let blob = seal_blob(&key(1), b"aad", b"state");
        assert_eq!(open_blob(&key(1), b"aad", &blob).unwrap(), b"state");
        assert!(open_blob(&key(2), b"aad", &blob).is_err());
        assert!(open_blob(&key(1), b"other", &blob).is_err());
        assert!(open_blob(&key(1), b"aad", &blob[..20]).is_err());
        assert_eq!(blob.len(), 5 + BLOB_OVERHEAD);
    }

    #[test]
    fn the_same_state_sealed_twice_gives_different_blobs() {
        assert_ne!(seal_blob(&key(1), b"", b"x"), seal_blob(&key(1), b"", b"x"));
    }

    #[test]
    fn sealing_keys_differ_by_root_kind_and_measurement() {
        let m = Measurement([7; 32]);
        let a = sealing_key(&key(1), "sgx", &m);
        assert_ne!(
            a.expose_secret(),
            sealing_key(&key(2), "sgx", &m).expose_secret()
        );
        assert_ne!(
            a.expose_secret(),
            sealing_key(&key(1), "native", &m).expose_secret()
        );
        assert_ne!(
            a.expose_secret(),
            sealing_key(&key(1), "sgx", &Measurement([8; 32])).expose_secret()
        );
        assert_ne!(
            symmetric_sealing_key(&key(1)).expose_secret(),
            key(1).expose_secret()
        );
    }

    #[test]
    fn counter_answers_bind_op_nonce_id_and_value() {
        let k = key(3);
        let answer = CounterAnswer::sign(&k, CounterOp::Read, &[1; 16], [2; 16], (5, [6; 32]));
        assert!(answer.verify(&k, CounterOp::Read, &[1; 16]));
        assert!(!answer.verify(&key(4), CounterOp::Read, &[1; 16]));
        assert!(!answer.verify(&k, CounterOp::Increment, &[1; 16]));
        assert!(!answer.verify(&k, CounterOp::Read, &[9; 16]));
        let mut bumped = answer;
        bumped.value = 6;
        assert!(!bumped.verify(&k, CounterOp::Read, &[1; 16]));
        let mut moved = answer;
        moved.id = [3; 16];
        assert!(!moved.verify(&k, CounterOp::Read, &[1; 16]));
        let mut other_blob = answer;
        other_blob.digest = [7; 32];
        assert!(!other_blob.verify(&k, CounterOp::Read, &[1; 16]));
    }

    proptest! {
        #[test]
        fn open_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = open_blob(&key(1), b"", &bytes);
        }
    }
}
