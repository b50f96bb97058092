//! The `trustzone` and `sancus` backends: the simulated node key, vendor key files, and the
//! appraisal of MAC evidence.
//!
//! Files:
//!
//! ```text
//! <data dir>/<kind>-node.key   32 raw bytes, the simulated node key (0600); kind = trustzone|sancus
//! vendor-<id>.key              64 lowercase hex characters + "\n": the vendor key of vendor
//!                              <id> (decimal), written by the node (0600) for its operator to
//!                              hand to deployers; read by `VendorKey::read_file`
//! ```
//!
//! Invariant: the node key never leaves [`SimSymmetricPlatform`]; a vendor key leaves it only
//! through [`SimSymmetricPlatform::export_vendor_key`] (the operator's act), and the deployer's
//! [`VendorKey`] never prints its bytes.

use std::path::{Path, PathBuf};

use aex_crypto::{Measurement, SecretKey};
use zeroize::Zeroizing;

use crate::appraise::{AppraisalError, Claims, Expected, TrustAnchor};
use crate::backend::{Backend, EvidenceError};
use crate::evidence::{Envelope, SymmetricBody};
use crate::files::{corrupt, io_err, read_secret, write_secret, PlatformError};
use crate::kind::TeeKind;
use crate::symmetric::{
    module_key, vendor_key, vendor_key_id, verify_attest_mac, SymmetricKind, VendorId, KEY_ID_LEN,
    MAC_LEN,
};

/// The node key file of `kind` in a data directory: `<kind>-node.key`.
pub fn node_key_file(kind: SymmetricKind) -> String {
    format!("{}-node.key", kind.name())
}

/// A vendor key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VendorKeyError {
    /// The file cannot be read.
    #[error("cannot read vendor key file `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The text is not 64 hex characters.
    #[error("vendor key {origin} is not 64 hexadecimal characters (32 bytes)")]
    Format {
        /// The file, or "inline".
        origin: String,
    },
}

/// A vendor key as the deployer holds it: the trust anchor of `trustzone` and `sancus` nodes.
pub struct VendorKey {
    vendor_id: VendorId,
    key: SecretKey,
}

impl VendorKey {
    /// Wraps key bytes.
    pub fn new(vendor_id: VendorId, key: SecretKey) -> Self {
        VendorKey { vendor_id, key }
    }

    /// The conventional file name, `vendor-<id>.key`.
    pub fn file_name(vendor_id: VendorId) -> String {
        format!("vendor-{vendor_id}.key")
    }

    /// Parses 64 hex characters (surrounding space ignored), e.g. inline in a descriptor.
    pub fn from_hex(vendor_id: VendorId, text: &str) -> Result<Self, VendorKeyError> {
        Self::parse(vendor_id, text, "inline".into())
    }

    /// Reads a vendor key file.
    pub fn read_file(vendor_id: VendorId, path: &Path) -> Result<Self, VendorKeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| VendorKeyError::Io {
                    path: path.to_path_buf(),
                    source,
                })?,
            );
        Self::parse(vendor_id, &text, format!("file `{}`", path.display()))
    }

    fn parse(vendor_id: VendorId, text: &str, origin: String) -> Result<Self, VendorKeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut())
            .map_err(|_| VendorKeyError::Format { origin })?;
        Ok(VendorKey::new(vendor_id, SecretKey::from_bytes(*bytes)))
    }

    /// The vendor id.
    pub fn vendor_id(&self) -> VendorId {
        self.vendor_id
    }

    /// The key's public id (as carried in evidence).
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        vendor_key_id(&self.key)
    }

    /// The module key of `measurement`: the deployer derives it from its own build's.
    pub fn module_key(&self, measurement: &Measurement) -> SecretKey {
        module_key(&self.key, measurement)
    }

    /// The key bytes (to write the file). Every call site is a place where the key leaves.
    pub fn expose_secret(&self) -> &SecretKey {
        &self.key
    }
}

impl core::fmt::Debug for VendorKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VendorKey")
            .field("vendor_id", &self.vendor_id)
            .field("key_id", &hex::encode(self.key_id()))
            .field("key", &"REDACTED")
            .finish()
    }
}

/// A node's simulated symmetric platform: its node key and configured vendor.
pub struct SimSymmetricPlatform {
    kind: SymmetricKind,
    node_key: SecretKey,
    vendor_id: VendorId,
    vendor_key: SecretKey,
}

