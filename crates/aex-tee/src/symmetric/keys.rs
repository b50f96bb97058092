//! The symmetric scheme's key hierarchy and attestation MAC, as pure functions (the labels and
//! layouts are in the [module documentation](super)).
//!
//! This file depends only on `hkdf`, `hmac`, `sha2`, `subtle`, `zeroize` and aex-crypto; the
//! module-side half ([`attest_mac`], [`Transcript`]) lives in `aex_crypto::symmetric` so the
//! module runtime needs no TEE crate.

use aex_crypto::{Measurement, SecretKey, KEY_LEN};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::kind::SymmetricKind;
use crate::provider::Provider;

pub use aex_crypto::symmetric::{attest_mac, Transcript, MAC_LEN};

/// Length of a provider key id (and of a node key id).
pub const KEY_ID_LEN: usize = 8;

/// HKDF `info` prefix of a provider key (followed by the kind's name and the provider).
pub const PROVIDER_KEY_INFO: &[u8] = b"aex/v2 provider key";

/// HKDF `info` prefix of the module key (followed by the 32-byte measurement).
pub const MODULE_KEY_INFO: &[u8] = b"aex/v2 symmetric module key";

/// HMAC message of a provider key's public id.
pub const KEY_ID_LABEL: &[u8] = b"aex/v2 provider key id";

/// HMAC message of a node key's public id (the node's platform identity).
pub const NODE_KEY_ID_LABEL: &[u8] = b"aex/v2 node key id";

/// HMAC message of a provider key's fingerprint (the full-length pin a descriptor carries).
pub const FINGERPRINT_LABEL: &[u8] = b"aex/v2 provider key fingerprint";

/// Length of a provider key's fingerprint.
pub const FINGERPRINT_LEN: usize = 32;

fn hkdf32(ikm: &[u8; KEY_LEN], info: &[&[u8]]) -> SecretKey {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // Invariant: 32 bytes is far below HKDF-SHA-256's 255 * 32 output limit.
    Hkdf::<Sha256>::new(None, ikm)
        .expand_multi_info(info, okm.as_mut())
        .expect("32-byte HKDF output");
    SecretKey::from_bytes(*okm)
}

fn key_id(key: &SecretKey, label: &[u8]) -> [u8; KEY_ID_LEN] {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
        .expect("HMAC takes any key length");
    mac.update(label);
    let full = mac.finalize().into_bytes();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&full[..KEY_ID_LEN]);
    id
}

/// The provider key of `provider` on a node of `kind` with `node_key` (node side, and the
/// operator's export).
pub fn provider_key(node_key: &SecretKey, kind: SymmetricKind, provider: &Provider) -> SecretKey {
    hkdf32(
        node_key.expose_secret(),
        &[PROVIDER_KEY_INFO, kind.name().as_bytes(), &provider.0],
    )
}

/// The module key of `measurement` under `provider_key` (node side, and deployer side with
/// the deployer's own measurement).
pub fn module_key(provider_key: &SecretKey, measurement: &Measurement) -> SecretKey {
    hkdf32(
        provider_key.expose_secret(),
        &[MODULE_KEY_INFO, &measurement.0],
    )
}

/// A public, non-secret id of a provider key, carried in evidence, so that a deployer holding
/// the wrong key file gets a precise error instead of a bad MAC.
pub fn provider_key_id(provider_key: &SecretKey) -> [u8; KEY_ID_LEN] {
    key_id(provider_key, KEY_ID_LABEL)
}

/// A public commitment to a provider key, full length: what a descriptor pins
/// (`provider_key_fingerprint`) so that a deployer uses no key but the one its operator named.
///
/// Why not the key id: the id's 64 bits tell an honest mistake apart, but a second key with a
/// chosen id is within reach of a determined attacker; a pin must resist that.
pub fn provider_key_fingerprint(provider_key: &SecretKey) -> [u8; FINGERPRINT_LEN] {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(provider_key.expose_secret())
        .expect("HMAC takes any key length");
    mac.update(FINGERPRINT_LABEL);
    mac.finalize().into_bytes().into()
}

/// A public id of a node key: the node's platform identity in logs and `aex status`.
pub fn node_key_id(node_key: &SecretKey) -> [u8; KEY_ID_LEN] {
    key_id(node_key, NODE_KEY_ID_LABEL)
}

