use std::collections::BTreeMap;

use aex_crypto::SigningIdentity;
use aex_governance::signed::Signed;
use aex_governance::{Action, MemberDocument, Proposal, Vote, Withdrawal};

use super::*;

pub(crate) const APP: &str = "ping-pong";

pub(crate) fn key(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seed(&[seed; 32])
}

/// Members a, b, c (seeds 1, 2, 3); deploy needs 2 of 3 (recovery, by default, a majority).
pub(crate) fn document() -> Document {
    Document {
        members: ["a", "b", "c"]
            .iter()
            .zip(1..)
            .map(|(name, seed)| MemberDocument {
                name: (*name).into(),
                key: hex::encode(key(seed).public()),
            })
            .collect(),
        rules: BTreeMap::from([("deploy".into(), "2 of 3".into())]),
        proposal_lifetime_ms: 60_000,
    }
}

fn started() -> Held {
    let mut held = None;
    adopt(&mut held, APP, &document()).unwrap();
    held.unwrap()
}

fn proposal(created_ms: u64) -> Proposal {
    Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "load ping and pong".into(),
        created_ms,
    }
}

fn ballot(id: &str, vote: Vote, by: &SigningIdentity) -> Vec<u8> {
    let id = ProposalId(hex::decode(id).unwrap().try_into().unwrap());
    Ballot { proposal: id, vote }.sign(by)
}

fn json<T: serde::de::DeserializeOwned>(a: &Answer) -> T {
    match &a.body {
        Body::Json(j) => serde_json::from_str(j).unwrap(),
        Body::Text(t) => panic!("{} {t}", a.status),
    }
}

fn text(a: &Answer) -> &str {
    match &a.body {
        Body::Text(t) => t,
        Body::Json(j) => panic!("{} {j}", a.status),
    }
}

#[test]
fn the_constitution_is_given_once_and_only_the_same_one_again() {
    let mut held = None;
    let digest = adopt(&mut held, APP, &document()).unwrap();
    assert_eq!(digest, document().to_constitution().unwrap().digest());
    // After a restart `start` gives it again, maybe listing members in another order.
    let mut reordered = document();
    reordered.members.reverse();
    assert_eq!(adopt(&mut held, APP, &reordered), Ok(digest));
    let mut other = document();
    other.rules.insert("deploy".into(), "any 1".into());
    let err = adopt(&mut held, APP, &other).unwrap_err();
    assert!(err.contains("already holds constitution"), "{err}");
    let err = adopt(&mut held, "other-app", &document()).unwrap_err();
    assert!(err.contains("of application `ping-pong`"), "{err}");
    let held = held.unwrap();
    assert_eq!(held.book.constitution().digest(), digest);

    let mut bad = document();
    bad.members[0].key = "00".into();
    let err = adopt(&mut None, APP, &bad).unwrap_err();
    assert!(err.contains("member `a`: its key"), "{err}");
}

#[test]
fn one_member_cannot_pass_a_2_of_3_proposal_and_two_can() {
    let mut held = started();
    let (a, b) = (key(1), key(2));
    let made = answer(&mut held, "POST", "/proposals", &proposal(1).sign(&a), 10);
    assert_eq!(made.status, 201);
    let v: ProposalView = json(&made);
    assert_eq!((v.status.as_str(), v.proposer.as_str()), ("open", "a"));
    assert_eq!((v.rule.as_str(), v.required), ("any 2", 2));

    // A's approval, twice: still one member's.
    for at in [11, 12] {
        let voted = answer(
            &mut held,
            "POST",
            "/ballots",
            &ballot(&v.id, Vote::Approve, &a),
            at,
        );
        assert_eq!(voted.status, 200);
        let now: ProposalView = json(&voted);
        assert_eq!((now.status.as_str(), now.approvals), ("open", 1));
    }
    let path = format!("/proposals/{}/ballots", v.id);
    let voted = answer(
        &mut held,
        "POST",
        &path,
        &ballot(&v.id, Vote::Approve, &b),
        13,
    );
    let now: ProposalView = json(&voted);
    assert_eq!((now.status.as_str(), now.approvals), ("accepted", 2));

    let list: Vec<ProposalView> = json(&answer(&mut held, "GET", "/proposals", b"", 14));
    assert_eq!(list, vec![now.clone()]);
    let one: ProposalView = json(&answer(
        &mut held,
        "GET",
        &format!("/proposals/{}", v.id),
        b"",
        14,
    ));
    assert_eq!(one, now);
}

