//! The deployer killed with SIGKILL at every step of a deployment (`AEX_CRASH_AT`, see
//! `aex_deploy::crash`), then run again: it must converge with no duplicate module, no reused
//! key and no reused counter, and events must flow.
//!
//! What a reused counter would look like: a module refuses a command whose counter it has
//! already seen (a replay) and counts it in `rejected_commands`, which must stay 0. A reused
//! or half-delivered connection key would show as two connection records sharing a key, or a
//! connection whose endpoint instances changed keeping its key.

use std::collections::BTreeSet;

use aex_deploy::state::State;

use aex_testkit::cluster::{AppDir, Cluster, Options};
use aex_testkit::state::key_bytes;
use aex_testkit::status::{AppStatus, StatusExt};

/// `aex deploy` with `AEX_CRASH_AT=point`, which must die there.
fn deploy_killed_at(app: &AppDir, point: &str) {
    aex_testkit::cli::killed_at(
        point,
        [std::ffi::OsStr::new("deploy"), app.path().as_os_str()],
    );
}

/// The deployer's state, or an empty one if the crash came before anything was saved.
fn records(app: &AppDir) -> State {
    app.saved_state().unwrap_or_default()
}

/// No module refused a command: a reused command counter would have been refused as a replay.
#[track_caller]
fn assert_no_refused_command(status: &AppStatus) {
    for m in &status.modules {
        assert_eq!(
            m.rejected_commands, 0,
            "module `{}` refused a command: {status:#?}",
            m.name
        );
    }
}

/// Checks the converged application against the state the crash left (`crashed`).
#[track_caller]
fn assert_converged(cluster: &Cluster, crashed: &State) {
    let app = &cluster.app;
    let status = app.status();
    status.assert_healthy();
    // Each node runs its one module, once.
    for node in &status.nodes {
        assert_eq!(
            node.modules, 1,
            "node `{}` lists {} modules: {status:#?}",
            node.name, node.modules
        );
    }
    assert_no_refused_command(&status);
    assert!(status.connections.iter().all(|c| c.keyed), "{status:#?}");

    let state = app.state();
    assert_eq!(
        state.modules.keys().collect::<Vec<_>>(),
        ["ping", "pong"],
        "module records"
    );
    // A module instance the crash left keeps its key and its counters only go forward; a new
    // instance has a new key.
    for (name, old) in &crashed.modules {
        let new = &state.modules[name];
        if new.instance == old.instance {
            assert_eq!(key_bytes(&new.key), key_bytes(&old.key), "module `{name}`");
            assert!(
                new.last_command >= old.last_command,
                "module `{name}`'s command counter went back from {} to {}",
                old.last_command,
                new.last_command
            );
        } else {
            assert_ne!(
                key_bytes(&new.key),
                key_bytes(&old.key),
                "module `{name}` kept its key"
            );
        }
    }
    // No two connections share a key; one whose instances changed has a new key.
    let keys: BTreeSet<[u8; 32]> = state
        .connections
        .values()
        .map(|c| key_bytes(&c.key))
        .collect();
    assert_eq!(
        keys.len(),
        state.connections.len(),
        "a key is shared among {:?}",
        state.connections.keys()
    );
    for (name, old) in &crashed.connections {
        let new = &state.connections[name];
        assert_eq!(new.id, old.id, "connection `{name}` changed its id");
        if new.instances != old.instances {
            assert_ne!(
                key_bytes(&new.key),
                key_bytes(&old.key),
                "connection `{name}` kept its key"
            );
        } else {
            assert!(
                new.last_sent >= old.last_sent,
                "connection `{name}`'s counter went back"
            );
        }
    }

    // Events flow end to end, and the deployer's own direct connection works.
    let before = app.call("pong", "count", None).as_u64().expect("a count");
    app.start_pings(10);
    app.wait_pings_done(10);
    assert_eq!(app.call("pong", "count", None), before + 10);

    // Converged: nothing left to do, and nothing re-keyed.
    app.deploy().ok().stderr_has(&["Unchanged"]);
    for (name, c) in &app.state().connections {
        assert_eq!(
            key_bytes(&c.key),
            key_bytes(&state.connections[name].key),
            "`{name}` re-keyed"
        );
    }
    let status = app.status();
    assert_no_refused_command(&status);
    for name in ["ping-to-pong", "pong-to-ping"] {
        let c = status.counters(name);
        assert_eq!((c.rejected, c.gaps), (0, 0), "connection {name}: {c:?}");
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
    let before = cluster.app.state();
    cluster.app.aex(&["disable", "pong"]).ok();
    deploy_killed_at(&cluster.app, point);
    let crashed = records(&cluster.app);
    cluster.app.deploy().ok();
    assert_converged(&cluster, &crashed);
    let after = cluster.app.state();
    let (ping, pong) = (&after.modules["ping"], &after.modules["pong"]);
    assert_ne!(key_bytes(&pong.key), key_bytes(&before.modules["pong"].key));
    assert_eq!(key_bytes(&ping.key), key_bytes(&before.modules["ping"].key));
    assert_eq!(ping.instance, before.modules["ping"].instance);
    assert!(ping.last_command > before.modules["ping"].last_command);
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert_ne!(
            key_bytes(&after.connections[name].key),
            key_bytes(&before.connections[name].key),
            "`{name}` kept its key"
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
    let path = app.path().as_os_str();
    aex_testkit::cli::killed_at(
        "command-sent",
        [
            "call".as_ref(),
            "pong".as_ref(),
            "count".as_ref(),
            "-C".as_ref(),
            path,
        ],
    );
    // The module saw that counter; the next command uses the one after it.
    assert_eq!(app.call("pong", "count", None), before);
    assert_no_refused_command(&app.status());
}
