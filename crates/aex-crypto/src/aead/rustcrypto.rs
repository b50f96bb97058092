//! The pure-Rust backend: RustCrypto's `aes-gcm` and `chacha20poly1305` (their `zeroize`
//! feature wipes the expanded key schedules on drop).

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;

use super::{Algorithm, OpenError};

/// One expanded key.
pub(super) enum Cipher {
    AesGcm(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Cipher {
    pub(super) fn new(algorithm: Algorithm, key: &[u8; 32]) -> Self {
        match algorithm {
            Algorithm::AesGcm => Cipher::AesGcm(Box::new(Aes256Gcm::new(key.into()))),
            Algorithm::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new(key.into())))
            }
        }
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            Cipher::AesGcm(_) => Algorithm::AesGcm,
            Cipher::ChaCha(_) => Algorithm::ChaCha20Poly1305,
        }
    }

    /// `ciphertext || tag`.
    pub(super) fn seal(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        let out = match self {
            Cipher::AesGcm(c) => c.encrypt(nonce.into(), payload),
            Cipher::ChaCha(c) => c.encrypt(nonce.into(), payload),
        };
        // Invariant: encryption fails only for plaintexts over 2^36 bytes, far beyond
        // the frame size limit every caller enforces first.
        out.expect("AEAD plaintext within length bounds")
    }

    /// Replaces `buf`, `ciphertext || tag` (at least a tag long: the caller checked), with its
    /// plaintext; on failure `buf` is left as it was (the tag is checked before decrypting).
    pub(super) fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        match self {
            Cipher::AesGcm(c) => c.decrypt_in_place(nonce.into(), aad, buf),
            Cipher::ChaCha(c) => c.decrypt_in_place(nonce.into(), aad, buf),
        }
        .map_err(|_| OpenError)
    }
}
