//! The governor's recovery backup: its recoverable state, encrypted under a key derived from
//! the recovery key, with a header in the clear that members compare and that the
//! encryption authenticates.
//!
//! ```text
//! backup     = CBOR { header, ciphertext }
//! key        = HKDF-SHA-256(ikm = recovery key, info = "aex recovery backup v1")
//! ciphertext = XChaCha20-Poly1305(key, nonce = header.nonce (24 random bytes),
//!                                 aad = CBOR(header), plaintext)
//! ```
//!
//! The key is the same for every backup of one recovery key, so the nonce is random and long
//! enough (192 bits) that two backups never share one.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{decode, encode, RecoveryError, RecoveryKey};

/// The most bytes a backup may have.
pub const MAX_BACKUP: usize = 64 << 20;

/// The version of the backup's format.
pub const BACKUP_VERSION: u32 = 1;

/// What a backup says in the clear: enough for members to tell which is the latest, and for
/// a new governor to check it is the consortium's before any share is used on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// [`BACKUP_VERSION`].
    pub version: u32,
    /// The governed application.
    pub application: String,
    /// The digest of the constitution in force when it was made.
    #[serde(with = "serde_bytes")]
    pub constitution: [u8; 32],
    /// The id of the recovery key it is encrypted under.
    #[serde(with = "serde_bytes")]
    pub key_id: [u8; 32],
    /// Shares needed to rebuild that key.
    pub threshold: u32,
    /// Each member's share's digest ([`super::share_digest`]), by member name.
    pub shares: BTreeMap<String, serde_bytes::ByteBuf>,
    /// Counts up with each backup the governor makes, across recovery keys: of two backups,
    /// the one with the higher sequence is the later.
    pub sequence: u64,
    /// Proposals in the book it holds.
    pub proposals: u64,
    /// Entries of the audit ledger its deployer state marks as signed (0: none yet).
    pub ledger_size: u64,
    /// That mark's Merkle root, hex (empty: none yet).
    pub ledger_root: String,
    /// When it was made, by the governor's host clock (milliseconds since the Unix epoch;
    /// informative only).
    pub made_ms: u64,
    /// The XChaCha20-Poly1305 nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 24],
}

/// A backup: the header, and the state sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// What it says in the clear.
    pub header: BackupHeader,
    /// The recoverable state, sealed.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` under `key` with `header` (its `key_id` and `nonce` are set here): the
/// backup's bytes.
pub fn seal_backup(key: &RecoveryKey, mut header: BackupHeader, plaintext: &[u8]) -> Vec<u8> {
    header.version = BACKUP_VERSION;
    header.key_id = key.id();
    header.nonce = aex_crypto::random_bytes::<24>();
    let aad = encode(&header);
    let backup_key = key.backup_key();
    // Invariant: XChaCha20-Poly1305 encrypts any plaintext below 256 GiB.
    let ciphertext = XChaCha20Poly1305::new(backup_key.as_slice().into())
        .encrypt(
            (&header.nonce).into(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    encode(&Backup { header, ciphertext })
}

impl Backup {
    /// Its CBOR encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a backup, bounded in bytes; nothing is decrypted yet. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Backup, RecoveryError> {
        let backup: Backup = decode(bytes, MAX_BACKUP, "recovery backup")?;
        if backup.header.version != BACKUP_VERSION {
            return Err(RecoveryError::Malformed {
                what: "recovery backup",
                reason: format!(
                    "format version {}, this governor reads {BACKUP_VERSION}",
                    backup.header.version
                ),
            });
        }
        Ok(backup)
    }

    /// The state it holds, if `key` is the one it was sealed under and nothing was altered.
    pub fn open(&self, key: &RecoveryKey) -> Result<Zeroizing<Vec<u8>>, RecoveryError> {
        if key.id() != self.header.key_id {
            return Err(RecoveryError::DoesNotOpen {
                what: "recovery backup",
                reason: "it was made under another recovery key than these shares rebuild \
                         (shares of an older or newer key, or a wrong share)",
            });
        }
        let aad = encode(&self.header);
        let backup_key = key.backup_key();
        XChaCha20Poly1305::new(backup_key.as_slice().into())
            .decrypt(
                (&self.header.nonce).into(),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| RecoveryError::DoesNotOpen {
                what: "recovery backup",
                reason: "its header or its sealed state was altered or truncated",
            })
    }
}
