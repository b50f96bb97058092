//! End to end: members restore their governor on a new node when its node is lost for good
//! (issue 20, item 6; docs/ARCHITECTURE.md, "Recovery").
//!
//! A governor on node 1 holds a book (an open proposal with two ballots, a withdrawn one).
//! Members a and b each fetch their recovery share with `aex recovery share` (sealed to a
//! fresh key of theirs; kept in a file only they read; never printed) and a copy of the
//! backup with `aex recovery backup`; a request replayed by someone else gets them nothing.
//! Node 1 is killed and its files, the governor's sealed state among them, are deleted. A
//! fresh governor is deployed on node 2 and started with the same constitution and `recover:
//! true`: it has no deployer key and no book. `aex recovery submit` by a alone recovers
//! nothing (1 of 2 shares), a non-member holding b's share is refused, and b's submission
//! recovers: the book (its proposals, statuses and approvals) and the deployer key (`GET
//! /identity`) are the ones the lost governor had, the recovered governor counts new ballots,
//! and it has made a new recovery key.
//!
//! `e2e_governor_recovery_apply.rs` recovers a governor that had deployed an application.

use std::net::SocketAddr;
use std::time::Duration;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aex_crypto::SigningIdentity;
use aex_deploy::Identity;
use aex_governance::recovery::{Backup, ReplySecret, SealedShare, ShareRequest, ShareSubmission};
use aex_governance::signed::Signed;
use aex_governance::{Action, Document, MemberDocument, Proposal, Vote, Withdrawal};
use aex_testkit::cluster::AppDir;
use aex_testkit::https::policy;
use aex_testkit::node::NodeProcess;
use aex_testkit::{free_addr, wait_for};
use serde_json::Value;
use sha2::Digest;

use aex_testkit::governor::{ballot, deploy_governor, member, Client};

const APP: &str = "governed-recovery-test";

/// Members a, b, c, their identities in files (as `aex` reads them).
struct Members {
    files: Vec<PathBuf>,
    ids: Vec<Identity>,
}

impl Members {
    fn new(dir: &Path) -> Members {
        let files: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| dir.join(n)).collect();
        let ids = files
            .iter()
            .map(|f| Identity::load_or_create(f).expect("an identity").0)
            .collect();
        Members { files, ids }
    }

    fn key(&self, i: usize) -> &SigningIdentity {
        self.ids[i].signing()
    }

    /// Deploy needs 2 of 3; recovery a majority (2 of 3), the default.
    fn constitution(&self) -> Document {
        Document {
            members: ["a", "b", "c"]
                .iter()
                .zip(&self.ids)
                .map(|(name, id)| MemberDocument {
                    name: (*name).into(),
                    key: id.public().to_string(),
                })
                .collect(),
            rules: BTreeMap::from([("deploy".into(), "2 of 3".into())]),
            proposal_lifetime_ms: 3_600_000,
        }
    }

    /// Member `i`'s directory: a descriptor naming the governor at `url` on node1, and both
    /// nodes (their keys inline).
    fn dir(
        &self,
        i: usize,
        url: &str,
        measurement: &str,
        nodes: &[(&str, &NodeProcess)],
    ) -> AppDir {
        let dir = AppDir::deployed_by(&self.files[i]);
        let mut text = format!("[application]\nname = \"{APP}\"\n");
        for (name, node) in nodes {
            text.push_str(&format!(
                "\n[[node]]\nname = \"{name}\"\naddress = \"{}\"\ntee = \"sgx\"\nsimulation = true\n\
                 platform_key = \"{}\"\nidentity = \"{}\"\n",
                node.addr,
                node.platform_pub_hex(),
                node.identity()
            ));
        }
        text.push_str(&format!(
            "\n[governance]\nproposal_lifetime = \"1h\"\ngovernor = \"{url}\"\n\
             governor_node = \"node1\"\ngovernor_measurement = \"{measurement}\"\n"
        ));
        for (name, id) in ["a", "b", "c"].iter().zip(&self.ids) {
            text.push_str(&format!(
                "\n[[governance.member]]\nname = \"{name}\"\nkey = \"{}\"\n",
                id.public()
            ));
        }
        text.push_str("\n[governance.rules]\ndeploy = \"2 of 3\"\n");
        dir.write_descriptor(&text);
        dir
    }
}

