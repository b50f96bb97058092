//! Why a client refused a module, or could not talk to it: one variant per refusal.

use aex_crypto::Measurement;
use aex_tee::{AppraisalError, TeeKind};

/// Why a connection to a module was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The certificate carries no aex evidence: an ordinary certificate, not a module's (a
    /// man in the middle, even one with a certificate some authority signed).
    #[error("the server's certificate carries no attestation evidence (extension 2.23.133.5.4.9): not an attested module, or a man in the middle")]
    NoEvidence,
    /// The certificate does not parse.
    #[error("the server's certificate does not parse: {0}")]
    BadCertificate(String),
    /// The evidence extension does not decode.
    #[error("the certificate's evidence extension does not decode: {0}")]
    BadEvidence(String),
    /// The policy pins no measurement.
    #[error("the policy pins no measurement: nothing can be accepted")]
    NothingPinned,
    /// The evidence names code the client does not pin (another module, or an update the
    /// client does not accept).
    #[error(
        "the module's evidence names measurement {got}, which the client does not pin (it pins {})",
        show(pinned)
    )]
    MeasurementNotPinned {
        /// What the evidence names.
        got: Measurement,
        /// What the client pins.
        pinned: Vec<Measurement>,
    },
    /// Simulated evidence under a hardware-only policy.
    #[error("simulated {kind} evidence refused: the policy requires hardware")]
    SimulatedRefused {
        /// The kind.
        kind: TeeKind,
    },
    /// A debug enclave under a policy that refuses them.
    #[error("{kind} debug enclave refused by the policy")]
    DebugRefused {
        /// The kind.
        kind: TeeKind,
    },
    /// A `native` module (no TEE) under a policy that refuses them.
    #[error("the module runs without a TEE (native), which the policy refuses")]
    InsecureRefused,
    /// The evidence is genuine but does not bind the certificate's key (evidence copied into
    /// another certificate).
    #[error("the evidence does not bind the certificate's public key")]
    KeyNotBound,
    /// The evidence is of another TEE kind than the policy expects.
    #[error("evidence of kind `{got}`, expected `{expected}`")]
    WrongKind {
        /// The policy's kind.
        expected: TeeKind,
        /// The evidence's.
        got: String,
    },
    /// Any other appraisal refusal (signature, certificate chain, collateral, format).
    #[error("the evidence failed appraisal: {0}")]
    Appraisal(AppraisalError),
    /// The server did not prove it holds the certified key: a replayed certificate (the key
    /// stayed inside the module instance it was made in).
    #[error("the server does not hold the certificate's key (a replayed certificate?): {0}")]
    KeyNotHeld(String),
    /// The TLS handshake failed otherwise, e.g. the server closed it (a disabled module
    /// serves nothing).
    #[error("TLS handshake with {addr} failed: {message}")]
    Handshake {
        /// The server's address.
        addr: String,
        /// What failed.
        message: String,
    },
    /// A socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Fresh evidence was not given or did not pass.
    #[error("fresh evidence: {0}")]
    Fresh(String),
    /// The module's HTTP answer is not one.
    #[error("HTTP: {0}")]
    Http(String),
    /// An endorsement does not parse or its signature does not verify.
    #[error("endorsement: {0}")]
    BadEndorsement(String),
    /// An endorsement signed by another key than the one the client pins.
    #[error("the endorsement is signed by {got}, the client pins {pinned}")]
    EndorsementSigner {
        /// The endorsement's signer.
        got: String,
        /// The pinned one.
        pinned: String,
    },
    /// A genuine endorsement of another key: another instance's (a new instance needs a new
    /// endorsement), or a certificate the node swapped in.
    #[error(
        "the endorsement names another key than the server's certificate (another instance's?)"
    )]
    EndorsementForAnotherKey,
    /// A client key file could not be read or written.
    #[error("client key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ClientError {
    /// The precise refusal for an appraisal error.
    pub(crate) fn from_appraisal(e: AppraisalError) -> Self {
        match e {
            AppraisalError::SimulatedRefused { kind } => ClientError::SimulatedRefused { kind },
            AppraisalError::DebugRefused { kind } => ClientError::DebugRefused { kind },
            AppraisalError::InsecureRefused => ClientError::InsecureRefused,
            AppraisalError::KeyNotBound => ClientError::KeyNotBound,
            AppraisalError::WrongKind { expected, got } => ClientError::WrongKind { expected, got },
            e => ClientError::Appraisal(e),
        }
    }
}

fn show(pinned: &[Measurement]) -> String {
    pinned
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
