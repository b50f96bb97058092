//! Secret key material: one type for every 32-byte symmetric key in aex.
//!
//! Invariant: a [`SecretKey`] never leaves this type except through
//! [`SecretKey::expose_secret`]; it cannot be printed and is zeroized on drop.

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length in bytes of every symmetric key in aex.
pub const KEY_LEN: usize = 32;

/// A 32-byte symmetric key (module key or connection key).
///
/// Deliberately not `Debug`, `Display` or `Clone`: copying a key is an explicit
/// [`SecretKey::from_bytes`] of its exposed bytes.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut key = SecretKey([0; KEY_LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// Takes ownership of key bytes; the caller should zeroize its own copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// The raw key bytes. Every call site is a place where a secret leaves its type.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(REDACTED)")
    }
}

/// `N` bytes from the operating system's CSPRNG (challenges, identifiers).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

/// Zeroizes `bytes` and its spare capacity: what types holding large secrets (state
/// snapshots, sealed-state plaintexts) call when dropped.
///
/// The same as `Zeroize::zeroize`, which is generic and so compiled in the crate that calls
/// it: here it is compiled once, in this crate, which the workspace optimizes even in debug
/// builds. Called from an unoptimized crate it wiped 64 MiB in 2.5 s, one volatile write per
/// byte through a function call; from here it takes about 20 ms.
pub fn wipe(bytes: &mut Vec<u8>) {
    bytes.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_differ() {
        assert_ne!(
            SecretKey::random().expose_secret(),
            SecretKey::random().expose_secret()
        );
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = SecretKey::from_bytes([0xab; KEY_LEN]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }
}
