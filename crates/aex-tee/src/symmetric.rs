//! The symmetric backends' key hierarchy and attestation MAC, as pure functions.
//!
//! ```text
//! node key   (32 bytes, per node, in the node's data directory; in hardware: fused in the chip)
//! vendor key = HKDF-SHA-256(salt = none, ikm = node key,
//!                           info = "aex/v1 vendor key" || vendor_id (u16 big endian))
//! module key = HKDF-SHA-256(salt = none, ikm = vendor key,
//!                           info = "aex/v1 symmetric module key" || measurement (32 bytes))
//! key id     = HMAC-SHA-256(vendor key, "aex/v1 vendor key id")[0..8]
//! MAC        = HMAC-SHA-256(module key, "aex/v1 " || kind || " attest"
//!                           || simulated (1 byte: 0 or 1) || challenge (32) || measurement (32))
//! ```
//!
//! (`salt = none` is RFC 5869's default: 32 zero bytes.) `kind` is `trustzone` or `sancus`.
//! The node derives module keys and hands each to its module ([`module_key`]); the module answers
//! a challenge with [`attest_mac`]; the deployer, holding the vendor key, derives the module key
//! of **its own build's** measurement and checks the MAC with [`verify_attest_mac`]. The module
//! key never travels.
//!
//! This file depends only on `hkdf`, `hmac`, `sha2`, `subtle`, `zeroize` and aex-crypto's
//! [`SecretKey`] and [`Measurement`], so that the module-side half ([`attest_mac`],
//! [`SymmetricKind`]) can move into aex-crypto for the module runtime unchanged.

use aex_crypto::{Measurement, SecretKey, KEY_LEN};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A vendor identifier: which vendor key of a node a module key derives from.
pub type VendorId = u16;

/// Length of the attestation MAC.
pub const MAC_LEN: usize = aex_crypto::symmetric::MAC_LEN;

/// Length of a vendor key id.
pub const KEY_ID_LEN: usize = 8;

/// HKDF `info` prefix of the vendor key (followed by the vendor id, u16 big endian).
pub const VENDOR_KEY_INFO: &[u8] = b"aex/v1 vendor key";

/// HKDF `info` prefix of the module key (followed by the 32-byte measurement).
pub const MODULE_KEY_INFO: &[u8] = b"aex/v1 symmetric module key";

/// HMAC message of a vendor key's public id.
pub const KEY_ID_LABEL: &[u8] = b"aex/v1 vendor key id";

/// The symmetric TEE kinds; their names are part of the MAC label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymmetricKind {
    /// `trustzone`.
    TrustZone,
    /// `sancus`.
    Sancus,
}

impl SymmetricKind {
    /// The kind's name, as in [`TeeKind::name`](crate::TeeKind::name).
    pub fn name(self) -> &'static str {
        match self {
            SymmetricKind::TrustZone => "trustzone",
            SymmetricKind::Sancus => "sancus",
        }
    }
}

fn hkdf32(ikm: &[u8; KEY_LEN], info: &[&[u8]]) -> SecretKey {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // Invariant: 32 bytes is far below HKDF-SHA-256's 255 * 32 output limit.
    Hkdf::<Sha256>::new(None, ikm)
        .expand_multi_info(info, okm.as_mut())
        .expect("32-byte HKDF output");
    SecretKey::from_bytes(*okm)
}

fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The vendor key of `vendor_id` under `node_key` (node side only).
pub fn vendor_key(node_key: &SecretKey, vendor_id: VendorId) -> SecretKey {
    hkdf32(
        node_key.expose_secret(),
        &[VENDOR_KEY_INFO, &vendor_id.to_be_bytes()],
    )
}

/// The module key of `measurement` under `vendor_key` (node side, and deployer side with the
/// deployer's own measurement).
pub fn module_key(vendor_key: &SecretKey, measurement: &Measurement) -> SecretKey {
    hkdf32(
        vendor_key.expose_secret(),
        &[MODULE_KEY_INFO, &measurement.0],
    )
}

/// A public, non-secret id of a vendor key, so that a deployer holding the wrong key file gets a
/// precise error instead of a bad MAC.
pub fn vendor_key_id(vendor_key: &SecretKey) -> [u8; KEY_ID_LEN] {
    let full = hmac(vendor_key.expose_secret(), &[KEY_ID_LABEL]);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&full[..KEY_ID_LEN]);
    id
}