/// A member's raw client of a governor (the test kit's, which checks its measurement and the
/// constitution its certificate attests before each request), with the recovery routes.
pub(crate) struct Member(pub(crate) Client);

impl std::ops::Deref for Member {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.0
    }
}

impl Member {
    pub(crate) fn of(app: &AppDir, addr: SocketAddr, constitution: &Document) -> Member {
        Member(Client {
            policy: policy(app, "governor"),
            addr,
            digest: constitution.to_constitution().expect("valid").digest(),
        })
    }

    /// The deployer key the governor's certificate attests, hex (`None`: none).
    fn attested_identity(&self) -> Option<String> {
        let session = aex_client::connect(self.addr, &self.policy, None, Duration::from_secs(15))
            .expect("the governor passes the member's policy");
        session
            .verified()
            .extra("aex governor identity v1")
            .map(hex::encode)
    }

    /// The share of the member signing with `key`, as `aex recovery share` fetches it: (key
    /// id, share bytes).
    fn share(&self, key: &SigningIdentity) -> ([u8; 32], Vec<u8>) {
        self.share_of(APP, key)
    }

    pub(crate) fn share_of(&self, application: &str, key: &SigningIdentity) -> ([u8; 32], Vec<u8>) {
        let reply = ReplySecret::new();
        let request = ShareRequest {
            application: application.into(),
            reply_key: reply.public(),
            created_ms: 1,
        }
        .sign(key);
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

    fn submit(&self, by: &SigningIdentity, key_id: [u8; 32], share: &[u8]) -> (u16, String) {
        self.submit_of(APP, by, key_id, share)
    }

    pub(crate) fn submit_of(
        &self,
        application: &str,
        by: &SigningIdentity,
        key_id: [u8; 32],
        share: &[u8],
    ) -> (u16, String) {
        let signed = ShareSubmission {
            application: application.into(),
            key_id,
            share: share.to_vec(),
        }
        .sign(by);
        let (code, body) = self.bytes("POST", "/recovery/shares", &signed);
        (code, String::from_utf8_lossy(&body).into_owned())
    }
}

/// The governor deployed on `node` and started with `constitution` (to `recover`, or anew),
/// its files in the app directory.
pub(crate) fn start(
    app: &AppDir,
    node: &NodeProcess,
    application: &str,
    constitution: &Document,
    recover: bool,
) -> SocketAddr {
    deploy_governor(app, node, &format!("{application}-governor"));
    let addr = free_addr();
    let payload = serde_json::json!({
        "port": addr.port(),
        "application": application,
        "constitution": constitution,
        "data": app.path().join("governor-data"),
        "recover": recover,
    });
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

fn read_share(path: &Path) -> ([u8; 32], Vec<u8>) {
    let v: Value =
        serde_json::from_slice(&std::fs::read(path).expect("the share file")).expect("json");
    let hex32 = |k: &str| hex::decode(v[k].as_str().expect("hex")).expect("hex");
    (
        hex32("key_id").try_into().expect("32 bytes"),
        hex32("share"),
    )
}

#[test]
fn members_shares_restore_a_lost_governor_with_its_book_and_deployer_key() {
    let keys = tempfile::tempdir().expect("a directory for member keys");
    let members = Members::new(keys.path());
    let constitution = members.constitution();
    let (a, b, c) = (members.key(0), members.key(1), members.key(2));

    // The governor on node 1, with a book; node 2 waits, empty.
    let gov1 = AppDir::new();
    let gov2 = AppDir::new();
    let mut node1 = NodeProcess::start("node1", gov1.path().join("node1"));
    let node2 = NodeProcess::start("node2", gov2.path().join("node2"));
    let first = start(&gov1, &node1, APP, &constitution, false);
    let old = Member::of(&gov1, first, &constitution);
    let open = Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "deploy ping-pong".into(),
        created_ms: 1,
    };
    let (code, made) = old.json("POST", "/proposals", &open.sign(a));
    assert_eq!(code, 201, "{made}");
    let id = made["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        old.json("POST", "/ballots", &ballot(&id, Vote::Approve, a))
            .0,
        200
    );
    assert_eq!(
        old.json("POST", "/ballots", &ballot(&id, Vote::Reject, c))
            .0,
        200
    );
    let withdrawn = Proposal {
        created_ms: 2,
        ..open.clone()
    };
    let (_, w) = old.json("POST", "/proposals", &withdrawn.sign(a));
    let wid = aex_governance::ProposalId(
        hex::decode(w["id"].as_str().expect("an id"))
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    );
    let withdrawal = Withdrawal { proposal: wid }.sign(a);
    assert_eq!(old.json("POST", "/withdrawals", &withdrawal).0, 200);
    let (_, book) = old.json("GET", "/proposals", b"");
    let before = statuses(&book);
    assert_eq!(before.len(), 2);
    let (_, identity) = old.json("GET", "/identity", b"");

    // a and b keep their shares and a copy of the latest backup, with `aex recovery`.
    let measurement = policy(&gov1, "governor").measurements[0].to_hex();
    let url = format!("https://{first}/");
    let nodes = [("node1", &node1), ("node2", &node2)];
    let (a_dir, b_dir) = (
        members.dir(0, &url, &measurement, &nodes),
        members.dir(1, &url, &measurement, &nodes),
    );
    let run = a_dir.aex(&["recovery", "share"]).ok();
    run.stderr_has(&[
        "Verified governor at",
        "Kept the recovery share of `a`",
        "2 of 3 shares",
    ]);
    let a_share = a_dir.path().join(".aex/recovery/share.json");
    let (key_a, share_a) = read_share(&a_share);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&a_share).expect("kept").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "only a reads it");
    assert!(
        !format!("{}{}", run.stdout, run.stderr).contains(&hex::encode(&share_a)),
        "the share is never printed"
    );
    let b_share = b_dir.path().join("b-share.json");
    b_dir
        .aex(&["recovery", "share", "--out", &b_share.display().to_string()])
        .ok();
    let (key_b, share_b) = read_share(&b_share);
    assert_eq!(key_a, key_b, "shares of one recovery key");
    // A replayed request gets the replayer a share they cannot open.
    let (raw_key, _) = old.share(c);
    assert_eq!(raw_key, key_a);
    let (code, status) = old.json("GET", "/recovery", b"");
    assert_eq!(
        (code, status["threshold"].as_u64()),
        (200, Some(2)),
        "{status}"
    );
    let run = a_dir.aex(&["recovery", "backup"]).ok();
    run.stderr_has(&["Kept backup", "2 proposals"]);
    let kept: Vec<PathBuf> = std::fs::read_dir(a_dir.path().join(".aex/recovery"))
        .expect("kept")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cbor"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let backup_file = kept[0].clone();
    let backup = std::fs::read(&backup_file).expect("the backup");
    let header = Backup::from_bytes(&backup).expect("a backup").header;
    assert_eq!(header.proposals, 2);
    assert!(
        header.sequence >= 4,
        "one backup per change: {}",
        header.sequence
    );

    // Node 1 is lost for good: killed, its files (the sealed state) deleted.
    node1.kill();
    wait_for("the old governor to stop", Duration::from_secs(10), || {
        std::net::TcpStream::connect_timeout(&first, Duration::from_millis(200))
            .is_err()
            .then_some(())
    });
    std::fs::remove_dir_all(gov1.path().join("node1")).expect("node 1's files deleted");
    std::fs::remove_dir_all(gov1.path().join("governor-data")).expect("its data deleted");

    // A fresh governor on node 2, started to recover.
    let second = start(&gov2, &node2, APP, &constitution, true);
    let new = Member::of(&gov2, second, &constitution);
    let (code, status) = new.json("GET", "/recovery", b"");
    assert_eq!(
        (code, status["state"].as_str()),
        (200, Some("collecting")),
        "{status}"
    );
    assert_eq!(
        new.bytes("GET", "/identity", b"").0,
        503,
        "no deployer key yet"
    );
    assert_eq!(new.attested_identity(), None, "nor in its certificate");
    let submit = |dir: &AppDir, share: &Path| {
        dir.aex(&[
            "recovery",
            "submit",
            "--share",
            &share.display().to_string(),
            "--backup",
            &backup_file.display().to_string(),
            "--governor",
            &format!("https://{second}/"),
            "--governor-node",
            "node2",
        ])
    };

    // A backup can also go up as a binary (one larger than a request body must), named by
    // its digest.
    let digest = hex::encode(sha2::Sha256::digest(&backup));
    let (code, _) = new.bytes("PUT", &format!("/binaries/{digest}/0"), &backup);
    assert_eq!(code, 200);
    let (code, status) = new.json("POST", "/recovery/backup", digest.as_bytes());
    assert_eq!(
        (code, &status["sequence"]),
        (202, &header.sequence.into()),
        "{status}"
    );

    // a's share alone recovers nothing.
    submit(&a_dir, &a_share)
        .ok()
        .stderr_has(&["Sent backup", "Waiting 1 of 2 shares (a)"]);
    let (_, status) = new.json("GET", "/recovery", b"");
    assert_eq!(status["shares"], serde_json::json!(["a"]), "{status}");
    assert_eq!(
        status["sequence"], header.sequence,
        "members compare it with theirs"
    );
    assert_eq!(
        new.bytes("GET", "/proposals", b"").0,
        503,
        "nothing recovered"
    );
    // A non-member holding b's share is refused.
    let outsider = member(9);
    let (code, text) = new.submit(&outsider, key_b, &share_b);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("no member's key"), "{text}");

    // b's share: recovered.
    submit(&b_dir, &b_share).ok().stderr_has(&["Recovered"]);
    let (_, book) = new.json("GET", "/proposals", b"");
    assert_eq!(
        statuses(&book),
        before,
        "the same proposals, statuses and ballots"
    );
    let (_, recovered) = new.json("GET", "/identity", b"");
    assert_eq!(
        recovered, identity,
        "the same deployer key: the app's nodes admit it"
    );
    assert_eq!(
        new.attested_identity().as_deref(),
        identity["key"].as_str(),
        "its certificate attests it at once"
    );
    // It counts ballots again: b's approval accepts the open proposal.
    let (code, v) = new.json("POST", "/ballots", &ballot(&id, Vote::Approve, b));
    assert_eq!((code, v["status"].as_str()), (200, Some("accepted")), "{v}");
    // And it made a new recovery key, whose shares members fetch again.
    let (new_key, _) = new.share(a);
    assert_ne!(new_key, key_a);
    let (_, later) = new.bytes("GET", "/recovery/backup", b"");
    let later = Backup::from_bytes(&later).expect("a backup").header;
    assert!(
        later.sequence > header.sequence,
        "{} then {}",
        header.sequence,
        later.sequence
    );
    // The shares a and b handed in open nothing more: a stale share and the new backup.
    let (code, _) = new.submit(a, key_a, &share_a);
    assert_eq!(code, 409, "a serving governor takes no shares");

    // The ledger came back with the state. Its certificates were made on the lost node and
    // pass under that node's pin, which b's descriptor keeps: b fetches it from the new
    // governor (appraised on node 2) and verifies it offline.
    b_dir
        .aex(&[
            "ledger",
            "fetch",
            "--governor",
            &format!("https://{second}/"),
            "--governor-node",
            "node2",
        ])
        .ok()
        .stderr_has(&["Fetched", "signed by the attested governor key"]);
    b_dir
        .aex(&["ledger", "verify"])
        .ok()
        .stderr_has(&["Attested", "Verified"]);
}
