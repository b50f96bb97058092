//! A proposal's id.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A proposal's id: the SHA-256 of its signed payload.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProposalId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl ProposalId {
    /// Its full hex form.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ProposalId {
    /// The first 8 bytes in hex: what people type (`aex vote 1f2e…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProposalId({})", self.hex())
    }
}
