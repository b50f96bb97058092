//! End to end: members change the consortium itself with the real `aex` (`aex propose
//! --action add_member|rotate_key`, `aex vote`), and the governor puts the change in force and
//! attests it. The governor is deployed and started as in `e2e_governor.rs` (an ungoverned
//! application on `node1`); members a, b, c each hold a governed descriptor naming it, with
//! deploy `any 2`, add_member `all` and rotate_key `any 2`.
//!
//! Checked: a's descriptor already adds d, so a names the constitution in force with
//! `--current-constitution`; the proposal uploads the document and shows the difference; a
//! and b approve (open, 2 of 3: `all`), c approves (accepted), the governor applies it: the
//! proposal is `applied`, the ledger records `constitution changed`, and the certificate
//! attests the new digest without a restart. b, whose descriptor still holds the old
//! constitution, is told it changed and to update. d proposes and votes. b rotates their key
//! (`--constitution FILE`), b and d approve, and afterwards b's old key is refused (no
//! member's key) while the new one proposes and votes. Played as a member gone rogue, with a
//! raw client: an `add_member` whose document also lowers the deploy rule is refused by the
//! governor (and by `aex propose` before anything is proposed), an upload that is no
//! constitution is refused, and a document the host swapped on disk is refused when a member
//! votes. Last, c is removed (`remove_member`, raw ballots): c's approval of a proposal still
//! open stops counting, and c's key is refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aex_client::Policy;
use aex_deploy::Identity;
use aex_governance::signed::Signed;
use aex_governance::{
    Action, Ballot, Document, MemberDocument, Proposal, ProposalId, Vote, CERTIFICATE_KEY_NAME,
};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::sgx_node;
use aex_testkit::https::policy;
use aex_testkit::node::NodeProcess;
use aex_testkit::wait::{wait_for, wait_until};
use aex_testkit::{free_addr, paths};
use serde_json::Value;

const APP: &str = "governed-members-test";

/// A member's identity file in `dir`, created now.
fn identity(dir: &Path, name: &str) -> (PathBuf, Identity) {
    let path = dir.join(format!("{name}.identity"));
    let (id, _) = Identity::load_or_create(&path).expect("a member identity");
    (path, id)
}

/// The rules every constitution here keeps.
const RULES: &str = "deploy = \"any 2\"\nadd_member = \"all\"\nrotate_key = \"any 2\"\n";

/// A governed descriptor with `members` (name, key hex).
fn governed(node: &str, url: &str, measurement: &str, members: &[(&str, String)]) -> String {
    let mut text = format!(
        "[application]\nname = \"{APP}\"\n{node}\n[governance]\nproposal_lifetime = \"1h\"\n\
         governor = \"{url}\"\ngovernor_node = \"node1\"\ngovernor_measurement = \"{measurement}\"\n"
    );
    for (name, key) in members {
        text.push_str(&format!(
            "\n[[governance.member]]\nname = \"{name}\"\nkey = \"{key}\"\n"
        ));
    }
    text.push_str(&format!("\n[governance.rules]\n{RULES}"));
    text
}

fn document(members: &[(&str, String)]) -> Document {
    Document {
        members: members
            .iter()
            .map(|(name, key)| MemberDocument {
                name: (*name).into(),
                key: key.clone(),
            })
            .collect(),
        rules: [
            ("deploy", "any 2"),
            ("add_member", "all"),
            ("rotate_key", "any 2"),
        ]
        .iter()
        .map(|(a, r)| ((*a).into(), (*r).into()))
        .collect(),
        proposal_lifetime_ms: 3_600_000,
    }
}

/// A member's directory: their descriptor, run as their identity.
fn member(identity: &Path, descriptor: &str) -> AppDir {
    let dir = AppDir::deployed_by(identity);
    dir.write_descriptor(descriptor);
    dir
}

/// One request as a raw client verified by measurement only: status, body, and the
/// constitution digest the certificate attests.
fn raw(
    policy: &Policy,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let session = aex_client::connect(addr, policy, None, Duration::from_secs(10))
        .expect("the governor passes its measurement");
    let attested = session
        .verified()
        .extra(CERTIFICATE_KEY_NAME)
        .expect("a constitution attested")
        .to_vec();
    let answer = session.send(method, path, body).expect("an answer");
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    (answer.status, text, attested)
}

fn id_of(hex: &str) -> ProposalId {
    ProposalId(
        hex::decode(hex.trim())
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    )
}

