//! Attested TLS, the client side: connect to a module over TLS 1.3 and accept it only if the
//! evidence in its certificate passes the same appraisal the deployer runs
//! (`aex_tee::appraise`), against a [`Policy`]: pinned measurements, TEE kind and trust
//! anchor, hardware or simulation, debug, insecure. Not linked into modules.
//!
//! ```no_run
//! # fn demo(policy: aex_client::Policy) -> Result<(), aex_client::ClientError> {
//! use std::time::Duration;
//!
//! let addr = "127.0.0.1:8088".parse().unwrap();
//! let mut session = aex_client::connect(addr, &policy, None, Duration::from_secs(10))?;
//! println!("measurement {}", session.verified().measurement);
//! session.fresh_evidence()?; // the TEE speaks now, bound to this session
//! let (status, body) = session.request("GET", "/")?;
//! # Ok(()) }
//! ```
//!
//! What is checked, in order (docs/PROTOCOL.md §11): the certificate carries the CMW
//! extension (2.23.133.5.4.9) with aex evidence ([`ClientError::NoEvidence`] otherwise: an
//! ordinary certificate, even one an authority signed, is a man in the middle); the evidence
//! passes `appraise` for one pinned measurement, answering the certificate challenge and
//! binding the certificate's SubjectPublicKeyInfo and extra keys; the server's handshake
//! signature verifies under that key ([`ClientError::KeyNotHeld`] otherwise: a replayed
//! certificate). Names and validity dates are not checked: the evidence, not a name, says
//! who the server is, and the handshake says it is alive.
//!
//! The extra public keys the module attested come back in [`Verified::extra`].
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod endorse;
mod error;
mod identity;
mod policy;
mod session;
mod verify;

pub use endorse::Endorsement;
pub use error::ClientError;
pub use identity::ClientKey;
pub use policy::{Anchor, Policy, Verified};
pub use session::{connect, Answer, Fresh, Session};
pub use verify::{verify_certificate, verify_certificate_pem};

/// The rustls provider: `ring`, as the modules use.
#[allow(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange; \
              the modules serve with ring, so the client offers what they accept"
)]
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
