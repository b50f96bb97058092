//! End to end: members drive the governor with the real `aex` (`aex propose`, `aex proposals`,
//! `aex vote`, `aex withdraw`). The governor is deployed and started as in `e2e_governor.rs`
//! (an ungoverned application: the commands that change nodes refuse a governed descriptor).
//! Each member then has a directory of their own with a governed descriptor naming the
//! governor (`governor`, `governor_node`, `governor_measurement`) and their own identity file.
//!
//! Checked: A's proposal is printed with its change digest and plan (or why there is none)
//! and its id; A's approval leaves it open with 1 of 2, and A voting again changes nothing; a
//! member whose descriptor holds another constitution is refused before anything is sent (the
//! count does not move); a non-member's vote is refused by the governor, with its text and
//! exit code 1; B's approval accepts it; a proposal is withdrawn by a prefix of its id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aex_deploy::Identity;
use aex_governance::{Document, MemberDocument};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::sgx_node;
use aex_testkit::https::policy;
use aex_testkit::identity;
use aex_testkit::node::NodeOptions;
use aex_testkit::{free_addr, paths};
use serde_json::Value;

const APP: &str = "governed-cli-test";

/// A member's identity file in `dir`, created now, and its public key.
fn member_identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.identity"));
    let (id, _) = Identity::load_or_create(&path).expect("a member identity");
    (path, id.public().to_string())
}

/// The governed descriptor every member holds; `deploy` is the deploy rule.
fn governed(
    node: &str,
    keys: &[String],
    governor: &str,
    measurement: &str,
    deploy: &str,
) -> String {
    let mut text = format!(
        "[application]\nname = \"{APP}\"\n{node}\n[governance]\nproposal_lifetime = \"1h\"\n\
         governor = \"{governor}\"\ngovernor_node = \"node1\"\ngovernor_measurement = \"{measurement}\"\n"
    );
    for (name, key) in ["a", "b", "c"].iter().zip(keys) {
        text.push_str(&format!(
            "\n[[governance.member]]\nname = \"{name}\"\nkey = \"{key}\"\n"
        ));
    }
    text.push_str(&format!("\n[governance.rules]\ndeploy = \"{deploy}\"\n"));
    text
}

/// A member's directory: their descriptor, run as their identity.
fn member(identity: &Path, descriptor: &str) -> AppDir {
    let dir = AppDir::deployed_by(identity);
    dir.write_descriptor(descriptor);
    dir
}

fn proposals(m: &AppDir) -> Vec<Value> {
    let run = m.aex(&["proposals", "--json"]).ok();
    run.json().as_array().expect("a list").clone()
}

fn find<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {list:?}"))
}

