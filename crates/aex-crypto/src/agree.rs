//! Module key agreement between a freshly started module and the deployer.
//!
//! Construction: both sides hold an ephemeral X25519 key pair (RFC 7748). The TEE backend's
//! evidence binds the module's public key to its measurement and the deployer's challenge;
//! once the deployer has checked that evidence it derives
//!
//! ```text
//! module_key = HKDF-SHA-256(salt = challenge,
//!                           ikm  = X25519(secret, peer_public),
//!                           info = "aex/v1 module key" || module_pk || deployer_pk || measurement)
//! ```
//!
//! Each module process makes exactly one agreement (the secret is consumed), so a node agent
//! that races the deployer can at most key a module the deployer then refuses to use.

use hkdf::Hkdf;
use rand_core::OsRng;
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use crate::keys::{SecretKey, KEY_LEN};
use crate::measure::Measurement;

/// Length of an X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

const INFO_LABEL: &[u8] = b"aex/v1 module key";

/// One side of a module key agreement: an ephemeral X25519 secret, used once.
pub struct ModuleKeyAgreement {
    secret: EphemeralSecret,
    public: PublicKey,
}

/// The peer's public key was a low-order point, so the shared secret is not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreementError;

impl core::fmt::Display for AgreementError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("key agreement with a non-contributory (low-order) public key")
    }
}

impl std::error::Error for AgreementError {}

impl ModuleKeyAgreement {
    /// A fresh ephemeral key pair.
    pub fn new() -> Self {
        let secret = EphemeralSecret::random_from_rng(OsRng);
        let public = PublicKey::from(&secret);
        ModuleKeyAgreement { secret, public }
    }

    /// This side's public key, to be hashed into evidence or sent to the peer.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public.to_bytes()
    }

    /// Completes the agreement and derives the module key. `module_pk` and `deployer_pk` are
    /// given in that fixed order by both sides, whichever side this is.
    pub fn finish(
        self,
        peer_public: &[u8; PUBLIC_KEY_LEN],
        challenge: &[u8; 32],
        module_pk: &[u8; PUBLIC_KEY_LEN],
        deployer_pk: &[u8; PUBLIC_KEY_LEN],
        measurement: &Measurement,
    ) -> Result<SecretKey, AgreementError> {
        let context = Context {
            label: INFO_LABEL,
            challenge,
            module_pk,
            deployer_pk,
            measurement,
        };
        self.finish_in(peer_public, &context)
    }

    /// Completes the agreement and derives a key for `context` (its label separates the
    /// sgx module key from the symmetric kinds' session key).
    pub(crate) fn finish_in(
        self,
        peer_public: &[u8; PUBLIC_KEY_LEN],
        context: &Context<'_>,
    ) -> Result<SecretKey, AgreementError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer_public));
        if !shared.was_contributory() {
            return Err(AgreementError);
        }
        Ok(context.derive(shared.as_bytes()))
    }
}

/// What a key from an agreement is bound to, besides the shared secret.
pub(crate) struct Context<'a> {
    /// The HKDF `info` label (first part of `info`).
    pub(crate) label: &'a [u8],
    /// The deployer's fresh challenge: the HKDF salt.
    pub(crate) challenge: &'a [u8; 32],
    pub(crate) module_pk: &'a [u8; PUBLIC_KEY_LEN],
    pub(crate) deployer_pk: &'a [u8; PUBLIC_KEY_LEN],
    pub(crate) measurement: &'a Measurement,
}

impl Context<'_> {
    /// `HKDF-SHA-256(salt = challenge, ikm = shared,
    ///               info = label || module_pk || deployer_pk || measurement)`.
    pub(crate) fn derive(&self, shared: &[u8; 32]) -> SecretKey {
        let hk = Hkdf::<Sha256>::new(Some(self.challenge), shared);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        let info: [&[u8]; 4] = [
            self.label,
            self.module_pk,
            self.deployer_pk,
            &self.measurement.0,
        ];
        // Invariant: 32 bytes is far below HKDF-SHA-256's 8160-byte output limit.
        hk.expand_multi_info(&info, okm.as_mut())
            .expect("HKDF output length is valid");
        SecretKey::from_bytes(*okm)
    }
}

impl Default for ModuleKeyAgreement {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_key_and_context_matters() {
        let m = ModuleKeyAgreement::new();
        let d = ModuleKeyAgreement::new();
        let (mpk, dpk) = (m.public_key(), d.public_key());
        let meas = Measurement::of(b"code");
        let ch = [9u8; 32];
        let km = m.finish(&dpk, &ch, &mpk, &dpk, &meas).unwrap();
        let kd = d.finish(&mpk, &ch, &mpk, &dpk, &meas).unwrap();
        assert_eq!(km.expose_secret(), kd.expose_secret());

        let m2 = ModuleKeyAgreement::new();
        let d2 = ModuleKeyAgreement::new();
        let (mpk2, dpk2) = (m2.public_key(), d2.public_key());
        let a = m2
            .finish(&dpk2, &ch, &mpk2, &dpk2, &Measurement::of(b"other"))
            .unwrap();
        let b = d2.finish(&mpk2, &ch, &mpk2, &dpk2, &meas).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn low_order_point_is_refused() {
        let m = ModuleKeyAgreement::new();
        let mpk = m.public_key();
        let zero = [0u8; 32];
        assert_eq!(
            m.finish(&zero, &[0; 32], &mpk, &zero, &Measurement::of(b""))
                .err(),
            Some(AgreementError)
        );
    }
}
