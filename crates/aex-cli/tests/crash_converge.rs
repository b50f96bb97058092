//! The deployer killed with SIGKILL at every step of a deployment (`AEX_CRASH_AT`, see
//! `aex_deploy::crash`), then run again: it must converge with no duplicate module, no reused
//! key and no reused counter, and events must flow.
//!
//! What a reused counter would look like: a module refuses a command whose counter it has
//! already seen (a replay) and counts it in `rejected_commands`, which must stay 0. A reused
//! or half-delivered connection key would show as two connection records sharing a key, or a
//! connection whose endpoint instances changed keeping its key.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use aex_testkit::cli::COMMAND_TIMEOUT;
use aex_testkit::cluster::{AppDir, Cluster, Options};
use aex_testkit::status::{AppStatus as Status, StatusExt};

/// SIGKILL's number.
const SIGKILL: i32 = 9;

/// `aex deploy` with `AEX_CRASH_AT=point`, which must die by SIGKILL.
fn deploy_killed_at(app: &AppDir, point: &str) {
    let mut cmd = aex_testkit::cli::aex();
    cmd.env("AEX_CRASH_AT", point).arg("deploy").arg(app.path());
    let run = aex_testkit::cli::run_command(
        cmd,
        format!("AEX_CRASH_AT={point} aex deploy"),
        COMMAND_TIMEOUT,
    );
    assert_eq!(
        run.signal,
        Some(SIGKILL),
        "`{}` was not killed at its crash point (exit code {})\n--- stdout:\n{}\n--- stderr:\n{}",
        run.what,
        run.code,
        run.stdout,
        run.stderr
    );
}

/// The state's module and connection records, or empty ones if there is no state yet.
fn records(app: &AppDir) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let state = aex_testkit::state::read_json(app.path()).unwrap_or(Value::Null);
    let map = |name: &str| -> BTreeMap<String, Value> {
        state[name]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    (map("modules"), map("connections"))
}

/// Checks the converged application against the state a crash left (`crashed`) and, for a
/// redeployment, the state before it (`before`).
#[track_caller]
fn assert_converged(
    cluster: &Cluster,
    crashed: &(BTreeMap<String, Value>, BTreeMap<String, Value>),
) {
    let app = &cluster.app;
    let json = app.aex(&["status", "--json"]).ok().json();
    let status = Status::parse(json.clone());
    status.assert_healthy();
    // Each node runs its one module, once.
    for node in json["nodes"].as_array().expect("nodes") {
        assert_eq!(node["modules"], 1, "a node lists a module twice: {json:#}");
    }
    for m in json["modules"].as_array().expect("modules") {
        assert_eq!(m["rejected_commands"], 0, "a command was refused: {json:#}");
    }
    assert!(status.connections.iter().all(|c| c.keyed), "{status:#?}");

    let (modules, connections) = records(app);
    assert_eq!(
        modules.keys().collect::<Vec<_>>(),
        ["ping", "pong"],
        "module records"
    );
    // A module instance the crash left keeps its key and its counters only go forward; a new
    // instance has a new key.
    let (old_modules, old_connections) = crashed;
    for (name, old) in old_modules {
        let new = &modules[name];
        if new["instance"] == old["instance"] {
            assert_eq!(new["key"], old["key"], "module `{name}`");
            assert!(
                new["last_command"].as_u64() >= old["last_command"].as_u64(),
                "module `{name}`'s counter went back: {old} then {new}"
            );
        } else {
            assert_ne!(new["key"], old["key"], "module `{name}` kept its key");
        }
    }
    // No two connections share a key; one whose instances changed has a new key.
    let keys: BTreeSet<String> = connections.values().map(|c| c["key"].to_string()).collect();
    assert_eq!(
        keys.len(),
        connections.len(),
        "a key is shared: {connections:#?}"
    );
    for (name, old) in old_connections {
        let new = &connections[name];
        assert_eq!(new["id"], old["id"], "connection `{name}` changed its id");
        if new["instances"] != old["instances"] {
            assert_ne!(new["key"], old["key"], "connection `{name}` kept its key");
        } else {
            assert!(new["last_sent"].as_u64() >= old["last_sent"].as_u64());
        }
    }

    // Events flow end to end, and the deployer's own direct connection works.
    let before = app.call("pong", "count", None).as_u64().expect("a count");
    app.start_pings(10);
    app.wait_pings_done(10);
    assert_eq!(app.call("pong", "count", None), before + 10);
    let status = app.status();
    for name in ["ping-to-pong", "pong-to-ping"] {
        let c = status.counters(name);
        assert_eq!((c.rejected, c.gaps), (0, 0), "connection {name}: {c:?}");
    }

    // Converged: nothing left to do, and nothing re-keyed.
    app.deploy().ok().stderr_has(&["Unchanged"]);
    let (_, again) = records(app);
    for (name, c) in &again {
        assert_eq!(c["key"], connections[name]["key"], "`{name}` re-keyed");
    }
    let json = app.aex(&["status", "--json"]).ok().json();
    for m in json["modules"].as_array().expect("modules") {
        assert_eq!(m["rejected_commands"], 0, "a command was refused: {json:#}");
    }
}

