//! Recovery shares: how the members restore their governor on a new node when its node is
//! lost for good (docs/ARCHITECTURE.md, "Recovery"; docs/PROTOCOL.md §13).
//!
//! The governor's state is sealed to its node: when that node is gone, so is every key the
//! governor held for the consortium. So the governor also makes a random *recovery key* in
//! its TEE, splits it `k` of `n` over the members with Shamir's scheme (over GF(256), from the
//! `blahaj` crate: one polynomial per byte of the key, member `i` of the constitution, in
//! name order, gets the point `x = i + 1`), and keeps a *backup* of its recoverable state
//! encrypted under a key derived from the recovery key. `k` members' shares rebuild the key
//! and open the backup; fewer learn nothing about it (Shamir's scheme is information-theoretic:
//! `k - 1` points of a degree `k - 1` polynomial leave its constant term uniform).
//!
//! This module is the part both sides need: the member asks for its share ([`ShareRequest`],
//! signed) with a fresh X25519 key and opens the answer ([`ReplySecret::open`]); the governor
//! seals it ([`seal_share`]), and on a new node combines submitted shares ([`combine`],
//! [`ShareSubmission`]) and opens the backup ([`Backup`]).

mod backup;
mod share;

use std::collections::BTreeSet;

use blahaj::{Share, Sharks};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use backup::{seal_backup, Backup, BackupHeader, BACKUP_VERSION, MAX_BACKUP};
pub use share::{seal_share, ReplySecret, SealedShare, ShareHeader, MAX_SEALED_SHARE};

use crate::signed::Signed;

/// The length of the recovery key, in bytes.
pub const KEY_LEN: usize = 32;

/// The length of one member's share: the point's `x`, then one `y` byte per key byte.
pub const SHARE_LEN: usize = KEY_LEN + 1;

/// Why a share, a sealed share or a backup was refused. Never holds secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// Not what it claims to be; says why and what is valid.
    #[error("not a valid {what}: {reason}")]
    Malformed {
        /// What was expected.
        what: &'static str,
        /// Why not.
        reason: String,
    },
    /// Fewer distinct shares than the threshold.
    #[error("{have} of {need} shares: the recovery key needs {need} members' shares")]
    TooFew {
        /// Distinct shares given.
        have: usize,
        /// Shares needed.
        need: usize,
    },
    /// Authenticated decryption failed: the wrong key, or altered bytes.
    #[error("the {what} does not open: {reason}")]
    DoesNotOpen {
        /// What did not open.
        what: &'static str,
        /// The likely causes.
        reason: &'static str,
    },
    /// A threshold or member count the scheme cannot take.
    #[error("cannot split the recovery key {need} of {members}: {reason}")]
    Split {
        /// Shares needed.
        need: usize,
        /// Members.
        members: usize,
        /// Why not.
        reason: &'static str,
    },
}

/// The governor's recovery key: 32 random bytes, made in its TEE. It never leaves it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The id only: the key itself is never printed.
        write!(f, "RecoveryKey({})", hex::encode(self.id()))
    }
}

impl RecoveryKey {
    /// A fresh random key, from the operating system's generator.
    pub fn random() -> RecoveryKey {
        RecoveryKey(Zeroizing::new(aex_crypto::random_bytes::<KEY_LEN>()))
    }

    /// The key of these bytes (a key kept sealed, read back).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> RecoveryKey {
        RecoveryKey(Zeroizing::new(bytes))
    }

    /// Its bytes, to keep sealed.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A public name for the key, `HKDF-SHA-256(ikm = key, info = "aex recovery key id v1")`:
    /// shares and backups carry it, so a share of one key is never combined with another's
    /// or tried on another key's backup.
    pub fn id(&self) -> [u8; 32] {
        *self.derive(b"aex recovery key id v1")
    }

    /// The backup's encryption key, `HKDF-SHA-256(ikm = key, info = "aex recovery backup v1")`.
    fn backup_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"aex recovery backup v1")
    }

    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        // Invariant: 32 bytes is far below HKDF-SHA-256's 8160-byte limit.
        let _ = Hkdf::<Sha256>::new(None, self.0.as_slice()).expand(info, out.as_mut_slice());
        out
    }

    /// Splits the key over `members` (in this order) so that any `need` of their shares
    /// rebuild it: one [`SHARE_LEN`]-byte share per member. `need` is 1 to `members`, and
    /// `members` at most 255 (GF(256) has 255 non-zero points).
    pub fn split(
        &self,
        need: usize,
        members: usize,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, RecoveryError> {
        let refuse = |reason| RecoveryError::Split {
            need,
            members,
            reason,
        };
        if need == 0 || need > members {
            return Err(refuse("the threshold must be 1 to the number of members"));
        }
        let threshold = u8::try_from(need).map_err(|_| refuse("at most 255 shares"))?;
        if members > 255 {
            return Err(refuse("at most 255 shares"));
        }
        Ok(Sharks(threshold)
            .dealer(self.0.as_slice())
            .take(members)
            .map(|share| Zeroizing::new(Vec::from(&share)))
            .collect())
    }
}

