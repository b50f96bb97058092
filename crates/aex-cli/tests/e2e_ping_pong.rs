//! End to end: the ping-pong example through `aex up`, `status`, `request`, `output`, `call`,
//! `deploy` and `down`, on free ports, and `aex up` in the foreground stopped by Ctrl-C.

use std::time::Duration;

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::copy_example;
use aex_testkit::process::Captured;
use aex_testkit::status::{counters, AppStatus as Status, StatusExt};
use aex_testkit::{free_addr, process, wait_for, PATIENCE};

/// Pings the example's `[[up]]` steps make.
const UP_PINGS: u64 = 1000;

/// The example descriptor in a fresh directory, its nodes moved to free ports.
fn example_app() -> AppDir {
    let app = AppDir::new();
    copy_example(app.path(), free_addr(), free_addr());
    app
}

/// Asserts what `aex up` leaves behind: two attested modules, 1000 clean round trips.
#[track_caller]
fn assert_up_result(status: &Status) {
    status.assert_healthy();
    for name in ["ping", "pong"] {
        let m = status.module(name);
        assert_eq!(m.measurement.len(), 64, "measurement of `{name}`: {m:?}");
        assert!(
            m.measurement.bytes().all(|b| b.is_ascii_hexdigit()),
            "measurement of `{name}` is not hex: {m:?}"
        );
    }
    assert_ne!(
        status.module("ping").measurement,
        status.module("pong").measurement
    );
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert!(status.connection(name).keyed, "{name} not keyed");
        assert_eq!(
            status.counters(name),
            counters(UP_PINGS, UP_PINGS, 0, 0),
            "connection {name}"
        );
    }
}

/// Runs `aex output kick` for a run of `count` pings and waits for `aex request stats` to
/// report it done.
fn kick_and_wait(app: &AppDir, count: u64) {
    let payload = format!("{{\"count\":{count},\"size\":64}}");
    app.aex(&["output", "kick", &payload])
        .ok()
        .stderr_has(&["Sent"]);
    wait_for("the kicked run to complete", PATIENCE, || {
        let stats = app.aex(&["request", "stats"]).ok().json();
        (stats["count"] == count && stats["done"] == true && stats["completed"] == count)
            .then_some(())
    });
}

#[test]
fn up_detached_then_request_output_call_redeploy_and_down() {
    let app = example_app();
    let dir = app.path().display().to_string();
    let up = cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    up.stderr_has(&["Deployed", "detached"]);
    assert!(
        up.stdout.contains("ping.stats") && up.stdout.contains("\"done\": true"),
        "`aex up` shows the run's statistics:\n{}",
        up.stdout
    );

    let status = app.status();
    assert_up_result(&status);
    let stats = app.aex(&["request", "stats"]).ok().json();
    assert_eq!(stats["done"], true, "{stats}");
    assert_eq!(stats["completed"], UP_PINGS, "{stats}");

    // An authentic event from the owner starts a new run.
    kick_and_wait(&app, 5);
    assert_eq!(app.call("pong", "count", None), UP_PINGS + 5);

    // Deploying again changes nothing: same instances, counters continue.
    app.deploy().ok().stderr_has(&["Unchanged"]);
    let again = app.status();
    again.assert_healthy();
    for name in ["ping", "pong"] {
        assert_eq!(again.module(name).pid, status.module(name).pid, "{name}");
        assert_eq!(
            again.module(name).measurement,
            status.module(name).measurement
        );
    }
    kick_and_wait(&app, 7);
    assert_eq!(app.call("pong", "count", None), UP_PINGS + 12);
    let after = app.status();
    for name in ["ping-to-pong", "pong-to-ping"] {
        let n = UP_PINGS + 12;
        assert_eq!(after.counters(name), counters(n, n, 0, 0), "{name}");
    }
    assert_eq!(after.counters("kick"), counters(2, 2, 0, 0));

    // A payload `kick` cannot decode: ping logs why, and `aex logs` reads it through its node.
    app.aex(&["output", "kick", "not json"]);
    let why = "input `kick` failed";
    wait_for("`aex logs ping` to show the failed input", PATIENCE, || {
        let logs = app.aex(&["logs", "ping"]).ok();
        logs.stdout.contains(why).then_some(())
    });
    // Every module, each line prefixed with its name.
    let all = app.aex(&["logs"]).ok();
    assert!(
        all.stdout
            .lines()
            .any(|l| l.starts_with("ping | ") && l.contains(why)),
        "{}",
        all.stdout
    );
    app.aex(&["logs", "pnog"])
        .code(1)
        .stderr_has(&["no module `pnog`", "ping", "pong"]);

    // The event trace: ping sealed each ping, pong accepted it, in order, with no gap.
    let trace = app
        .aex(&["events", "--json", "--connection", "ping-to-pong"])
        .ok();
    let events: Vec<serde_json::Value> = trace
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let of = |module: &str, outcome: &str| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["module"] == module && e["outcome"] == outcome)
            .map(|e| e["counter"].as_u64().unwrap())
            .collect()
    };
    let (sent, accepted) = (of("ping", "sent"), of("pong", "accepted"));
    assert!(!sent.is_empty(), "{}", trace.stdout);
    let last = UP_PINGS + 12;
    assert_eq!(sent.last(), Some(&last), "{}", trace.stdout);
    assert_eq!(accepted.last(), Some(&last), "{}", trace.stdout);
    assert!(
        accepted.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, once"
    );
    assert!(events
        .iter()
        .all(|e| e["connection"] == "ping-to-pong" && e["gap"] == 0));
    let table = app.aex(&["events", "pong"]).ok();
    table.stdout_has(&["TIME (UTC)", "pong", "ping-to-pong", "accepted"]);

    // `aex down` stops both nodes and with them the modules.
    let node_pids = aex_testkit::node::up_node_pids(app.path());
    assert_eq!(node_pids.len(), 2, "two node pids recorded: {node_pids:?}");
    let module_pids: Vec<u32> = after.modules.iter().filter_map(|m| m.pid).collect();
    assert_eq!(module_pids.len(), 2);
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["node1", "node2"]);
    for pid in node_pids.iter().chain(&module_pids) {
        let what = format!("process {pid} to stop after `aex down`");
        process::assert_gone(*pid, &what, Duration::from_secs(10));
    }
    let down = app.status();
    assert_eq!((down.nodes.len(), down.modules.len()), (2, 2), "{down:#?}");
    assert!(down.nodes.iter().all(|n| !n.reachable), "{down:#?}");
    assert!(down.modules.iter().all(|m| !m.attested), "{down:#?}");
}

