//! Authenticated encryption of events and management commands.
//!
//! The construction is a plain AEAD (AES-256-GCM, NIST SP 800-38D, or ChaCha20-Poly1305,
//! RFC 8439) with a 96-bit nonce built as `domain (1 byte) || 0 (3 bytes) || counter (8 bytes,
//! big endian)`. The caller's channel state guarantees that `(domain, counter)` never repeats
//! under one key; this module guarantees nothing else feeds the nonce. Associated data is the
//! caller's: `aex-proto` binds connection id, direction, kind and counter into it.
//!
//! Backends: with the `ring` feature (the SDK's default), `ring`'s implementations, whose
//! assembly uses AES-NI, VAES and carry-less multiplication (about 7 times RustCrypto's
//! `aes-gcm` 0.10 on 16 KiB, 1.8 times on 64 B: BENCHMARKS.md "Module AEAD"); without it,
//! RustCrypto's pure-Rust `aes-gcm` and `chacha20poly1305`. Same algorithms, same bytes. What
//! differs is what a module trusts (C and assembly from BoringSSL against Rust with
//! intrinsics) and what is wiped: RustCrypto's key schedules are zeroized on drop, `ring`'s
//! are not (the 32-byte keys they were expanded from are, as [`SecretKey`]s).
//!
//! Limits: AES-GCM's security bound degrades after about 2^32 messages of arbitrary nonces,
//! but with deterministic, unique nonces the limit is the 2^64 counter space; aex re-keys a
//! connection long before either (the counter type refuses to wrap).

use crate::keys::{wipe, SecretKey};

// Two implementations of the same two standard AEADs, chosen at build time (the `ring` feature
// of this crate, which the `aex` SDK turns on by default); both give the same bytes, which the
// tests below check against each other. `rustcrypto` is also compiled for the tests.
#[cfg(feature = "ring")]
mod ring;
#[cfg(feature = "ring")]
use self::ring::Cipher;
#[cfg(any(not(feature = "ring"), test))]
mod rustcrypto;
#[cfg(not(feature = "ring"))]
use self::rustcrypto::Cipher;

/// Length of the authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// The AEAD algorithm of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// AES-256-GCM, the default.
    #[default]
    AesGcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl Algorithm {
    /// Every algorithm, in preference order.
    pub const ALL: [Algorithm; 2] = [Algorithm::AesGcm, Algorithm::ChaCha20Poly1305];

    /// The name used in descriptors and on the wire documentation.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::AesGcm => "aes-gcm",
            Algorithm::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    /// Parses a descriptor name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A 96-bit AEAD nonce derived from a domain byte and a 64-bit counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; 12]);

impl Nonce {
    /// `domain || 0 0 0 || counter (big endian)`.
    pub fn new(domain: u8, counter: u64) -> Self {
        let mut n = [0u8; 12];
        n[0] = domain;
        n[4..].copy_from_slice(&counter.to_be_bytes());
        Nonce(n)
    }

    /// The nonce bytes (public).
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

/// Opening failed: the ciphertext, its associated data or the key is not what was sealed.
///
/// Deliberately carries no detail: which of these it was is not knowable, and a detailed
/// error would only help an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("authentication failed (tampered data, wrong key or wrong context)")
    }
}

impl std::error::Error for OpenError {}

/// A key schedule ready to seal and open; holds the expanded cipher, not just the key.
pub struct SealingKey {
    cipher: Cipher,
}

impl SealingKey {
    /// Expands `key` for `algorithm`.
    pub fn new(algorithm: Algorithm, key: &SecretKey) -> Self {
        SealingKey {
            cipher: Cipher::new(algorithm, key.expose_secret()),
        }
    }

    /// The algorithm this key was expanded for.
    pub fn algorithm(&self) -> Algorithm {
        self.cipher.algorithm()
    }

    /// Encrypts and authenticates `plaintext`, authenticating `aad` too. Output is
    /// `ciphertext || tag`.
    pub fn seal(&self, nonce: Nonce, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.cipher.seal(&nonce.0, aad, plaintext)
    }

    /// Verifies and decrypts `ciphertext || tag`.
    pub fn open(&self, nonce: Nonce, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_in_place(nonce, aad, ciphertext.to_vec())
    }

