//! End to end: a governed application on a symmetric (`trustzone`) node, which the governor
//! appraises with the provider key of its own identity that the node's operator handed it
//! (issue 20, item 2; docs/ARCHITECTURE.md, "How the governor enforces the rules").
//!
//! The governor runs on a simulated `sgx` node as in `e2e_governor_apply.rs`. Ping-pong is
//! governed: ping on an `sgx` node, pong on a simulated `trustzone` node, both admitting only
//! the governor's deployer key, and the descriptor pins the fingerprint of the governor's
//! provider key there, which the operator printed. An accepted deploy fails while the governor
//! holds no provider key for the trustzone node, its outcome naming the node and what the
//! operator must do. Member A holds the provider key the operator made for A's own identity on
//! that node: the node still refuses A (`NotAdmitted`), and A's key, slipped to the governor as
//! the node's, is not used (not the pinned one). Nor is the key of the governor's identity on a
//! node whose agent emulates the TEE with a node key of its own (the attack the pin stops: that
//! key would pass the governor's appraisal there). The operator hands the governor the right
//! key with `aex governor provider-key`, after verifying the governor (from the node's data
//! directory, then the same key from a file; a key file of another key is not sent); the key
//! is in no file of the governor's host and no log. Asked again, the governor applies the
//! proposal and pong is attested on the trustzone node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aex_governance::{Action, Vote};
use aex_proto::{NodeErrorKind, NodeRequest};
use aex_tee::{Provider, SimSymmetricPlatform, SymmetricKind};
use aex_testkit::cluster::AppDir;
use aex_testkit::governor::{
    ballot, governed_descriptor_on, make_bundle, member, naming_governor, proposal, send_bundle,
    start_governor, APP,
};
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::session::Session;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_governor_appraises_a_trustzone_node_with_the_provider_key_of_its_own_identity() {
    let gov = AppDir::new();
    let gov_node = NodeProcess::start("node0", gov.path().join("node0"));
    let (client, _) = start_governor(&gov, &gov_node);
    let (code, id_json) = client.json("GET", "/identity", b"");
    assert_eq!(code, 200, "{id_json}");
    let governor_key = id_json["key"].as_str().expect("a key").to_owned();

    // ping on an sgx node, pong on a trustzone node; both admit the governor alone.
    let member_dir = AppDir::new();
    let admit = [governor_key.clone()];
    let node1 = NodeProcess::start_with(
        NodeOptions::new("node1", member_dir.path().join("node1")).admit(&admit),
    );
    let node2_dir = member_dir.path().join("node2");
    let node2 = NodeProcess::start_with(
        NodeOptions::new("node2", node2_dir.clone())
            .tee("trustzone")
            .admit(&admit),
    );
    // The operator prints the fingerprint of the governor's provider key on node2 (public),
    // and the members pin it.
    let fingerprint = node_provider_key(&node2_dir, &governor_key, &["--fingerprint"]);
    assert_eq!(fingerprint.len(), 64, "{fingerprint}");
    let pin = format!("provider_key_fingerprint = \"{fingerprint}\"\n");
    let governed =
        governed_descriptor_on(&node1, &node2, ("trustzone", &pin), "deploy = \"2 of 3\"\n");
    member_dir.write_descriptor(&governed);

    // A's deploy, approved by A and B: accepted, and failed for want of node2's provider key.
    let (a, b) = (member(1), member(2));
    let change = send_bundle(&client, &make_bundle(member_dir.path(), member(1)));
    let (code, v) = client.json(
        "POST",
        "/proposals",
        &proposal(Action::Deploy, change, "ping-pong on trustzone", &a),
    );
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().expect("an id").to_owned();
    for who in [&a, &b] {
        let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, who));
        assert_eq!(code, 200, "{v}");
    }
    let last = client.settled(&id, LIMIT);
    assert_eq!(last["state"], "failed", "{last}");
    let error = last["error"].as_str().unwrap_or_default();
    for part in [
        "node `node2` is `trustzone`",
        "holds no provider key",
        &governor_key,
        "aex governor provider-key node2",
    ] {
        assert!(error.contains(part), "`{part}` in {error}");
    }

    // A holds its own provider key for node2, made by the operator for A's identity: the node
    // admits the governor only, so A can load nothing there.
    let a_provider_key = node_provider_key(&node2_dir, &hex::encode(a.public()), &[]);
    assert_eq!(a_provider_key.len(), 64, "{a_provider_key}");
    assert_ne!(a_provider_key, fingerprint);
    let mut session = Session::open(node2.addr, &a, APP);
    for body in [
        NodeRequest::Status,
        NodeRequest::LoadBegin {
            module: "pong".into(),
            size: 4,
        },
    ] {
        let e = session.request(body).unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::NotAdmitted, "{e}");
    }
    // Slipped to the governor as node2's key, A's key is not used: it is not the pinned one.
    let slip = |key: &str| -> String {
        let (code, held) = client.json("PUT", "/provider-keys/node2", key.as_bytes());
        assert_eq!(code, 200, "{held}");
        assert!(!held.to_string().contains(key), "{held}");
        assert_ne!(held["fingerprint"], fingerprint.as_str(), "{held}");
        let (code, why) = client.send("POST", &format!("/proposals/{id}/apply"), b"");
        assert_eq!(code, 202, "{why}");
        let last = client.settled(&id, LIMIT);
        assert_eq!(last["state"], "failed", "{last}");
        let error = last["error"].as_str().unwrap_or_default().to_owned();
        for part in [
            "the provider key held for node `node2`",
            held["fingerprint"].as_str().expect("a fingerprint"),
            &fingerprint,
            "it is not used",
        ] {
            assert!(error.contains(part), "`{part}` in {error}");
        }
        assert!(!error.contains(key), "{error}");
        error
    };
    slip(&a_provider_key);

    // The attack the pin stops: node2's agent (it holds the node's identity key, which links
    // prove, but not the key of the TEE's hardware) emulates the TEE under a node key of its
    // own, and A, its accomplice, hands the governor the provider key of the governor's
    // identity under that key. The evidence of the emulation would pass the governor's
    // appraisal with it, and the governor would key pong in a TEE that is none.
    let mut node2 = node2;
    node2.kill();
    let node_key = node2_dir.join(aex_tee::node_key_file(SymmetricKind::TrustZone));
    let genuine = std::fs::read(&node_key).expect("node2's node key");
    std::fs::remove_file(&node_key).expect("remove the node key");
    node2.restart();
    let emulated = node_provider_key(&node2_dir, &governor_key, &[]);
    assert_ne!(emulated, a_provider_key);
    slip(&emulated);
    node2.kill();
    std::fs::write(&node_key, &genuine).expect("put the node key back");
    node2.restart();

    // The operator hands the governor the key of its identity, after verifying it.
    let operator = AppDir::new();
    operator.write_descriptor(&naming_governor(&governed, &gov_node, &client));
    let run = operator.aex(&[
        "governor",
        "provider-key",
        "node2",
        "--data-dir",
        &node2_dir.display().to_string(),
    ]);
    let run = run.ok();
    run.stderr_has(&[
        "Verified",
        "Handed",
        "node `node2`",
        "replaces the key held before",
    ]);
    let stdout = run.stdout.clone();
    assert!(stdout.trim().is_empty(), "nothing on stdout: {stdout}");
    // The key the operator handed over is nowhere on the governor's host: not in a file of
    // its node or its data directory (its sealed state is encrypted), not in a log, not in
    // what the command printed.
    let platform = SimSymmetricPlatform::load(SymmetricKind::TrustZone, &node2_dir).expect("node2");
    let handed = platform.provider_key(&Provider(
        hex::decode(&governor_key)
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    ));
    let secret = handed.expose_secret().expose_secret();
    let hex_secret = hex::encode(secret);
    assert!(!run.stderr.contains(&hex_secret), "{}", run.stderr);
    let host = files(gov.path());
    assert!(
        host.iter().any(|(p, _)| p.ends_with("ledger.cbor")),
        "the walk reaches the governor's data directory"
    );
    for (path, bytes) in host {
        let found = memchr::memmem::find(&bytes, secret).is_some()
            || memchr::memmem::find(&bytes.to_ascii_lowercase(), hex_secret.as_bytes()).is_some();
        assert!(!found, "the provider key is in {}", path.display());
    }
    assert!(!gov_node.log().contains(&hex_secret));
    // The same key from a file `aex node provider-key` wrote for the governor's key: taken,
    // replacing nothing.
    let file = operator.path().join("governor-node2.key");
    let file = file.display().to_string();
    node_provider_key(&node2_dir, &governor_key, &["-o", &file]);
    let by_file = operator.aex(&["governor", "provider-key", "node2", "--key-file", &file]);
    let by_file = by_file.ok();
    by_file.stderr_has(&["Handed", &fingerprint[..16]]);
    assert!(!by_file.stderr.contains("replaces"), "{}", by_file.stderr);
    // A file of another key (A's) is not sent: the operator learns it at once.
    let a_file = operator.path().join("a-node2.key");
    std::fs::write(&a_file, &a_provider_key).expect("write A's key");
    operator
        .aex(&[
            "governor",
            "provider-key",
            "node2",
            "--key-file",
            &a_file.display().to_string(),
        ])
        .code(1)
        .stderr_has(&[
            "not the key the members approved, so it is not sent",
            &fingerprint,
        ]);
    let (code, list) = client.json("GET", "/provider-keys", b"");
    assert_eq!(code, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["fingerprint"], fingerprint.as_str(), "{list}");
    // An sgx node has no provider key: refused before anything is sent.
    operator
        .aex(&["governor", "provider-key", "node1", "--data-dir", "."])
        .code(1)
        .stderr_has(&["only trustzone and sancus nodes have provider keys"]);

    // Asked again (`aex retry`, which waits for the outcome), the governor applies it: pong
    // is attested on the trustzone node.
    operator
        .aex(&["retry", &id[..16]])
        .ok()
        .stderr_has(&["Queued", "Applied", "pong"]);
    let last = client.outcome(&id);
    assert_eq!(last["state"], "applied", "{last}");
    // Applied once: asking again is refused, with the governor's reason.
    operator
        .aex(&["retry", &id])
        .code(1)
        .stderr_has(&["the governor refused (409)"]);
    let (code, ledger) = client.bytes("GET", "/ledger", b"");
    assert_eq!(code, 200);
    aex_ledger::verify(&ledger, &aex_ledger::Expect::default()).expect("verifies");
    let mut rest = &ledger[..];
    let mut attested = vec![];
    let mut n = 0;
    while !rest.is_empty() {
        let (entry, used) = aex_ledger::Entry::decode_prefix(rest, n).expect("an entry");
        if entry.kind == "module attested" {
            // A CBOR map: its text strings are in it as UTF-8.
            attested.push(String::from_utf8_lossy(&entry.body).into_owned());
        }
        rest = &rest[used..];
        n += 1;
    }
    assert!(
        attested
            .iter()
            .any(|e| e.contains("pong") && e.contains("trustzone")),
        "{attested:?}"
    );
}

/// What `aex node provider-key --data-dir DIR --tee trustzone --deployer KEY ARGS` prints.
fn node_provider_key(dir: &Path, deployer: &str, args: &[&str]) -> String {
    let data = dir.display().to_string();
    let mut all = vec![
        "node",
        "provider-key",
        "--data-dir",
        &data,
        "--tee",
        "trustzone",
        "--deployer",
        deployer,
    ];
    all.extend_from_slice(args);
    aex_testkit::cli::run(None, &all, aex_testkit::cli::COMMAND_TIMEOUT)
        .ok()
        .stdout
        .trim()
        .to_owned()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("a directory").flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        out.push((path, bytes));
                    }
                }
                _ => {}
            }
        }
    }
    out
}