/// `aex up` on `app` in the foreground, once it follows the application's events.
fn up_following(app: &AppDir) -> Captured {
    let mut cmd = cli::aex();
    cmd.arg("up").arg(app.path());
    let mut up = Captured::spawn(cmd, "aex up");
    wait_for("`aex up` to follow events", COMMAND_TIMEOUT, || {
        if let Ok(Some(exit)) = up.child.try_wait() {
            let (stdout, stderr) = up.output();
            panic!("`aex up` exited early with {exit}\n{stdout}\n{stderr}");
        }
        up.stderr_so_far().contains("Following").then_some(())
    });
    up
}

#[test]
fn up_in_the_foreground_stops_its_nodes_on_ctrl_c() {
    let app = example_app();
    let mut up = up_following(&app);

    let status = app.status();
    assert_up_result(&status);
    let node_pids = aex_testkit::node::up_node_pids(app.path());
    assert_eq!(node_pids.len(), 2, "two node pids recorded: {node_pids:?}");
    let module_pids: Vec<u32> = status.modules.iter().filter_map(|m| m.pid).collect();
    assert_eq!(module_pids.len(), 2);

    process::signal(up.child.id(), process::Signal::Int);
    let exit = wait_for(
        "`aex up` to exit after SIGINT",
        Duration::from_secs(10),
        || up.child.try_wait().expect("wait for aex up"),
    );
    let (_, stderr) = up.output();
    assert!(exit.success(), "`aex up` exited with {exit}:\n{stderr}");
    assert!(stderr.contains("Stopped"), "stderr:\n{stderr}");
    for pid in node_pids.iter().chain(&module_pids) {
        let what = format!("process {pid} to stop with `aex up`");
        process::assert_gone(*pid, &what, Duration::from_secs(5));
    }
}