#[test]
fn members_propose_list_vote_and_withdraw_with_aex_against_the_governor() {
    let keys_dir = tempfile::tempdir().expect("a directory for member keys");
    let (a_id, a_key) = member_identity(keys_dir.path(), "a");
    let (b_id, b_key) = member_identity(keys_dir.path(), "b");
    let (c_id, c_key) = member_identity(keys_dir.path(), "c");
    let (outsider_id, _) = member_identity(keys_dir.path(), "outsider");
    let keys = [a_key, b_key, c_key];

    let app = AppDir::new();
    // Declared after `app`: dropped (stopped) first, as it lives in the app directory.
    // It admits the test deployer (who deploys the governor) and member A, so that A's
    // dry run can ask it what runs.
    let node = NodeOptions::new("node1", app.path().join("node1"))
        .admit(&[identity::deployer().hex(), keys[0].clone()])
        .start();
    let node_text = sgx_node(
        "node1",
        node.addr,
        &node.platform_pub_file(),
        &node.identity_pub_file(),
    );
    let governor_crate = paths::workspace().join("crates/aex-governor");
    app.write_descriptor(&format!(
        "[application]\nname = \"{APP}\"\n{node_text}\n[[module]]\nname = \"governor\"\ncrate = {:?}\nnode = \"node1\"\n",
        governor_crate.display().to_string(),
    ));
    app.deploy().ok();
    let constitution = Document {
        members: ["a", "b", "c"]
            .iter()
            .zip(&keys)
            .map(|(name, key)| MemberDocument {
                name: (*name).into(),
                key: key.clone(),
            })
            .collect(),
        rules: BTreeMap::from([("deploy".into(), "2 of 3".into())]),
        proposal_lifetime_ms: 3_600_000,
    };
    let addr = free_addr();
    let payload = serde_json::json!({
        "port": addr.port(), "application": APP, "constitution": constitution
    });
    app.call("governor", "start", Some(&payload.to_string()));
    let measurement = policy(&app, "governor").measurements[0].to_hex();
    let url = format!("https://{addr}/");
    let text = governed(&node_text, &keys, &url, &measurement, "2 of 3");
    // What A proposes: one more module on the governor's node, so that there is a plan.
    let module = format!(
        "\n[[module]]\nname = \"svc\"\ncrate = {:?}\nnode = \"node1\"\n",
        governor_crate.display().to_string()
    );
    let (a, b) = (
        member(&a_id, &format!("{text}{module}")),
        member(&b_id, &text),
    );

    // A proposes: the change digest (of the file's bytes), the plan, the id.
    let run = a.aex(&["propose", "--action", "deploy"]).ok();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(a.path().join("aex.toml")).expect("A's descriptor"),
    ));
    run.stderr_has(&[
        &format!("Change sha256 {digest}"),
        "Plan module `svc` on `node1`: load and attest",
        "Verified governor at",
        "(sgx, simulated)",
        "Proposed",
    ]);
    let id = run.stdout.trim().to_owned();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let listed = proposals(&a);
    let p = find(&listed, &id);
    assert_eq!((&p["status"], &p["approvals"]), (&"open".into(), &0.into()));
    assert_eq!(p["change"], digest.as_str());
    let summary = p["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("plan: module `svc` on `node1`: load and attest"),
        "{summary}"
    );
    assert_eq!((&p["proposer"], &p["rule"]), (&"a".into(), &"any 2".into()));

    // A approves, twice: open with one approval (one member's key is one vote).
    for _ in 0..2 {
        a.aex(&["vote", &id, "approve"])
            .ok()
            .stderr_has(&["Voted", "open, 1 of 2 approvals"]);
    }

    // C's descriptor holds another constitution: refused before anything is sent.
    let c = member(
        &c_id,
        &governed(&node_text, &keys, &url, &measurement, "any 1"),
    );
    c.aex(&["vote", &id, "approve"]).code(1).stderr_has(&[
        "the governor holds another constitution",
        "nothing was sent",
    ]);
    let p = find(&proposals(&a), &id).clone();
    assert_eq!((&p["status"], &p["approvals"]), (&"open".into(), &1.into()));

    // A non-member: the governor refuses, with its own text.
    let outsider = member(&outsider_id, &text);
    outsider
        .aex(&["vote", &id, "approve"])
        .code(1)
        .stderr_has(&["the governor refused (403)", "which is no member's key"]);

    // B approves: accepted, and `aex proposals` shows it.
    b.aex(&["vote", &id[..16], "approve"])
        .ok()
        .stderr_has(&["accepted, 2 of 2 approvals"]);
    let run = b.aex(&["proposals"]).ok();
    run.stdout_has(&[&id[..16], "accepted", "2/2", "any 2"]);
    run.stderr_has(&["not applied"]);
    // `aex status` shows the proposals too, under the nodes' tables.
    b.aex(&["status"])
        .ok()
        .stdout_has(&["proposals:", &id[..16], "accepted", "2/2"]);

    // A second proposal, whose plan needs a node that does not answer: the proposal goes
    // with its digest and says the plan could not be computed. Its proposer withdraws it
    // through a prefix of its id.
    let dead = sgx_node(
        "node2",
        free_addr(),
        &node.platform_pub_file(),
        &node.identity_pub_file(),
    );
    let unreachable = member(
        &a_id,
        &format!(
            "{text}{dead}\n[[module]]\nname = \"svc\"\ncrate = {:?}\nnode = \"node2\"\n",
            governor_crate.display().to_string()
        ),
    );
    let run = unreachable
        .aex(&[
            "propose",
            "--action",
            "disable",
            "--summary",
            "disable pong",
            "--timeout",
            "3s",
        ])
        .ok();
    run.stderr_has(&[
        "the plan could not be computed",
        "Change sha256",
        "Proposed",
    ]);
    assert!(!run.stderr.contains("Plan module"), "{}", run.stderr);
    let second = run.stdout.trim().to_owned();
    a.aex(&["withdraw", &second[..12]])
        .ok()
        .stderr_has(&["Withdrawn", "withdrawn"]);
    let p = find(&proposals(&b), &second).clone();
    assert_eq!(
        (&p["status"], &p["summary"]),
        (&"withdrawn".into(), &"disable pong".into())
    );
}
