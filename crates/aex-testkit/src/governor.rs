//! A consortium's governor and its members, as tests and the governance benchmark play them.
//!
//! The governor (`crates/aex-governor`) is deployed as an ordinary module of an ungoverned
//! application on a simulated `sgx` node and started with a 3-member constitution (members
//! `a`, `b`, `c`, keys from seeds 1, 2, 3; deploys need 2 of 3). Members are raw clients with
//! the verifying `aex-client`: each request checks the governor's measurement and that its
//! certificate attests the member's own constitution. The governed application is ping-pong on
//! two nodes that admit only the governor's key; a member builds its bundle as `aex propose`
//! does, uploads it and proposes its digest.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_governance::signed::Signed;
use aex_governance::{
    Action, Ballot, Document, MemberDocument, Proposal, ProposalId, Vote, CERTIFICATE_KEY_NAME,
};
use serde_json::Value;

use crate::cluster::AppDir;
use crate::descriptor::{sgx_node, IdentityPin, PingPong, PlatformKey, APP as PING_PONG};
use crate::https::policy;
use crate::node::{NodeOptions, NodeProcess};
use crate::{free_addr, modules, paths, wait_for};

/// The governed application's name.
pub const APP: &str = "governed-test";

/// Chunks of at most this many bytes (the governor reads bodies of at most 1 MiB).
pub const CHUNK: usize = 512 * 1024;

/// Member number `seed`'s key (a: 1, b: 2, c: 3).
pub fn member(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seed(&[seed; 32])
}