#[test]
fn refusals_are_4xx_with_the_books_text() {
    let mut held = started();
    let (a, outsider) = (key(1), key(9));
    let signed = proposal(1).sign(&a);
    let v: ProposalView = json(&answer(&mut held, "POST", "/proposals", &signed, 10));
    let other: ProposalView = json(&answer(
        &mut held,
        "POST",
        "/proposals",
        &proposal(2).sign(&a),
        10,
    ));

    let refused = |held: &mut Held, path: &str, body: &[u8]| {
        let a = answer(held, "POST", path, body, 11);
        (a.status, text(&a).to_owned())
    };
    let (code, why) = refused(&mut held, "/proposals", &signed);
    assert_eq!(code, 409);
    assert!(why.contains("was already made"), "{why}");
    let (code, why) = refused(
        &mut held,
        "/ballots",
        &ballot(&v.id, Vote::Approve, &outsider),
    );
    assert_eq!(code, 403);
    assert!(why.contains("which is no member's key"), "{why}");
    let mut forged = signed.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (code, why) = refused(&mut held, "/proposals", &forged);
    assert_eq!(code, 403);
    assert!(why.contains("does not verify"), "{why}");
    // A's ballot for `v`, given for `other`.
    let replayed = format!("/proposals/{}/ballots", other.id);
    let (code, why) = refused(&mut held, &replayed, &ballot(&v.id, Vote::Approve, &a));
    assert_eq!(code, 422);
    assert!(why.contains("the ballot is for proposal"), "{why}");
    let (code, why) = refused(&mut held, "/ballots", b"not cbor");
    assert_eq!(code, 400);
    assert!(why.contains("not a valid ballot"), "{why}");
    let (code, why) = refused(&mut held, "/proposals/12/ballots", b"");
    assert_eq!(code, 400);
    assert!(why.contains("64 hex digits"), "{why}");
    let unknown = ballot(&"ab".repeat(32), Vote::Approve, &a);
    let (code, _) = refused(&mut held, "/ballots", &unknown);
    assert_eq!(code, 404);
    // Only the proposer withdraws.
    let withdrawal = |by: &SigningIdentity| {
        let id = ProposalId(hex::decode(&v.id).unwrap().try_into().unwrap());
        Withdrawal { proposal: id }.sign(by)
    };
    let (code, why) = refused(&mut held, "/withdrawals", &withdrawal(&key(2)));
    assert_eq!(code, 403);
    assert!(why.contains("only `a`"), "{why}");
    let gone = answer(&mut held, "POST", "/withdrawals", &withdrawal(&a), 12);
    assert_eq!(json::<ProposalView>(&gone).status, "withdrawn");

    assert_eq!(answer(&mut held, "GET", "/nowhere", b"", 13).status, 404);
    assert_eq!(answer(&mut held, "PUT", "/proposals", b"", 13).status, 405);
    let c: ConstitutionView = json(&answer(&mut held, "GET", "/constitution", b"", 13));
    assert_eq!(c.application, APP);
    assert_eq!(
        c.constitution.to_constitution().unwrap(),
        *held.book.constitution()
    );
}

#[test]
fn a_clock_set_back_does_not_reopen_or_extend_anything() {
    let mut held = started();
    let v: ProposalView = json(&answer(
        &mut held,
        "POST",
        "/proposals",
        &proposal(1).sign(&key(1)),
        1_000,
    ));
    // Past its lifetime: expired; then the host's clock reads earlier again.
    let list: Vec<ProposalView> = json(&answer(&mut held, "GET", "/proposals", b"", 61_000));
    assert_eq!(list[0].status, "expired");
    let late = answer(
        &mut held,
        "POST",
        "/ballots",
        &ballot(&v.id, Vote::Approve, &key(2)),
        5,
    );
    assert_eq!(late.status, 409);
    assert!(text(&late).contains("is expired"), "{}", text(&late));
    assert_eq!(held.clock_ms, 61_000);
}

#[test]
fn the_state_survives_the_runtimes_json_sealing() {
    // The module runtime seals state as JSON: the book must round-trip through it.
    let mut held = started();
    let v: ProposalView = json(&answer(
        &mut held,
        "POST",
        "/proposals",
        &proposal(1).sign(&key(1)),
        10,
    ));
    answer(
        &mut held,
        "POST",
        "/ballots",
        &ballot(&v.id, Vote::Approve, &key(1)),
        11,
    );
    let sealed = serde_json::to_vec(&held).unwrap();
    let mut back: Held = serde_json::from_slice(&sealed).unwrap();
    assert_eq!(back.clock_ms, 11);
    let voted = answer(
        &mut back,
        "POST",
        "/ballots",
        &ballot(&v.id, Vote::Approve, &key(3)),
        12,
    );
    assert_eq!(json::<ProposalView>(&voted).status, "accepted");
}
