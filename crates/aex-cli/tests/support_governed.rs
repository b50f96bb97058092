//! Setup shared by the tests of a governor that carries out accepted proposals
//! (`e2e_governor_apply.rs`, `e2e_governor_disable.rs`): the governor on its own simulated
//! `sgx` node, the governed ping-pong's two nodes admitting only the governor's deployer key,
//! a member's bundle built and uploaded as `aex propose` does, and the reading of the
//! governor's outcomes and ledger.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aex_governance::signed::Signed;
use aex_governance::{Action, Document, Proposal, Vote};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{IdentityPin, PingPong, PlatformKey, APP as PING_PONG};
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::{modules, wait_for};
use serde_json::Value;

use crate::e2e_governor::{ballot, member, start_governor_with, Client, APP};

/// Chunks of at most this many bytes (the governor reads bodies of at most 1 MiB).
const CHUNK: usize = 512 * 1024;

/// Uploads a binary in chunks, unless the governor holds it already (as `aex propose` does).
pub(crate) fn upload(client: &Client, digest: &str, bytes: &[u8]) {
    let (code, held) = client.json("GET", &format!("/binaries/{digest}"), b"");
    assert_eq!(code, 200, "{held}");
    if held["complete"] == true {
        assert_eq!(held["have"], bytes.len() as u64, "{held}");
        return;
    }
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
/// files), and the consortium's members and `rules` (`action = "rule"` lines).
pub(crate) fn governed_descriptor(node1: &NodeProcess, node2: &NodeProcess, rules: &str) -> String {
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
    text.push_str(&format!("\n[governance.rules]\n{rules}"));
    text
}

/// The governor, and the governed application's two nodes that admit its key alone. Fields
/// drop in order: the nodes stop before their directories go.
pub(crate) struct Governed {
    pub(crate) client: Client,
    /// The governor's deployer key (hex), as its certificate and `GET /identity` give it.
    pub(crate) governor_key: String,
    pub(crate) node1: NodeProcess,
    pub(crate) node2: NodeProcess,
    pub(crate) _gov_node: NodeProcess,
    /// The members' directory: the governed descriptor.
    pub(crate) member_dir: AppDir,
    pub(crate) _gov: AppDir,
}

impl Governed {
    /// Starts the governor with the members a, b, c and `rules` (each `(action, rule)`), and
    /// the governed application's nodes; writes the governed descriptor.
    pub(crate) fn start(rules: &[(&str, &str)]) -> Governed {
        let gov = AppDir::new();
        let gov_node = NodeProcess::start("node0", gov.path().join("node0"));
        let mut constitution: Document = crate::e2e_governor::constitution();
        constitution.rules = rules
            .iter()
            .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
            .collect();
        let (client, _) = start_governor_with(&gov, &gov_node, &constitution);
        let (code, id_json) = client.json("GET", "/identity", b"");
        assert_eq!(code, 200, "{id_json}");
        let governor_key = id_json["key"].as_str().expect("a key").to_owned();
        assert_eq!(governor_key.len(), 64);

        let member_dir = AppDir::new();
        let only_governor = |name: &str| {
            NodeProcess::start_with(
                NodeOptions::new(name, member_dir.path().join(name))
                    .admit(std::slice::from_ref(&governor_key)),
            )
        };
        let (node1, node2) = (only_governor("node1"), only_governor("node2"));
        let lines: String = rules
            .iter()
            .map(|(a, r)| format!("{a} = \"{r}\"\n"))
            .collect();
        member_dir.write_descriptor(&governed_descriptor(&node1, &node2, &lines));
        Governed {
            client,
            governor_key,
            node1,
            node2,
            _gov_node: gov_node,
            member_dir,
            _gov: gov,
        }
    }

    /// Member a builds the bundle of the members' descriptor (as `aex propose` does), uploads
    /// its binaries and the bundle, and proposes it as `action`: the proposal's id.
    pub(crate) fn propose_bundle(&self, action: Action, created_ms: u64) -> String {
        let a_identity = Arc::new(aex_deploy::Identity::from_signing(
            member(1),
            Path::new("a"),
        ));
        let app = aex_deploy::App::open(self.member_dir.path(), a_identity).expect("opens");
        let mut builder = aex_deploy::build::Builder::new(aex_deploy::build::Profile::Dev)
            .prebuilt(modules::prebuilt().clone());
        let built =
            aex_deploy::ops::deploy::build_all(&app, &mut builder, &aex_deploy::progress::Quiet)
                .expect("builds");
        let made = aex_deploy::bundle::make(&app, &built).expect("a bundle");
        drop(app);
        for (digest, bytes) in &made.binaries {
            upload(&self.client, digest, bytes);
        }
        let (code, stored) = self.client.json("POST", "/bundles", &made.bytes);
        assert_eq!(code, 201, "{stored}");
        assert_eq!(stored["digest"], hex::encode(made.digest()));
        assert_eq!(stored["missing"], serde_json::json!([]));
        self.propose(action, made.digest(), created_ms)
    }

    /// Member a proposes `change` as `action`: the proposal's id.
    pub(crate) fn propose(&self, action: Action, change: [u8; 32], created_ms: u64) -> String {
        let proposal = Proposal {
            application: APP.into(),
            action,
            change,
            summary: format!("{action} for the test"),
            created_ms,
        };
        let (code, v) = self
            .client
            .json("POST", "/proposals", &proposal.sign(&member(1)));
        assert_eq!(code, 201, "{v}");
        v["id"].as_str().expect("an id").to_owned()
    }

    /// Member `seed` approves proposal `id`: where it then stands.
    pub(crate) fn approve(&self, id: &str, seed: u8) -> String {
        let (code, v) = self.client.json(
            "POST",
            "/ballots",
            &ballot(id, Vote::Approve, &member(seed)),
        );
        assert_eq!(code, 200, "{v}");
        v["status"].as_str().expect("a status").to_owned()
    }

    /// What became of proposal `id`.
    pub(crate) fn outcome(&self, id: &str) -> Value {
        let (code, v) = self
            .client
            .json("GET", &format!("/proposals/{id}/outcome"), b"");
        assert_eq!(code, 200, "{v}");
        v
    }

    /// Waits until the governor is done with proposal `id`: its outcome.
    pub(crate) fn settled(&self, id: &str) -> Value {
        wait_for(
            "the governor to carry it out",
            Duration::from_secs(60),
            || {
                let now = self.outcome(id);
                (now["state"] != "applying" && now["state"] != "waiting").then_some(now)
            },
        )
    }

    /// The governor's ledger: its bytes, verified offline, and its entries.
    pub(crate) fn ledger(&self) -> (Vec<u8>, aex_ledger::Summary, Vec<aex_ledger::Entry>) {
        let (code, ledger) = self.client.bytes("GET", "/ledger", b"");
        assert_eq!(code, 200);
        let summary =
            aex_ledger::verify(&ledger, &aex_ledger::Expect::default()).expect("verifies");
        let mut entries = vec![];
        let mut rest = &ledger[..];
        while !rest.is_empty() {
            let (entry, used) =
                aex_ledger::Entry::decode_prefix(rest, entries.len() as u64).expect("an entry");
            entries.push(entry);
            rest = &rest[used..];
        }
        (ledger, summary, entries)
    }
}

/// A text field of an entry's body (a CBOR map), if it has one.
pub(crate) fn field(entry: &aex_ledger::Entry, name: &str) -> Option<String> {
    let body: ciborium::Value = ciborium::from_reader(&entry.body[..]).expect("a CBOR body");
    body.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .and_then(|(_, v)| v.as_text().map(str::to_owned))
}
