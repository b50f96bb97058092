//! The client's own key (mutual TLS): a self-signed certificate over a P-256 key the client
//! keeps in a file. The module names the client by the key's fingerprint, SHA-256 of its
//! SubjectPublicKeyInfo; a provider maps fingerprints to customers (docs/SECURITY.md).

use std::path::Path;

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::ClientError;

/// A client key and its self-signed certificate.
pub struct ClientKey {
    pkcs8: Vec<u8>,
    cert: CertificateDer<'static>,
    spki: Vec<u8>,
}

impl ClientKey {
    /// A fresh key.
    pub fn generate() -> Result<ClientKey, ClientError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| ClientError::Key {
            path: "(new)".into(),
            message: e.to_string(),
        })?;
        Self::from_key(key, "(new)")
    }

    fn from_key(key: KeyPair, path: &str) -> Result<ClientKey, ClientError> {
        let bad = |message: String| ClientError::Key {
            path: path.into(),
            message,
        };
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| bad(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "aex client");
        let cert = params.self_signed(&key).map_err(|e| bad(e.to_string()))?;
        Ok(ClientKey {
            pkcs8: key.serialize_der(),
            cert: cert.der().clone(),
            spki: key.public_key_der(),
        })
    }

    /// The key in `path` (PKCS#8 DER in hex, one line), created (mode 0600) if there is none.
    pub fn load_or_create(path: &Path) -> Result<ClientKey, ClientError> {
        let shown = path.display().to_string();
        let bad = |message: String| ClientError::Key {
            path: shown.clone(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let der = hex::decode(text.trim())
                    .map_err(|_| bad("not a key in hex (PKCS#8 DER, one line)".into()))?;
                let key = KeyPair::try_from(der.as_slice())
                    .map_err(|e| bad(format!("not a PKCS#8 P-256 key: {e}")))?;
                Self::from_key(key, &shown)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                write_secret(path, &hex::encode(&key.pkcs8)).map_err(|e| bad(e.to_string()))?;
                Ok(key)
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The key's fingerprint: SHA-256 of its SubjectPublicKeyInfo, as the module sees it.
    pub fn fingerprint(&self) -> [u8; 32] {
        aex_crypto::sha256(&[&self.spki])
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

/// Writes a new secret file readable by its owner only.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{text}")?;
    f.sync_all()
}
