//! Deployer identities: Ed25519 signing keys (RFC 8032) that authorise management requests.
//!
//! A deployer proves to a node agent that a request comes from an admitted identity by signing
//! it; the node only ever holds public keys. Verification uses `verify_strict`, which rejects
//! small-order public keys and non-canonical signatures, so an attacker cannot derive a second
//! valid signature for a message from a first one, nor make a weak key verify everything.
//!
//! Invariant: the secret half never leaves [`SigningIdentity`] except through
//! [`SigningIdentity::expose_secret`] (to be written to the identity file); it cannot be
//! printed and is zeroized on drop.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::OsRng;

/// Length of a public identity (an Ed25519 public key) in bytes.
pub const PUBLIC_IDENTITY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A deployer's secret signing key.
///
/// Deliberately not `Clone` or `Display`; `Debug` prints only the public half.
pub struct SigningIdentity(SigningKey);

impl SigningIdentity {
    /// A fresh identity from the operating system's CSPRNG.
    pub fn generate() -> Self {
        SigningIdentity(SigningKey::generate(&mut OsRng))
    }

    /// The identity whose 32-byte secret seed is `seed`; the caller should zeroize its copy.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningIdentity(SigningKey::from_bytes(seed))
    }

    /// The secret seed, to store it. Every call site is a place where the secret leaves its
    /// type.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The public key nodes admit.
    pub fn public(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl core::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SigningIdentity(REDACTED)")
    }
}

/// A signature did not verify, or the public key is not a valid Ed25519 key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSignature;

impl core::fmt::Display for BadSignature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the signature does not verify under the deployer's public key")
    }
}

impl std::error::Error for BadSignature {}

/// Checks `signature` over `message` under `public` (strict RFC 8032 rules).
pub fn verify_signature(
    public: &[u8; PUBLIC_IDENTITY_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), BadSignature> {
    let key = VerifyingKey::from_bytes(public).map_err(|_| BadSignature)?;
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &signature)
        .map_err(|_| BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let id = SigningIdentity::generate();
        let sig = id.sign(b"request");
        assert_eq!(verify_signature(&id.public(), b"request", &sig), Ok(()));
        assert_eq!(
            verify_signature(&id.public(), b"requesT", &sig),
            Err(BadSignature)
        );
        let other = SigningIdentity::generate();
        assert_eq!(
            verify_signature(&other.public(), b"request", &sig),
            Err(BadSignature)
        );
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert_eq!(
            verify_signature(&id.public(), b"request", &flipped),
            Err(BadSignature)
        );
    }

    #[test]
    fn seed_round_trip_and_redacted_debug() {
        let id = SigningIdentity::generate();
        let again = SigningIdentity::from_seed(id.expose_secret());
        assert_eq!(again.public(), id.public());
        assert_eq!(format!("{id:?}"), "SigningIdentity(REDACTED)");
    }

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let id = SigningIdentity::from_seed(&seed);
        assert_eq!(
            hex::encode(id.public()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(id.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn small_order_key_is_refused() {
        // The identity point: under non-strict rules it verifies crafted signatures.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert_eq!(verify_signature(&identity, b"x", &sig), Err(BadSignature));
    }
}