/// The module's answer to `challenge` (module side; the function lives in
/// `aex_crypto::symmetric` so the module runtime can call it without this crate).
pub fn attest_mac(
    kind: SymmetricKind,
    simulated: bool,
    module_key: &SecretKey,
    challenge: &[u8; 32],
    measurement: &Measurement,
) -> [u8; MAC_LEN] {
    aex_crypto::symmetric::attest_mac(kind.name(), simulated, module_key, challenge, measurement)
}

/// Checks `mac` (any length; only [`MAC_LEN`] bytes can pass) in constant time.
pub fn verify_attest_mac(
    kind: SymmetricKind,
    simulated: bool,
    module_key: &SecretKey,
    challenge: &[u8; 32],
    measurement: &Measurement,
    mac: &[u8],
) -> bool {
    let want = attest_mac(kind, simulated, module_key, challenge, measurement);
    mac.len() == MAC_LEN && bool::from(want.ct_eq(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Known-answer vectors: pin the labels and layouts documented above. Computed
    /// independently with Python's `hmac`/`hashlib` (HKDF written out from RFC 5869).
    #[test]
    fn known_answers() {
        let node = SecretKey::from_bytes([0x11; 32]);
        let vk = vendor_key(&node, 7);
        let m = Measurement([0x22; 32]);
        let mk = module_key(&vk, &m);
        let mac = attest_mac(SymmetricKind::Sancus, true, &mk, &[0x33; 32], &m);
        assert_eq!(
            (
                hex::encode(vk.expose_secret()),
                hex::encode(mk.expose_secret()),
                hex::encode(vendor_key_id(&vk)),
                hex::encode(mac),
            ),
            (
                VECTOR[0].to_string(),
                VECTOR[1].to_string(),
                VECTOR[2].to_string(),
                VECTOR[3].to_string(),
            )
        );
        assert!(verify_attest_mac(
            SymmetricKind::Sancus,
            true,
            &mk,
            &[0x33; 32],
            &m,
            &hex32(VECTOR[3])
        ));
    }

    /// vendor key, module key, vendor key id, MAC.
    const VECTOR: [&str; 4] = [
        "33dc845a4167630d524099d8dec3bd3b2ca92ae4e7de9feae20a57912f1a1269",
        "b798735b6bbf238f47ac257c369e4d04db759662374f70336805c65d0e6d58ce",
        "ff2cf6830d19c214",
        "3b601608477b0b0705a860585bb252e858b8c64792b391883c6edb8fe8036e46",
    ];

    #[test]
    fn every_input_changes_the_mac() {
        let mk = SecretKey::from_bytes([1; 32]);
        let m = Measurement([2; 32]);
        let base = attest_mac(SymmetricKind::TrustZone, false, &mk, &[3; 32], &m);
        let k = SymmetricKind::TrustZone;
        assert!(verify_attest_mac(k, false, &mk, &[3; 32], &m, &base));
        assert!(!verify_attest_mac(
            SymmetricKind::Sancus,
            false,
            &mk,
            &[3; 32],
            &m,
            &base
        ));
        assert!(!verify_attest_mac(k, true, &mk, &[3; 32], &m, &base));
        assert!(!verify_attest_mac(k, false, &mk, &[4; 32], &m, &base));
        assert!(!verify_attest_mac(
            k,
            false,
            &mk,
            &[3; 32],
            &Measurement([5; 32]),
            &base
        ));
        let other = SecretKey::from_bytes([9; 32]);
        assert!(!verify_attest_mac(k, false, &other, &[3; 32], &m, &base));
        assert!(!verify_attest_mac(k, false, &mk, &[3; 32], &m, &base[..31]));
        assert!(!verify_attest_mac(k, false, &mk, &[3; 32], &m, &[]));
    }

    #[test]
    fn hierarchy_separates_vendors_and_measurements() {
        let node = SecretKey::from_bytes([7; 32]);
        let (a, b) = (vendor_key(&node, 1), vendor_key(&node, 2));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(vendor_key_id(&a), vendor_key_id(&b));
        let m1 = module_key(&a, &Measurement([1; 32]));
        let m2 = module_key(&a, &Measurement([2; 32]));
        assert_ne!(m1.expose_secret(), m2.expose_secret());
    }
}
