//! End to end: the governor module (`crates/aex-governor`, first cut). `aex up` deploys it on a
//! simulated `sgx` node; `start` gives it a 3-member constitution whose deploys need 2 of 3.
//! Then each member is a raw client with the verifying `aex-client`: it checks the governor's
//! measurement (the deployer's policy) and that the certificate attests the digest of the
//! member's own constitution, then posts signed proposals and ballots. One member holding its
//! full key cannot get its proposal accepted alone; a ballot by a non-member, an altered
//! proposal and a ballot replayed onto another proposal are refused with the book's reasons;
//! a second member's approval accepts it. The governor's process is then killed: its node
//! restarts it, it resumes its sealed book, serves again on `start` with the same constitution
//! and refuses another one.
//!
//! The governor itself is deployed as an ordinary module of an ungoverned application (the
//! commands that change nodes refuse a governed descriptor: aex-deploy `ops/governed.rs`).
//! `e2e_governor_apply.rs` has it carry out an accepted deployment.

use aex_governance::signed::Signed;
use aex_governance::{Action, Proposal, Vote};
use aex_testkit::cluster::AppDir;
use aex_testkit::governor::{ballot, constitution, member, start_governor, start_payload, APP};
use aex_testkit::node::NodeProcess;

use crate::fault_sealed_state::kill_and_wait_restart;

fn proposal(created_ms: u64) -> Proposal {
    Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "deploy ping-pong".into(),
        created_ms,
    }
}

#[test]
fn the_governor_counts_members_ballots_in_its_tee_and_keeps_them_across_a_restart() {
    let app = AppDir::new();
    // Declared after `app`: dropped (stopped) first, as it lives in the app directory.
    let node = NodeProcess::start("node1", app.path().join("node1"));
    let (client, payload) = start_governor(&app, &node);
    let (a, b, outsider) = (member(1), member(2), member(9));

    // A proposes and approves: open (A's full key is one member's vote).
    let signed = proposal(1).sign(&a);
    let (code, made) = client.json("POST", "/proposals", &signed);
    assert_eq!(code, 201, "{made}");
    let id = made["id"].as_str().expect("an id").to_owned();
    assert_eq!(made["rule"], "any 2");
    for _ in 0..2 {
        let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, &a));
        assert_eq!((code, v["status"].as_str()), (200, Some("open")), "{v}");
        assert_eq!(v["approvals"], 1);
    }

    // Refused, each with the book's reason.
    let (code, why) = client.send("POST", "/ballots", &ballot(&id, Vote::Approve, &outsider));
    assert_eq!(code, 403);
    assert!(why.contains("which is no member's key"), "{why}");
    let mut altered = proposal(1);
    altered.summary = "deploy something else".into();
    let forged = {
        // A's key id and A's signature over the original payload, on another payload (the
        // signature is the last 64 bytes of the COSE_Sign1).
        let mut bytes = altered.sign(&a);
        let good = &signed;
        let sig_len = 64;
        let (n, m) = (bytes.len(), good.len());
        bytes[n - sig_len..].copy_from_slice(&good[m - sig_len..]);
        bytes
    };
    let (code, why) = client.send("POST", "/proposals", &forged);
    assert_eq!(code, 403);
    assert!(why.contains("signature does not verify"), "{why}");
    let (code, other) = client.json("POST", "/proposals", &proposal(2).sign(&a));
    assert_eq!(code, 201);
    let other_id = other["id"].as_str().expect("an id");
    let b_for_first = ballot(&id, Vote::Approve, &b);
    let (code, why) = client.send(
        "POST",
        &format!("/proposals/{other_id}/ballots"),
        &b_for_first,
    );
    assert_eq!(code, 422);
    assert!(why.contains("the ballot is for proposal"), "{why}");

    // B approves: accepted.
    let (code, v) = client.json("POST", &format!("/proposals/{id}/ballots"), &b_for_first);
    assert_eq!((code, v["status"].as_str()), (200, Some("accepted")), "{v}");
    assert_eq!(v["approvals"], 2);

    // The governor's process dies; its node restarts it on its sealed book.
    kill_and_wait_restart(&app, "governor");
    let mut other_rules = constitution();
    other_rules.rules.insert("deploy".into(), "any 1".into());
    app.aex(&[
        "call",
        "governor",
        "start",
        &start_payload(
            client.addr.port(),
            &other_rules,
            &app.path().join("governor-data"),
        ),
    ])
    .code(1)
    .stderr_has(&["already holds constitution"]);
    app.call("governor", "start", Some(&payload));
    let (code, list) = client.json("GET", "/proposals", b"");
    assert_eq!(code, 200);
    let first = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} in {list}"));
    assert_eq!(first["status"], "accepted", "{list}");
    assert_eq!(
        (&first["approvals"], &first["proposer"]),
        (&2.into(), &"a".into())
    );
}
