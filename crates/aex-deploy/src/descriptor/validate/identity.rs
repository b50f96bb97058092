//! A node's pinned identity: the key its links must prove (`identity` or `identity_file`).
//!
//! Invariant: at most one of the two fields is set, an inline key is 64 hex digits, and a file
//! path is not empty; the file itself is read when a session opens (`App::node_identity`), so
//! a rotated key is picked up from the file without editing the descriptor.

use super::super::error::DescriptorError;
use super::super::field::Field;
use super::super::model::NodeIdentitySource;
use super::super::raw::RawNode;
use super::Checker;

/// What an identity key is and where to find it.
pub(crate) const IDENTITY_HELP: &str = "a node's identity key is 64 hex digits: the content of \
     `node-identity.pub` in the node's data directory (`aex node identity --data-dir DIR` \
     prints it)";

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
}