    /// Like [`SealingKey::open`], decrypting in the buffer it is given (no copy): the
    /// plaintext is `ciphertext` shortened by its tag. On failure the buffer is wiped.
    pub fn open_in_place(
        &self,
        nonce: Nonce,
        aad: &[u8],
        mut ciphertext: Vec<u8>,
    ) -> Result<Vec<u8>, OpenError> {
        if ciphertext.len() < TAG_LEN {
            return Err(OpenError);
        }
        match self.cipher.open_in_place(&nonce.0, aad, &mut ciphertext) {
            Ok(()) => Ok(ciphertext),
            Err(e) => {
                // What a failed open leaves is the backend's affair (keystream applied to
                // forged bytes, for some): wiped, never handed back.
                wipe(&mut ciphertext);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    #[test]
    fn nonce_layout() {
        let n = Nonce::new(1, 0x0102030405060708);
        assert_eq!(n.as_bytes(), &[1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn aes_gcm_known_answer() {
        // NIST GCM test case 13 (AES-256, zero key, zero nonce, empty plaintext).
        let k = SealingKey::new(Algorithm::AesGcm, &key(0));
        let out = k.seal(Nonce::new(0, 0), b"", b"");
        assert_eq!(hex::encode(out), "530f8afbc74536b9a963b4f1c4cb738b");
    }

    #[test]
    fn chacha_known_answer() {
        // RFC 8439 §2.8.2 test vector.
        let k: [u8; 32] =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .unwrap()
                .try_into()
                .unwrap();
        let sk = SealingKey::new(Algorithm::ChaCha20Poly1305, &SecretKey::from_bytes(k));
        // Nonce 07000000 40414243 44454647 expressed through Nonce::new.
        let nonce = Nonce::new(7, 0x4041424344454647);
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let out = sk.seal(nonce, &aad, pt);
        assert_eq!(
            hex::encode(&out[out.len() - 16..]),
            "1ae10b594f09e26a7e902ecbd0600691"
        );
        assert_eq!(sk.open(nonce, &aad, &out).unwrap(), pt);
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(Algorithm::from_name("rot13"), None);
    }

    proptest! {
        /// The build's backend and the pure-Rust one give the same bytes and accept each
        /// other's (with the `ring` feature these are two implementations; without it, one).
        #[test]
        fn both_backends_agree(
            pt in proptest::collection::vec(any::<u8>(), 0..2048),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            k in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            chacha in any::<bool>(),
        ) {
            let alg = if chacha { Algorithm::ChaCha20Poly1305 } else { Algorithm::AesGcm };
            let ours = Cipher::new(alg, &k);
            let reference = rustcrypto::Cipher::new(alg, &k);
            prop_assert_eq!(ours.algorithm(), reference.algorithm());
            let sealed = ours.seal(&nonce, &aad, &pt);
            prop_assert_eq!(&sealed, &reference.seal(&nonce, &aad, &pt));
            let mut buf = sealed.clone();
            reference.open_in_place(&nonce, &aad, &mut buf).unwrap();
            prop_assert_eq!(&buf, &pt);
            let mut buf = sealed;
            ours.open_in_place(&nonce, &aad, &mut buf).unwrap();
            prop_assert_eq!(buf, pt);
        }

        #[test]
        fn round_trip_and_any_bit_flip_fails(
            pt in proptest::collection::vec(any::<u8>(), 0..512),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            counter in any::<u64>(),
            flip in any::<usize>(),
            chacha in any::<bool>(),
        ) {
            let alg = if chacha { Algorithm::ChaCha20Poly1305 } else { Algorithm::AesGcm };
            let k = SealingKey::new(alg, &key(7));
            let nonce = Nonce::new(0, counter);
            let mut ct = k.seal(nonce, &aad, &pt);
            prop_assert_eq!(k.open(nonce, &aad, &ct).unwrap(), pt);
            let i = flip % ct.len();
            ct[i] ^= 1;
            prop_assert_eq!(k.open(nonce, &aad, &ct), Err(OpenError));
        }

        #[test]
        fn wrong_nonce_aad_or_key_fails(pt in proptest::collection::vec(any::<u8>(), 0..64), counter in 0u64..u64::MAX) {
            let k = SealingKey::new(Algorithm::AesGcm, &key(1));
            let ct = k.seal(Nonce::new(0, counter), b"ad", &pt);
            prop_assert_eq!(k.open(Nonce::new(0, counter + 1), b"ad", &ct), Err(OpenError));
            prop_assert_eq!(k.open(Nonce::new(1, counter), b"ad", &ct), Err(OpenError));
            prop_assert_eq!(k.open(Nonce::new(0, counter), b"ae", &ct), Err(OpenError));
            let other = SealingKey::new(Algorithm::AesGcm, &key(2));
            prop_assert_eq!(other.open(Nonce::new(0, counter), b"ad", &ct), Err(OpenError));
        }
    }
}
