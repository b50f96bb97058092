//! The kinds of TEE a node can offer, the attestation scheme of each, and the connection
//! algorithms each offers.
//!
//! Invariant: every kind has exactly one [`Scheme`], and [`TeeKind::algorithms`] is never
//! empty, so a connection between any two kinds has at least ChaCha20-Poly1305 in common.

use aex_crypto::Algorithm;

/// A TEE kind, as named in descriptors, node configurations and evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TeeKind {
    /// Quote-based attestation shaped like Intel SGX DCAP (simulated root, or Intel's).
    Sgx,
    /// Symmetric key hierarchy, as on Arm TrustZone boards (node key → provider key → module key).
    TrustZone,
    /// Symmetric key hierarchy, as on Sancus microcontrollers.
    Sancus,
    /// No TEE at all: development only, refused unless the descriptor opts in per module.
    Native,
}

/// How a kind attests a module, which says what the node agent passes to
/// [`Backend::evidence`](crate::Backend::evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// A signed report binding `SHA-256(module public key || challenge)` (`sgx`): the node
    /// passes the module's X25519 public key.
    Quote,
    /// A MAC under the module key over the challenge and both ephemeral public keys
    /// (`trustzone`, `sancus`): the node passes the MAC the module computed.
    Symmetric,
    /// Unsigned claims (`native`): the node passes the module's X25519 public key.
    Insecure,
}

/// The symmetric TEE kinds; their names are part of the key hierarchy and the MAC label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymmetricKind {
    /// `trustzone`.
    TrustZone,
    /// `sancus`.
    Sancus,
}

impl SymmetricKind {
    /// The kind's name, as in [`TeeKind::name`].
    pub fn name(self) -> &'static str {
        match self {
            SymmetricKind::TrustZone => "trustzone",
            SymmetricKind::Sancus => "sancus",
        }
    }
}

/// A TEE kind name that aex does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TEE kind `{name}` (valid: {valid})", valid = TeeKind::NAMES.join(", "))]
pub struct UnknownTeeKind {
    /// The name given.
    pub name: String,
}

const BOTH: &[Algorithm] = &[Algorithm::AesGcm, Algorithm::ChaCha20Poly1305];
const CHACHA_ONLY: &[Algorithm] = &[Algorithm::ChaCha20Poly1305];

impl TeeKind {
    /// Every kind.
    pub const ALL: [TeeKind; 4] = [
        TeeKind::Sgx,
        TeeKind::TrustZone,
        TeeKind::Sancus,
        TeeKind::Native,
    ];

    /// Every kind's name, for error messages.
    pub const NAMES: &'static [&'static str] = &["sgx", "trustzone", "sancus", "native"];

    /// The name used in descriptors and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            TeeKind::Sgx => "sgx",
            TeeKind::TrustZone => "trustzone",
            TeeKind::Sancus => "sancus",
            TeeKind::Native => "native",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Result<Self, UnknownTeeKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownTeeKind { name: name.into() })
    }

    /// The attestation scheme of this kind.
    pub fn scheme(self) -> Scheme {
        match self {
            TeeKind::Sgx => Scheme::Quote,
            TeeKind::TrustZone | TeeKind::Sancus => Scheme::Symmetric,
            TeeKind::Native => Scheme::Insecure,
        }
    }

    /// The symmetric kind, for `trustzone` and `sancus`.
    pub fn symmetric(self) -> Option<SymmetricKind> {
        match self {
            TeeKind::TrustZone => Some(SymmetricKind::TrustZone),
            TeeKind::Sancus => Some(SymmetricKind::Sancus),
            TeeKind::Sgx | TeeKind::Native => None,
        }
    }

    /// The connection AEAD algorithms a module on this kind can use, in preference order.
    ///
    /// Sancus-class microcontrollers have no AES hardware in our model, so `sancus` offers
    /// ChaCha20-Poly1305 only; every other kind offers both.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            TeeKind::Sancus => CHACHA_ONLY,
            TeeKind::Sgx | TeeKind::TrustZone | TeeKind::Native => BOTH,
        }
    }

    /// Whether a module on this kind can use `algorithm`.
    pub fn offers(self, algorithm: Algorithm) -> bool {
        self.algorithms().contains(&algorithm)
    }
}

impl From<SymmetricKind> for TeeKind {
    fn from(kind: SymmetricKind) -> Self {
        match kind {
            SymmetricKind::TrustZone => TeeKind::TrustZone,
            SymmetricKind::Sancus => TeeKind::Sancus,
        }
    }
}

/// The connection AEAD algorithms `kind` offers (same as [`TeeKind::algorithms`]).
pub fn algorithms(kind: TeeKind) -> &'static [Algorithm] {
    kind.algorithms()
}

impl core::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in TeeKind::ALL {
            assert_eq!(TeeKind::from_name(k.name()), Ok(k));
        }
        let err = TeeKind::from_name("tdx").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown TEE kind `tdx` (valid: sgx, trustzone, sancus, native)"
        );
    }

    #[test]
    fn algorithms_per_kind() {
        assert_eq!(algorithms(TeeKind::Sancus), &[Algorithm::ChaCha20Poly1305]);
        assert!(!TeeKind::Sancus.offers(Algorithm::AesGcm));
        for k in [TeeKind::Sgx, TeeKind::TrustZone, TeeKind::Native] {
            assert_eq!(k.algorithms(), &Algorithm::ALL);
        }
        // Any two kinds share an algorithm.
        for a in TeeKind::ALL {
            for b in TeeKind::ALL {
                assert!(a.algorithms().iter().any(|x| b.offers(*x)));
            }
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(TeeKind::Sgx.scheme(), Scheme::Quote);
        assert_eq!(TeeKind::TrustZone.scheme(), Scheme::Symmetric);
        assert_eq!(TeeKind::Sancus.symmetric(), Some(SymmetricKind::Sancus));
        assert_eq!(TeeKind::Native.scheme(), Scheme::Insecure);
    }
}
