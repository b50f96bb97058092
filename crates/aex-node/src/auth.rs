//! The node side of deployer authentication: what a deployer session has proven so far.
//!
//! A session claims a key and an application in its `Hello`, is sent a fresh challenge, and
//! proves the key with `ToNode::Auth`. Only then, and only if the node admits the key, does it
//! act: every request must be signed for this session with a strictly increasing id, and its
//! events are routed. The checks themselves are [`aex_proto::auth`]'s; this file adds the
//! node's admission policy and the answers a refused session gets.
//!
//! Invariant: a request is handed on only from [`SessionAuth::Admitted`], which is reached
//! only through a valid proof by an admitted key.

use aex_proto::auth::{Authenticated, ExpectAuth, CHALLENGE_LEN, MAX_APP_NAME_LEN};
use aex_proto::{DeployerKey, NodeError as WireError, NodeErrorKind, NodeRequest, Signature};

use crate::admission::Admission;
use crate::error::refuse;

/// A deployer session's authentication state.
pub(crate) enum SessionAuth {
    /// The challenge is sent; the proof is awaited.
    ExpectAuth(ExpectAuth),
    /// The key is proven and admitted.
    Admitted(Authenticated),
    /// Every request is refused, for this reason.
    Refused(String),
}

impl SessionAuth {
    /// A session that claimed `key` for application `app`, challenged with `challenge`.
    pub(crate) fn new(key: DeployerKey, app: String, challenge: [u8; CHALLENGE_LEN]) -> Self {
        if app.is_empty() || app.len() > MAX_APP_NAME_LEN {
            return SessionAuth::Refused(format!(
                "the application name must be 1 to {MAX_APP_NAME_LEN} bytes long"
            ));
        }
        SessionAuth::ExpectAuth(ExpectAuth::new(key, app, challenge))
    }

    /// Handles `ToNode::Auth`. Returns the next state and, if the session is now refused, why
    /// (for the log; the reason carries no secret).
    pub(crate) fn on_auth(
        self,
        admission: &Admission,
        node: &str,
        signature: &Signature,
    ) -> (SessionAuth, Option<String>) {
        let refused = |why: String| (SessionAuth::Refused(why.clone()), Some(why));
        match self {
            SessionAuth::ExpectAuth(expect) => {
                let key = *expect.key();
                match expect.authenticate(signature) {
                    Ok(_) if !admission.admits(&key) => refused(format!(
                        "node `{node}` does not admit deployer key {key}; its operator can admit it with `aex node --admit {key}`"
                    )),
                    Ok(session) => (SessionAuth::Admitted(session), None),
                    Err(e) => refused(format!("authentication failed: {e}")),
                }
            }
            SessionAuth::Admitted(_) => refused("the session sent a second Auth".into()),
            SessionAuth::Refused(why) => (SessionAuth::Refused(why), None),
        }
    }

    /// Checks one request; an error is the node's answer to it.
    pub(crate) fn check_request(
        &mut self,
        id: u64,
        body: &NodeRequest,
        signature: &Signature,
    ) -> Result<(), WireError> {
        let why = match self {
            SessionAuth::Admitted(session) => match session.check_request(id, body, signature) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            },
            SessionAuth::ExpectAuth(_) => format!(
                "request {id} arrived before the session proved its deployer key (Auth comes first)"
            ),
            SessionAuth::Refused(why) => why.clone(),
        };
        Err(refuse(NodeErrorKind::Refused, why))
    }

    /// Whether the session's requests and events are acted on.
    pub(crate) fn admitted(&self) -> bool {
        matches!(self, SessionAuth::Admitted(_))
    }
}

#[cfg(test)]
mod tests {
    use aex_crypto::SigningIdentity;
    use aex_proto::auth::{sign_request, sign_session};

    use super::*;

    const CHALLENGE: [u8; 32] = [7; 32];

    fn only(identity: &SigningIdentity) -> Admission {
        Admission::new(&[DeployerKey::of(identity)], false).unwrap()
    }

    fn start(identity: &SigningIdentity, app: &str) -> SessionAuth {
        SessionAuth::new(DeployerKey::of(identity), app.into(), CHALLENGE)
    }

