//! Cryptographic building blocks of aex.
//!
//! This crate is part of the trusted computing base of every module: the module runtime
//! (`aex-runtime`) links it, and so does the deployer. It wraps well-reviewed RustCrypto,
//! dalek and (for the event AEADs, with the default feature `ring`) `ring` primitives into the
//! few constructions the aex protocol needs, so the rest of the code base never touches a raw
//! cipher, nonce or key schedule. It does no I/O.
//!
//! # Features
//!
//! * `ring` (default; the `aex` SDK turns it on unless built with `default-features = false`):
//!   events are sealed with `ring`'s AES-256-GCM and ChaCha20-Poly1305 (C and assembly, several
//!   times faster). Without it, RustCrypto's pure-Rust AEADs, which also wipe their key
//!   schedules on drop. Same bytes either way (docs/PROTOCOL.md §7, "Implementations").
//!
//! # Design overview
//!
//! * **Event AEAD** ([`SealingKey`]): AES-256-GCM (default) or ChaCha20-Poly1305 under a 32-byte
//!   connection or module key. Nonces are never chosen by callers: a [`Nonce`] is built from a
//!   one-byte domain (direction) and a 64-bit counter, so a counter that never repeats per
//!   direction gives a nonce that never repeats per key (docs/PROTOCOL.md §7).
//! * **Module key agreement** ([`ModuleKeyAgreement`]): X25519 (RFC 7748) between the module's
//!   ephemeral key and the deployer's ephemeral key, then HKDF-SHA-256 (RFC 5869) salted with the
//!   deployer's fresh challenge and bound to both public keys and the module's measurement.
//! * **Symmetric attestation** ([`symmetric`]): the module side of the `trustzone`/`sancus`
//!   scheme: a MAC under the provisioned module key over the challenge and both ephemeral
//!   X25519 public keys, and a session key from their shared secret (forward secret).
//! * **Deployer identity** ([`SigningIdentity`], [`verify_signature`]): Ed25519 (RFC 8032)
//!   signatures over management requests, checked with the strict verification rules (no
//!   small-order keys, canonical `S`), so one signature cannot be re-shaped into another.
//! * **Sealing** ([`seal`]): blobs a module writes to untrusted storage, under its
//!   platform's sealing key (a fresh HKDF key per blob), and the MACs of the platform's
//!   monotonic counter answers.
//! * **Measurement** ([`Measurement`]): SHA-256 of the exact bytes a node will execute.
//! * **Secrets** ([`SecretKey`]) have no `Debug`/`Display`, are wiped on drop, and are read only
//!   through [`SecretKey::expose_secret`], so every exposure is greppable.
//!
//! What this crate does *not* do: choose counters or enforce their monotonicity (that is the
//! channel state in `aex-proto`), sign evidence (that is `aex-tee`), or store keys (the deployer's identity file is `aex-deploy`'s).
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod aead;
mod agree;
mod keys;
mod measure;
pub mod seal;
mod signing;
pub mod symmetric;

pub use aead::{Algorithm, Nonce, OpenError, SealingKey, TAG_LEN};
pub use agree::{AgreementError, ModuleKeyAgreement, PUBLIC_KEY_LEN};
pub use keys::{random_bytes, wipe, SecretKey, KEY_LEN};
pub use measure::{sha256, Measurement, ParseMeasurementError};
pub use signing::{
    verify_signature, BadSignature, SigningIdentity, PUBLIC_IDENTITY_LEN, SIGNATURE_LEN,
};