/// The audit ledger `aex up` leaves: both modules attested with the measurements `status`
/// shows, both connections keyed, every entry under a root signed by the deployer; a receipt
/// that verifies offline; and a ledger altered afterwards refused, naming the entry.
#[test]
fn the_deployment_is_in_a_signed_ledger_with_receipts_that_verify_offline() {
    let app = example_app();
    let dir = app.path().display().to_string();
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    let status = app.status();
    let shown = app.aex(&["ledger", "show"]).ok().stdout;
    for name in ["ping", "pong"] {
        let line = shown
            .lines()
            .find(|l| l.contains("module attested") && l.contains(&format!("module: \"{name}\"")))
            .unwrap_or_else(|| panic!("no `module attested` for {name}:\n{shown}"));
        let measurement = &status.module(name).measurement;
        assert!(line.contains(measurement.as_str()), "{line}");
        assert!(line.contains("evidence: \""), "{line}");
    }
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert!(
            shown
                .lines()
                .any(|l| l.contains("connection keyed") && l.contains(name)),
            "no `connection keyed` for {name}:\n{shown}"
        );
    }
    let key = cli::run_as(&app.identity, &["identity"], COMMAND_TIMEOUT)
        .ok()
        .stdout
        .trim()
        .to_string();
    app.aex(&["ledger", "verify", "--signer", &key])
        .ok()
        .stderr_has(&["Verified", "signed roots"]);

    // A receipt for the first entry verifies with nothing but itself and the key.
    let receipt = app.path().join("receipt.cbor");
    let receipt_arg = receipt.display().to_string();
    app.aex(&["receipt", "0", "-o", &receipt_arg])
        .ok()
        .stderr_has(&["Wrote"]);
    cli::run(
        None,
        &["receipt", "--verify", &receipt_arg, "--signer", &key],
        COMMAND_TIMEOUT,
    )
    .ok()
    .stderr_has(&["Verified", "entry 0"]);
    let other = "11".repeat(32);
    let refused = cli::run(
        None,
        &["receipt", "--verify", &receipt_arg, "--signer", &other],
        COMMAND_TIMEOUT,
    );
    refused.code(1).stderr_has(&["not a trusted signer"]);

    // One byte of the first entry that names `ping` changed: `verify` names that entry.
    let first = shown.lines().find(|l| l.contains("ping")).unwrap();
    let seq = first.split_whitespace().next().unwrap();
    let ledger = app.path().join(".aex/ledger.cbor");
    // A copy cut before the last signature entry: an older ledger, for later.
    let older_copy = app.path().join("cut.cbor");
    let full = std::fs::read(&ledger).unwrap();
    std::fs::write(&older_copy, &full[..full.len() / 2]).unwrap();
    let mut bytes = std::fs::read(&ledger).unwrap();
    let at = bytes.windows(4).position(|w| w == b"ping").unwrap();
    bytes[at] = b'P';
    std::fs::write(&ledger, &bytes).unwrap();
    app.aex(&["ledger", "verify", "--signer", &key])
        .code(1)
        .stderr_has(&[&format!("entry {seq}: altered")]);
    // Nothing more is recorded on a damaged ledger: the change is refused, saying how to go
    // on, until the owner moves it away (it stays verifiable, and shows the damage).
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT)
        .code(1)
        .stderr_has(&["cannot record the change in the audit ledger", "move"]);
    // An older copy put back is refused too: the state kept the last root signed.
    let older = app.path().join("older-ledger.cbor");
    let whole = std::fs::read(&older_copy).unwrap();
    std::fs::write(&ledger, &whole).unwrap();
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT)
        .code(1)
        .stderr_has(&["missing", "truncated"]);
    std::fs::rename(&ledger, &older).unwrap();
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
    // The new ledger starts by naming the root of the one before.
    let restarted = app.aex(&["ledger", "show"]).ok().stdout;
    let first = restarted.lines().next().unwrap_or_default();
    assert!(
        first.contains("ledger restarted") && first.contains("previous_root"),
        "{restarted}"
    );
    app.aex(&["ledger", "verify", "--signer", &key])
        .ok()
        .stderr_has(&["Verified"]);
}

/// A foreground `aex up` that started one of the two nodes (the other already ran) stops only
/// that one on Ctrl-C. The module on the node that kept running holds the connections' keys:
/// the next deployment re-keys the same ids (as after `aex disable`), and nothing is sealed
/// under a stale key into a route its restarted peer no longer has (it would be dropped there,
/// and counted).
#[test]
fn a_partial_stop_leaves_no_stale_connection_behind() {
    let app = AppDir::new();
    let (addr1, addr2) = (free_addr(), free_addr());
    copy_example(app.path(), addr1, addr2);
    let dir = app.path().display().to_string();
    // Provision both nodes' data directories, then stop them.
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
    // node2 runs on its own, as another `aex up` (or an operator) left it.
    let node2_dir = app.path().join(".aex").join("nodes").join("node2");
    let mut node2 = cli::aex();
    node2
        .args([
            "node",
            "--name",
            "node2",
            "--tee",
            "sgx",
            "--allow-remote-shutdown",
        ])
        .args(["--listen", &addr2.to_string(), "--admit"])
        .arg(aex_testkit::identity::deployer().hex())
        .arg("--data-dir")
        .arg(&node2_dir);
    let _node2 = Captured::spawn(node2, "aex node node2");
    wait_for("node2 to listen", PATIENCE, || {
        std::net::TcpStream::connect(addr2).ok().map(|_| ())
    });

    // `aex up` in the foreground starts node1 only and deploys both; Ctrl-C stops node1 alone.
    let mut up = up_following(&app);
    let ids = (app.conn_id("ping-to-pong"), app.conn_id("pong-to-ping"));
    process::signal(up.child.id(), process::Signal::Int);
    let exit = wait_for("`aex up` to exit", Duration::from_secs(10), || {
        up.child.try_wait().expect("wait for aex up")
    });
    let (_, stderr) = up.output();
    assert!(exit.success(), "{exit}: {stderr}");
    assert!(stderr.contains("Stopped node1"), "{stderr}");

    // Up again: node1 and ping come back; pong never stopped.
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    kick_and_wait(&app, 200);
    let status = app.status();
    let dropped: u64 = status.nodes.iter().map(|n| n.dropped).sum();
    assert_eq!(dropped, 0, "events sealed under a stale key: {status:#?}");
    assert_eq!(
        (app.conn_id("ping-to-pong"), app.conn_id("pong-to-ping")),
        ids,
        "re-keyed under their ids"
    );
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}
