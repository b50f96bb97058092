//! Who loads a module onto a node: a stakeholder, named by its deployer identity. Every
//! backend is told (symmetric kinds derive the module's key under that stakeholder's provider
//! key), so the type belongs to none of them.

/// A software provider on a symmetric node: a stakeholder, named by its deployer identity
/// (the Ed25519 public key it signs its node sessions with, `aex identity`). Public.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Provider(pub [u8; 32]);

impl Provider {
    /// The first 8 bytes in hex, as in file names and logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl core::fmt::Display for Provider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl core::fmt::Debug for Provider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Provider({self})")
    }
}
