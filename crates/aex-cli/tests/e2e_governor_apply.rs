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
//! Applying the proposal a second time is refused. The governor's node is then killed and
//! restarted: the governor resumes by itself and its ledger lost no entry. Last, its node
//! agent puts back the governor's sealed state from before the proposal: it is refused.
//! (The setup is the test kit's `governor` module.)

use std::time::Duration;

use aex_governance::signed::Signed;
use aex_governance::{Action, ProposalId, Withdrawal};
use aex_proto::{NodeErrorKind, NodeRequest, ResumeOutcome};
use aex_testkit::governor::{field, member, Governed, APP};
use aex_testkit::session::Session;
use aex_testkit::status::StatusExt;
use aex_testkit::wait_for;

use crate::fault_sealed_state::{copy_blobs, resume, sealed_dir, swap_blobs};

#[test]
fn the_governor_deploys_an_accepted_bundle_and_no_single_member_can_act_alone() {
    let mut g = Governed::start(&[("deploy", "2 of 3")]);
    // The governor's sealed state before anything was proposed, for the rollback below.
    let before = g.gov.path().join("governor-sealed-at-start");
    copy_blobs(&sealed_dir(&g.gov_node, "governor"), &before);
    let (client, governor_key) = (&g.client, &g.governor_key);

    // A builds the bundle, as `aex propose` does, sends it and proposes it; A's approval
    // alone leaves it open.
    let id = g.propose_bundle(Action::Deploy);
    assert_eq!(g.approve(&id, 1), "open");
    assert_eq!(g.outcome(&id)["state"], "waiting");

    // B approves: accepted, and carried out by the governor.
    assert_eq!(g.approve(&id, 2), "accepted");
    let last = g.settled(&id);
    assert_eq!(last["state"], "applied", "{last}");
    let report = last["report"].as_str().unwrap_or_default();
    assert!(report.contains("ping") && report.contains("pong"), "{last}");
    let (_, view) = client.json("GET", &format!("/proposals/{id}"), b"");
    assert_eq!(view["status"], "applied", "{view}");

    // Its ledger verifies offline and records both attestations, under the governor's key.
    let (_, summary, entries) = g.ledger();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let attested = kinds.iter().filter(|k| **k == "module attested").count();
    assert_eq!(attested, 2, "{kinds:?}");
    // Who signs (the governor's attested certificate) and what authorised it (the proposal
    // and both ballots) come first, its end last.
    assert_eq!(
        kinds[..4],
        ["signer attested", "proposal", "ballot", "ballot"],
        "{kinds:?}"
    );
    let applied = kinds.iter().rposition(|k| *k == "proposal applied");
    assert!(
        applied > kinds.iter().rposition(|k| *k == "connection keyed"),
        "{kinds:?}"
    );
    assert_eq!(
        summary.signers.iter().map(hex::encode).collect::<Vec<_>>(),
        vec![governor_key.clone()]
    );

    // A, with its complete identity and deployer state, acts alone: the nodes refuse it.
    let a = member(1);
    for node in [&g.node1, &g.node2] {
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
    g.member_dir
        .deploy()
        .code(1)
        .stderr_has(&["declares `[governance]`"]);

    // Applied once: asking again is refused.
    let (code, why) = client.send("POST", &format!("/proposals/{id}/apply"), b"");
    assert_eq!(code, 409, "{why}");

    // A proposal decided without being carried out is in the ledger too: A proposes, approves
    // and withdraws; the ledger gets the proposal, A's ballot and `proposal withdrawn`.
    let withdrawn = g.propose(Action::Update, [9; 32]);
    assert_eq!(g.approve(&withdrawn, 1), "open");
    let signed = Withdrawal {
        proposal: ProposalId(hex::decode(&withdrawn).unwrap().try_into().unwrap()),
    }
    .sign(&a);
    let (code, v) = client.json("POST", "/withdrawals", &signed);
    assert_eq!(
        (code, v["status"].as_str()),
        (200, Some("withdrawn")),
        "{v}"
    );
    let (ledger, _, entries) = wait_for(
        "the withdrawn proposal in the ledger",
        Duration::from_secs(60),
        || {
            let now = g.ledger();
            now.2
                .iter()
                .any(|e| e.kind == "proposal withdrawn")
                .then_some(now)
        },
    );
    let tail: Vec<&str> = entries
        .iter()
        .map(|e| e.kind.as_str())
        .filter(|k| *k != "signature")
        .rev()
        .take(4)
        .collect();
    assert_eq!(
        tail,
        [
            "proposal withdrawn",
            "ballot",
            "proposal",
            "signer attested"
        ],
        "{tail:?}"
    );
    let closing = entries.iter().rfind(|e| e.kind == "proposal withdrawn");
    assert_eq!(
        closing.and_then(|e| field(e, "proposal")).as_deref(),
        Some(withdrawn.as_str())
    );

    // The governor's whole node is killed and restarted: the governor resumes its sealed
    // state by itself, serves again, and its ledger lost no entry (the bytes before are still
    // its first bytes; `g.ledger()` verifies it).
    g.gov_node.kill();
    g.gov_node.restart();
    wait_for(
        "the governor to resume after its node restarted",
        Duration::from_secs(60),
        || {
            let s = g.gov.status();
            let m = s.module("governor");
            let resumed = m.persistence.as_ref().and_then(|p| p.resume.clone());
            (m.running && matches!(resumed, Some(ResumeOutcome::Resumed { .. }))).then_some(())
        },
    );
    g.gov.call("governor", "start", Some(&g.payload));
    // (It may have grown: a record appended just before the kill, whose commit the kill cut
    // short, is appended again. Never shorter or rewritten.)
    let (after, _, _) = g.ledger();
    assert!(
        after.starts_with(&ledger),
        "the ledger after the restart ({} bytes) does not extend the one before ({} bytes)",
        after.len(),
        ledger.len()
    );
    let (_, view) = g.client.json("GET", &format!("/proposals/{id}"), b"");
    assert_eq!(view["status"], "applied", "{view}");

    // A rolled-back governor: its node agent puts back the sealed state from before the
    // proposal (which would forget the deployment, its keys and the ballots). The runtime
    // refuses it: the governor holds nothing and serves nothing. The swap is made while the
    // node is down: the governor, just started again, may still be committing (a record
    // whose commit the kill above cut short), and a commit landing after a swap would be
    // resumed instead of the old state (a CI run saw the node prune a blob mid-swap).
    let sealed = sealed_dir(&g.gov_node, "governor");
    g.gov_node.kill();
    swap_blobs(&before, &sealed);
    g.gov_node.restart();
    let status = wait_for(
        "the governor's rolled-back state to be judged",
        Duration::from_secs(60),
        || {
            let s = g.gov.status();
            let m = s.module("governor");
            m.persistence.as_ref()?.resume.as_ref()?;
            Some(s)
        },
    );
    match resume(&status, "governor") {
        ResumeOutcome::Refused(reason) => assert!(reason.contains("rollback detected"), "{reason}"),
        other => panic!("an old governor state was taken: {other:?}"),
    }
    g.gov
        .aex(&["call", "governor", "start", &g.payload])
        .code(1);
}
