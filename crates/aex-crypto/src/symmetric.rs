//! The module side of the symmetric attestation scheme (`trustzone`, `sancus`).
//!
//! On symmetric TEEs the platform derives each module's key from a vendor key and the module's
//! measurement (`aex-tee` holds that hierarchy). The module proves it holds that key by a MAC
//! over the deployer's challenge ([`attest_mac`]), and both sides then derive a **session key**
//! for commands ([`session_key`]) from the module key, the challenge and a fresh nonce the
//! module draws at start.
//!
//! Why the session key: the module key is the same for every instance of the same code on the
//! same node, so commands sealed directly under it could be replayed into a later instance
//! (whose counters start again). The module's fresh nonce makes every attested instance's
//! command key new, even if an attacker replays an old challenge.
//!
//! ```text
//! MAC         = HMAC-SHA-256(module key, "aex/v1 " || kind || " attest"
//!                            || simulated (1 byte) || challenge (32) || measurement (32))
//! session key = HKDF-SHA-256(salt = challenge, ikm = module key,
//!                            info = "aex/v1 symmetric session" || module nonce (32))
//! ```

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::{SecretKey, KEY_LEN};
use crate::measure::Measurement;

/// Length of the attestation MAC.
pub const MAC_LEN: usize = 32;

const SESSION_INFO: &[u8] = b"aex/v1 symmetric session";

/// The module's answer to `challenge`: a MAC under its module key binding the TEE kind's name,
/// whether the platform is simulated, the challenge and the measurement.
pub fn attest_mac(
    kind: &str,
    simulated: bool,
    module_key: &SecretKey,
    challenge: &[u8; 32],
    measurement: &Measurement,
) -> [u8; MAC_LEN] {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(module_key.expose_secret())
        .expect("HMAC takes any key length");
    for part in [
        &b"aex/v1 "[..],
        kind.as_bytes(),
        b" attest",
        &[u8::from(simulated)],
        challenge,
        &measurement.0,
    ] {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The command key of one attested instance.
pub fn session_key(
    module_key: &SecretKey,
    challenge: &[u8; 32],
    module_nonce: &[u8; 32],
) -> SecretKey {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // Invariant: 32 bytes is far below HKDF-SHA-256's output limit.
    Hkdf::<Sha256>::new(Some(challenge), module_key.expose_secret())
        .expand_multi_info(&[SESSION_INFO, module_nonce], okm.as_mut())
        .expect("32-byte HKDF output");
    SecretKey::from_bytes(*okm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_differ_per_nonce_and_challenge() {
        let mk = SecretKey::from_bytes([1; 32]);
        let a = session_key(&mk, &[2; 32], &[3; 32]);
        let b = session_key(&mk, &[2; 32], &[4; 32]);
        let c = session_key(&mk, &[5; 32], &[3; 32]);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), c.expose_secret());
        assert_eq!(
            a.expose_secret(),
            session_key(&mk, &[2; 32], &[3; 32]).expose_secret()
        );
    }

    #[test]
    fn mac_binds_every_input() {
        let mk = SecretKey::from_bytes([1; 32]);
        let m = Measurement([2; 32]);
        let base = attest_mac("sancus", true, &mk, &[3; 32], &m);
        assert_ne!(base, attest_mac("trustzone", true, &mk, &[3; 32], &m));
        assert_ne!(base, attest_mac("sancus", false, &mk, &[3; 32], &m));
        assert_ne!(base, attest_mac("sancus", true, &mk, &[4; 32], &m));
        assert_ne!(
            base,
            attest_mac("sancus", true, &mk, &[3; 32], &Measurement([9; 32]))
        );
    }
}
