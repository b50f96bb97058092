//! Why a link could not be set up or used. Messages name both keys where keys disagree and
//! say what the reader can do; they never contain secret bytes.

use aex_proto::NodeKey;

/// A pinned identity key and the one a node says it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMismatch {
    /// The key the initiator pinned.
    pub pinned: NodeKey,
    /// The key the node says it has (unauthenticated: the handshake could not complete).
    pub actual: NodeKey,
}

/// A link failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Reading or writing the socket failed (a timeout included).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The connection does not start like an aex link.
    #[error(
        "the connection is not an aex link (its first byte is {0:#04x}, not a link kind: an older \
         aex that speaks plain frames?)"
    )]
    UnknownKind(u8),
    /// A length prefix announced more than the limit at this point of the link.
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was announced.
        what: &'static str,
        /// The announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The node at the address answered that its identity is another key than the pinned one.
    #[error("the node's identity key is {}, but {} is pinned for it", .0.actual, .0.pinned)]
    WrongIdentity(Box<KeyMismatch>),
    /// The handshake did not complete: a message did not authenticate or was malformed.
    #[error("the link's handshake failed: {0}")]
    Handshake(String),
    /// The other side pinned an identity this node does not have (responder side).
    #[error("the other side pinned another identity for this node (this node is {0})")]
    PinnedOther(NodeKey),
    /// The responding node did not admit the initiator's identity: it closed the link after the
    /// handshake without accepting it.
    #[error(
        "the node refused a link from identity {0}: no route there names it as a source and its \
         configuration does not admit it (`peers` in node.toml, `aex node --peer KEY`)"
    )]
    Refused(NodeKey),
    /// The responder does not admit the initiator's identity (responder side).
    #[error(
        "a link from identity {0} is not admitted: no route names it as a source and the \
         configuration does not admit it (`peers` in node.toml, `aex node --peer KEY`)"
    )]
    NotAdmitted(NodeKey),
    /// A record did not authenticate under the link's key.
    #[error("a record did not authenticate (changed, injected, replayed or reordered on the way)")]
    Forged,
    /// The other side closed the connection before the handshake completed.
    #[error("the connection closed during the handshake")]
    Closed,
}

impl LinkError {
    /// As an I/O error (for `Read`/`Write` implementations), keeping this error inside so that
    /// callers can find it again with [`LinkError::inside`].
    pub fn into_io(self) -> std::io::Error {
        match self {
            LinkError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }

    /// The link error an I/O error from a link stream carries, if any.
    pub fn inside(e: &std::io::Error) -> Option<&LinkError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<LinkError>())
    }
}
