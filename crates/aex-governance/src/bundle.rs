//! What a `deploy` or `update` proposal asks the governor to run: the descriptor, and each
//! module's build named by the digest of its bytes.
//!
//! The proposal's `change` is the SHA-256 of the bundle's bytes exactly as the governor
//! received them ([`Bundle::digest_of`]), so a ballot approves one descriptor and one set of
//! binaries, nothing else. The binaries themselves travel separately (they are megabytes; the
//! governor stores them by SHA-256 and checks each against the bundle before it loads it).
//! Any member can rebuild the same bundle from the same sources (builds are reproducible) and
//! compare digests before voting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::GovernanceError;

/// The largest bundle, in bytes (a descriptor and the interfaces of its modules).
pub const MAX_BUNDLE: usize = 256 * 1024;

/// A descriptor and the builds of its modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The application (the descriptor's `[application] name`).
    pub application: String,
    /// The descriptor's file name (`aex.toml`, `aex.yaml`, `aex.json`): its format.
    pub descriptor_name: String,
    /// The descriptor's text.
    pub descriptor: String,
    /// Each module's build, by module name.
    pub modules: BTreeMap<String, BundledModule>,
}

/// One module's build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundledModule {
    /// SHA-256 of the executable's bytes, hex: where the governor finds them.
    pub binary: String,
    /// The executable's length in bytes.
    pub size: u64,
    /// The measurement its TEE will report, hex (covers the devices it drives).
    pub measurement: String,
    /// The interface the binary declares (its `--aex-describe` output).
    pub interface: serde_json::Value,
    /// The devices the descriptor binds to it.
    pub devices: Vec<String>,
    /// The compiler that built it (`rustc -V`), if known: what a member needs to rebuild it.
    pub toolchain: Option<String>,
}

impl Bundle {
    /// Its bytes, as sent (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings, numbers, maps and a JSON value always encodes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A bundle from bytes a client sent: at most [`MAX_BUNDLE`] bytes, every field known.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, GovernanceError> {
        if bytes.len() > MAX_BUNDLE {
            return Err(GovernanceError::Malformed {
                what: "bundle",
                reason: format!("{} bytes; at most {MAX_BUNDLE}", bytes.len()),
            });
        }
        let bundle: Bundle =
            serde_json::from_slice(bytes).map_err(|e| GovernanceError::Malformed {
                what: "bundle",
                reason: e.to_string(),
            })?;
        for (name, m) in &bundle.modules {
            for (field, value) in [("binary", &m.binary), ("measurement", &m.measurement)] {
                if hex_digest(value).is_none() {
                    return Err(GovernanceError::Malformed {
                        what: "bundle",
                        reason: format!("module `{name}`: `{field}` is not 64 hex digits"),
                    });
                }
            }
        }
        Ok(bundle)
    }

    /// The digest a proposal names as its change: SHA-256 of the bundle's bytes.
    pub fn digest_of(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }
}

/// 64 hex digits as 32 bytes.
pub fn hex_digest(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        Bundle {
            application: "app".into(),
            descriptor_name: "aex.toml".into(),
            descriptor: "[application]\nname = \"app\"\n".into(),
            modules: BTreeMap::from([(
                "ping".into(),
                BundledModule {
                    binary: "ab".repeat(32),
                    size: 10,
                    measurement: "cd".repeat(32),
                    interface: serde_json::json!({"inputs": ["pong"]}),
                    devices: vec![],
                    toolchain: Some("rustc 1.0".into()),
                },
            )]),
        }
    }

    #[test]
    fn a_bundle_round_trips_and_its_digest_is_of_its_bytes() {
        let bytes = bundle().to_bytes();
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), bundle());
        assert_eq!(
            Bundle::digest_of(&bytes),
            <[u8; 32]>::from(Sha256::digest(&bytes))
        );
        assert_eq!(
            bytes,
            bundle().to_bytes(),
            "the same bundle, the same bytes"
        );
    }

    #[test]
    fn oversized_malformed_and_unknown_bundles_are_refused() {
        let mut b = bundle();
        b.modules.get_mut("ping").unwrap().binary = "zz".into();
        let e = Bundle::from_bytes(&b.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("`binary` is not 64 hex digits"), "{e}");
        assert!(Bundle::from_bytes(&vec![b' '; MAX_BUNDLE + 1]).is_err());
        assert!(Bundle::from_bytes(b"{\"application\": 1}").is_err());
        let mut v: serde_json::Value = serde_json::from_slice(&bundle().to_bytes()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(Bundle::from_bytes(&serde_json::to_vec(&v).unwrap()).is_err());
    }
}
