//! Identifiers that the links name: connections, deployers, nodes and application namespaces.
//!
//! Plain data shared by every other module of the crate (and every crate that speaks the
//! protocol): what a value claims is proven elsewhere, a deployer key by its session proof
//! ([`crate::auth`]), a node key by the link's handshake (crate `aex-link`), a connection by
//! its events' keys ([`crate::channel`]).

use aex_crypto::{SigningIdentity, PUBLIC_IDENTITY_LEN};
use serde::{Deserialize, Serialize};

/// Domain string of [`AppId::of`].
pub const NAMESPACE_DOMAIN: &[u8] = b"aex application namespace v1\0";
/// Length of a node identity key (X25519 public key).
pub const NODE_KEY_LEN: usize = 32;

/// Connection identifier, allocated by the deployer, unique within an application.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct ConnId(pub u32);

impl core::fmt::Display for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A deployer's public identity: an Ed25519 public key (RFC 8032). Shown and parsed as 64 hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeployerKey(pub [u8; PUBLIC_IDENTITY_LEN]);

impl DeployerKey {
    /// The public key of `identity`.
    pub fn of(identity: &SigningIdentity) -> Self {
        DeployerKey(identity.public())
    }

    /// The first 8 bytes in hex, for logs and messages.
    pub fn short(&self) -> String {
        hex(&self.0[..8])
    }
}

impl core::fmt::Display for DeployerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl core::fmt::Debug for DeployerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeployerKey({self})")
    }
}

/// Text that is not a deployer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKeyError {
    /// What is wrong.
    pub reason: String,
}

impl core::fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "not a deployer key ({}): expected 64 hex digits, as printed by `aex identity`",
            self.reason
        )
    }
}

impl std::error::Error for ParseKeyError {}

impl core::str::FromStr for DeployerKey {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(DeployerKey)
    }
}

/// 64 hex digits (surrounding whitespace ignored) as 32 bytes.
fn parse_hex32(s: &str) -> Result<[u8; 32], ParseKeyError> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(ParseKeyError {
            reason: format!("{} characters", s.len()),
        });
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
            _ => {
                return Err(ParseKeyError {
                    reason: format!("non-hex character at position {}", 2 * i + 1),
                })
            }
        }
    }
    Ok(out)
}

/// A node's identity: the public half of its long-term X25519 static key
/// (`node-identity.pub` in its data directory). Deployers pin it per node in the descriptor
/// and routes name it for peer links. Shown and parsed as 64 hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeKey(pub [u8; NODE_KEY_LEN]);

impl NodeKey {
    /// The first 8 bytes in hex, for logs.
    pub fn short(&self) -> String {
        hex(&self.0[..8])
    }
}

impl core::fmt::Display for NodeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl core::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NodeKey({self})")
    }
}

/// Text that is not a node identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNodeKeyError {
    /// What is wrong.
    pub reason: String,
}

impl core::fmt::Display for ParseNodeKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "not a node identity key ({}): expected 64 hex digits, as in the node's \
             `node-identity.pub` or printed by `aex node identity`",
            self.reason
        )
    }
}

impl std::error::Error for ParseNodeKeyError {}

impl core::str::FromStr for NodeKey {
    type Err = ParseNodeKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s)
            .map(NodeKey)
            .map_err(|e| ParseNodeKeyError { reason: e.reason })
    }
}

/// An application namespace on a node: the first 16 bytes of
/// SHA-256([`NAMESPACE_DOMAIN`] ‖ deployer key ‖ u32-BE name length ‖ name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppId(pub [u8; 16]);

impl AppId {
    /// The namespace of application `app` deployed by `key`.
    pub fn of(key: &DeployerKey, app: &str) -> Self {
        let digest = aex_crypto::sha256(&[
            NAMESPACE_DOMAIN,
            &key.0,
            &(app.len() as u32).to_be_bytes(),
            app.as_bytes(),
        ]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        AppId(id)
    }
}

impl core::fmt::Display for AppId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl core::fmt::Debug for AppId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AppId({self})")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_differ_by_key_and_name() {
        let (a, b) = (DeployerKey([1; 32]), DeployerKey([2; 32]));
        assert_eq!(AppId::of(&a, "x"), AppId::of(&a, "x"));
        assert_ne!(AppId::of(&a, "x"), AppId::of(&b, "x"));
        assert_ne!(AppId::of(&a, "x"), AppId::of(&a, "y"));
        // The length prefix keeps name boundaries unambiguous.
        assert_ne!(AppId::of(&a, ""), AppId::of(&a, "\0"));
    }

    #[test]
    fn node_keys_parse_and_print_as_hex() {
        let k: NodeKey = "0a".repeat(32).parse().unwrap();
        assert_eq!(k, NodeKey([10; 32]));
        assert_eq!(k.to_string(), "0a".repeat(32));
        assert_eq!(k.short(), "0a".repeat(8));
        let e = "0a".parse::<NodeKey>().unwrap_err().to_string();
        assert!(
            e.contains("not a node identity key") && e.contains("node-identity.pub"),
            "{e}"
        );
    }

    #[test]
    fn keys_parse_and_print_as_hex() {
        let k: DeployerKey = "00ff".repeat(16).parse().unwrap();
        assert_eq!(k.0[1], 0xff);
        assert_eq!(k.to_string(), "00ff".repeat(16));
        assert_eq!(k.short(), "00ff00ff00ff00ff");
        assert_eq!(
            format!("{k:?}"),
            format!("DeployerKey({})", "00ff".repeat(16))
        );
        assert!("abc".parse::<DeployerKey>().is_err());
        let e = "zz".repeat(32).parse::<DeployerKey>().unwrap_err();
        assert!(e.to_string().contains("position 1"), "{e}");
        // Surrounding whitespace (a pasted line) is fine.
        assert!(format!(" {}\n", "ab".repeat(32))
            .parse::<DeployerKey>()
            .is_ok());
    }

    /// Known-answer vector: the namespace of a fixed key and name.
    #[test]
    fn the_namespace_is_pinned() {
        let key = DeployerKey([0xab; 32]);
        assert_eq!(
            AppId::of(&key, "pp").to_string(),
            hex(&aex_crypto::sha256(&[NAMESPACE_DOMAIN, &[0xab; 32], &[0, 0, 0, 2], b"pp"])[..16])
        );
    }
}