/// Members a, b, c (seeds 1, 2, 3): deploy needs 2 of 3, the rest all.
pub fn constitution() -> Document {
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
pub fn start_payload(port: u16, constitution: &Document, data: &Path) -> String {
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
pub struct Client {
    /// How the governor is appraised.
    pub policy: aex_client::Policy,
    /// Where it serves.
    pub addr: SocketAddr,
    /// The constitution's digest its certificate must attest.
    pub digest: [u8; 32],
}

impl Client {
    /// The answer's status and body as text.
    pub fn send(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let (status, body) = self.bytes(method, path, body);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The answer's status and body bytes.
    pub fn bytes(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
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

    /// The answer's status and body as JSON.
    pub fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (code, text) = self.send(method, path, body);
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{code} {text}: {e}"));
        (code, value)
    }

    /// What became of proposal `id` (`GET /proposals/ID/outcome`).
    pub fn outcome(&self, id: &str) -> Value {
        let (code, v) = self.json("GET", &format!("/proposals/{id}/outcome"), b"");
        assert_eq!(code, 200, "{v}");
        v
    }

    /// Waits until proposal `id` is no longer waiting or being applied; its outcome then.
    pub fn settled(&self, id: &str, limit: Duration) -> Value {
        wait_for("the governor to carry it out", limit, || {
            let now = self.outcome(id);
            (now["state"] != "applying" && now["state"] != "waiting").then_some(now)
        })
    }

    /// Uploads one binary in chunks, checking what the governor holds after each, unless
    /// the governor holds it already (as `aex propose` does).
    pub fn upload(&self, digest: &str, bytes: &[u8]) {
        let (code, held) = self.json("GET", &format!("/binaries/{digest}"), b"");
        assert_eq!(code, 200, "{held}");
        if held["complete"] == true {
            assert_eq!(held["have"], bytes.len() as u64, "{held}");
            return;
        }
        let mut offset = 0;
        while offset < bytes.len() {
            let end = (offset + CHUNK).min(bytes.len());
            let (code, v) = self.json(
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
}

/// `by`'s signed ballot on proposal `id` (hex).
pub fn ballot(id: &str, vote: Vote, by: &SigningIdentity) -> Vec<u8> {
    let id: [u8; 32] = hex::decode(id).expect("hex").try_into().expect("32 bytes");
    Ballot {
        proposal: ProposalId(id),
        vote,
    }
    .sign(by)
}

/// The governor of `app`'s descriptor, deployed on `node` and started with [`constitution`]
/// (its files in the app directory): a member's client to it, and `start`'s argument.
pub fn start_governor(app: &AppDir, node: &NodeProcess) -> (Client, String) {
    start_governor_with(app, node, &constitution())
}

/// Deploys the governor module on `node` as application `name` of `app` (an ordinary,
/// ungoverned application of the test deployer), not started yet.
pub fn deploy_governor(app: &AppDir, node: &NodeProcess, name: &str) {
    let governor = paths::workspace().join("crates/aex-governor");
    app.write_descriptor(&format!(
        "[application]\nname = \"{name}\"\n{}\n[[module]]\nname = \"governor\"\ncrate = {:?}\nnode = \"node1\"\n",
        sgx_node(
            "node1",
            node.addr,
            &node.platform_pub_file(),
            &node.identity_pub_file()
        ),
        governor.display().to_string(),
    ));
    app.deploy().ok();
}

/// [`start_governor`] with another constitution.
pub fn start_governor_with(
    app: &AppDir,
    node: &NodeProcess,
    constitution: &Document,
) -> (Client, String) {
    deploy_governor(app, node, APP);
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

/// The governed ping-pong descriptor: node keys inline (the governor has none of a member's
/// files), and the consortium's members and `rules` (`action = "rule"` lines).
pub fn governed_descriptor(node1: &NodeProcess, node2: &NodeProcess, rules: &str) -> String {
    governed_descriptor_on(node1, node2, ("sgx", ""), rules)
}

/// [`governed_descriptor`] with `node2` of TEE kind `tee2.0` and the extra lines `tee2.1` in
/// its entry: a `trustzone` or `sancus` node has no platform key (the governor appraises it
/// with the provider key of its identity, which `provider_key_fingerprint` pins).
pub fn governed_descriptor_on(
    node1: &NodeProcess,
    node2: &NodeProcess,
    (tee2, fields2): (&str, &str),
    rules: &str,
) -> String {
    const SYMMETRIC: &str = "no platform key";
    let pin = |n: &NodeProcess| Some(IdentityPin::Inline(hex::encode(n.identity().0)));
    let key2 = match tee2 {
        "sgx" => node2.platform_pub_hex(),
        _ => SYMMETRIC.into(),
    };
    let mut text = PingPong {
        nodes: [
            (node1.addr, PlatformKey::Inline(node1.platform_pub_hex())),
            (node2.addr, PlatformKey::Inline(key2)),
        ],
        identities: [pin(node1), pin(node2)],
        poke: false,
        c_pong: false,
    }
    .render()
    .replace(
        &format!("name = \"{PING_PONG}\""),
        &format!("name = \"{APP}\""),
    )
    .replace(
        &format!("tee = \"sgx\"\nsimulation = true\nplatform_key = {SYMMETRIC:?}\n"),
        &format!("tee = \"{tee2}\"\nsimulation = true\n{fields2}"),
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

/// `governed` (a descriptor of [`governed_descriptor`]) naming the governor `client` talks
/// to, on `gov_node` as the `[[node]]` `node0`: what the `aex` command line needs to verify
/// the governor (`governor`, `governor_node`, `governor_measurement`), and the lifetime of
/// [`constitution`] (1 h), so that the constitution it declares is the governor's.
pub fn naming_governor(governed: &str, gov_node: &NodeProcess, client: &Client) -> String {
    let node0 = format!(
        "[[node]]\nname = \"node0\"\naddress = \"{}\"\ntee = \"sgx\"\nsimulation = true\n\
         platform_key = \"{}\"\nidentity = \"{}\"\n\n[governance]\ngovernor = \"https://{}/\"\n\
         governor_node = \"node0\"\ngovernor_measurement = \"{}\"\nproposal_lifetime = \"1h\"\n",
        gov_node.addr,
        gov_node.platform_pub_hex(),
        hex::encode(gov_node.identity().0),
        client.addr,
        client.policy.measurements[0].to_hex()
    );
    governed.replacen("[governance]\n", &node0, 1)
}

/// Two nodes in `dir` (`node1`, `node2`) that admit `admitted` and nobody else.
pub fn nodes_admitting(dir: &AppDir, admitted: &str) -> (NodeProcess, NodeProcess) {
    let start = |name: &str| {
        NodeProcess::start_with(
            NodeOptions::new(name, dir.path().join(name)).admit(&[admitted.to_owned()]),
        )
    };
    (start("node1"), start("node2"))
}

/// The bundle of `dir`'s descriptor built as member `who` builds it (`aex propose`): the
/// test kit's prebuilt modules.
pub fn make_bundle(dir: &Path, who: SigningIdentity) -> aex_deploy::bundle::Made {
    let identity = Arc::new(aex_deploy::Identity::from_signing(who, Path::new("member")));
    let app = aex_deploy::App::open(dir, identity).expect("opens");
    let mut builder =
        aex_deploy::build::Builder::new(modules::profile()).prebuilt(modules::prebuilt().clone());
    let built =
        aex_deploy::ops::deploy::build_all(&app, &mut builder, &aex_deploy::progress::Quiet)
            .expect("builds");
    aex_deploy::bundle::make(&app, &built).expect("a bundle")
}

/// Uploads `made`'s binaries and bundle to the governor; the bundle's digest.
pub fn send_bundle(client: &Client, made: &aex_deploy::bundle::Made) -> [u8; 32] {
    for (digest, bytes) in &made.binaries {
        client.upload(digest, bytes);
    }
    let (code, stored) = client.json("POST", "/bundles", &made.bytes);
    assert_eq!(code, 201, "{stored}");
    assert_eq!(stored["digest"], hex::encode(made.digest()));
    assert_eq!(stored["missing"], serde_json::json!([]));
    made.digest()
}

/// The `created_ms` of the next proposal (any number will do; each is different).
static PROPOSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// `by`'s signed proposal of `action` with `change` for the governed application.
pub fn proposal(action: Action, change: [u8; 32], summary: &str, by: &SigningIdentity) -> Vec<u8> {
    Proposal {
        application: APP.into(),
        action,
        change,
        summary: summary.into(),
        // Unique in the process: two proposals of the same change are two proposals.
        created_ms: PROPOSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    }
    .sign(by)
}

/// The governor, and the governed application's two nodes that admit its key alone. Fields
/// drop in order: the nodes stop before their directories go.
pub struct Governed {
    /// Member a's client (every member's is the same: it verifies, members sign).
    pub client: Client,
    /// The governor's deployer key (hex), as its certificate and `GET /identity` give it.
    pub governor_key: String,
    /// `start`'s argument, to serve again after a restart.
    pub payload: String,
    /// The governed application's nodes.
    pub node1: NodeProcess,
    /// See `node1`.
    pub node2: NodeProcess,
    /// The governor's node.
    pub gov_node: NodeProcess,
    /// The members' directory: the governed descriptor.
    pub member_dir: AppDir,
    /// The governor's application (its deployer is the test deployer).
    pub gov: AppDir,
}

impl Governed {
    /// Starts the governor with the members a, b, c and `rules` (each `(action, rule)`), and
    /// the governed application's nodes; writes the governed descriptor.
    pub fn start(rules: &[(&str, &str)]) -> Governed {
        let gov = AppDir::new();
        let gov_node = NodeProcess::start("node0", gov.path().join("node0"));
        let mut constitution = constitution();
        constitution.rules = rules
            .iter()
            .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
            .collect();
        let (client, payload) = start_governor_with(&gov, &gov_node, &constitution);
        let (code, id_json) = client.json("GET", "/identity", b"");
        assert_eq!(code, 200, "{id_json}");
        let governor_key = id_json["key"].as_str().expect("a key").to_owned();
        assert_eq!(governor_key.len(), 64);

        let member_dir = AppDir::new();
        let (node1, node2) = nodes_admitting(&member_dir, &governor_key);
        let lines: String = rules
            .iter()
            .map(|(a, r)| format!("{a} = \"{r}\"\n"))
            .collect();
        member_dir.write_descriptor(&governed_descriptor(&node1, &node2, &lines));
        Governed {
            client,
            governor_key,
            payload,
            node1,
            node2,
            gov_node,
            member_dir,
            gov,
        }
    }

    /// Member a builds the bundle of the members' descriptor (as `aex propose` does), uploads
    /// its binaries and the bundle, and proposes it as `action`: the proposal's id.
    pub fn propose_bundle(&self, action: Action) -> String {
        let change = send_bundle(
            &self.client,
            &make_bundle(self.member_dir.path(), member(1)),
        );
        self.propose(action, change)
    }

    /// Member a proposes `change` as `action`: the proposal's id.
    pub fn propose(&self, action: Action, change: [u8; 32]) -> String {
        let signed = proposal(
            action,
            change,
            &format!("{action} for the test"),
            &member(1),
        );
        let (code, v) = self.client.json("POST", "/proposals", &signed);
        assert_eq!(code, 201, "{v}");
        v["id"].as_str().expect("an id").to_owned()
    }

    /// Member `seed` approves proposal `id`: where it then stands.
    pub fn approve(&self, id: &str, seed: u8) -> String {
        let (code, v) = self.client.json(
            "POST",
            "/ballots",
            &ballot(id, Vote::Approve, &member(seed)),
        );
        assert_eq!(code, 200, "{v}");
        v["status"].as_str().expect("a status").to_owned()
    }

    /// What became of proposal `id`.
    pub fn outcome(&self, id: &str) -> Value {
        self.client.outcome(id)
    }

    /// Waits until the governor is done with proposal `id`: its outcome.
    pub fn settled(&self, id: &str) -> Value {
        self.client.settled(id, Duration::from_secs(60))
    }

    /// The governor's ledger: its bytes, verified offline, and its entries.
    pub fn ledger(&self) -> (Vec<u8>, aex_ledger::Summary, Vec<aex_ledger::Entry>) {
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

/// A text field of a ledger entry's body (a CBOR map), if it has one.
pub fn field(entry: &aex_ledger::Entry, name: &str) -> Option<String> {
    let body: ciborium::Value = ciborium::from_reader(&entry.body[..]).expect("a CBOR body");
    body.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .and_then(|(_, v)| v.as_text().map(str::to_owned))
}
