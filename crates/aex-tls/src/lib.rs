//! Attested TLS, the module side: a module serves TLS 1.3 with a key pair made inside it and a
//! certificate carrying its attestation evidence, which binds that key (docs/PROTOCOL.md §11).
//! The SDK re-exports this crate as `aex::tls` with its optional feature `tls`.
//!
//! ```no_run
//! # #[derive(Default)] struct Web;
//! # fn start(ctx: &mut aex_runtime::Context) -> Result<(), aex_tls::TlsError> {
//! use std::net::TcpListener;
//!
//! let handle = ctx.handle::<Web>();
//! let identity = aex_tls::Identity::generate()?;
//! // Evidence from the node's TEE layer, over this key (and any extra keys to attest).
//! let attested = aex_tls::Attested::new(identity, handle, &aex_tls::Options::default())?;
//! let listener = TcpListener::bind("127.0.0.1:8443").map_err(aex_tls::TlsError::Io)?;
//! aex_tls::serve(listener, attested, aex_tls::Limits::default(), |mut stream| {
//!     // `stream` is a finished TLS 1.3 session: Read + Write, its client's key
//!     // fingerprint (`client_id`), and fresh evidence bound to it (`fresh_evidence`).
//!     let _ = stream.client_id();
//! })?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! * **The key never leaves the module.** [`Identity::generate`] makes an ECDSA P-256 key pair
//!   with `ring` inside the module process. A plain module makes a fresh one per instance (an
//!   updated module is a new instance with a new key); a persistent module keeps a
//!   [`KeptIdentity`] in its state, which the runtime seals under the platform's sealing key
//!   (docs/PROTOCOL.md §9): the same key after a crash or a node restart, a new one when its
//!   code changes.
//! * **The certificate carries the evidence** ([`Attested::new`]): the module asks its node's
//!   TEE layer (`Context::evidence`) for evidence binding
//!   `aex_proto::attested_tls::binding(SPKI, extra keys)` and answering
//!   `cert_challenge()`, and puts it, with the extra keys, in the TCG DICE CMW extension
//!   (2.23.133.5.4.9) of a self-signed certificate. The TEE layer attests the binary the node
//!   measured, so the evidence names this module's code.
//! * **Freshness**: the handshake proves the key holder is alive now (the key is in the
//!   module only); [`TlsStream::fresh_evidence`] answers a client's nonce with evidence over
//!   the channel's TLS exporter value, so a client can also ask the TEE for a statement made
//!   now and bound to its own session.
//! * **Client identity**: a client may present any certificate (self-signed is enough); the
//!   server checks it holds the key (TLS's CertificateVerify) and names the client by the
//!   SHA-256 of its SubjectPublicKeyInfo ([`ClientId`]). Who that key belongs to is the
//!   provider's business (docs/SECURITY.md, "Attested TLS").
//! * **Pre-authentication limits** ([`Limits`]): connections at once, connections still in
//!   their handshake (the oldest is dropped for a new one, so half-open connections cannot
//!   lock a legitimate client out), bytes read and time taken before the handshake completes.
//! * **Disabled or retired, it stops**: before a handshake the server asks the runtime whether
//!   the instance still serves (an answer holds 50 ms, so connections do not become a flood
//!   of calls into the module); once not, the server closes its listener and drops its key.
//!
//! Blocking I/O, one thread per connection, TLS 1.3 only, `ring` as the only provider.
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod attest;
mod client_auth;
mod error;
mod identity;
mod server;

pub use attest::{Attest, Attested, Options};
pub use error::TlsError;
pub use identity::{ClientId, Identity, KeptIdentity};
pub use server::{serve, Limits, Server, TlsStream};

/// The CMW extension's OID, its media type, and the key binding (shared with clients).
pub use aex_proto::attested_tls;

/// The rustls provider attested TLS uses: `ring` (TLS 1.3 cipher suites are chosen by the
/// configuration).
#[allow(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange \
              (X25519MLKEM768 is aws-lc-rs only); modules link ring alone (docs/SECURITY.md)"
)]
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
