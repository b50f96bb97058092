//! The `ring` backend: BoringSSL's AES-256-GCM and ChaCha20-Poly1305 assembly through `ring`'s
//! safe API. `ring` does not wipe its key schedules on drop (the keys they were expanded from
//! are wiped by their owners).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

use super::{Algorithm, OpenError, TAG_LEN};

/// One expanded key.
pub(super) struct Cipher {
    key: LessSafeKey,
    algorithm: Algorithm,
}

impl Cipher {
    pub(super) fn new(algorithm: Algorithm, key: &[u8; 32]) -> Self {
        let alg = match algorithm {
            Algorithm::AesGcm => &AES_256_GCM,
            Algorithm::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        };
        // Invariant: both algorithms take 32-byte keys, the only length a caller can pass.
        let key = UnboundKey::new(alg, key).expect("a 32-byte key for a 256-bit AEAD");
        Cipher {
            key: LessSafeKey::new(key),
            algorithm,
        }
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `ciphertext || tag`. (`LessSafeKey` because the nonce is the caller's, whose channel
    /// state never repeats it under one key: docs/PROTOCOL.md §7.)
    pub(super) fn seal(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut out,
            )
            // Invariant: sealing fails only for inputs over ring's length limit (about 2^36
            // bytes for AES-GCM, 2^38 for ChaCha20-Poly1305), far beyond the frame size limit
            // every caller enforces first.
            .expect("AEAD plaintext within length bounds");
        out
    }

    /// Replaces `buf`, `ciphertext || tag` (at least a tag long: the caller checked), with its
    /// plaintext; on failure its contents are unspecified (the caller wipes them).
    pub(super) fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let len = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .map_err(|_| OpenError)?
            .len();
        buf.truncate(len);
        Ok(())
    }
}
