//! End to end: a recovered governor carries out proposals under the lost one's deployer key
//! (issue 20, item 6; docs/ARCHITECTURE.md, "Recovery").
//!
//! The governor (the test kit's `Governed`) deploys the governed ping-pong; members a and b
//! keep their shares and the backup written once the deployment was committed. The
//! governor's node is killed and its files deleted; a new governor on another node recovers
//! from the two shares. Once a member has sent the bundle in force again (the store was on
//! the lost disk), the recovered governor disables `pong` under the same deployer key with
//! the recovered module key, its ledger goes on from the lost one's and verifies, and the
//! certificate it records for its new entries binds that key.

use std::time::Duration;

use aex_governance::recovery::Backup;
use aex_governance::{Action, Vote};
use aex_testkit::cluster::AppDir;
use aex_testkit::governor::{ballot, member};
use aex_testkit::node::NodeProcess;
use aex_testkit::wait_for;

use crate::e2e_governor_recovery::{start, Member};

/// The deployer key the last `signer attested` entry of `ledger` binds, appraised with
/// `policy`.
fn last_attested_signer(ledger: &[u8], policy: &aex_client::Policy) -> String {
    let mut rest = ledger;
    let (mut seq, mut last) = (0, None);
    while !rest.is_empty() {
        let (entry, used) = aex_ledger::Entry::decode_prefix(rest, seq).expect("an entry");
        if entry.kind == aex_deploy::audit::SIGNER_ATTESTED {
            last = Some(entry);
        }
        rest = &rest[used..];
        seq += 1;
    }
    let entry = last.expect("a signer attested entry");
    let body: ciborium::Value = ciborium::from_reader(&entry.body[..]).expect("cbor");
    let certificate = body
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("certificate")))
        .and_then(|(_, v)| v.as_bytes())
        .expect("a certificate")
        .clone();
    let verified = aex_client::verify_certificate(&certificate, policy).expect("appraised");
    hex::encode(verified.extra("aex governor identity v1").expect("the key"))
}

#[test]
fn a_recovered_governor_carries_out_proposals_under_the_same_key() {
    use aex_testkit::governor::{constitution as kit_constitution, Governed, APP as KIT_APP};

    let rules = [("deploy", "2 of 3"), ("disable", "2 of 3")];
    let mut g = Governed::start(&rules);
    let deployed = g.propose_bundle(Action::Deploy);
    assert_eq!(g.approve(&deployed, 1), "open");
    assert_eq!(g.approve(&deployed, 2), "accepted");
    assert_eq!(g.settled(&deployed)["state"], "applied");
    let mut constitution = kit_constitution();
    constitution.rules = rules
        .iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect();
    let old = Member(aex_testkit::governor::Client {
        policy: g.client.policy.clone(),
        ..g.client
    });
    let (key_id, share_a) = old.share_of(KIT_APP, &member(1));
    let (_, share_b) = old.share_of(KIT_APP, &member(2));
    // The backup written once the deployment was committed: its header marks the ledger.
    let backup = wait_for(
        "a backup of the deployment",
        Duration::from_secs(10),
        || {
            let (_, bytes) = old.bytes("GET", "/recovery/backup", b"");
            let h = Backup::from_bytes(&bytes).ok()?.header;
            (h.ledger_size > 0 && h.key_id == key_id).then_some(bytes)
        },
    );

    // The governor's node is lost with its files; a new governor on another node recovers.
    g.gov_node.kill();
    wait_for("the old governor to stop", Duration::from_secs(10), || {
        std::net::TcpStream::connect_timeout(&g.client.addr, Duration::from_millis(200))
            .is_err()
            .then_some(())
    });
    std::fs::remove_dir_all(g.gov.path().join("node0")).expect("its node's files deleted");
    std::fs::remove_dir_all(g.gov.path().join("governor-data")).expect("its data deleted");
    let gov2 = AppDir::new();
    let node3 = NodeProcess::start("node3", gov2.path().join("node3"));
    let new = Member::of(
        &gov2,
        start(&gov2, &node3, KIT_APP, &constitution, true),
        &constitution,
    );
    assert_eq!(new.json("POST", "/recovery/backup", &backup).0, 202);
    assert_eq!(new.submit_of(KIT_APP, &member(1), key_id, &share_a).0, 202);
    let (code, text) = new.submit_of(KIT_APP, &member(2), key_id, &share_b);
    assert_eq!(code, 200, "{text}");
    let (_, identity) = new.json("GET", "/identity", b"");
    assert_eq!(identity["key"], g.governor_key.as_str());

    // The store (builds and bundles: public, content-addressed) was on the lost disk too: a
    // member sends the bundle in force again, which must be the one the book approved.
    let in_force = aex_testkit::governor::make_bundle(g.member_dir.path(), member(1));
    let (_, view) = new.json("GET", &format!("/proposals/{deployed}"), b"");
    assert_eq!(view["change"], hex::encode(in_force.digest()), "{view}");
    aex_testkit::governor::send_bundle(&new, &in_force);

    // It disables pong: the nodes admit its key, and pong's module key was recovered.
    let order = aex_governance::DisableOrder::new(KIT_APP, ["pong".to_owned()]).expect("an order");
    assert_eq!(new.json("POST", "/orders", &order.to_bytes()).0, 201);
    let proposal = aex_testkit::governor::proposal(
        Action::Disable,
        order.digest(),
        "disable pong after the recovery",
        &member(1),
    );
    let (code, v) = new.json("POST", "/proposals", &proposal);
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().expect("an id").to_owned();
    for seed in [1, 2] {
        assert_eq!(
            new.json(
                "POST",
                "/ballots",
                &ballot(&id, Vote::Approve, &member(seed))
            )
            .0,
            200
        );
    }
    let last = wait_for(
        "the recovered governor to disable pong",
        Duration::from_secs(30),
        || {
            let (_, o) = new.json("GET", &format!("/proposals/{id}/outcome"), b"");
            (o["state"] != "waiting" && o["state"] != "applying").then_some(o)
        },
    );
    assert_eq!(last["state"], "applied", "{last}");

    // Its ledger goes on from the lost governor's, and verifies; the certificate it records
    // for the new entries binds the same key, appraised on the new node.
    let (code, ledger) = new.bytes("GET", "/ledger", b"");
    assert_eq!(code, 200);
    let header = Backup::from_bytes(&backup).expect("a backup").header;
    let summary = aex_ledger::verify(&ledger, &aex_ledger::Expect::default()).expect("verifies");
    assert!(
        summary.entries > header.ledger_size,
        "{} entries",
        summary.entries
    );
    assert_eq!(last_attested_signer(&ledger, &new.policy), g.governor_key);
}
