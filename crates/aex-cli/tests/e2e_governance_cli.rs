//! End to end: members drive the governor with the real `aex` (`aex propose`, `aex proposals`,
//! `aex vote`, `aex withdraw`), and the governor applies their accepted deploy. The governor is
//! deployed and started as in `e2e_governor.rs` (an ungoverned application on `node1`: the
//! commands that change nodes refuse a governed descriptor). The governed application runs on
//! `node2`, started once the governor is, admitting the governor's own deployer key (`GET
//! /identity`). Each member has a directory of their own with a governed descriptor naming
//! the governor (`governor`, `governor_node`, `governor_measurement`), whose nodes' keys are
//! inline (the governor reads the descriptor alone), and their own identity file.
//!
//! Checked: a deploy proposal whose descriptor names node keys by file is refused before
//! anything is proposed; A's deploy proposal uploads its builds and bundle, prints the
//! bundle's digest, the measurement and the plan, and names the bundle (which the governor
//! serves to the byte) as its change; A's approval (after A's rebuild matches) leaves it open
//! with 1 of 2, and A voting again changes nothing; a member whose descriptor holds another
//! constitution is refused before anything is sent; a non-member's vote is refused by the
//! governor, with its text and exit code 1 (`--no-rebuild` warns); B with the old descriptor
//! cannot approve (the rebuild differs: which module, and the descriptor); B with the
//! proposed descriptor approves, which accepts it; the governor applies it, and `aex
//! proposals` and `aex status` show it applied. A disable proposal (`--module svc`) sends its
//! order, each vote checks and shows it, and the governor disables svc once all three
//! approved. A proposal is withdrawn by a prefix of its id.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aex_deploy::Identity;
use aex_governance::{Document, MemberDocument};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::sgx_node;
use aex_testkit::https::{https, policy};
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::wait::wait_until;
use aex_testkit::{free_addr, paths};
use serde_json::Value;
use sha2::{Digest, Sha256};

const APP: &str = "governed-cli-test";

/// A member's identity file in `dir`, created now, and its public key.
fn member_identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.identity"));
    let (id, _) = Identity::load_or_create(&path).expect("a member identity");
    (path, id.public().to_string())
}

/// A simulated `sgx` node of a governed descriptor, its keys inline (`platform_key`,
/// `identity`): the governor has none of a member's files.
fn inline_node(name: &str, addr: SocketAddr, keys: &NodeProcess) -> String {
    format!(
        "\n[[node]]\nname = \"{name}\"\naddress = \"{addr}\"\ntee = \"sgx\"\nsimulation = true\n\
         platform_key = \"{}\"\nidentity = \"{}\"\n",
        keys.platform_pub_hex(),
        keys.identity()
    )
}