impl SimSymmetricPlatform {
    /// Loads `dir/<kind>-node.key`, creating it on first use; module keys derive from the
    /// vendor key of `vendor_id`.
    pub fn load_or_create(
        kind: SymmetricKind,
        dir: &Path,
        vendor_id: VendorId,
    ) -> Result<Self, PlatformError> {
        let path = dir.join(node_key_file(kind));
        let node_key = match read_secret::<32>(&path)? {
            Some(bytes) => SecretKey::from_bytes(*bytes),
            None => {
                let key = SecretKey::random();
                write_secret(&path, key.expose_secret())?;
                key
            }
        };
        Ok(Self::from_node_key(kind, node_key, vendor_id))
    }

    /// A platform in memory.
    pub fn from_node_key(kind: SymmetricKind, node_key: SecretKey, vendor_id: VendorId) -> Self {
        let vendor_key = vendor_key(&node_key, vendor_id);
        SimSymmetricPlatform {
            kind,
            node_key,
            vendor_id,
            vendor_key,
        }
    }

    /// The symmetric kind.
    pub fn symmetric_kind(&self) -> SymmetricKind {
        self.kind
    }

    /// The configured vendor id.
    pub fn vendor_id(&self) -> VendorId {
        self.vendor_id
    }

    /// The vendor key of `vendor_id`, for the operator to give the deployer of that vendor.
    pub fn export_vendor_key(&self, vendor_id: VendorId) -> VendorKey {
        VendorKey::new(vendor_id, vendor_key(&self.node_key, vendor_id))
    }

    /// Writes `dir/vendor-<id>.key` (mode 0600), replacing a stale one; returns its path.
    pub fn write_vendor_key_file(
        &self,
        vendor_id: VendorId,
        dir: &Path,
    ) -> Result<PathBuf, PlatformError> {
        let path = dir.join(VendorKey::file_name(vendor_id));
        let key = self.export_vendor_key(vendor_id);
        let text = Zeroizing::new(format!(
            "{}\n",
            hex::encode(key.expose_secret().expose_secret())
        ));
        match std::fs::read(&path).map(Zeroizing::new) {
            Ok(old) if old.as_slice() == text.as_bytes() => return Ok(path),
            Ok(_) => std::fs::remove_file(&path).map_err(io_err("replace", &path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &path)(e)),
        }
        write_secret(&path, text.as_bytes())?;
        if VendorKey::read_file(vendor_id, &path).is_err() {
            return Err(corrupt(&path, "vendor key file does not read back"));
        }
        Ok(path)
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
        vendor_key_id(&self.vendor_key).to_vec()
    }

    fn provision(&self, measurement: &Measurement) -> Option<SecretKey> {
        Some(module_key(&self.vendor_key, measurement))
    }

    fn evidence(
        &self,
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
            vendor_id: self.vendor_id,
            vendor_key_id: vendor_key_id(&self.vendor_key),
            measurement: measurement.0,
            mac,
        };
        Ok(Envelope::new(kind, self.simulated(), challenge, body.encode()).encode())
    }
}

/// The claims a verified MAC proves.
pub(crate) fn claims(env: &Envelope, exp: &Expected<'_>) -> Result<Claims, AppraisalError> {
    let body = SymmetricBody::decode(&env.body).map_err(|reason| AppraisalError::Malformed {
        kind: exp.kind,
        reason,
    })?;
    let (TrustAnchor::VendorKey(vk), Some(sym)) = (exp.anchor, exp.kind.symmetric()) else {
        return Err(AppraisalError::AnchorKindMismatch {
            kind: exp.kind,
            anchor: "non-vendor-key",
        });
    };
    if body.vendor_id != vk.vendor_id() {
        return Err(AppraisalError::WrongVendor {
            expected: vk.vendor_id(),
            got: body.vendor_id,
        });
    }
    if body.vendor_key_id != vk.key_id() {
        return Err(AppraisalError::UntrustedVendorKey {
            vendor_id: vk.vendor_id(),
            expected: hex::encode(vk.key_id()),
            got: hex::encode(body.vendor_key_id),
        });
    }
    if body.measurement != exp.measurement.0 {
        return Err(AppraisalError::MeasurementMismatch {
            expected: exp.measurement,
            got: Measurement(body.measurement),
        });
    }
    let mk = vk.module_key(&exp.measurement);
    if !verify_attest_mac(
        sym,
        env.simulated,
        &mk,
        &exp.challenge,
        &exp.measurement,
        &body.mac,
    ) {
        return Err(AppraisalError::BadMac { kind: exp.kind });
    }
    Ok(Claims {
        measurement: exp.measurement,
        simulated: env.simulated,
        debug: false,
        report_data: None,
        vendor_id: Some(body.vendor_id),
        tcb_status: None,
    })
}
