//! The node side of deployer authentication: whether a deployer session may act.
//!
//! A session's `Hello` claims a key and an application and proves the key with a signature
//! over this link's handshake hash and this node's identity ([`aex_proto::auth`]). Only if the
//! proof verifies and the node admits the key does the session act, and then every request must
//! carry a strictly increasing id. This file adds the node's admission policy and the answers
//! a refused session gets.
//!
//! Invariant: a request is handed on only from [`SessionAuth::Admitted`], which is reached
//! only through a valid proof by an admitted key.

use aex_proto::auth::{Authenticated, HANDSHAKE_HASH_LEN, MAX_APP_NAME_LEN};
use aex_proto::{DeployerKey, NodeError as WireError, NodeErrorKind, NodeKey, Signature};

use crate::admission::Admission;
use crate::error::refuse;

/// What a deployer said in its `Hello`.
pub(crate) struct DeployerHello {
    /// Informational client version.
    pub(crate) client: String,
    /// The key it claims.
    pub(crate) key: DeployerKey,
    /// The application it manages.
    pub(crate) app: String,
    /// The proof of `key` for this link.
    pub(crate) signature: Signature,
}

/// A deployer session's authentication state.
pub(crate) enum SessionAuth {
    /// The key is proven and admitted.
    Admitted(Authenticated),
    /// Every request is refused, with this kind (`Refused`, or `NotAdmitted` for a valid
    /// proof by a key the node does not admit) and for this reason.
    Refused(NodeErrorKind, String),
}

impl SessionAuth {
    /// Checks the `Hello` of a session on the link with `handshake_hash` to node `node`
    /// (whose identity is `identity`).
    pub(crate) fn new(
        admission: &Admission,
        node: &str,
        hello: DeployerHello,
        handshake_hash: &[u8; HANDSHAKE_HASH_LEN],
        identity: &NodeKey,
    ) -> SessionAuth {
        let DeployerHello {
            key,
            app,
            signature,
            ..
        } = hello;
        if app.is_empty() || app.len() > MAX_APP_NAME_LEN {
            return SessionAuth::Refused(
                NodeErrorKind::Refused,
                format!("the application name must be 1 to {MAX_APP_NAME_LEN} bytes long"),
            );
        }
        match Authenticated::verify(key, app, &signature, handshake_hash, identity) {
            Ok(_) if !admission.admits(&key) => SessionAuth::Refused(NodeErrorKind::NotAdmitted, format!(
                "node `{node}` does not admit deployer key {key}; its operator can admit it with `aex node --admit {key}`"
            )),
            Ok(session) => SessionAuth::Admitted(session),
            Err(e) => {
                SessionAuth::Refused(NodeErrorKind::Refused, format!("authentication failed: {e}"))
            }
        }
    }

    /// Checks one request's id; an error is the node's answer to it.
    pub(crate) fn check_request(&mut self, id: u64) -> Result<(), WireError> {
        let (kind, why) = match self {
            SessionAuth::Admitted(session) => match session.check_request(id) {
                Ok(()) => return Ok(()),
                Err(e) => (NodeErrorKind::Refused, e.to_string()),
            },
            SessionAuth::Refused(kind, why) => (*kind, why.clone()),
        };
        Err(refuse(kind, why))
    }

    /// Whether the session's requests and events are acted on.
    pub(crate) fn admitted(&self) -> bool {
        matches!(self, SessionAuth::Admitted(_))
    }
}

#[cfg(test)]
mod tests {
    use aex_crypto::SigningIdentity;
    use aex_proto::auth::sign_session;
    use aex_proto::DeployerKey;

    use super::*;

    const HASH: [u8; 32] = [7; 32];
    const NODE: NodeKey = NodeKey([9; 32]);

    fn only(identity: &SigningIdentity) -> Admission {
        Admission::new(&[DeployerKey::of(identity)], false).unwrap()
    }

    fn hello(claimed: &SigningIdentity, signer: &SigningIdentity, app: &str) -> DeployerHello {
        DeployerHello {
            client: "test".into(),
            key: DeployerKey::of(claimed),
            app: app.into(),
            signature: sign_session(signer, &HASH, &NODE, app),
        }
    }

    #[test]
    fn admitted_key_with_valid_proof() {
        let a = SigningIdentity::generate();
        let mut s = SessionAuth::new(&only(&a), "n", hello(&a, &a, "app"), &HASH, &NODE);
        assert!(s.admitted());
        assert_eq!(s.check_request(1), Ok(()));
        let e = s.check_request(1).unwrap_err();
        assert!(e.message.contains("not above"), "{e}");
        // Refusals do not end an admitted session.
        assert_eq!(s.check_request(2), Ok(()));
    }

    #[test]
    fn unadmitted_key_is_refused_with_the_fix() {
        let (a, c) = (SigningIdentity::generate(), SigningIdentity::generate());
        let mut s = SessionAuth::new(&only(&a), "edge-1", hello(&c, &c, "app"), &HASH, &NODE);
        let SessionAuth::Refused(NodeErrorKind::NotAdmitted, why) = &s else {
            panic!("admitted an unadmitted key");
        };
        let why = why.clone();
        let key = DeployerKey::of(&c).to_string();
        assert!(
            why.contains("does not admit") && why.contains(&key),
            "{why}"
        );
        assert!(why.contains(&format!("aex node --admit {key}")), "{why}");
        // Every request is refused with the same reason.
        for id in 1..3 {
            let e = s.check_request(id).unwrap_err();
            assert_eq!(
                (e.kind, e.message.as_str()),
                (NodeErrorKind::NotAdmitted, &why[..])
            );
        }
    }

    #[test]
    fn proofs_for_another_key_link_or_node_are_refused() {
        let (a, b) = (SigningIdentity::generate(), SigningIdentity::generate());
        // B claims A's (admitted) key, signs with its own.
        let s = SessionAuth::new(&only(&a), "n", hello(&a, &b, "app"), &HASH, &NODE);
        assert!(
            matches!(&s, SessionAuth::Refused(NodeErrorKind::Refused, why) if why.contains("authentication failed"))
        );
        // A's proof for this link, checked by another node (relayed by an impostor).
        let s = SessionAuth::new(
            &only(&a),
            "n",
            hello(&a, &a, "app"),
            &HASH,
            &NodeKey([1; 32]),
        );
        assert!(!s.admitted());
        // A's proof for another link (replayed).
        let s = SessionAuth::new(&only(&a), "n", hello(&a, &a, "app"), &[8; 32], &NODE);
        assert!(!s.admitted());
    }

    #[test]
    fn bad_app_names_are_refused() {
        let a = SigningIdentity::generate();
        let long = "x".repeat(MAX_APP_NAME_LEN + 1);
        assert!(!SessionAuth::new(&only(&a), "n", hello(&a, &a, &long), &HASH, &NODE).admitted());
        assert!(!SessionAuth::new(&only(&a), "n", hello(&a, &a, ""), &HASH, &NODE).admitted());
    }
}
