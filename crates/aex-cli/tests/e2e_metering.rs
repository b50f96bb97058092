//! Functions with trusted metering, end to end: the test kit's `metered` module (persistent,
//! JSON validation under `aex::metering`) runs as a real process on a real node; two clients
//! invoke it through the harness entry point `invoke`; the receipts are verified and totalled
//! by the billing library and by `aex bill`; the module's process is killed, and after its
//! node restarts it the receipt key is the same and each client's sequence continues.
//! Then a provider's moves on the receipt files (an inflated CPU time, a replayed receipt, a
//! dropped one, a receipt signed by another key) each make `aex bill` fail and say which.
//! Last, the way the module's HTTPS server will invoke (a module thread, through
//! `Handle::call_committed`; here the harness's plain TCP listener): a receipt leaves only once
//! the state with its sequence number is stored, and not while the node cannot store it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use aex_metering::bill::{Billing, Origin};
use aex_metering::{ClientId, Receipt, ReceiptKey, ReceiptPublicKey};
use aex_proto::ResumeOutcome;
use aex_testkit::cluster::AppDir;
use aex_testkit::node::NodeProcess;
use aex_testkit::process::Run;
use aex_testkit::status::StatusExt;
use aex_testkit::{wait_for, PATIENCE};
use serde_json::Value;

use crate::fault_sealed_state::{kill_and_wait_restart, resume, sealed_dir};

const ALICE: ClientId = ClientId([0xa1; 32]);
const BOB: ClientId = ClientId([0xb0; 32]);

/// The `metered` module on one simulated `sgx` node, deployed.
struct Metered {
    // Fields drop in order: the node first (it lives in the app directory).
    node: NodeProcess,
    app: AppDir,
}

impl Metered {
    fn deploy() -> Metered {
        let app = AppDir::new();
        let node = NodeProcess::start("node1", app.path().join("node1"));
        let section = aex_testkit::descriptor::sgx_node(
            "node1",
            node.addr,
            &node.platform_pub_file(),
            &node.identity_pub_file(),
        );
        let krate = aex_testkit::paths::testkit_module("metered");
        app.write_descriptor(&format!(
            "[application]\nname = \"metering-test\"\n{section}\n[[module]]\nname = \"metered\"\ncrate = {:?}\nnode = \"node1\"\n",
            krate.display().to_string()
        ));
        app.deploy().ok();
        app.status().assert_healthy();
        Metered { node, app }
    }

    fn receipt_key(&self) -> ReceiptPublicKey {
        let key = self.app.call("metered", "receipt_key", None);
        key.as_str()
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("receipt_key answered {key}"))
    }

    /// Invokes `validate` for `client`; the answer and the decoded receipt.
    fn validate(&self, client: ClientId, input: &str) -> (Value, Receipt) {
        let call = serde_json::json!({
            "client": client.to_string(),
            "function": "validate",
            "input": input,
        });
        let answer = self.app.call("metered", "invoke", Some(&call.to_string()));
        let bytes = hex::decode(answer["receipt"].as_str().expect("a receipt")).expect("hex");
        let (receipt, used) = Receipt::decode(&bytes).expect("a receipt");
        assert_eq!(used, bytes.len());
        (answer, receipt)
    }
}

/// Writes `receipts` back to back into `dir/name`; answers `name`.
fn write<'a>(dir: &Path, name: &'a str, receipts: &[&Receipt]) -> &'a str {
    let bytes: Vec<u8> = receipts.iter().flat_map(|r| r.encode()).collect();
    std::fs::write(dir.join(name), bytes).expect("write receipts");
    name
}

/// `aex bill --key KEY FILES...` in `dir`.
fn bill(dir: &Path, key: &str, files: &[&str]) -> Run {
    let mut args = vec!["bill", "--key", key];
    args.extend(files);
    aex_testkit::cli::run(Some(dir), &args, PATIENCE)
}