/// Checks `mac` (any length; only [`MAC_LEN`] bytes can pass) in constant time.
pub fn verify_attest_mac(module_key: &SecretKey, transcript: &Transcript<'_>, mac: &[u8]) -> bool {
    let want = attest_mac(module_key, transcript);
    mac.len() == MAC_LEN && bool::from(want.ct_eq(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn transcript<'a>(m: &'a Measurement, ch: &'a [u8; 32]) -> Transcript<'a> {
        Transcript {
            kind: SymmetricKind::Sancus.name(),
            simulated: true,
            challenge: ch,
            measurement: m,
            module_pk: &[0x44; 32],
            deployer_pk: &[0x55; 32],
        }
    }

    /// Known-answer vectors: pin the labels and layouts documented above. Computed
    /// independently with Python's `hmac`/`hashlib` (HKDF written out from RFC 5869).
    #[test]
    fn known_answers() {
        let node = SecretKey::from_bytes([0x11; 32]);
        let pk = provider_key(&node, SymmetricKind::Sancus, &Provider([0x77; 32]));
        let m = Measurement([0x22; 32]);
        let mk = module_key(&pk, &m);
        let mac = attest_mac(&mk, &transcript(&m, &[0x33; 32]));
        assert_eq!(
            [
                hex::encode(pk.expose_secret()),
                hex::encode(mk.expose_secret()),
                hex::encode(provider_key_id(&pk)),
                hex::encode(node_key_id(&node)),
                hex::encode(mac),
            ],
            VECTOR
        );
        assert!(verify_attest_mac(
            &mk,
            &transcript(&m, &[0x33; 32]),
            &hex32(VECTOR[4])
        ));
    }

    /// provider key, module key, provider key id, node key id, MAC.
    const VECTOR: [&str; 5] = [
        "e185022c80b69861057ebd9b8bda1c713cb528df62ed474343aa2b7c710b448d",
        "746356b1cd4967bcb75b84eee587f74e38c23d0efda431d3de295918657d6345",
        "80163d6dddb4c941",
        "dbb5b6c87819e513",
        "84999012a8aee36da47b8107a590851e2c65cbcfcf6e01aab3b8d50ea8c22c8f",
    ];

    #[test]
    fn every_input_changes_the_mac() {
        let mk = SecretKey::from_bytes([1; 32]);
        let m = Measurement([2; 32]);
        let t = transcript(&m, &[3; 32]);
        let base = attest_mac(&mk, &t);
        assert!(verify_attest_mac(&mk, &t, &base));
        let other = SecretKey::from_bytes([9; 32]);
        assert!(!verify_attest_mac(&other, &t, &base));
        assert!(!verify_attest_mac(&mk, &t, &base[..31]));
        assert!(!verify_attest_mac(&mk, &t, &[]));
        let evil = Measurement([5; 32]);
        for changed in [
            Transcript {
                kind: "trustzone",
                ..t
            },
            Transcript {
                simulated: false,
                ..t
            },
            Transcript {
                challenge: &[4; 32],
                ..t
            },
            Transcript {
                measurement: &evil,
                ..t
            },
            Transcript {
                module_pk: &[6; 32],
                ..t
            },
            Transcript {
                deployer_pk: &[6; 32],
                ..t
            },
        ] {
            assert!(!verify_attest_mac(&mk, &changed, &base), "{changed:?}");
        }
    }

    /// Two stakeholders running identical code on one node get different module keys; the
    /// kind separates the two platforms of one node key.
    #[test]
    fn hierarchy_separates_providers_kinds_and_measurements() {
        let node = SecretKey::from_bytes([7; 32]);
        let (farm, insight) = (Provider([1; 32]), Provider([2; 32]));
        let a = provider_key(&node, SymmetricKind::Sancus, &farm);
        let b = provider_key(&node, SymmetricKind::Sancus, &insight);
        let tz = provider_key(&node, SymmetricKind::TrustZone, &farm);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), tz.expose_secret());
        assert_ne!(provider_key_id(&a), provider_key_id(&b));
        let code = Measurement([1; 32]);
        assert_ne!(
            module_key(&a, &code).expose_secret(),
            module_key(&b, &code).expose_secret(),
            "identical code, two stakeholders"
        );
        assert_ne!(
            module_key(&a, &code).expose_secret(),
            module_key(&a, &Measurement([2; 32])).expose_secret()
        );
        assert_ne!(node_key_id(&node), provider_key_id(&a));
        assert_ne!(provider_key_fingerprint(&a), provider_key_fingerprint(&b));
        assert_ne!(
            provider_key_fingerprint(&a)[..KEY_ID_LEN],
            provider_key_id(&a),
            "the fingerprint is not the key id extended"
        );
    }
}
