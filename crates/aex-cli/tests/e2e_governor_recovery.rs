//! End to end: members restore their governor on a new node when its node is lost for good
//! (issue 20, item 6; docs/ARCHITECTURE.md, "Recovery").
//!
//! A governor on node 1 holds a book (an open proposal with two ballots, a withdrawn one).
//! Members a and b each fetch their recovery share (sealed to a fresh key of theirs; opened
//! only by them) and a copy of the backup. Node 1 is killed and its files, the governor's
//! sealed state among them, are deleted. A fresh governor is deployed on node 2 and started
//! with the same constitution and `recover: true`: it has no deployer key and no book. The
//! backup and a's share alone recover nothing (the status says 1 of 2 shares), a non-member
//! holding b's share is refused, and b's share recovers: the book (its proposals and their
//! statuses) and the deployer key (`GET /identity`) are the ones the lost governor had, and
//! the recovered governor counts new ballots.

use std::net::SocketAddr;
use std::time::Duration;

use aex_governance::recovery::{Backup, ReplySecret, SealedShare, ShareRequest, ShareSubmission};
use aex_governance::signed::Signed;
use aex_governance::{Action, Proposal, Vote, Withdrawal, CERTIFICATE_KEY_NAME};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::sgx_node;
use aex_testkit::https::policy;
use aex_testkit::node::NodeProcess;
use aex_testkit::{free_addr, paths, wait_for};
use serde_json::Value;

use crate::e2e_governor::{ballot, constitution, member, start_governor, start_payload, APP};

/// A member's raw client of a governor: checks its measurement (the deployer's policy) and
/// the constitution its certificate attests before each request.
struct Member {
    policy: aex_client::Policy,
    addr: SocketAddr,
    digest: [u8; 32],
}

impl Member {
    fn of(app: &AppDir, addr: SocketAddr) -> Member {
        Member {
            policy: policy(app, "governor"),
            addr,
            digest: constitution().to_constitution().expect("valid").digest(),
        }
    }

    fn bytes(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let session = aex_client::connect(self.addr, &self.policy, None, Duration::from_secs(15))
            .expect("the governor passes the member's policy (its measurement)");
        assert_eq!(
            session.verified().extra(CERTIFICATE_KEY_NAME),
            Some(&self.digest[..]),
            "the certificate attests this member's constitution"
        );
        let answer = session.send(method, path, body).expect("an answer");
        (answer.status, answer.body.to_vec())
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (code, bytes) = self.bytes(method, path, body);
        let text = String::from_utf8_lossy(&bytes);
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{code} {text}: {e}"));
        (code, value)
    }

    /// Member `seed`'s share, as `aex recovery share` fetches it: (key id, share bytes).
    fn share(&self, seed: u8) -> ([u8; 32], Vec<u8>) {
        let reply = ReplySecret::new();
        let request = ShareRequest {
            application: APP.into(),
            reply_key: reply.public(),
            created_ms: 1,
        }
        .sign(&member(seed));
        let (code, body) = self.bytes("POST", "/recovery/share", &request);
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        let sealed = SealedShare::from_bytes(&body).expect("a sealed share");
        // Replayed by someone else, the request gets them a share they cannot open.
        let (_, again) = self.bytes("POST", "/recovery/share", &request);
        let replayed = SealedShare::from_bytes(&again).expect("a sealed share");
        assert!(ReplySecret::new().open(&replayed).is_err());
        let share = reply.open(&sealed).expect("opens with the member's secret");
        (sealed.header.key_id, share.to_vec())
    }

    fn submit(&self, seed: u8, key_id: [u8; 32], share: &[u8]) -> (u16, String) {
        let signed = ShareSubmission {
            application: APP.into(),
            key_id,
            share: share.to_vec(),
        }
        .sign(&member(seed));
        let (code, body) = self.bytes("POST", "/recovery/shares", &signed);
        (code, String::from_utf8_lossy(&body).into_owned())
    }
}

/// The governor deployed on `node` and started to recover (its files in the app directory).
fn start_recovering(app: &AppDir, node: &NodeProcess) -> SocketAddr {
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
    let mut payload: Value = serde_json::from_str(&start_payload(
        addr.port(),
        &constitution(),
        &app.path().join("governor-data"),
    ))
    .expect("json");
    payload["recover"] = Value::Bool(true);
    app.call("governor", "start", Some(&payload.to_string()));
    addr
}

/// Each proposal's id and status, in the book's order.
fn statuses(views: &Value) -> Vec<(String, String, u64)> {
    views
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("status"), v["approvals"].as_u64().unwrap_or(0))
        })
        .collect()
}

