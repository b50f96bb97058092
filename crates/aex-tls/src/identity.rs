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