/// A first deployment killed at `point`, then converged.
fn fresh_deploy_killed_at(point: &str) {
    let cluster = Cluster::start(Options::default());
    deploy_killed_at(&cluster.app, point);
    let crashed = records(&cluster.app);
    cluster.app.deploy().ok();
    assert_converged(&cluster, &crashed);
}

/// A redeployment that replaces pong (disabled first) killed at `point`, then converged:
/// pong's connections get new keys, ping keeps its module key and its counters go on.
fn redeploy_killed_at(point: &str) {
    let cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    let (before_modules, before_connections) = records(&cluster.app);
    cluster.app.aex(&["disable", "pong"]).ok();
    deploy_killed_at(&cluster.app, point);
    let crashed = records(&cluster.app);
    cluster.app.deploy().ok();
    assert_converged(&cluster, &crashed);
    let (modules, connections) = records(&cluster.app);
    assert_ne!(modules["pong"]["key"], before_modules["pong"]["key"]);
    assert_eq!(modules["ping"]["key"], before_modules["ping"]["key"]);
    assert_eq!(
        modules["ping"]["instance"],
        before_modules["ping"]["instance"]
    );
    assert!(
        modules["ping"]["last_command"].as_u64() > before_modules["ping"]["last_command"].as_u64()
    );
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert_ne!(
            connections[name]["key"], before_connections[name]["key"],
            "`{name}`"
        );
    }
}

#[test]
fn crash_while_loading_and_attesting_converges() {
    // The first module loaded, not attested; the second attested, neither saved; both saved.
    for point in ["load:1", "attest:2", "modules-saved"] {
        fresh_deploy_killed_at(point);
    }
}

#[test]
fn crash_while_keying_connections_converges() {
    for point in ["keys-reserved", "keys-sent", "keys-saved", "routed"] {
        fresh_deploy_killed_at(point);
    }
}

#[test]
fn crash_inside_a_state_transaction_converges() {
    // The saves of a first deployment are: its start, the attested modules, the keys
    // reserved, the connections complete. Killed with the modules' or the connections' rows
    // written but not committed, the database must come back as before that save.
    for point in ["commit:2", "commit:4"] {
        fresh_deploy_killed_at(point);
    }
}

#[test]
fn crash_while_replacing_a_module_converges() {
    for point in ["attest:1", "keys-sent"] {
        redeploy_killed_at(point);
    }
}

#[test]
fn crash_after_a_command_is_sent_costs_no_counter() {
    let cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    let app = &cluster.app;
    let before = app.call("pong", "count", None);
    let mut cmd = aex_testkit::cli::aex();
    cmd.env("AEX_CRASH_AT", "command-sent")
        .args(["call", "pong", "count", "-C"])
        .arg(app.path());
    let run = aex_testkit::cli::run_command(cmd, "aex call (crashing)".into(), COMMAND_TIMEOUT);
    assert_eq!(run.signal, Some(SIGKILL), "{run:?}");
    // The module saw that counter; the next command uses the one after it.
    assert_eq!(app.call("pong", "count", None), before);
    let json = app.aex(&["status", "--json"]).ok().json();
    for m in json["modules"].as_array().expect("modules") {
        assert_eq!(m["rejected_commands"], 0, "{json:#}");
    }
}