    fn signed(identity: &SigningIdentity, id: u64) -> (NodeRequest, Signature) {
        let body = NodeRequest::Status;
        let sig = sign_request(identity, &CHALLENGE, id, &body);
        (body, sig)
    }

    #[test]
    fn admitted_key_with_valid_proof() {
        let a = SigningIdentity::generate();
        let proof = sign_session(&a, &CHALLENGE, "app");
        let (mut s, why) = start(&a, "app").on_auth(&only(&a), "n", &proof);
        assert!(why.is_none() && s.admitted());
        let (body, sig) = signed(&a, 1);
        assert_eq!(s.check_request(1, &body, &sig), Ok(()));
    }

    #[test]
    fn request_before_auth_is_refused() {
        let a = SigningIdentity::generate();
        let mut s = start(&a, "app");
        let (body, sig) = signed(&a, 1);
        let e = s.check_request(1, &body, &sig).unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::Refused);
        assert!(e.message.contains("before the session proved"), "{e}");
        assert!(!s.admitted());
    }

    #[test]
    fn unadmitted_key_is_refused_with_the_fix() {
        let (a, c) = (SigningIdentity::generate(), SigningIdentity::generate());
        let proof = sign_session(&c, &CHALLENGE, "app");
        let (mut s, why) = start(&c, "app").on_auth(&only(&a), "edge-1", &proof);
        let why = why.expect("refused");
        let key = DeployerKey::of(&c).to_string();
        assert!(
            why.contains("does not admit") && why.contains(&key),
            "{why}"
        );
        assert!(why.contains(&format!("aex node --admit {key}")), "{why}");
        // Every request after is refused with the same reason, even validly signed ones.
        for id in 1..3 {
            let (body, sig) = signed(&c, id);
            let e = s.check_request(id, &body, &sig).unwrap_err();
            assert_eq!(
                (e.kind, e.message.as_str()),
                (NodeErrorKind::Refused, &why[..])
            );
        }
    }

    #[test]
    fn proof_with_the_wrong_key_is_refused() {
        let (a, b) = (SigningIdentity::generate(), SigningIdentity::generate());
        // B claims A's (admitted) key, signs with its own.
        let proof = sign_session(&b, &CHALLENGE, "app");
        let (s, why) = start(&a, "app").on_auth(&only(&a), "n", &proof);
        assert!(why.unwrap().contains("authentication failed"));
        assert!(!s.admitted());
    }

    #[test]
    fn bad_signatures_and_replays_are_refused() {
        let (a, b) = (SigningIdentity::generate(), SigningIdentity::generate());
        let proof = sign_session(&a, &CHALLENGE, "app");
        let (mut s, _) = start(&a, "app").on_auth(&only(&a), "n", &proof);
        let (body, by_b) = signed(&b, 1);
        let e = s.check_request(1, &body, &by_b).unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::Refused);
        assert!(e.message.contains("not signed"), "{e}");
        let (body, sig) = signed(&a, 1);
        s.check_request(1, &body, &sig).unwrap();
        let e = s.check_request(1, &body, &sig).unwrap_err();
        assert!(e.message.contains("replayed"), "{e}");
        // Refusals do not end an admitted session.
        let (body, sig) = signed(&a, 2);
        assert_eq!(s.check_request(2, &body, &sig), Ok(()));
    }

    #[test]
    fn second_auth_and_bad_app_names_are_refused() {
        let a = SigningIdentity::generate();
        let proof = sign_session(&a, &CHALLENGE, "app");
        let (s, _) = start(&a, "app").on_auth(&only(&a), "n", &proof);
        let (s, why) = s.on_auth(&only(&a), "n", &proof);
        assert!(why.is_some() && !s.admitted());
        let long = "x".repeat(MAX_APP_NAME_LEN + 1);
        let proof = sign_session(&a, &CHALLENGE, &long);
        let (s, _) = start(&a, &long).on_auth(&only(&a), "n", &proof);
        assert!(!s.admitted());
        assert!(!start(&a, "").admitted());
    }
}
