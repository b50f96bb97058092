//! End to end: the governor carries out an accepted deployment itself, and one member holding
//! everything it has cannot act alone (issue 20, item 2).
//!
//! The governor runs on a simulated `sgx` node (deployed by an ordinary application, as in
//! `e2e_governor.rs`); the governed ping-pong runs on two other nodes that admit only the
//! governor's own deployer key, which members read from its attested certificate. Member A
//! builds ping-pong, uploads the binaries and the bundle, and proposes it; with A's approval
//! alone nothing happens. B's approval accepts it, and the governor loads, attests and keys
//! both modules under its key: the ledger it serves verifies offline and records both
//! attestations, signed by that key. Then A, with its complete deployer identity and its own
//! deployer state of the application, tries to act on the nodes directly: every request is
//! refused (`NotAdmitted`), and the `aex` command line refuses the governed descriptor.
//! Applying the proposal a second time is refused.

use std::time::Duration;

use aex_governance::{Action, Vote};
use aex_proto::{NodeErrorKind, NodeRequest, ResumeOutcome};
use aex_testkit::cluster::AppDir;
use aex_testkit::governor::{
    ballot, governed_descriptor, make_bundle, member, nodes_admitting, proposal, send_bundle,
    start_governor, APP,
};
use aex_testkit::node::NodeProcess;
use aex_testkit::session::Session;
use aex_testkit::status::StatusExt;
use aex_testkit::wait_for;

use crate::fault_sealed_state::{
    copy_blobs, kill_and_wait_restart, resume, sealed_dir, swap_blobs,
};

#[test]
fn the_governor_deploys_an_accepted_bundle_and_no_single_member_can_act_alone() {
    let gov = AppDir::new();
    let mut gov_node = NodeProcess::start("node0", gov.path().join("node0"));
    let (client, payload) = start_governor(&gov, &gov_node);
    // The governor's sealed state before anything was proposed, for the rollback below.
    let before = gov.path().join("governor-sealed-at-start");
    copy_blobs(&sealed_dir(&gov_node, "governor"), &before);

    // The governor's deployer key, as its certificate attests it.
    let (code, id_json) = client.json("GET", "/identity", b"");
    assert_eq!(code, 200, "{id_json}");
    let governor_key = id_json["key"].as_str().expect("a key").to_owned();
    assert_eq!(governor_key.len(), 64);

    // The governed application's nodes admit the governor's key, and nobody else's.
    let member_dir = AppDir::new();
    let (node1, node2) = nodes_admitting(&member_dir, &governor_key);
    member_dir.write_descriptor(&governed_descriptor(&node1, &node2));

    // A builds the bundle, as `aex propose` does, sends it and proposes its digest.
    let (a, b) = (member(1), member(2));
    let change = send_bundle(&client, &make_bundle(member_dir.path(), member(1)));
    let signed = proposal(Action::Deploy, change, "deploy ping-pong", &a);
    let (code, v) = client.json("POST", "/proposals", &signed);
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().expect("an id").to_owned();
    let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, &a));
    assert_eq!((code, v["status"].as_str()), (200, Some("open")), "{v}");
    assert_eq!(client.outcome(&id)["state"], "waiting");

    // B approves: accepted, and carried out by the governor.
    let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, &b));
    assert_eq!((code, v["status"].as_str()), (200, Some("accepted")), "{v}");
    let last = client.settled(&id, Duration::from_secs(60));
    assert_eq!(last["state"], "applied", "{last}");
    let report = last["report"].as_str().unwrap_or_default();
    assert!(report.contains("ping") && report.contains("pong"), "{last}");
    let (_, view) = client.json("GET", &format!("/proposals/{id}"), b"");
    assert_eq!(view["status"], "applied", "{view}");

    // Its ledger verifies offline and records both attestations, under the governor's key.
    let (code, ledger) = client.bytes("GET", "/ledger", b"");
    assert_eq!(code, 200);
    let summary = aex_ledger::verify(&ledger, &aex_ledger::Expect::default()).expect("verifies");
    let mut kinds = vec![];
    let mut rest = &ledger[..];
    while !rest.is_empty() {
        let (entry, used) =
            aex_ledger::Entry::decode_prefix(rest, kinds.len() as u64).expect("an entry");
        kinds.push(entry.kind);
        rest = &rest[used..];
    }
    let attested = kinds.iter().filter(|k| *k == "module attested").count();
    assert_eq!(attested, 2, "{kinds:?}");
    // Who signs (the governor's attested certificate) and what authorised it (the proposal
    // and both ballots) come first, its end last.
    assert_eq!(
        kinds[..4],
        ["signer attested", "proposal", "ballot", "ballot"],
        "{kinds:?}"
    );
    let applied = kinds.iter().rposition(|k| k == "proposal applied");
    assert!(
        applied > kinds.iter().rposition(|k| k == "connection keyed"),
        "{kinds:?}"
    );
    assert_eq!(
        summary.signers.iter().map(hex::encode).collect::<Vec<_>>(),
        vec![governor_key.clone()]
    );

    // A, with its complete identity and deployer state, acts alone: the nodes refuse it.
    for node in [&node1, &node2] {
        let mut session = Session::open(node.addr, &a, APP);
        for body in [
            NodeRequest::Status,
            NodeRequest::LoadBegin {
                module: "ping".into(),
                size: 4,
            },
            NodeRequest::Unload {
                module: "ping".into(),
            },
        ] {
            let e = session.request(body).unwrap_err();
            assert_eq!(e.kind, NodeErrorKind::NotAdmitted, "{e}");
        }
    }
    member_dir
        .deploy()
        .code(1)
        .stderr_has(&["declares `[governance]`"]);

    // Applied once: asking again is refused.
    let (code, why) = client.send("POST", &format!("/proposals/{id}/apply"), b"");
    assert_eq!(code, 409, "{why}");

    // The governor's whole node is killed and restarted: the governor resumes its sealed state by itself,
    // serves again, and its ledger lost no entry (the same bytes, still verifying).
    gov_node.kill();
    gov_node.restart();
    wait_for(
        "the governor to resume after its node restarted",
        Duration::from_secs(60),
        || {
            let s = gov.status();
            let m = s.module("governor");
            let resumed = m.persistence.as_ref().and_then(|p| p.resume.clone());
            (m.running && matches!(resumed, Some(ResumeOutcome::Resumed { .. }))).then_some(())
        },
    );
    gov.call("governor", "start", Some(&payload));
    let (code, after) = client.bytes("GET", "/ledger", b"");
    assert_eq!(code, 200);
    assert_eq!(
        after, ledger,
        "the ledger after the restart is the one before"
    );
    aex_ledger::verify(&after, &aex_ledger::Expect::default()).expect("verifies");
    let (_, view) = client.json("GET", &format!("/proposals/{id}"), b"");
    assert_eq!(view["status"], "applied", "{view}");

    // A rolled-back governor: its node agent puts back the sealed state from before the
    // proposal (which would forget the deployment, its keys and the ballots). The runtime
    // refuses it: the governor holds nothing and serves nothing.
    swap_blobs(&before, &sealed_dir(&gov_node, "governor"));
    let status = kill_and_wait_restart(&gov, "governor");
    match resume(&status, "governor") {
        ResumeOutcome::Refused(reason) => assert!(reason.contains("rollback detected"), "{reason}"),
        other => panic!("an old governor state was taken: {other:?}"),
    }
    gov.aex(&["call", "governor", "start", &payload]).code(1);
}