/// The digest a backup keeps of each member's share, `SHA-256("aex recovery share v1" ||
/// share)`: it names a wrong share before the key is rebuilt. A share has 256 bits the other
/// members cannot guess, so its digest tells them nothing of it.
pub fn share_digest(share: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"aex recovery share v1");
    h.update(share);
    h.finalize().into()
}

/// Rebuilds the key from at least `need` shares of distinct points. A share that is not
/// [`SHARE_LEN`] bytes, or is the point 0, is refused; a wrong share of the right form gives
/// a wrong key, which the backup's authentication then refuses.
pub fn combine(need: usize, shares: &[&[u8]]) -> Result<RecoveryKey, RecoveryError> {
    let mut points = BTreeSet::new();
    let mut parsed = Vec::with_capacity(shares.len());
    for share in shares {
        if share.len() != SHARE_LEN {
            return Err(RecoveryError::Malformed {
                what: "share",
                reason: format!("{} bytes, not {SHARE_LEN}", share.len()),
            });
        }
        if share[0] == 0 {
            return Err(RecoveryError::Malformed {
                what: "share",
                reason: "its point is 0, which no member holds".into(),
            });
        }
        // One share per point: the same share twice counts once.
        if points.insert(share[0]) {
            parsed.push(
                Share::try_from(*share).map_err(|e| RecoveryError::Malformed {
                    what: "share",
                    reason: e.to_owned(),
                })?,
            );
        }
    }
    if need == 0 || points.len() < need {
        return Err(RecoveryError::TooFew {
            have: points.len(),
            need,
        });
    }
    let threshold = u8::try_from(need).map_err(|_| RecoveryError::TooFew {
        have: points.len(),
        need,
    })?;
    // Exactly `need` points: more would interpolate a higher-degree polynomial through
    // points of a wrong share too, and `need` determine the key.
    parsed.truncate(need);
    let bytes = Zeroizing::new(Sharks(threshold).recover(&parsed).map_err(|e| {
        RecoveryError::Malformed {
            what: "set of shares",
            reason: e.to_owned(),
        }
    })?);
    let key: [u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| RecoveryError::Malformed {
            what: "set of shares",
            reason: "they do not rebuild a 32-byte key".into(),
        })?;
    Ok(RecoveryKey::from_bytes(key))
}

/// A member asks the governor for their share: signed by the member, with a fresh X25519
/// public key the governor seals the share to ([`seal_share`]). Replaying it gets a replayer
/// only a share sealed to a key whose secret they do not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRequest {
    /// The governed application.
    pub application: String,
    /// The member's fresh X25519 public key.
    #[serde(with = "serde_bytes")]
    pub reply_key: [u8; 32],
    /// When it was made, by the member's clock (milliseconds since the Unix epoch).
    pub created_ms: u64,
}

impl Signed for ShareRequest {
    const CONTENT_TYPE: &'static str = "application/aex-share-request+cbor";
    const WHAT: &'static str = "share request";
}

/// A member hands their share to a new governor (over attested TLS to it, whose measurement
/// and constitution the member checked first), signed so that only members' shares count.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSubmission {
    /// The governed application.
    pub application: String,
    /// The id of the recovery key the share is of ([`RecoveryKey::id`]).
    #[serde(with = "serde_bytes")]
    pub key_id: [u8; 32],
    /// The share, [`SHARE_LEN`] bytes.
    #[serde(with = "serde_bytes")]
    pub share: Vec<u8>,
}

impl std::fmt::Debug for ShareSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareSubmission")
            .field("application", &self.application)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl Drop for ShareSubmission {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.share);
    }
}

impl Signed for ShareSubmission {
    const CONTENT_TYPE: &'static str = "application/aex-share-submission+cbor";
    const WHAT: &'static str = "share submission";
}

/// Decodes CBOR of at most `max` bytes, with errors naming `what`. Never panics.
fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, RecoveryError> {
    if bytes.len() > max {
        return Err(RecoveryError::Malformed {
            what,
            reason: format!("{} bytes, more than the {max} allowed", bytes.len()),
        });
    }
    ciborium::from_reader(bytes).map_err(|e| RecoveryError::Malformed {
        what,
        reason: format!("not the CBOR map docs/PROTOCOL.md §13 gives: {e}"),
    })
}

/// CBOR of `value`. Invariant: the types here (strings, byte strings, integers, maps of
/// them) always encode.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap_or_default();
    bytes
}

#[cfg(test)]
mod tests;
