//! The node-side checks of session proofs and request signatures.

use aex_crypto::SigningIdentity;
use proptest::prelude::*;

use super::*;
use crate::frame::{decode, encode, LEN_PREFIX};
use crate::message::{FromNode, Hello, ToNode};

const CHALLENGE: [u8; 32] = [0x11; 32];

fn session(identity: &SigningIdentity) -> Authenticated {
    ExpectAuth::new(DeployerKey::of(identity), "app".into(), CHALLENGE)
        .authenticate(&sign_session(identity, &CHALLENGE, "app"))
        .expect("valid proof")
}

#[test]
fn valid_proof_and_increasing_requests() {
    let a = SigningIdentity::generate();
    let mut s = session(&a);
    assert_eq!(s.key(), &DeployerKey::of(&a));
    assert_eq!(s.app(), AppId::of(&DeployerKey::of(&a), "app"));
    for id in [1, 2, 7, u64::MAX] {
        let body = NodeRequest::Status;
        s.check_request(id, &body, &sign_request(&a, &CHALLENGE, id, &body))
            .unwrap();
    }
}

#[test]
fn proof_by_another_key_is_refused() {
    let (a, b) = (SigningIdentity::generate(), SigningIdentity::generate());
    // B claims A's key but can only sign with its own.
    let claim = ExpectAuth::new(DeployerKey::of(&a), "app".into(), CHALLENGE);
    let proof = sign_session(&b, &CHALLENGE, "app");
    assert_eq!(
        claim.authenticate(&proof).unwrap_err(),
        AuthError::BadSessionProof
    );
}

#[test]
fn proof_for_another_challenge_or_app_is_refused() {
    let a = SigningIdentity::generate();
    let key = DeployerKey::of(&a);
    let old = sign_session(&a, &[0x22; 32], "app");
    assert!(ExpectAuth::new(key, "app".into(), CHALLENGE)
        .authenticate(&old)
        .is_err());
    let other_app = sign_session(&a, &CHALLENGE, "other");
    assert!(ExpectAuth::new(key, "app".into(), CHALLENGE)
        .authenticate(&other_app)
        .is_err());
}

#[test]
fn bad_request_signatures_are_refused() {
    let (a, b) = (SigningIdentity::generate(), SigningIdentity::generate());
    let mut s = session(&a);
    let body = NodeRequest::Unload {
        module: "db".into(),
    };
    // Wrong key.
    let by_b = sign_request(&b, &CHALLENGE, 1, &body);
    assert_eq!(
        s.check_request(1, &body, &by_b),
        Err(AuthError::BadRequestSignature { id: 1 })
    );
    // Flipped bit.
    let mut sig = sign_request(&a, &CHALLENGE, 1, &body);
    sig.0[0] ^= 1;
    assert!(s.check_request(1, &body, &sig).is_err());
    // Signed for another session (challenge).
    let other = sign_request(&a, &[0x22; 32], 1, &body);
    assert!(s.check_request(1, &body, &other).is_err());
    // Another body under a valid signature.
    let sig = sign_request(&a, &CHALLENGE, 1, &body);
    assert!(s.check_request(1, &NodeRequest::Status, &sig).is_err());
    // Another id under a valid signature.
    assert!(s.check_request(2, &body, &sig).is_err());
    // Refusals left the session untouched: id 1 is still fresh.
    assert_eq!(s.check_request(1, &body, &sig), Ok(()));
}

#[test]
fn replayed_and_decreasing_ids_are_refused() {
    let a = SigningIdentity::generate();
    let mut s = session(&a);
    let body = NodeRequest::Status;
    let five = sign_request(&a, &CHALLENGE, 5, &body);
    s.check_request(5, &body, &five).unwrap();
    assert_eq!(
        s.check_request(5, &body, &five),
        Err(AuthError::StaleRequestId { id: 5, last: 5 })
    );
    let three = sign_request(&a, &CHALLENGE, 3, &body);
    assert_eq!(
        s.check_request(3, &body, &three),
        Err(AuthError::StaleRequestId { id: 3, last: 5 })
    );
}

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

/// Known-answer vectors: the exact bytes signed and the namespace, for a fixed key.
#[test]
fn signed_bytes_are_pinned() {
    let key = DeployerKey([0xab; 32]);
    let m = session_message(&[0x01; 32], &key, "pp");
    assert_eq!(&m[..SESSION_DOMAIN.len()], b"aex deployer session v1\0");
    assert_eq!(m.len(), SESSION_DOMAIN.len() + 32 + 32 + 4 + 2);
    assert_eq!(&m[m.len() - 6..], &[0, 0, 0, 2, b'p', b'p']);
    let m = request_message(&[0x01; 32], 258, &NodeRequest::Status);
    assert_eq!(&m[..REQUEST_DOMAIN.len()], b"aex deployer request v1\0");
    // id big-endian, then postcard: variant index 6 (Status).
    assert_eq!(
        &m[REQUEST_DOMAIN.len() + 32..],
        &[0, 0, 0, 0, 0, 0, 1, 2, 6]
    );
    assert_eq!(
        AppId::of(&key, "pp").to_string(),
        hex(&aex_crypto::sha256(&[NAMESPACE_DOMAIN, &[0xab; 32], &[0, 0, 0, 2], b"pp"])[..16])
    );
}

proptest! {
    #[test]
    fn auth_messages_round_trip(
        key in any::<[u8; 32]>(),
        app in ".{0,40}",
        id in any::<u64>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
        ns in any::<[u8; 16]>(),
        nonce in any::<[u8; 32]>(),
    ) {
        let sig = Signature(sig.try_into().unwrap());
        let msgs = [
            ToNode::Hello(Hello::Deployer { client: "t".into(), key: DeployerKey(key), app }),
            ToNode::Request { id, body: NodeRequest::Status, signature: sig },
            ToNode::Auth { signature: sig },
            ToNode::Forward {
                app: AppId(ns),
                event: crate::Event {
                    conn: crate::ConnId(id as u32),
                    dir: crate::Direction::Backward,
                    kind: crate::EventKind::Reply,
                    counter: id,
                    ciphertext: key.to_vec(),
                },
            },
        ];
        for m in msgs {
            prop_assert_eq!(decode::<ToNode>(&encode(&m)[LEN_PREFIX..]).unwrap(), m);
        }
        let c = FromNode::Challenge { nonce };
        prop_assert_eq!(decode::<FromNode>(&encode(&c)[LEN_PREFIX..]).unwrap(), c);
    }
}
