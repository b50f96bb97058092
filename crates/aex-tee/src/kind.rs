//! The kinds of TEE a node can offer.

/// A TEE kind, as named in descriptors and node configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TeeKind {
    /// Quote-based attestation shaped like Intel SGX (simulated platform key for now).
    Sgx,
}

/// A TEE kind name that aex does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TEE kind `{name}` (valid: {valid})", valid = TeeKind::NAMES.join(", "))]
pub struct UnknownTeeKind {
    /// The name given.
    pub name: String,
}

impl TeeKind {
    /// Every kind's name, for error messages.
    pub const NAMES: &'static [&'static str] = &["sgx"];

    /// The name used in descriptors and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            TeeKind::Sgx => "sgx",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Result<Self, UnknownTeeKind> {
        match name {
            "sgx" => Ok(TeeKind::Sgx),
            _ => Err(UnknownTeeKind { name: name.into() }),
        }
    }
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
        assert_eq!(TeeKind::from_name("sgx"), Ok(TeeKind::Sgx));
        let err = TeeKind::from_name("tdx").unwrap_err();
        assert_eq!(err.to_string(), "unknown TEE kind `tdx` (valid: sgx)");
    }
}