#[test]
fn members_add_a_member_and_rotate_a_key_and_the_governor_attests_each_change() {
    let keys = tempfile::tempdir().expect("a directory for member keys");
    let (a_path, a) = identity(keys.path(), "a");
    let (b_path, b) = identity(keys.path(), "b");
    let (c_path, c) = identity(keys.path(), "c");
    let (d_path, d) = identity(keys.path(), "d");
    let (_, b2) = identity(keys.path(), "b2");
    let key = |i: &Identity| i.public().to_string();
    let three = vec![("a", key(&a)), ("b", key(&b)), ("c", key(&c))];
    let four = [three.clone(), vec![("d", key(&d))]].concat();

    let app = AppDir::new();
    // Declared after `app`: dropped (stopped) first, as it lives in the app directory.
    let node1 = NodeProcess::start("node1", app.path().join("node1"));
    let governor_crate = paths::workspace().join("crates/aex-governor");
    app.write_descriptor(&format!(
        "[application]\nname = \"{APP}\"\n{}\n[[module]]\nname = \"governor\"\ncrate = {:?}\nnode = \"node1\"\n",
        sgx_node("node1", node1.addr, &node1.platform_pub_file(), &node1.identity_pub_file()),
        governor_crate.display().to_string(),
    ));
    app.deploy().ok();
    let addr = free_addr();
    let data = app.path().join("governor-data");
    let payload = serde_json::json!({
        "port": addr.port(), "application": APP, "constitution": document(&three), "data": data,
    });
    app.call("governor", "start", Some(&payload.to_string()));
    let governor = policy(&app, "governor");
    let measurement = governor.measurements[0].to_hex();
    let url = format!("https://{addr}/");
    let node = format!(
        "\n[[node]]\nname = \"node1\"\naddress = \"{}\"\ntee = \"sgx\"\nsimulation = true\n\
         platform_key = \"{}\"\nidentity = \"{}\"\n",
        node1.addr,
        node1.platform_pub_hex(),
        node1.identity()
    );
    let old_text = governed(&node, &url, &measurement, &three);
    let new_text = governed(&node, &url, &measurement, &four);
    let old_digest = document(&three).to_constitution().expect("valid").digest();
    let new_digest = document(&four).to_constitution().expect("valid").digest();

    // a already edited their descriptor to add d: the governor still attests the constitution
    // in force, which a names with --current-constitution.
    let a_new = member(&a_path, &new_text);
    let old_file = a_new.path().join("old.toml");
    std::fs::write(&old_file, &old_text).expect("the old descriptor");
    let old_flag = old_file.display().to_string();
    a_new
        .aex(&["propose", "--action", "add_member"])
        .code(1)
        .stderr_has(&[
            "the governor holds another constitution",
            "nothing was sent",
        ]);
    let run = a_new
        .aex(&[
            "propose",
            "--action",
            "add_member",
            "--current-constitution",
            &old_flag,
        ])
        .ok();
    run.stderr_has(&[
        "the one --current-constitution",
        &format!("Change constitution {}", hex::encode(new_digest)),
        "Differs member `d` added",
        "Stored constitution",
        "Proposed",
        "open, 0 of 3 approvals",
    ]);
    let add = run.stdout.trim().to_owned();

    // a and b approve after seeing the difference: still open (add_member needs all three).
    let a_old = member(&a_path, &old_text);
    let b_old = member(&b_path, &old_text);
    a_old
        .aex(&["vote", &add, "approve"])
        .ok()
        .stderr_has(&["Differs member `d` added", "open, 1 of 3 approvals"]);
    b_old
        .aex(&["vote", &add, "approve"])
        .ok()
        .stderr_has(&["open, 2 of 3 approvals"]);
    // c, whose descriptor already holds the new constitution, approves: accepted.
    let c_new = member(&c_path, &new_text);
    c_new
        .aex(&["vote", &add, "approve", "--current-constitution", &old_flag])
        .ok()
        .stderr_has(&[
            "your descriptor declares the proposed constitution",
            "accepted, 3 of 3 approvals",
            "every member updates `[governance]`",
        ]);
    wait_until(
        "the governor to apply the new member",
        Duration::from_secs(10),
        || {
            let (_, body, _) = raw(&governor, addr, "GET", &format!("/proposals/{add}"), b"");
            match serde_json::from_str::<Value>(&body).map(|v| v["status"].clone()) {
                Ok(s) if s == "applied" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    // Re-attested without a restart: the certificate attests the new constitution, from a
    // connection just after the change is committed on (the server swaps it once the commit
    // is done: a few milliseconds, longer on a loaded machine).
    let outcome = wait_for(
        "the certificate to attest the new constitution",
        Duration::from_secs(30),
        || {
            let (_, outcome, attested) = raw(
                &governor,
                addr,
                "GET",
                &format!("/proposals/{add}/outcome"),
                b"",
            );
            (attested == new_digest).then_some(outcome)
        },
    );
    assert!(outcome.contains("member `d` added"), "{outcome}");
    let (_, ledger, _) = raw(&governor, addr, "GET", "/ledger", b"");
    assert!(
        ledger.contains("constitution changed"),
        "the ledger records the change"
    );

    // b's descriptor still holds the old constitution: told it changed, and to update.
    b_old.aex(&["proposals"]).code(1).stderr_has(&[
        "the governor's constitution changed",
        &format!("proposal {} (`add_member`) was applied", &add[..16]),
        &hex::encode(new_digest),
        &hex::encode(old_digest),
        "Update its `[governance]`",
    ]);

    // b rotates their key (b2), from the descriptor in force, naming the new one by file.
    let b_new = member(&b_path, &new_text);
    let four_rotated = [
        vec![("a", key(&a)), ("b", key(&b2))],
        vec![("c", key(&c)), ("d", key(&d))],
    ]
    .concat();
    let rotated_file = b_new.path().join("rotated.toml");
    std::fs::write(
        &rotated_file,
        governed(&node, &url, &measurement, &four_rotated),
    )
    .expect("the rotated descriptor");
    let run = b_new
        .aex(&[
            "propose",
            "--action",
            "rotate_key",
            "--constitution",
            &rotated_file.display().to_string(),
        ])
        .ok();
    run.stderr_has(&["Differs member `b`: key", "Proposed"]);
    let rotate = run.stdout.trim().to_owned();
    b_new
        .aex(&["vote", &rotate, "approve"])
        .ok()
        .stderr_has(&["open, 1 of 2 approvals"]);
    // d, the new member, votes: accepted.
    let d_new = member(&d_path, &new_text);
    d_new
        .aex(&["vote", &rotate, "approve"])
        .ok()
        .stderr_has(&["accepted, 2 of 2 approvals"]);
    let rotated_digest = document(&four_rotated)
        .to_constitution()
        .expect("valid")
        .digest();
    wait_until(
        "the governor to rotate b's key",
        Duration::from_secs(10),
        || {
            let (_, _, attested) = raw(&governor, addr, "GET", "/constitution", b"");
            match attested == rotated_digest {
                true => Ok(()),
                false => Err(hex::encode(attested)),
            }
        },
    );

    // b's old key signs nothing more; the new key proposes and votes.
    let proposal = Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "after the rotation".into(),
        created_ms: 1,
    };
    let (code, why, _) = raw(
        &governor,
        addr,
        "POST",
        "/proposals",
        &proposal.sign(b.signing()),
    );
    assert_eq!(code, 403, "{why}");
    assert!(why.contains("which is no member's key"), "{why}");
    let (code, made, _) = raw(
        &governor,
        addr,
        "POST",
        "/proposals",
        &proposal.sign(b2.signing()),
    );
    assert_eq!(code, 201, "{made}");
    let made: Value = serde_json::from_str(&made).expect("a proposal");
    let id = id_of(made["id"].as_str().expect("an id"));
    assert_eq!(made["proposer"], "b");
    let ballot = |by: &Identity| {
        Ballot {
            proposal: id,
            vote: Vote::Approve,
        }
        .sign(by.signing())
    };
    let (code, why, _) = raw(&governor, addr, "POST", "/ballots", &ballot(&b));
    assert!(
        code == 403 && why.contains("which is no member's key"),
        "{code} {why}"
    );
    let (code, v, _) = raw(&governor, addr, "POST", "/ballots", &ballot(&b2));
    assert_eq!(code, 200, "{v}");
    assert!(v.contains("\"approvals\":1"), "{v}");

    // A member gone rogue: "add e" whose document also lets any 1 member deploy. The governor
    // refuses the proposal; `aex propose` refuses it before proposing.
    let e_key = hex::encode([5u8; 32]);
    let mut smuggled = document(&[four_rotated.clone(), vec![("e", e_key)]].concat());
    smuggled.rules.insert("deploy".into(), "any 1".into());
    let smuggled_digest = smuggled.to_constitution().expect("valid").digest();
    let (code, body, _) = raw(
        &governor,
        addr,
        "POST",
        "/constitutions",
        &serde_json::to_vec(&smuggled).expect("json"),
    );
    assert_eq!(code, 201, "{body}");
    let rogue = Proposal {
        application: APP.into(),
        action: Action::AddMember,
        change: smuggled_digest,
        summary: "add e".into(),
        created_ms: 2,
    };
    let (code, why, _) = raw(
        &governor,
        addr,
        "POST",
        "/proposals",
        &rogue.sign(a.signing()),
    );
    assert_eq!(code, 422, "{why}");
    assert!(
        why.contains("a `add_member` proposal must add exactly one member")
            && why.contains("changes the rule for `deploy`"),
        "{why}"
    );
    let smuggled_file = a_new.path().join("smuggled.json");
    std::fs::write(&smuggled_file, serde_json::to_vec(&smuggled).expect("json")).expect("write");
    let a_now = member(&a_path, &governed(&node, &url, &measurement, &four_rotated));
    a_now
        .aex(&[
            "propose",
            "--action",
            "add_member",
            "--constitution",
            &smuggled_file.display().to_string(),
        ])
        .code(1)
        .stderr_has(&["changes the rule for `deploy`", "nothing was proposed"]);
    // An upload that is no constitution.
    let (code, why, _) = raw(
        &governor,
        addr,
        "POST",
        "/constitutions",
        b"{\"members\": 1}",
    );
    assert!(
        code == 400 && why.contains("not a constitution document"),
        "{code} {why}"
    );

    // The governor's host swaps a proposed document on disk: refused when a member votes.
    let honest = document(&[four_rotated.clone(), vec![("f", hex::encode([6u8; 32]))]].concat());
    let honest_file = a_now.path().join("add-f.json");
    std::fs::write(&honest_file, serde_json::to_vec(&honest).expect("json")).expect("write");
    let run = a_now
        .aex(&[
            "propose",
            "--action",
            "add_member",
            "--constitution",
            &honest_file.display().to_string(),
        ])
        .ok();
    let add_f = run.stdout.trim().to_owned();
    let stored = data.join("constitutions").join(hex::encode(
        honest.to_constitution().expect("valid").digest(),
    ));
    std::fs::write(&stored, serde_json::to_vec(&smuggled).expect("json")).expect("swap");
    let d_now = member(&d_path, &governed(&node, &url, &measurement, &four_rotated));
    d_now
        .aex(&["vote", &add_f, "approve"])
        .code(1)
        .stderr_has(&["not the one named"]);

    // c leaves (remove_member has no rule: all four, c too). c's approval of a proposal still
    // open stops counting, and c signs nothing more.
    let post = |path: &str, body: &[u8]| {
        let (code, text, _) = raw(&governor, addr, "POST", path, body);
        assert!(code < 300, "POST {path}: {code} {text}");
        serde_json::from_str::<Value>(&text).expect("json")
    };
    let pending = Proposal {
        summary: "pending".into(),
        created_ms: 3,
        ..proposal.clone()
    };
    let pending = id_of(
        post("/proposals", &pending.sign(a.signing()))["id"]
            .as_str()
            .expect("id"),
    );
    let approve = |id: ProposalId, by: &Identity| {
        Ballot {
            proposal: id,
            vote: Vote::Approve,
        }
        .sign(by.signing())
    };
    assert_eq!(post("/ballots", &approve(pending, &c))["approvals"], 1);
    let three_left = vec![("a", key(&a)), ("b", key(&b2)), ("d", key(&d))];
    post(
        "/constitutions",
        &serde_json::to_vec(&document(&three_left)).expect("json"),
    );
    let remove = Proposal {
        application: APP.into(),
        action: Action::RemoveMember,
        change: document(&three_left)
            .to_constitution()
            .expect("valid")
            .digest(),
        summary: "c leaves".into(),
        created_ms: 4,
    };
    let remove = id_of(
        post("/proposals", &remove.sign(a.signing()))["id"]
            .as_str()
            .expect("id"),
    );
    for by in [&a, &b2, &c, &d] {
        post("/ballots", &approve(remove, by));
    }
    wait_until("the governor to remove c", Duration::from_secs(10), || {
        let (_, body, _) = raw(
            &governor,
            addr,
            "GET",
            &format!("/proposals/{}", remove.hex()),
            b"",
        );
        match body.contains("\"status\":\"applied\"") {
            true => Ok(()),
            false => Err(body),
        }
    });
    let (_, body, _) = raw(
        &governor,
        addr,
        "GET",
        &format!("/proposals/{}", pending.hex()),
        b"",
    );
    let view: Value = serde_json::from_str(&body).expect("a proposal");
    assert_eq!(
        (&view["status"], &view["approvals"]),
        (&"open".into(), &0.into()),
        "{view}"
    );
    let (code, why, _) = raw(&governor, addr, "POST", "/ballots", &approve(pending, &c));
    assert!(
        code == 403 && why.contains("which is no member's key"),
        "{code} {why}"
    );
}
