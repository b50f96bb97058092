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
//! Applying the proposal a second time is refused. (The setup is `support_governed.rs`'s.)

use aex_governance::Action;
use aex_proto::{NodeErrorKind, NodeRequest};
use aex_testkit::session::Session;

use crate::e2e_governor::{member, APP};
use crate::support_governed::Governed;

#[test]
fn the_governor_deploys_an_accepted_bundle_and_no_single_member_can_act_alone() {
    let g = Governed::start(&[("deploy", "2 of 3")]);
    let (client, governor_key) = (&g.client, &g.governor_key);

    // A builds the bundle, as `aex propose` does, sends it and proposes it; A's approval
    // alone leaves it open.
    let id = g.propose_bundle(Action::Deploy, 1);
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
    // What authorised it comes first (the proposal and both ballots), its end last.
    assert_eq!(kinds[..3], ["proposal", "ballot", "ballot"], "{kinds:?}");
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
}
