//! The node-side checks of session proofs and request ids.

use aex_crypto::SigningIdentity;

use super::*;

const HASH: [u8; 32] = [0x11; 32];
const NODE: NodeKey = NodeKey([0x33; 32]);

fn session(identity: &SigningIdentity) -> Authenticated {
    let proof = sign_session(identity, &HASH, &NODE, "app");
    Authenticated::verify(
        DeployerKey::of(identity),
        "app".into(),
        &proof,
        &HASH,
        &NODE,
    )
    .expect("valid proof")
}

#[test]
fn valid_proof_and_increasing_requests() {
    let a = SigningIdentity::generate();
    let mut s = session(&a);
    assert_eq!(s.key(), &DeployerKey::of(&a));
    assert_eq!(s.app(), AppId::of(&DeployerKey::of(&a), "app"));
    assert_eq!(s.app_name(), "app");
    for id in [1, 2, 7, u64::MAX] {
        s.check_request(id).unwrap();
    }
}

#[test]
fn proof_by_another_key_is_refused() {
    let (a, b) = (SigningIdentity::generate(), SigningIdentity::generate());
    // B claims A's key but can only sign with its own.
    let proof = sign_session(&b, &HASH, &NODE, "app");
    let got = Authenticated::verify(DeployerKey::of(&a), "app".into(), &proof, &HASH, &NODE);
    assert_eq!(got.unwrap_err(), AuthError::BadSessionProof);
}

#[test]
fn proof_for_another_link_node_or_app_is_refused() {
    let a = SigningIdentity::generate();
    let key = DeployerKey::of(&a);
    let check = |proof: &Signature| {
        Authenticated::verify(key, "app".into(), proof, &HASH, &NODE).map(|_| ())
    };
    // Another connection's handshake (a recorded Hello replayed on a new link).
    assert!(check(&sign_session(&a, &[0x22; 32], &NODE, "app")).is_err());
    // Another node (a Hello relayed by a node that opened its own link to this one).
    assert!(check(&sign_session(&a, &HASH, &NodeKey([0x44; 32]), "app")).is_err());
    // Another application.
    assert!(check(&sign_session(&a, &HASH, &NODE, "other")).is_err());
    // A flipped bit.
    let mut sig = sign_session(&a, &HASH, &NODE, "app");
    sig.0[0] ^= 1;
    assert_eq!(check(&sig), Err(AuthError::BadSessionProof));
    assert_eq!(check(&sign_session(&a, &HASH, &NODE, "app")), Ok(()));
}

#[test]
fn replayed_and_decreasing_ids_are_refused() {
    let a = SigningIdentity::generate();
    let mut s = session(&a);
    s.check_request(5).unwrap();
    assert_eq!(
        s.check_request(5),
        Err(AuthError::StaleRequestId { id: 5, last: 5 })
    );
    assert_eq!(
        s.check_request(3),
        Err(AuthError::StaleRequestId { id: 3, last: 5 })
    );
    // Refusals change nothing.
    assert_eq!(s.check_request(6), Ok(()));
}

/// Known-answer vector: the exact bytes signed.
#[test]
fn signed_bytes_are_pinned() {
    let m = session_message(&[0x01; 32], &NodeKey([0x02; 32]), "pp");
    assert_eq!(&m[..SESSION_DOMAIN.len()], b"aex deployer session v2\0");
    assert_eq!(m.len(), SESSION_DOMAIN.len() + 32 + 32 + 4 + 2);
    let rest = &m[SESSION_DOMAIN.len()..];
    assert_eq!(
        (&rest[..32], &rest[32..64]),
        (&[1u8; 32][..], &[2u8; 32][..])
    );
    assert_eq!(&m[m.len() - 6..], &[0, 0, 0, 2, b'p', b'p']);
}
