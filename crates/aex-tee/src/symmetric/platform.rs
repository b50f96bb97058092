//! The `trustzone` and `sancus` backends: the simulated node key, provider key files, and the
//! appraisal of MAC evidence.
//!
//! Files:
//!
//! ```text
//! <data dir>/<kind>-node.key   32 raw bytes, the simulated node key (0600); kind = trustzone|sancus
//! provider key file            64 lowercase hex characters + "\n": the provider key of one
//!                              deployer identity on this node, written (0600) by the node's
//!                              operator (`aex node provider-key`, or `aex up` for its local
//!                              nodes) for that deployer alone; read by `ProviderKey::read_file`
//! ```
//!
//! Invariant: the node key never leaves [`SimSymmetricPlatform`]; a provider key leaves it only
//! through [`SimSymmetricPlatform::provider_key`] (the operator's act, for one provider), and
//! a [`ProviderKey`] never prints its bytes.

use std::path::{Path, PathBuf};

use aex_crypto::{Measurement, SecretKey};
use zeroize::Zeroizing;

use super::keys::{
    module_key, node_key_id, provider_key, provider_key_fingerprint, provider_key_id,
    verify_attest_mac, Transcript, FINGERPRINT_LEN, KEY_ID_LEN, MAC_LEN,
};
use crate::backend::{Backend, EvidenceError, SealPolicy};
use crate::error::AppraisalError;
use crate::evidence::{Claims, Envelope, SymmetricBody};
use crate::files::{corrupt, io_err, read_secret, write_secret, PlatformError};
use crate::kind::{SymmetricKind, TeeKind};
use crate::provider::Provider;

/// The node key file of `kind` in a data directory: `<kind>-node.key`.
pub fn node_key_file(kind: SymmetricKind) -> String {
    format!("{}-node.key", kind.name())
}

/// A provider key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderKeyError {
    /// The file cannot be read.
    #[error("cannot read provider key file `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The text is not 64 hex characters.
    #[error("provider key {origin} is not 64 hexadecimal characters (32 bytes)")]
    Format {
        /// The file, or "inline".
        origin: String,
    },
}

/// One stakeholder's provider key on one symmetric node: what its deployer trusts for that
/// node (it derives the module keys of that stakeholder's modules there, and no one else's).
pub struct ProviderKey {
    key: SecretKey,
}

impl ProviderKey {
    /// Wraps key bytes.
    pub fn new(key: SecretKey) -> Self {
        ProviderKey { key }
    }

    /// The conventional file name of `provider`'s key, `provider-<first 16 hex digits>.key`
    /// (where `aex up` puts it in a local node's directory).
    pub fn file_name(provider: &Provider) -> String {
        format!("provider-{}.key", provider.short())
    }

    /// Parses 64 hex characters (surrounding space ignored).
    pub fn from_hex(text: &str) -> Result<Self, ProviderKeyError> {
        Self::parse(text, "inline".into())
    }

    /// Reads a provider key file.
    pub fn read_file(path: &Path) -> Result<Self, ProviderKeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            ProviderKeyError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?);
        Self::parse(&text, format!("file `{}`", path.display()))
    }

    fn parse(text: &str, origin: String) -> Result<Self, ProviderKeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut())
            .map_err(|_| ProviderKeyError::Format { origin })?;
        Ok(ProviderKey::new(SecretKey::from_bytes(*bytes)))
    }

    /// Writes the key to `path` (mode 0600, its directory created), replacing a file that
    /// holds another key (a stale one) and leaving one that holds this key as it is.
    pub fn write_file(&self, path: &Path) -> Result<(), PlatformError> {
        let text = Zeroizing::new(format!("{}\n", hex::encode(self.key.expose_secret())));
        match std::fs::read(path).map(Zeroizing::new) {
            Ok(old) if old.as_slice() == text.as_bytes() => return Ok(()),
            Ok(_) => std::fs::remove_file(path).map_err(io_err("replace", path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
        write_secret(path, text.as_bytes())?;
        match Self::read_file(path) {
            Ok(back) if back.key_id() == self.key_id() => Ok(()),
            _ => Err(corrupt(path, "provider key file does not read back")),
        }
    }

    /// The key's public id (as carried in evidence).
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        provider_key_id(&self.key)
    }

    /// The key's fingerprint: the public pin of a descriptor's `provider_key_fingerprint`.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        provider_key_fingerprint(&self.key)
    }

    /// The module key of `measurement`: the deployer derives it from its own build's.
    pub fn module_key(&self, measurement: &Measurement) -> SecretKey {
        module_key(&self.key, measurement)
    }

    /// The key bytes (to print it). Every call site is a place where the key leaves.
    pub fn expose_secret(&self) -> &SecretKey {
        &self.key
    }
}

impl core::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProviderKey")
            .field("key_id", &hex::encode(self.key_id()))
            .field("key", &"REDACTED")
            .finish()
    }
}

/// A node's simulated symmetric platform: its node key. It derives each module's key under
/// the provider key of the deployer that loads it.
pub struct SimSymmetricPlatform {
    kind: SymmetricKind,
    node_key: SecretKey,
}

