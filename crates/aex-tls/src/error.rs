//! What can go wrong setting up or serving attested TLS.

use std::fmt;

/// An attested TLS server could not be set up, or a request on it failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The key pair could not be made or read.
    Key(String),
    /// The TEE layer gave no evidence (its words, or the runtime's).
    Evidence(String),
    /// The certificate could not be built.
    Certificate(String),
    /// rustls refused the configuration.
    Tls(rustls::Error),
    /// A socket failed.
    Io(std::io::Error),
    /// The module instance is disabled or retired: it serves nothing more.
    NotServing,
    /// An option is out of range (the message says what is valid).
    Option(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Key(e) => write!(f, "TLS key: {e}"),
            TlsError::Evidence(e) => write!(f, "attestation evidence for the TLS key: {e}"),
            TlsError::Certificate(e) => write!(f, "TLS certificate: {e}"),
            TlsError::Tls(e) => write!(f, "TLS: {e}"),
            TlsError::Io(e) => write!(f, "TLS socket: {e}"),
            TlsError::NotServing => {
                f.write_str("this module instance is disabled or retired and serves no TLS")
            }
            TlsError::Option(e) => write!(f, "attested TLS option: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Tls(e)
    }
}
