//! A member's share on its way from the governor to the member: sealed to the X25519 key the
//! member's signed request carried, so that the share is readable by that member's process
//! only, whatever carries it or logs it.
//!
//! The construction is the usual ephemeral-static one (as HPKE's base mode and ECIES):
//!
//! ```text
//! e            = a fresh X25519 secret of the governor, used once
//! shared       = X25519(e, reply_key)           (refused if not contributory)
//! key          = HKDF-SHA-256(salt = E || reply_key, ikm = shared,
//!                             info = "aex recovery share v1")
//! ciphertext   = ChaCha20-Poly1305(key, nonce = 0, aad = CBOR(header), share)
//! ```
//!
//! `E` (the governor's public key for `e`) travels in the header; the nonce can be 0 because
//! every key is used for one message only.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::{decode, encode, RecoveryError, SHARE_LEN};

/// The most bytes a sealed share may have (a header of names and keys, and 49 bytes).
pub const MAX_SEALED_SHARE: usize = 8 * 1024;

const INFO: &[u8] = b"aex recovery share v1";

/// What a sealed share says in the clear (and authenticates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareHeader {
    /// The governed application.
    pub application: String,
    /// The member whose share it is.
    pub member: String,
    /// The id of the recovery key it is a share of.
    #[serde(with = "serde_bytes")]
    pub key_id: [u8; 32],
    /// Shares needed to rebuild the key.
    pub threshold: u32,
    /// Shares made (one per member).
    pub members: u32,
    /// The digest of the constitution the shares were made under.
    #[serde(with = "serde_bytes")]
    pub constitution: [u8; 32],
    /// The governor's ephemeral X25519 public key.
    #[serde(with = "serde_bytes")]
    pub ephemeral: [u8; 32],
    /// The member's X25519 public key it is sealed to.
    #[serde(with = "serde_bytes")]
    pub reply_key: [u8; 32],
}

/// A share sealed to a member's key: what `POST /recovery/share` answers (CBOR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedShare {
    /// What it says in the clear.
    pub header: ShareHeader,
    /// The share, sealed.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl SealedShare {
    /// Decodes one, bounded in bytes. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedShare, RecoveryError> {
        decode(bytes, MAX_SEALED_SHARE, "sealed share")
    }

    /// Its CBOR encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
}

fn cipher(shared: &[u8; 32], ephemeral: &[u8; 32], reply_key: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(reply_key);
    let mut key = Zeroizing::new([0u8; 32]);
    // Invariant: 32 bytes is far below HKDF-SHA-256's limit.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared).expand(INFO, key.as_mut_slice());
    ChaCha20Poly1305::new(key.as_slice().into())
}

/// Seals `share` to the member's `header.reply_key`; `header.ephemeral` is set here.
pub fn seal_share(mut header: ShareHeader, share: &[u8]) -> Result<SealedShare, RecoveryError> {
    let e = EphemeralSecret::random_from_rng(OsRng);
    header.ephemeral = PublicKey::from(&e).to_bytes();
    let shared = e.diffie_hellman(&PublicKey::from(header.reply_key));
    if !shared.was_contributory() {
        return Err(RecoveryError::Malformed {
            what: "share request",
            reason: "its reply key is a low-order X25519 point: nothing sealed to it is secret"
                .into(),
        });
    }
    let aad = encode(&header);
    let ciphertext = cipher(shared.as_bytes(), &header.ephemeral, &header.reply_key)
        .encrypt(
            &Default::default(),
            Payload {
                msg: share,
                aad: &aad,
            },
        )
        .map_err(|_| RecoveryError::Malformed {
            what: "share",
            reason: "it does not seal".into(),
        })?;
    Ok(SealedShare { header, ciphertext })
}

/// The member's side of a share request: a fresh X25519 secret, used once.
pub struct ReplySecret {
    secret: EphemeralSecret,
    public: [u8; 32],
}

impl Default for ReplySecret {
    fn default() -> Self {
        ReplySecret::new()
    }
}

impl ReplySecret {
    /// A fresh one.
    pub fn new() -> ReplySecret {
        let secret = EphemeralSecret::random_from_rng(OsRng);
        let public = PublicKey::from(&secret).to_bytes();
        ReplySecret { secret, public }
    }

    /// The public key the request carries.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Opens the governor's answer: the share, which must be [`SHARE_LEN`] bytes, and the
    /// header. An answer sealed to another key, or altered, does not open.
    pub fn open(self, sealed: &SealedShare) -> Result<Zeroizing<Vec<u8>>, RecoveryError> {
        let header = &sealed.header;
        if header.reply_key != self.public {
            return Err(RecoveryError::DoesNotOpen {
                what: "sealed share",
                reason: "it is sealed to another request's key",
            });
        }
        let shared = self
            .secret
            .diffie_hellman(&PublicKey::from(header.ephemeral));
        if !shared.was_contributory() {
            return Err(RecoveryError::Malformed {
                what: "sealed share",
                reason: "its ephemeral key is a low-order X25519 point".into(),
            });
        }
        let aad = encode(header);
        let share = Zeroizing::new(
            cipher(shared.as_bytes(), &header.ephemeral, &header.reply_key)
                .decrypt(
                    &Default::default(),
                    Payload {
                        msg: &sealed.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| RecoveryError::DoesNotOpen {
                    what: "sealed share",
                    reason: "altered on the way, or not sealed by the governor to this request",
                })?,
        );
        if share.len() != SHARE_LEN {
            return Err(RecoveryError::Malformed {
                what: "share",
                reason: format!("{} bytes, not {SHARE_LEN}", share.len()),
            });
        }
        Ok(share)
    }
}
