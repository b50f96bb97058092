//! aex links: the authenticated, encrypted channels between a deployer and its nodes, and
//! between nodes.
//!
//! Every TCP connection to a node agent carries a Noise channel (`25519_AESGCM_BLAKE2s`, the
//! [`snow`] crate with its `ring-accelerated` resolver: `ring`'s AES-GCM, the RustCrypto and
//! dalek code for the rest; docs/PROTOCOL.md says why AES-GCM, and why `ring`'s). The node's identity is a long-term X25519
//! key in its data directory ([`keys`]); deployers pin it per node in their descriptor, and
//! routes pin it for peer links.
//!
//! * **Deployer → node: `Noise_NK`.** The deployer knows the node's key and the node learns
//!   nothing from the handshake but an ephemeral key: the deployer proves its own Ed25519
//!   identity in its first message (`Hello::Deployer`, a signature over this connection's
//!   handshake hash and the node's key; see `aex_proto::auth`). A node with another identity
//!   cannot complete the handshake, and says which identity it has, so the deployer's error
//!   names both keys.
//! * **Node → node: `Noise_XK`.** The initiating node pins the responder's key from its route
//!   and sends its own key encrypted in the third message; the responder admits the link only
//!   for keys its routes or configuration name, before it reads any event.
//! * **Records** ([`record`]): the plaintext is the ordinary aex frame stream, cut into Noise
//!   transport messages of at most 65,535 bytes, each `u16` length ‖ ciphertext. A changed,
//!   dropped, replayed, reordered or injected record ends the link.
//! * **Bounded before authentication**: a handshake message is at most
//!   [`handshake::MAX_HANDSHAKE_MESSAGE`] bytes and the first record at most
//!   [`record::FIRST_RECORD_LIMIT`], both checked from their length prefix before anything is
//!   allocated; the node bounds the whole handshake and `Hello` with a deadline. After that
//!   too, a record's buffer grows as its bytes arrive: a length prefix alone costs nothing.
//!
//! [`handshake`] and [`record`] are sans I/O; [`blocking`] adapts them to `std::io` streams
//! (the deployer's client, the test kit) and, with the `tokio` feature, `tokio_io` to tokio
//! streams (the node agent).
//!
//! The modules import each other in layers, without a cycle (check with
//! `scripts/use-edges.py crates/aex-link`): [`record`] at the bottom, [`handshake`] above it (a
//! completed handshake hands out the record layer's halves), the two adapters on top. The
//! record layer's own tests therefore key their records with a plain Noise handshake of their
//! own, and the handshake's tests check that its keys carry records.
//!
//! # Why Noise and not TLS
//!
//! Both ends already hold raw long-term keys that their owners pin out of band, exactly like
//! the platform keys a deployer pins for attestation: a node's identity key, a deployer's
//! Ed25519 key. TLS would wrap those keys in certificates, a PKI or self-signed certificates
//! pinned by hash, and bring a large state machine (versions, cipher suites, extensions,
//! session resumption) whose configuration is another thing to get wrong. Noise's NK and XK
//! patterns say precisely who knows whose key before the first byte, need no certificates,
//! and are small enough to read: `snow` shares the crates the workspace already builds
//! (`ring`, curve25519-dalek, BLAKE2). This crate lives outside the
//! module's trusted computing base: only node agents, deployers and the test kit link it.
//!
//! # Crate features
//!
//! * `tokio`: the async adapter `tokio_io`.
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod blocking;
mod error;
pub mod handshake;
pub mod keys;
pub mod record;
#[cfg(feature = "tokio")]
pub mod tokio_io;

pub use error::{KeyMismatch, LinkError};
pub use handshake::{LinkKind, DEPLOYER_NOISE, PEER_NOISE};
pub use keys::StaticKey;
pub use record::{FIRST_RECORD_LIMIT, MAX_HELLO_LEN, MAX_PLAINTEXT, MAX_RECORD, READ_STEP};