/// The governed descriptor every member holds; `nodes` its `[[node]]` tables, `deploy` the
/// deploy rule.
fn governed(
    nodes: &str,
    keys: &[String],
    governor: &str,
    measurement: &str,
    deploy: &str,
) -> String {
    let mut text = format!(
        "[application]\nname = \"{APP}\"\n{nodes}\n[governance]\nproposal_lifetime = \"1h\"\n\
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
fn members_propose_vote_and_the_governor_applies_their_deploy() {
    let keys_dir = tempfile::tempdir().expect("a directory for member keys");
    let (a_id, a_key) = member_identity(keys_dir.path(), "a");
    let (b_id, b_key) = member_identity(keys_dir.path(), "b");
    let (c_id, c_key) = member_identity(keys_dir.path(), "c");
    let (outsider_id, _) = member_identity(keys_dir.path(), "outsider");
    let keys = [a_key, b_key, c_key];

    let app = AppDir::new();
    // Declared after `app`: dropped (stopped) first, as it lives in the app directory.
    // It admits the test deployer, who deploys the governor.
    let node1 = NodeOptions::new("node1", app.path().join("node1")).start();
    let ungoverned_node = sgx_node(
        "node1",
        node1.addr,
        &node1.platform_pub_file(),
        &node1.identity_pub_file(),
    );
    let governor_crate = paths::workspace().join("crates/aex-governor");
    app.write_descriptor(&format!(
        "[application]\nname = \"{APP}\"\n{ungoverned_node}\n[[module]]\nname = \"governor\"\ncrate = {:?}\nnode = \"node1\"\n",
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
        "port": addr.port(), "application": APP, "constitution": constitution,
        "data": app.path().join("governor-data"),
    });
    app.call("governor", "start", Some(&payload.to_string()));
    let governor_policy = policy(&app, "governor");
    let measurement = governor_policy.measurements[0].to_hex();
    let url = format!("https://{addr}/");

    // The governed application's node admits the governor's own deployer key (which applies
    // accepted proposals), and member A (whose dry run asks it what runs).
    let (code, body) = https(&governor_policy, addr, "GET", "/identity");
    assert_eq!(code, 200, "GET /identity: {body}");
    let governor_key: Value = serde_json::from_str(&body).expect("the governor's identity");
    let governor_key = governor_key["key"].as_str().expect("a key").to_owned();
    let node2 = NodeOptions::new("node2", app.path().join("node2"))
        .admit(&[governor_key.clone(), keys[0].clone()])
        .start();
    let nodes = format!(
        "{}{}",
        inline_node("node1", node1.addr, &node1),
        inline_node("node2", node2.addr, &node2)
    );
    let text = governed(&nodes, &keys, &url, &measurement, "2 of 3");
    // What A proposes: a module on node2, so that there is a plan, and a deployment.
    let proposed = format!(
        "{text}\n[[module]]\nname = \"svc\"\ncrate = {:?}\nnode = \"node2\"\n",
        governor_crate.display().to_string()
    );
    let a = member(&a_id, &proposed);

    // Node keys given by file: the governor could not read them, so nothing is proposed.
    let by_file = member(
        &a_id,
        &governed(&ungoverned_node, &keys, &url, &measurement, "2 of 3"),
    );
    by_file
        .aex(&["propose", "--action", "deploy"])
        .code(1)
        .stderr_has(&[
            "names its platform key by a file",
            "platform_key = \"<hex>\"",
        ]);

    // A proposes: builds, uploads, the bundle's digest and measurement, the plan, the id.
    let run = a.aex(&["propose", "--action", "deploy"]).ok();
    run.stderr_has(&[
        "Change bundle sha256",
        "Module `svc`: measurement",
        "Uploading binary",
        "Uploaded binary",
        "Stored bundle",
        &format!("the governor deploys as {governor_key}"),
        "Plan module `svc` on `node2`: load and attest",
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
    let change = p["change"].as_str().expect("a change").to_owned();
    assert!(
        run.stderr
            .contains(&format!("Change bundle sha256 {change}")),
        "{}",
        run.stderr
    );
    // The governor serves the bundle the change names, to the byte.
    let (code, bundle) = https(&governor_policy, addr, "GET", &format!("/bundles/{change}"));
    assert_eq!(code, 200, "{bundle}");
    assert_eq!(hex::encode(Sha256::digest(bundle.as_bytes())), change);
    let summary = p["summary"].as_str().unwrap_or_default();
    for says in [
        &format!("deploy of application `{APP}`: bundle sha256 {change}"),
        "module `svc`: measurement",
        "plan: module `svc` on `node2`: load and attest",
    ] {
        assert!(summary.contains(says), "{says} in {summary}");
    }
    assert_eq!((&p["proposer"], &p["rule"]), (&"a".into(), &"any 2".into()));

    // A proposing again uploads nothing: the governor has the binaries.
    let again = a.aex(&["propose", "--action", "deploy"]).ok();
    again.stderr_has(&["already on the governor", "Proposed"]);
    assert!(!again.stderr.contains("Uploading"), "{}", again.stderr);
    let repeated = again.stdout.trim().to_owned();
    a.aex(&["withdraw", &repeated]).ok();

    // A approves, twice, each time after A's rebuild matches: open with one approval (one
    // member's key is one vote).
    for _ in 0..2 {
        a.aex(&["vote", &id, "approve"]).ok().stderr_has(&[
            &format!("your build matches the bundle (digest {change})"),
            "Voted",
            "open, 1 of 2 approvals",
        ]);
    }

    // C's descriptor holds another constitution: refused before anything is sent.
    let c = member(&c_id, &governed(&nodes, &keys, &url, &measurement, "any 1"));
    c.aex(&["vote", &id, "approve"]).code(1).stderr_has(&[
        "the governor holds another constitution",
        "nothing was sent",
    ]);
    let p = find(&proposals(&a), &id).clone();
    assert_eq!((&p["status"], &p["approvals"]), (&"open".into(), &1.into()));

    // A non-member: the governor refuses, with its own text (after the warning that nothing
    // was rebuilt).
    let outsider = member(&outsider_id, &proposed);
    outsider
        .aex(&["vote", &id, "approve", "--no-rebuild"])
        .code(1)
        .stderr_has(&[
            "--no-rebuild: approving bundle",
            "the governor refused (403)",
            "which is no member's key",
        ]);

    // B, with the descriptor from before the proposal: the rebuild differs, no approval.
    let b_old = member(&b_id, &text);
    b_old.aex(&["vote", &id, "approve"]).code(1).stderr_has(&[
        "does not match the bundle",
        "not approved",
        "the descriptor's text differs from yours",
        "module `svc` is in the bundle, not in your build",
    ]);
    let p = find(&proposals(&a), &id).clone();
    assert_eq!((&p["status"], &p["approvals"]), (&"open".into(), &1.into()));

    // B with the proposed descriptor approves: accepted, and the governor applies it.
    let b = member(&b_id, &proposed);
    b.aex(&["vote", &id[..16], "approve"]).ok().stderr_has(&[
        "your build matches the bundle",
        "accepted, 2 of 2 approvals",
        "the governor applies it now",
    ]);
    wait_until(
        "the governor to apply the accepted deploy",
        Duration::from_secs(120),
        || {
            let run = b.aex(&["proposals"]).ok();
            let row = run
                .stdout
                .lines()
                .find(|l| l.starts_with(&id[..16]))
                .unwrap_or_default()
                .to_owned();
            assert!(!row.contains("failed"), "{row}\n{}", run.stderr);
            if row.contains("applied") {
                Ok(())
            } else {
                Err(row)
            }
        },
    );
    let p = find(&proposals(&b), &id).clone();
    assert_eq!(p["outcome"]["state"], "applied", "{p}");
    assert!(
        p["outcome"]["report"]
            .as_str()
            .is_some_and(|r| r.contains("svc")),
        "{p}"
    );
    // `aex status` shows the proposals too, under the nodes' tables.
    b.aex(&["status"])
        .ok()
        .stdout_has(&["proposals:", &id[..16], "2/2", "applied"]);

    // B fetches the governor's ledger and checks it offline: every root is signed by the key
    // the governor's certificate (recorded in the ledger) attests for its measurement.
    b.aex(&["ledger", "fetch"])
        .ok()
        .stderr_has(&["Fetched", "signed by the attested governor key"]);
    b.aex(&["ledger", "verify"]).ok().stderr_has(&[
        "Verified",
        "Attested",
        "every signed root is by the governor's key",
    ]);
    // A ledger signed by anyone else (here the governor's own deployer's) fails under the
    // governed descriptor, though its chain and signatures are sound.
    let other = app.path().join(".aex").join("ledger.cbor");
    app.aex(&["ledger", "verify"]).ok();
    b.aex(&["ledger", "verify", "--file", other.to_str().expect("utf-8")])
        .code(1)
        .stderr_has(&["no `signer attested` entry"]);
    // A proposes disabling svc: the order goes to the governor, its digest is the change. A
    // module the descriptor does not declare is refused before anything is sent. Each vote
    // fetches the order, checks its digest and shows what it disables; `disable` has no rule
    // here, so it needs all three, and the governor then disables svc.
    a.aex(&["propose", "--action", "disable", "--module", "nosuch"])
        .code(1)
        .stderr_has(&[
            "declares no such module (valid: svc)",
            "nothing was proposed",
        ]);
    let run = a
        .aex(&["propose", "--action", "disable", "--module", "svc"])
        .ok();
    run.stderr_has(&[
        "Change disable order sha256",
        "Plan disable module `svc` on node `node2`",
        "Proposed",
    ]);
    let off = run.stdout.trim().to_owned();
    for (m, standing) in [
        (&a, "open, 1 of 3"),
        (&b, "open, 2 of 3"),
        (&member(&c_id, &proposed), "accepted, 3 of 3"),
    ] {
        m.aex(&["vote", &off, "approve"]).ok().stderr_has(&[
            "Fetched disable order",
            "Disables disable module `svc` on node `node2`",
            standing,
        ]);
    }
    wait_until(
        "the governor to disable svc",
        Duration::from_secs(60),
        || {
            let run = b.aex(&["proposals"]).ok();
            let row = run
                .stdout
                .lines()
                .find(|l| l.starts_with(&off[..16]))
                .unwrap_or_default()
                .to_owned();
            assert!(!row.contains("failed"), "{row}\n{}", run.stderr);
            if row.contains("disable") && row.matches("applied").count() == 2 {
                Ok(())
            } else {
                Err(row)
            }
        },
    );
    // B's copy of the ledger is brought up to date: the new one must extend it.
    b.aex(&["ledger", "fetch"]).ok().stderr_has(&["Fetched"]);

    // A second proposal, whose plan needs a node that does not answer: the proposal goes
    // with its digest and says the plan could not be computed. Its proposer withdraws it
    // through a prefix of its id.
    let dead = inline_node("node3", free_addr(), &node2);
    let unreachable = member(
        &a_id,
        &format!(
            "{}\n[[module]]\nname = \"svc\"\ncrate = {:?}\nnode = \"node3\"\n",
            governed(
                &format!("{nodes}{dead}"),
                &keys,
                &url,
                &measurement,
                "2 of 3"
            ),
            governor_crate.display().to_string()
        ),
    );
    let run = unreachable
        .aex(&[
            "propose",
            "--action",
            "deploy",
            "--summary",
            "deploy svc",
            "--timeout",
            "3s",
        ])
        .ok();
    run.stderr_has(&[
        "the plan could not be computed",
        "Change bundle sha256",
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
        (&"withdrawn".into(), &"deploy svc".into())
    );
}