#[test]
fn members_shares_restore_a_lost_governor_with_its_book_and_deployer_key() {
    // The governor on node 1, with a book.
    let gov1 = AppDir::new();
    let mut node1 = NodeProcess::start("node1", gov1.path().join("node1"));
    let (first, _) = start_governor(&gov1, &node1);
    let old = Member::of(&gov1, first.addr);
    let (a, b, c) = (member(1), member(2), member(3));
    let open = Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "deploy ping-pong".into(),
        created_ms: 1,
    };
    let (code, made) = old.json("POST", "/proposals", &open.sign(&a));
    assert_eq!(code, 201, "{made}");
    let id = made["id"].as_str().expect("an id").to_owned();
    assert_eq!(old.json("POST", "/ballots", &ballot(&id, Vote::Approve, &a)).0, 200);
    assert_eq!(old.json("POST", "/ballots", &ballot(&id, Vote::Reject, &c)).0, 200);
    let withdrawn = Proposal {
        created_ms: 2,
        ..open.clone()
    };
    let (_, w) = old.json("POST", "/proposals", &withdrawn.sign(&a));
    let wid = aex_governance::ProposalId(
        hex::decode(w["id"].as_str().expect("an id"))
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    );
    let withdrawal = Withdrawal { proposal: wid }.sign(&a);
    assert_eq!(old.json("POST", "/withdrawals", &withdrawal).0, 200);
    let (_, book) = old.json("GET", "/proposals", b"");
    let before = statuses(&book);
    assert_eq!(before.len(), 2);
    let (_, identity) = old.json("GET", "/identity", b"");

    // Members keep their shares and a copy of the latest backup.
    let (key_a, share_a) = old.share(1);
    let (key_b, share_b) = old.share(2);
    assert_eq!(key_a, key_b, "shares of one recovery key");
    let (code, status) = old.json("GET", "/recovery", b"");
    assert_eq!((code, status["threshold"].as_u64()), (200, Some(2)), "{status}");
    let (code, backup) = old.bytes("GET", "/recovery/backup", b"");
    assert_eq!(code, 200);
    let header = Backup::from_bytes(&backup).expect("a backup").header;
    assert_eq!(header.proposals, 2);
    assert!(header.sequence >= 4, "one backup per change: {}", header.sequence);

    // Node 1 is lost for good: killed, its files (the sealed state) deleted.
    node1.kill();
    wait_for("the old governor to stop", Duration::from_secs(10), || {
        std::net::TcpStream::connect_timeout(&first.addr, Duration::from_millis(200))
            .is_err()
            .then_some(())
    });
    std::fs::remove_dir_all(gov1.path().join("node1")).expect("node 1's files deleted");
    std::fs::remove_dir_all(gov1.path().join("governor-data")).expect("its data deleted");

    // A fresh governor on node 2 recovers.
    let gov2 = AppDir::new();
    let node2 = NodeProcess::start("node2", gov2.path().join("node2"));
    let new = Member::of(&gov2, start_recovering(&gov2, &node2));
    let (code, status) = new.json("GET", "/recovery", b"");
    assert_eq!((code, status["state"].as_str()), (200, Some("collecting")), "{status}");
    assert_eq!(new.bytes("GET", "/identity", b"").0, 503, "no deployer key yet");
    let (code, status) = new.json("POST", "/recovery/backup", &backup);
    assert_eq!(code, 202, "{status}");
    assert_eq!(status["sequence"], header.sequence, "members compare it with theirs");

    // One member's share recovers nothing.
    let (code, text) = new.submit(1, key_a, &share_a);
    assert_eq!(code, 202, "{text}");
    let status: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(status["shares"], serde_json::json!(["a"]), "1 of 2 shares: {status}");
    assert_eq!(status["threshold"], 2);
    assert_eq!(new.bytes("GET", "/proposals", b"").0, 503, "nothing recovered");
    // A non-member holding b's share is refused.
    let outsider = 9;
    let (code, text) = new.submit(outsider, key_b, &share_b);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("no member's key"), "{text}");

    // b's share: recovered.
    let (code, text) = new.submit(2, key_b, &share_b);
    assert_eq!(code, 200, "{text}");
    let (_, book) = new.json("GET", "/proposals", b"");
    assert_eq!(statuses(&book), before, "the same proposals, statuses and ballots");
    let (_, recovered) = new.json("GET", "/identity", b"");
    assert_eq!(recovered, identity, "the same deployer key: the app's nodes admit it");
    // It counts ballots again: b's approval accepts the open proposal.
    let (code, v) = new.json("POST", "/ballots", &ballot(&id, Vote::Approve, &b));
    assert_eq!((code, v["status"].as_str()), (200, Some("accepted")), "{v}");
    // And it made a new recovery key, whose shares members fetch again.
    let (new_key, _) = new.share(1);
    assert_ne!(new_key, key_a);
    let (_, later) = new.bytes("GET", "/recovery/backup", b"");
    let later = Backup::from_bytes(&later).expect("a backup").header;
    assert!(later.sequence > header.sequence, "{} then {}", header.sequence, later.sequence);
    drop(node2);
}
