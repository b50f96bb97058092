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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_governance::signed::Signed;
use aex_governance::{
    Action, Ballot, Document, MemberDocument, Proposal, ProposalId, Vote, CERTIFICATE_KEY_NAME,
};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::sgx_node;
use aex_testkit::https::policy;
use aex_testkit::node::NodeProcess;
use aex_testkit::{free_addr, paths};
use serde_json::Value;

use crate::fault_sealed_state::kill_and_wait_restart;

pub(crate) const APP: &str = "governed-test";

pub(crate) fn member(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seed(&[seed; 32])
}

/// Members a, b, c (seeds 1, 2, 3): deploy needs 2 of 3, the rest all.
pub(crate) fn constitution() -> Document {
    Document {
        members: ["a", "b", "c"]
            .iter()
            .zip(1..)
            .map(|(name, seed)| MemberDocument {
                name: (*name).into(),
                key: hex::encode(member(seed).public()),
            })
            .collect(),
        rules: BTreeMap::from([("deploy".into(), "2 of 3".into())]),
        proposal_lifetime_ms: 3_600_000,
    }
}

/// `start`'s argument; the governor keeps its files in `data`.
pub(crate) fn start_payload(port: u16, constitution: &Document, data: &Path) -> String {
    serde_json::json!({
        "port": port,
        "application": APP,
        "constitution": constitution,
        "data": data,
    })
    .to_string()
}

/// A member's client: verifies the governor (measurement, and the constitution's digest in
/// its certificate) before every request.
pub(crate) struct Client {
    policy: aex_client::Policy,
    pub(crate) addr: SocketAddr,
    digest: [u8; 32],
}

impl Client {
    pub(crate) fn send(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let (status, body) = self.bytes(method, path, body);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The answer's status and body bytes.
    pub(crate) fn bytes(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let session = aex_client::connect(self.addr, &self.policy, None, Duration::from_secs(15))
            .expect("the governor passes the deployer's policy (its measurement)");
        assert_eq!(
            session.verified().extra(CERTIFICATE_KEY_NAME),
            Some(&self.digest[..]),
            "the certificate attests this member's constitution"
        );
        let answer = session.send(method, path, body).expect("an answer");
        (answer.status, answer.body.to_vec())
    }

    pub(crate) fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (code, text) = self.send(method, path, body);
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{code} {text}: {e}"));
        (code, value)
    }
}

pub(crate) fn ballot(id: &str, vote: Vote, by: &SigningIdentity) -> Vec<u8> {
    let id: [u8; 32] = hex::decode(id).expect("hex").try_into().expect("32 bytes");
    Ballot {
        proposal: ProposalId(id),
        vote,
    }
    .sign(by)
}

fn proposal(created_ms: u64) -> Proposal {
    Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "deploy ping-pong".into(),
        created_ms,
    }
}

/// The governor of `app`'s descriptor, deployed on `node` and started with [`constitution`]
/// (its files in the app directory): a member's client to it, and `start`'s argument.
pub(crate) fn start_governor(app: &AppDir, node: &NodeProcess) -> (Client, String) {
    start_governor_with(app, node, &constitution())
}

/// [`start_governor`] with another constitution.
pub(crate) fn start_governor_with(
    app: &AppDir,
    node: &NodeProcess,
    constitution: &Document,
) -> (Client, String) {
    let governor = paths::workspace().join("crates/aex-governor");
    app.write_descriptor(&format!(
        "[application]\nname = \"{APP}\"\n{}\n[[module]]\nname = \"governor\"\ncrate = {:?}\nnode = \"node1\"\n",
        sgx_node(
            "node1",
            node.addr,
            &node.platform_pub_file(),
            &node.identity_pub_file()
        ),
        governor.display().to_string(),
    ));
    app.deploy().ok();

    let addr = free_addr();
    let payload = start_payload(addr.port(), constitution, &app.path().join("governor-data"));
    let digest = constitution.to_constitution().expect("valid").digest();
    let started = app.call("governor", "start", Some(&payload));
    assert_eq!(started["constitution"], hex::encode(digest), "{started}");
    let client = Client {
        policy: policy(app, "governor"),
        addr,
        digest,
    };
    (client, payload)
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