#[test]
fn receipts_are_signed_numbered_billed_and_survive_a_restart() {
    let m = Metered::deploy();
    let key = m.receipt_key();
    let doc = r#"{"readings": [1, 2, {"id": "a", "tags": ["x", "y"]}], "ok": true}"#;
    let (answer, a1) = m.validate(ALICE, doc);
    assert_eq!(answer["output"], r#"{"values":10,"depth":5,"strings":3}"#);
    assert_eq!(answer["failed"], false);
    let (_, a2) = m.validate(ALICE, "[1, 2, 3]");
    let (bad, b1) = m.validate(BOB, "{\"open\": ");
    assert_eq!(bad["failed"], true);
    assert!(
        bad["output"]
            .as_str()
            .unwrap()
            .starts_with("not JSON: line 1, column 9"),
        "{bad}"
    );
    let (_, b2) = m.validate(BOB, "\"just a string\"");
    for (r, client, seq) in [
        (&a1, ALICE, 1),
        (&a2, ALICE, 2),
        (&b1, BOB, 1),
        (&b2, BOB, 2),
    ] {
        assert_eq!(
            (r.client, r.sequence, r.function.as_str()),
            (client, seq, "validate")
        );
        r.verify(&key).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        assert!(r.heap_counted && r.usage.peak_heap_bytes > 0, "{r:?}");
        assert!(r.usage.cpu_ns > 0 && r.usage.wall_ns > 0, "{r:?}");
    }
    assert!(b1.failed && !b2.failed);
    assert_eq!(a1.usage.input_bytes, doc.len() as u64);
    assert_eq!(a1.input_sha256, aex_crypto::sha256(&[doc.as_bytes()]));

    // The node restarts the killed process: same key (derived from the sealing key, never
    // stored), and each client's numbers go on from the sealed state.
    let status = kill_and_wait_restart(&m.app, "metered");
    assert!(
        matches!(resume(&status, "metered"), ResumeOutcome::Resumed { .. }),
        "{status:#?}"
    );
    assert_eq!(
        m.receipt_key(),
        key,
        "the receipt key changed across a restart"
    );
    let (_, a3) = m.validate(ALICE, "[]");
    assert_eq!(a3.sequence, 3, "{a3:?}");
    a3.verify(&key).unwrap();

    // The billing library's totals.
    let mut billing = Billing::new(key);
    for (i, r) in [&a1, &a2, &b1, &b2, &a3].into_iter().enumerate() {
        billing.add(
            Origin {
                source: "test".into(),
                index: i + 1,
            },
            r.clone(),
        );
    }
    let totals = billing.finish();
    assert!(totals.is_clean(), "{:?}", totals.problems);
    let alice = &totals.clients[&ALICE];
    assert_eq!(
        (alice.invocations, alice.failed, alice.last_sequence),
        (3, 0, 3)
    );
    assert_eq!(
        alice.input_bytes,
        (doc.len() + "[1, 2, 3]".len() + 2) as u64
    );
    assert_eq!(
        alice.cpu_ns,
        a1.usage.cpu_ns + a2.usage.cpu_ns + a3.usage.cpu_ns
    );
    let bob = &totals.clients[&BOB];
    assert_eq!((bob.invocations, bob.failed), (2, 1));

    // `aex bill` on the files as the client keeps them.
    let dir = m.app.path();
    let key = key.to_string();
    let alice = write(dir, "alice.receipts", &[&a1, &a2, &a3]);
    let bob = write(dir, "bob.receipts", &[&b1, &b2]);
    std::fs::write(dir.join("receipt.key"), format!("{key}\n")).unwrap();
    let run = bill(dir, "receipt.key", &[alice, bob]).ok();
    run.stdout_has(&[&ALICE.to_string(), &BOB.to_string()]);
    run.stderr_has(&["5 receipt(s) of 2 client(s)", "every signature verifies"]);

    // The provider inflates Alice's first CPU time.
    let mut inflated = a1.clone();
    inflated.usage.cpu_ns *= 100;
    let f = write(dir, "inflated.receipts", &[&inflated, &a2, &a3]);
    bill(dir, &key, &[f]).code(1).stderr_has(&[
        "inflated.receipts receipt #1",
        "sequence 1): invalid, not counted: the signature does not verify",
        "1 receipt(s) missing from the sequence (dropped): 1",
    ]);
    // Replays Alice's second receipt.
    let f = write(dir, "replayed.receipts", &[&a1, &a2, &a2, &a3]);
    bill(dir, &key, &[f]).code(1).stderr_has(&[
        "replayed.receipts receipt #3: replayed",
        "sequence 2 again, the same receipt as",
    ]);
    // Drops it.
    let f = write(dir, "dropped.receipts", &[&a1, &a3]);
    bill(dir, &key, &[f]).code(1).stderr_has(&[&format!(
        "client {ALICE}: 1 receipt(s) missing from the sequence (dropped): 2"
    )]);
    // Forges one with a key of its own.
    let forger = ReceiptKey::generate();
    let mut forged = a2.clone();
    forged.sequence = 4;
    forger.sign(&mut forged);
    let f = write(dir, "forged.receipts", &[&a1, &a2, &a3, &forged]);
    bill(dir, &key, &[f]).code(1).stderr_has(&[
        "forged.receipts receipt #4",
        "forged: signed by another receipt key",
    ]);
    // A receipt file that is not one: the file and the byte are named.
    std::fs::write(dir.join("junk.receipts"), b"aexR\x01\x00\x00").unwrap();
    bill(dir, &key, &["junk.receipts"]).code(1).stderr_has(&[
        "junk.receipts is not a receipt file",
        "receipt at byte 6: function name length: 0 (valid: 1..=64)",
    ]);
}

/// Sends one invocation to the harness listener at `addr`; the open connection.
fn send_invocation(addr: &str, client: ClientId, input: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect to the harness listener");
    let call = serde_json::json!({
        "client": client.to_string(),
        "function": "validate",
        "input": input,
    });
    writeln!(stream, "{call}").expect("send the invocation");
    stream
}

/// Reads the answer line from `stream`; the decoded receipt.
fn read_receipt(stream: TcpStream) -> Receipt {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("an answer line");
    let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let hex = answer["receipt"]
        .as_str()
        .unwrap_or_else(|| panic!("no receipt: {answer}"));
    Receipt::decode(&hex::decode(hex).expect("hex"))
        .expect("a receipt")
        .0
}

#[test]
fn a_receipt_from_a_module_thread_leaves_only_once_its_number_is_stored() {
    let m = Metered::deploy();
    let key = m.receipt_key();
    let addr = m.app.call("metered", "listen", None);
    let addr = addr.as_str().expect("an address").to_owned();
    let first = read_receipt(send_invocation(&addr, ALICE, "[1]"));
    assert_eq!(first.sequence, 1);
    first.verify(&key).unwrap();

    // Everything so far committed (an entry point's reply waits for the commit of all before
    // it), then the node's storage fails (its `sealed` directory replaced by a file).
    assert_eq!(m.receipt_key(), key);
    let sealed = sealed_dir(&m.node, "metered");
    std::fs::remove_dir_all(&sealed).unwrap();
    std::fs::write(&sealed, b"not a directory").unwrap();
    let pending = send_invocation(&addr, ALICE, "[2]");
    wait_for("status to say the store fails", PATIENCE, || {
        let s = m.app.status();
        let failing = s
            .module("metered")
            .persistence
            .as_ref()
            .is_some_and(|p| p.store_error.is_some());
        failing.then_some(())
    });
    // The invocation ran (its commit is what failed), and its receipt is held.
    pending.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let early = (&pending).read(&mut byte);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a receipt left before its state was stored: {early:?}"
    );
    pending.set_nonblocking(false).unwrap();

    // The disk comes back: the commit goes through, and the receipt with it.
    std::fs::remove_file(&sealed).unwrap();
    let second = read_receipt(pending);
    assert_eq!((second.client, second.sequence), (ALICE, 2));
    second.verify(&key).unwrap();
}