impl SimSymmetricPlatform {
    /// Loads `dir/<kind>-node.key`, creating it on first use.
    pub fn load_or_create(kind: SymmetricKind, dir: &Path) -> Result<Self, PlatformError> {
        let path = dir.join(node_key_file(kind));
        let node_key = match read_secret::<32>(&path)? {
            Some(bytes) => SecretKey::from_bytes(*bytes),
            None => {
                let key = SecretKey::random();
                write_secret(&path, key.expose_secret())?;
                key
            }
        };
        Ok(Self::from_node_key(kind, node_key))
    }

    /// Loads `dir/<kind>-node.key`, which must exist (the operator exports keys of a node
    /// that has one, never of a fresh one nobody runs).
    pub fn load(kind: SymmetricKind, dir: &Path) -> Result<Self, PlatformError> {
        let path = dir.join(node_key_file(kind));
        match read_secret::<32>(&path)? {
            Some(bytes) => Ok(Self::from_node_key(kind, SecretKey::from_bytes(*bytes))),
            None => Err(PlatformError::Missing { path }),
        }
    }

    /// A platform in memory.
    pub fn from_node_key(kind: SymmetricKind, node_key: SecretKey) -> Self {
        SimSymmetricPlatform { kind, node_key }
    }

    /// The symmetric kind.
    pub fn symmetric_kind(&self) -> SymmetricKind {
        self.kind
    }

    /// The provider key of `provider`, for the operator to hand to that stakeholder alone.
    pub fn provider_key(&self, provider: &Provider) -> ProviderKey {
        ProviderKey::new(provider_key(&self.node_key, self.kind, provider))
    }
}

impl Backend for SimSymmetricPlatform {
    fn kind(&self) -> TeeKind {
        self.kind.into()
    }

    fn simulated(&self) -> bool {
        true
    }

    fn platform_identity(&self) -> Vec<u8> {
        node_key_id(&self.node_key).to_vec()
    }

    fn provision(&self, provider: &Provider, measurement: &Measurement) -> Option<SecretKey> {
        Some(self.provider_key(provider).module_key(measurement))
    }

    fn sealing_key(
        &self,
        _root: &SecretKey,
        provider: &Provider,
        measurement: &Measurement,
        policy: SealPolicy<'_>,
    ) -> SecretKey {
        let provider_key = self.provider_key(provider);
        match policy {
            SealPolicy::Measurement => {
                aex_crypto::seal::symmetric_sealing_key(&provider_key.module_key(measurement))
            }
            // The provider key stands for the root: it is the stakeholder's on this node.
            SealPolicy::Signer { product } => aex_crypto::seal::signer_sealing_key(
                &provider_key.key,
                self.kind.name(),
                &provider.0,
                product,
            ),
        }
    }

    fn evidence(
        &self,
        provider: &Provider,
        measurement: &Measurement,
        challenge: &[u8; 32],
        _module_pk: Option<&[u8; 32]>,
        module_mac: Option<&[u8]>,
    ) -> Result<Vec<u8>, EvidenceError> {
        let kind = self.kind();
        let mac = module_mac.ok_or(EvidenceError::Missing {
            kind,
            what: "module MAC",
        })?;
        let mac: [u8; MAC_LEN] = mac.try_into().map_err(|_| EvidenceError::MacLength {
            kind,
            got: mac.len(),
        })?;
        let body = SymmetricBody {
            provider_key_id: self.provider_key(provider).key_id(),
            measurement: measurement.0,
            mac,
        };
        Ok(Envelope::new(kind, self.simulated(), challenge, body.encode()).encode())
    }
}

/// The claims MAC evidence proves, once its MAC verifies under the module key `key` derives
/// for `transcript.measurement` (the deployer's own build) over `transcript` (which carries the
/// envelope's simulated claim: the MAC binds it).
pub(crate) fn claims(
    env: &Envelope,
    kind: SymmetricKind,
    key: &ProviderKey,
    transcript: &Transcript<'_>,
) -> Result<Claims, AppraisalError> {
    let kind = TeeKind::from(kind);
    let body = SymmetricBody::decode(&env.body).map_err(|e| AppraisalError::Malformed {
        kind,
        reason: e.to_string(),
    })?;
    if body.provider_key_id != key.key_id() {
        return Err(AppraisalError::UntrustedProviderKey {
            expected: hex::encode(key.key_id()),
            got: hex::encode(body.provider_key_id),
        });
    }
    let measurement = *transcript.measurement;
    if body.measurement != measurement.0 {
        return Err(AppraisalError::MeasurementMismatch {
            expected: measurement,
            got: Measurement(body.measurement),
        });
    }
    if !verify_attest_mac(&key.module_key(&measurement), transcript, &body.mac) {
        return Err(AppraisalError::BadMac { kind });
    }
    Ok(Claims {
        measurement,
        simulated: transcript.simulated,
        debug: false,
        report_data: None,
        provider_key_id: Some(body.provider_key_id),
        tcb_status: None,
    })
}
