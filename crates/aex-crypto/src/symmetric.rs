//! The module side of the symmetric attestation scheme (`trustzone`, `sancus`).
//!
//! On symmetric TEEs the platform derives each module's key from the provider key of the
//! stakeholder that loaded it and the module's measurement (`aex-tee` holds that hierarchy).
//! At attestation the module draws an ephemeral X25519 key pair (the process's one
//! [`ModuleKeyAgreement`]), proves it holds the module key by a MAC over the deployer's
//! challenge **and both public keys** ([`attest_mac`]), and both sides derive the **session
//! key** for commands from the X25519 shared secret ([`session_key`]).
//!
//! Why the exchange: the module key is not the module's alone. The platform derives it, the
//! node agent hands it over in simulation, and it is the same for every instance of the same
//! code under the same provider on the same node. A session key derived from the module key
//! and public values only (challenge, a nonce) would belong to everyone who ever learned the
//! module key: with the transcript of a deployment they would read every connection key the
//! deployer delivered. With the exchange, the module key only *authenticates* the module's
//! ephemeral public key; the session key needs one of the two ephemeral secrets, which never
//! leave their processes and are dropped after use (forward secrecy, as `sgx` has). The MAC
//! covers the deployer's public key too, so a node that swaps it is caught by the MAC, not
//! only by the key confirmation.
//!
//! ```text
//! MAC         = HMAC-SHA-256(module key, "aex/v2 " || kind || " attest" || simulated (1 byte)
//!                            || challenge (32) || measurement (32) || module_pk (32)
//!                            || deployer_pk (32))
//! session key = HKDF-SHA-256(salt = challenge, ikm = X25519(own secret, peer public),
//!                            info = "aex/v2 symmetric session" || module_pk || deployer_pk
//!                                   || measurement)
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::agree::{AgreementError, Context, ModuleKeyAgreement, PUBLIC_KEY_LEN};
use crate::keys::SecretKey;
use crate::measure::Measurement;

/// Length of the attestation MAC.
pub const MAC_LEN: usize = 32;

/// Prefix of the MAC's message (followed by the kind's name and `" attest"`).
pub const MAC_LABEL: &[u8] = b"aex/v2 ";

/// HKDF `info` label of the session key.
pub const SESSION_INFO: &[u8] = b"aex/v2 symmetric session";

/// The public values of one symmetric attestation, as both sides see them.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// The TEE kind's name (`trustzone`, `sancus`).
    pub kind: &'a str,
    /// Whether the platform is simulated.
    pub simulated: bool,
    /// The deployer's fresh challenge.
    pub challenge: &'a [u8; 32],
    /// The module's measurement (the deployer uses its own build's).
    pub measurement: &'a Measurement,
    /// The module's ephemeral X25519 public key.
    pub module_pk: &'a [u8; PUBLIC_KEY_LEN],
    /// The deployer's ephemeral X25519 public key.
    pub deployer_pk: &'a [u8; PUBLIC_KEY_LEN],
}

/// The module's proof that it holds `module_key`, bound to every value of the transcript.
pub fn attest_mac(module_key: &SecretKey, t: &Transcript<'_>) -> [u8; MAC_LEN] {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(module_key.expose_secret())
        .expect("HMAC takes any key length");
    for part in [
        MAC_LABEL,
        t.kind.as_bytes(),
        b" attest",
        &[u8::from(t.simulated)],
        t.challenge,
        &t.measurement.0,
        t.module_pk,
        t.deployer_pk,
    ] {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The command key of one attested instance: X25519 between this side's ephemeral secret
/// (`own`, consumed) and the other side's public key, bound to the transcript. The module
/// passes the deployer's public key as `peer`, the deployer the module's. Refused if `peer`
/// is a low-order point (the shared secret would not be secret).
pub fn session_key(
    own: ModuleKeyAgreement,
    peer: &[u8; PUBLIC_KEY_LEN],
    t: &Transcript<'_>,
) -> Result<SecretKey, AgreementError> {
    own.finish_in(peer, &session_context(t))
}

fn session_context<'a>(t: &Transcript<'a>) -> Context<'a> {
    Context {
        label: SESSION_INFO,
        challenge: t.challenge,
        module_pk: t.module_pk,
        deployer_pk: t.deployer_pk,
        measurement: t.measurement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript<'a>(
        challenge: &'a [u8; 32],
        m: &'a Measurement,
        mpk: &'a [u8; 32],
        dpk: &'a [u8; 32],
    ) -> Transcript<'a> {
        Transcript {
            kind: "sancus",
            simulated: true,
            challenge,
            measurement: m,
            module_pk: mpk,
            deployer_pk: dpk,
        }
    }

    #[test]
    fn both_sides_derive_one_session_key_per_exchange() {
        let m = Measurement([2; 32]);
        let ch = [3; 32];
        let derive = || {
            let (module, deployer) = (ModuleKeyAgreement::new(), ModuleKeyAgreement::new());
            let (mpk, dpk) = (module.public_key(), deployer.public_key());
            let t = transcript(&ch, &m, &mpk, &dpk);
            let a = session_key(module, &dpk, &t).unwrap();
            let b = session_key(deployer, &mpk, &t).unwrap();
            assert_eq!(a.expose_secret(), b.expose_secret());
            a
        };
        // Same code, same challenge: every exchange gives a new key.
        assert_ne!(derive().expose_secret(), derive().expose_secret());
    }

    #[test]
    fn a_low_order_peer_key_is_refused() {
        let m = Measurement([2; 32]);
        let module = ModuleKeyAgreement::new();
        let mpk = module.public_key();
        let t = transcript(&[3; 32], &m, &mpk, &[0; 32]);
        assert_eq!(
            session_key(module, &[0; 32], &t).err(),
            Some(AgreementError)
        );
    }

    /// Known answers: the MAC layout and the session key's HKDF from a fixed shared secret,
    /// computed independently with Python's `hmac`/`hashlib` (HKDF written out from RFC 5869).
    #[test]
    fn known_answers() {
        let m = Measurement([0x22; 32]);
        let t = transcript(&[0x33; 32], &m, &[0x44; 32], &[0x55; 32]);
        let mac = attest_mac(&SecretKey::from_bytes([0x11; 32]), &t);
        assert_eq!(
            hex::encode(mac),
            "440041e8507556fe188bf2a453e05ce1d92adbb73dc39f0d7d48ce194c7bc00a"
        );
        let session = session_context(&t).derive(&[0x66; 32]);
        assert_eq!(
            hex::encode(session.expose_secret()),
            "b61b72e1cf459178baf36a5e81b8c6995601bb196e361a06637f0147c1b8d038"
        );
    }

    #[test]
    fn mac_binds_every_input() {
        let mk = SecretKey::from_bytes([1; 32]);
        let m = Measurement([2; 32]);
        let (ch, pk) = ([3; 32], [4; 32]);
        let t = transcript(&ch, &m, &pk, &pk);
        let base = attest_mac(&mk, &t);
        let other_m = Measurement([9; 32]);
        let other = [5; 32];
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
                challenge: &other,
                ..t
            },
            Transcript {
                measurement: &other_m,
                ..t
            },
            Transcript {
                module_pk: &other,
                ..t
            },
            Transcript {
                deployer_pk: &other,
                ..t
            },
        ] {
            assert_ne!(base, attest_mac(&mk, &changed), "{changed:?}");
        }
        assert_ne!(base, attest_mac(&SecretKey::from_bytes([7; 32]), &t));
    }
}
