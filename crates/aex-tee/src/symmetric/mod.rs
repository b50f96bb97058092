//! The symmetric scheme of `trustzone` and `sancus`, in one place: its key hierarchy and
//! attestation MAC (`keys.rs`, pure functions), and its simulated platform, provider key files
//! and the appraisal of its MAC evidence (`platform.rs`).
//!
//! ```text
//! node key     (32 bytes, per node, in the node's data directory; in hardware: fused in the chip)
//! provider key = HKDF-SHA-256(salt = none, ikm = node key,
//!                             info = "aex/v2 provider key" || kind || provider (32 bytes))
//! module key   = HKDF-SHA-256(salt = none, ikm = provider key,
//!                             info = "aex/v2 symmetric module key" || measurement (32 bytes))
//! key id       = HMAC-SHA-256(provider key, "aex/v2 provider key id")[0..8]
//! node key id  = HMAC-SHA-256(node key, "aex/v2 node key id")[0..8]
//! MAC          = HMAC-SHA-256(module key, "aex/v2 " || kind || " attest" || simulated (1 byte)
//!                             || challenge || measurement || module_pk || deployer_pk)
//! ```
//!
//! (`salt = none` is RFC 5869's default: 32 zero bytes.) `kind` is `trustzone` or `sancus`;
//! the **provider** is a stakeholder, named by its deployer identity: its Ed25519 public key.
//! As on Sancus, each software provider has its own key, so two stakeholders running the same
//! code on the same node get different module keys, and a provider key derives the module
//! keys of its own provider only. The node derives each module's key under the provider key
//! of the deployer that loaded it and hands it to the module ([`module_key`]); the module
//! answers a challenge with [`attest_mac`] over its ephemeral X25519 public key; the
//! deployer, holding its own provider key, derives the module key of **its own build's**
//! measurement and checks the MAC with [`verify_attest_mac`]. The module key never travels.

mod keys;
mod platform;

pub use crate::kind::SymmetricKind;
pub use keys::{
    attest_mac, module_key, node_key_id, provider_key, provider_key_fingerprint, provider_key_id,
    verify_attest_mac, Transcript, FINGERPRINT_LABEL, FINGERPRINT_LEN, KEY_ID_LABEL, KEY_ID_LEN,
    MAC_LEN, MODULE_KEY_INFO, NODE_KEY_ID_LABEL, PROVIDER_KEY_INFO,
};
pub(crate) use platform::claims;
pub use platform::{node_key_file, ProviderKey, ProviderKeyError, SimSymmetricPlatform};
