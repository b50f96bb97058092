//! The module's TLS key pair, and the key fingerprints that name clients.

use std::fmt;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::error::TlsError;

/// The module's TLS key pair (ECDSA P-256), made inside the module.
pub struct Identity {
    pub(crate) key: KeyPair,
}

impl Identity {
    /// A fresh key pair from the operating system's randomness (through `ring`).
    pub fn generate() -> Result<Identity, TlsError> {
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map(|key| Identity { key })
            .map_err(|e| TlsError::Key(e.to_string()))
    }

    /// The key pair from its PKCS#8 DER ([`Identity::to_pkcs8`]): how a persistent module
    /// keeps its key across restarts, in its sealed state.
    pub fn from_pkcs8(der: &[u8]) -> Result<Identity, TlsError> {
        KeyPair::try_from(der)
            .map(|key| Identity { key })
            .map_err(|e| TlsError::Key(format!("not a PKCS#8 P-256 key: {e}")))
    }

    /// The private key as PKCS#8 DER. A secret: keep it only in a persistent module's sealed
    /// state, never in a log, a reply or `status`.
    pub fn to_pkcs8(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// The public key's SubjectPublicKeyInfo DER.
    pub fn spki(&self) -> Vec<u8> {
        self.key.public_key_der()
    }

    /// The public key's fingerprint ([`ClientId::of_spki`]'s rule).
    pub fn fingerprint(&self) -> ClientId {
        ClientId::of_spki(&self.spki())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.fingerprint())
    }
}

/// A key's fingerprint: SHA-256 of its SubjectPublicKeyInfo DER. Names a TLS client by the key
/// its certificate holds (mutual TLS); shown in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub [u8; 32]);

impl ClientId {
    /// The fingerprint of a SubjectPublicKeyInfo DER.
    pub fn of_spki(spki_der: &[u8]) -> ClientId {
        ClientId(aex_crypto::sha256(&[spki_der]))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pkcs8() {
        let id = Identity::generate().unwrap();
        let again = Identity::from_pkcs8(&id.to_pkcs8()).unwrap();
        assert_eq!(id.spki(), again.spki());
        assert_ne!(id.spki(), Identity::generate().unwrap().spki());
        assert!(Identity::from_pkcs8(b"not a key").is_err());
        assert_eq!(id.fingerprint().to_string().len(), 64);
    }
}

/// A persistent module's TLS key as it keeps it in its state, which the runtime seals under
/// the platform's sealing key (docs/PROTOCOL.md §9): the same key after a crash or a node
/// restart, a new one when the code changes (so an update never inherits its predecessor's
/// key, and a client that pinned the old certificate refuses the new code).
///
/// Keep it in the state's own struct, never in what `status` or a reply shows: it holds the
/// private key.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct KeptIdentity {
    /// The measurement of the code that made the key, in hex.
    measurement: String,
    /// The key, PKCS#8 DER (empty until first use).
    #[serde(with = "serde_bytes")]
    pkcs8: Vec<u8>,
}

impl KeptIdentity {
    /// The kept key if this code (the runtime's measurement, `AEX_MEASUREMENT`) made it, else
    /// a fresh one, which is kept from now on.
    pub fn identity(&mut self) -> Result<Identity, TlsError> {
        let now = std::env::var(aex_runtime::MEASUREMENT_ENV).unwrap_or_default();
        self.identity_for(&now)
    }

    fn identity_for(&mut self, measurement: &str) -> Result<Identity, TlsError> {
        if self.measurement == measurement && !self.pkcs8.is_empty() {
            return Identity::from_pkcs8(&self.pkcs8);
        }
        let fresh = Identity::generate()?;
        self.measurement = measurement.to_owned();
        self.pkcs8 = fresh.to_pkcs8();
        Ok(fresh)
    }
}

impl fmt::Debug for KeptIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeptIdentity(made by {})", self.measurement)
    }
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    #[test]
    fn a_kept_key_survives_its_state_and_not_a_code_change() {
        let mut kept = KeptIdentity::default();
        let first = kept.identity_for("aa").unwrap().spki();
        // Sealed and restored with the module's state (serde), then asked again.
        let mut restored: KeptIdentity =
            serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        assert_eq!(restored.identity_for("aa").unwrap().spki(), first);
        // New code: a new key, kept from then on.
        let second = restored.identity_for("bb").unwrap().spki();
        assert_ne!(second, first);
        assert_eq!(restored.identity_for("bb").unwrap().spki(), second);
        assert!(!format!("{restored:?}").contains(&format!("{:?}", restored.pkcs8)));
    }
}
