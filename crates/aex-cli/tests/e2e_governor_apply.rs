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

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aex_governance::signed::Signed;
use aex_governance::{Action, Proposal, Vote};
use aex_proto::{NodeErrorKind, NodeRequest};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{IdentityPin, PingPong, PlatformKey, APP as PING_PONG};
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::session::Session;
use aex_testkit::{modules, wait_for};
use serde_json::Value;

use crate::e2e_governor::{ballot, member, start_governor, Client, APP};

/// Chunks of at most this many bytes (the governor reads bodies of at most 1 MiB).
const CHUNK: usize = 512 * 1024;

fn upload(client: &Client, digest: &str, bytes: &[u8]) {
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + CHUNK).min(bytes.len());
        let (code, v) = client.json(
            "PUT",
            &format!("/binaries/{digest}/{offset}"),
            &bytes[offset..end],
        );
        assert_eq!(code, 200, "{v}");
        offset = end;
        assert_eq!(v["have"], offset as u64, "{v}");
        assert_eq!(v["complete"], offset == bytes.len(), "{v}");
    }
}

/// The governed ping-pong descriptor: node keys inline (the governor has none of a member's
/// files), and the consortium's members and rules.
fn governed_descriptor(node1: &NodeProcess, node2: &NodeProcess) -> String {
    let pin = |n: &NodeProcess| Some(IdentityPin::Inline(hex::encode(n.identity().0)));
    let mut text = PingPong {
        nodes: [
            (node1.addr, PlatformKey::Inline(node1.platform_pub_hex())),
            (node2.addr, PlatformKey::Inline(node2.platform_pub_hex())),
        ],
        identities: [pin(node1), pin(node2)],
        poke: false,
        c_pong: false,
    }
    .render()
    .replace(
        &format!("name = \"{PING_PONG}\""),
        &format!("name = \"{APP}\""),
    );
    text.push_str("\n[governance]\n");
    for (name, seed) in [("a", 1), ("b", 2), ("c", 3)] {
        text.push_str(&format!(
            "\n[[governance.member]]\nname = \"{name}\"\nkey = \"{}\"\n",
            hex::encode(member(seed).public())
        ));
    }
    text.push_str("\n[governance.rules]\ndeploy = \"2 of 3\"\n");
    text
}

fn outcome(client: &Client, id: &str) -> Value {
    let (code, v) = client.json("GET", &format!("/proposals/{id}/outcome"), b"");
    assert_eq!(code, 200, "{v}");
    v
}

#[test]
fn the_governor_deploys_an_accepted_bundle_and_no_single_member_can_act_alone() {
    let gov = AppDir::new();
    let gov_node = NodeProcess::start("node0", gov.path().join("node0"));
    let (client, _) = start_governor(&gov, &gov_node);

    // The governor's deployer key, as its certificate attests it.
    let (code, id_json) = client.json("GET", "/identity", b"");
    assert_eq!(code, 200, "{id_json}");
    let governor_key = id_json["key"].as_str().expect("a key").to_owned();
    assert_eq!(governor_key.len(), 64);

    // The governed application's nodes admit the governor's key, and nobody else's.
    let member_dir = AppDir::new();
    let only_governor = |name: &str| {
        NodeProcess::start_with(
            NodeOptions::new(name, member_dir.path().join(name))
                .admit(std::slice::from_ref(&governor_key)),
        )
    };
    let (node1, node2) = (only_governor("node1"), only_governor("node2"));
    member_dir.write_descriptor(&governed_descriptor(&node1, &node2));

    // A builds the bundle, as `aex propose` does, and sends it.
    let (a, b) = (member(1), member(2));
    let a_identity = Arc::new(aex_deploy::Identity::from_signing(
        member(1),
        Path::new("a"),
    ));
    let app = aex_deploy::App::open(member_dir.path(), a_identity.clone()).expect("opens");
    let mut builder = aex_deploy::build::Builder::new(aex_deploy::build::Profile::Dev)
        .prebuilt(modules::prebuilt().clone());
    let built =
        aex_deploy::ops::deploy::build_all(&app, &mut builder, &aex_deploy::progress::Quiet)
            .expect("builds");
    let made = aex_deploy::bundle::make(&app, &built).expect("a bundle");
    drop(app);
    for (digest, bytes) in &made.binaries {
        upload(&client, digest, bytes);
    }
    let (code, stored) = client.json("POST", "/bundles", &made.bytes);
    assert_eq!(code, 201, "{stored}");
    assert_eq!(stored["digest"], hex::encode(made.digest()));
    assert_eq!(stored["missing"], serde_json::json!([]));

    let proposal = Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: made.digest(),
        summary: "deploy ping-pong".into(),
        created_ms: 1,
    };
    let (code, v) = client.json("POST", "/proposals", &proposal.sign(&a));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().expect("an id").to_owned();
    let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, &a));
    assert_eq!((code, v["status"].as_str()), (200, Some("open")), "{v}");
    assert_eq!(outcome(&client, &id)["state"], "waiting");

    // B approves: accepted, and carried out by the governor.
    let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, &b));
    assert_eq!((code, v["status"].as_str()), (200, Some("accepted")), "{v}");
    let last = wait_for(
        "the governor to carry it out",
        Duration::from_secs(60),
        || {
            let now = outcome(&client, &id);
            (now["state"] != "applying" && now["state"] != "waiting").then_some(now)
        },
    );
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
    // What authorised it comes first (the proposal and both ballots), its end last.
    assert_eq!(kinds[..3], ["proposal", "ballot", "ballot"], "{kinds:?}");
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
}
