//! A node's pins: the key its links must prove (`identity` or `identity_file`), and on a
//! symmetric node the fingerprint of the provider key to use (`provider_key_fingerprint`).
//!
//! Invariant: at most one of the two identity fields is set, an inline key is 64 hex digits,
//! and a file path is not empty; the file itself is read when a session opens
//! (`App::node_identity`), so a rotated key is picked up from the file without editing the
//! descriptor. A fingerprint is 64 hex digits, on a `trustzone` or `sancus` node only.

use super::super::error::DescriptorError;
use super::super::field::Field;
use super::super::model::NodeIdentitySource;
use super::super::raw::RawNode;
use super::Checker;
use aex_tee::symmetric::FINGERPRINT_LEN;

/// What an identity key is and where to find it.
pub(crate) const IDENTITY_HELP: &str = "a node's identity key is 64 hex digits: the content of \
     `node-identity.pub` in the node's data directory (`aex node identity --data-dir DIR` \
     prints it)";

/// Where a provider key's fingerprint comes from.
pub(crate) const FINGERPRINT_HELP: &str = "the node's operator prints it with `aex node \
     provider-key --data-dir DIR --tee KIND --deployer KEY --fingerprint` (public: it does not \
     give the key)";

impl Checker<'_> {
    /// Parses node `i`'s `identity` / `identity_file`.
    pub(super) fn node_identity(
        &self,
        i: usize,
        node: &RawNode,
    ) -> Result<Option<NodeIdentitySource>, DescriptorError> {
        match (&node.identity, &node.identity_file) {
            (Some(_), Some(_)) => Err(self.error(
                Field::Node(i, "identity_file"),
                "both `identity` and `identity_file` are set".to_owned(),
                Some("keep one of them".to_owned()),
            )),
            (Some(key), None) => key
                .trim()
                .parse::<aex_proto::NodeKey>()
                .map(|k| Some(NodeIdentitySource::Inline(k)))
                .map_err(|e| {
                    self.error(
                        Field::Node(i, "identity"),
                        format!(
                            "not a node identity key ({}): expected 64 hex digits",
                            e.reason
                        ),
                        Some(IDENTITY_HELP.to_owned()),
                    )
                }),
            (None, Some(file)) if file.trim().is_empty() => Err(self.error(
                Field::Node(i, "identity_file"),
                "empty path".to_owned(),
                Some("give the path of a file holding the node's identity key in hex".to_owned()),
            )),
            (None, Some(file)) => Ok(Some(NodeIdentitySource::File(self.dir.join(file)))),
            (None, None) => Ok(None),
        }
    }

    /// Parses node `i`'s `provider_key_fingerprint` (`symmetric`: whether its kind has
    /// provider keys).
    pub(super) fn provider_key_fingerprint(
        &self,
        i: usize,
        node: &RawNode,
        symmetric: bool,
    ) -> Result<Option<[u8; FINGERPRINT_LEN]>, DescriptorError> {
        let Some(text) = &node.provider_key_fingerprint else {
            return Ok(None);
        };
        let field = Field::Node(i, "provider_key_fingerprint");
        if !symmetric {
            return Err(self.error(
                field,
                format!("a `{}` node has no provider key", node.tee),
                Some("provider keys belong to the symmetric kinds: trustzone, sancus".to_owned()),
            ));
        }
        let mut pin = [0u8; FINGERPRINT_LEN];
        match hex::decode_to_slice(text.trim(), &mut pin) {
            Ok(()) => Ok(Some(pin)),
            Err(_) => Err(self.error(
                field,
                "not a provider key fingerprint: expected 64 hex digits".to_owned(),
                Some(FINGERPRINT_HELP.to_owned()),
            )),
        }
    }
}
