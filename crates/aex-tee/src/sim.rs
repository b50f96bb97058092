//! The simulated quote-style backend: an Ed25519 platform key standing in for the CPU's
//! attestation key.
//!
//! Invariant: the private platform key exists only in `platform.key` (mode 0600) in the
//! node's data directory and in the [`SimPlatformKey`] loaded from it; it is never sent.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aex_crypto::{sha256, Measurement};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::kind::TeeKind;

/// File holding the simulated platform key's 32-byte seed.
pub const PLATFORM_KEY_FILE: &str = "platform.key";
/// File holding the platform public key as hex (what operators give deployers).
pub const PLATFORM_PUB_FILE: &str = "platform.pub";

const QUOTE_LABEL: &[u8] = b"aex/v1 simulated sgx quote";

/// What a node's TEE backend does for the node agent.
pub trait Backend: Send + Sync {
    /// The TEE kind.
    fn kind(&self) -> TeeKind;
    /// The public platform identity deployers trust.
    fn platform_identity(&self) -> Vec<u8>;
    /// Evidence that a module with `measurement` holds the private key of `module_pk`, fresh
    /// for `challenge`.
    fn evidence(
        &self,
        measurement: &Measurement,
        module_pk: &[u8; 32],
        challenge: &[u8; 32],
    ) -> Vec<u8>;
}

/// Loading or creating the platform key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformKeyError {
    /// Reading or writing the key file failed.
    #[error("cannot {action} platform key `{path}`: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file exists but is not a 32-byte seed.
    #[error("platform key `{path}` is corrupt: expected 32 bytes, found {len}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// The simulated hardware root of a node: an Ed25519 attestation key.
pub struct SimPlatformKey {
    signing: SigningKey,
}

impl SimPlatformKey {
    /// Loads `dir/platform.key`, creating it (and `platform.pub`) on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, PlatformKeyError> {
        let path = dir.join(PLATFORM_KEY_FILE);
        if path.exists() {
            let bytes = Zeroizing::new(fs::read(&path).map_err(|source| PlatformKeyError::Io {
                action: "read",
                path: path.clone(),
                source,
            })?);
            let seed: [u8; 32] =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| PlatformKeyError::Corrupt {
                        path: path.clone(),
                        len: bytes.len(),
                    })?;
            let key = SimPlatformKey {
                signing: SigningKey::from_bytes(&seed),
            };
            key.write_public(dir)?;
            return Ok(key);
        }
        let key = SimPlatformKey {
            signing: SigningKey::generate(&mut OsRng),
        };
        fs::create_dir_all(dir).map_err(|source| PlatformKeyError::Io {
            action: "create the directory of",
            path: path.clone(),
            source,
        })?;
        write_private(&path, key.signing.as_bytes()).map_err(|source| PlatformKeyError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        key.write_public(dir)?;
        Ok(key)
    }

    /// The platform's public identity.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    fn write_public(&self, dir: &Path) -> Result<(), PlatformKeyError> {
        let path = dir.join(PLATFORM_PUB_FILE);
        fs::write(&path, format!("{}\n", hex::encode(self.public_key()))).map_err(|source| {
            PlatformKeyError::Io {
                action: "write",
                path,
                source,
            }
        })
    }

    /// Signs a quote (the simulated hardware's job).
    pub fn quote(
        &self,
        measurement: &Measurement,
        module_pk: &[u8; 32],
        challenge: &[u8; 32],
    ) -> SimQuote {
        let report_data = sha256(&[module_pk]);
        let platform_key = self.public_key();
        let msg = SimQuote::signed_bytes(measurement, &report_data, challenge, &platform_key);
        SimQuote {
            tee: TeeKind::Sgx.name().into(),
            simulated: true,
            measurement: measurement.0,
            report_data,
            challenge: *challenge,
            platform_key,
            signature: self.signing.sign(&msg).to_bytes().to_vec(),
        }
    }
}

impl Backend for SimPlatformKey {
    fn kind(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn platform_identity(&self) -> Vec<u8> {
        self.public_key().to_vec()
    }

    fn evidence(
        &self,
        measurement: &Measurement,
        module_pk: &[u8; 32],
        challenge: &[u8; 32],
    ) -> Vec<u8> {
        self.quote(measurement, module_pk, challenge).encode()
    }
}

/// Evidence of the simulated quote-style backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimQuote {
    /// TEE kind the evidence claims (`"sgx"`).
    pub tee: String,
    /// Always true for this backend: appraisal policies can refuse simulation outright.
    pub simulated: bool,
    /// The module's measurement.
    pub measurement: [u8; 32],
    /// `SHA-256(module public key)`.
    pub report_data: [u8; 32],
    /// The deployer's challenge.
    pub challenge: [u8; 32],
    /// The signing platform key.
    pub platform_key: [u8; 32],
    /// Ed25519 signature over [`SimQuote::signed_bytes`].
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl SimQuote {
    /// The exact bytes the platform key signs.
    pub fn signed_bytes(
        measurement: &Measurement,
        report_data: &[u8; 32],
        challenge: &[u8; 32],
        platform_key: &[u8; 32],
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(QUOTE_LABEL.len() + 128);
        m.extend_from_slice(QUOTE_LABEL);
        m.extend_from_slice(&measurement.0);
        m.extend_from_slice(report_data);
        m.extend_from_slice(challenge);
        m.extend_from_slice(platform_key);
        m
    }

    /// Wire encoding (postcard).
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: a plain struct of byte arrays always serializes.
        postcard::to_stdvec(self).expect("quote serializes")
    }

    /// Verifies the signature against `platform_key` (the trusted one, not the embedded one).
    pub(crate) fn signature_valid(&self, platform_key: &[u8; 32]) -> bool {
        let Ok(vk) = VerifyingKey::from_bytes(platform_key) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&self.signature) else {
            return false;
        };
        let msg = Self::signed_bytes(
            &Measurement(self.measurement),
            &self.report_data,
            &self.challenge,
            &self.platform_key,
        );
        vk.verify_strict(&msg, &sig).is_ok()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = SimPlatformKey::load_or_create(dir.path()).unwrap();
        let b = SimPlatformKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let pubhex = fs::read_to_string(dir.path().join(PLATFORM_PUB_FILE)).unwrap();
        assert_eq!(pubhex.trim(), hex::encode(a.public_key()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(PLATFORM_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(PLATFORM_KEY_FILE), b"short").unwrap();
        let err = SimPlatformKey::load_or_create(dir.path()).err().unwrap();
        assert!(
            err.to_string().contains("expected 32 bytes, found 5"),
            "{err}"
        );
    }
}
