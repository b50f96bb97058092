//! The attacker in the node agent's position: it kills a module process. The deployer must
//! stop calling the module attested, the nodes must keep answering, and a new deploy must not
//! give the module's state up on the node's word: it stops, naming what would be lost, until
//! the owner discards that state; then it brings up a fresh, attested instance with fresh
//! connection keys.
//!
//! That is the behaviour of a module that does not persist (pong). A persistent module
//! (`#[aex::module(persistent)]`) is restarted by its node and resumes with its state and keys
//! instead: `fault_sealed_state.rs`.

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::status::{counters, StatusExt};
use aex_testkit::{process, wait_for, PATIENCE};

#[test]
fn killed_module_is_no_longer_attested_and_redeploy_recovers() {
    let mut cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    cluster.app.start_pings(20);
    cluster.app.wait_pings_done(20);

    let before = cluster.app.status();
    let pid = before.module("pong").pid.expect("pong's pid");
    process::signal(pid, process::Signal::Kill);
    let status = wait_for("pong to be reported stopped", PATIENCE, || {
        let s = cluster.app.status();
        (!s.module("pong").running).then_some(s)
    });
    let pong = status.module("pong");
    assert!(!pong.attested, "{status:#?}");
    assert!(status.nodes.iter().all(|n| n.reachable), "{status:#?}");
    assert!(status.module("ping").attested && status.module("ping").running);
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert!(!status.connection(name).keyed, "{name}: {status:#?}");
    }
    assert!(
        status.connection("kick").keyed,
        "ping's own connections stay keyed"
    );
    cluster.assert_nodes_running();
    let refused = cluster.app.aex(&["call", "pong", "count"]).code(1);
    refused.stderr_has(&["module `pong` is not running (signal: 9 (SIGKILL))"]);

    // The instance does not answer for its state: the deploy stops, and changes nothing.
    let stopped = cluster.app.deploy().code(1);
    stopped.stderr_has(&[
        "the state of module `pong` cannot be taken over from its instance `pong` on node `node2`",
        "failed to retire the old instance",
        "is not running",
        "help: ",
        "aex deploy --discard-state pong",
    ]);
    let unchanged = cluster.app.status();
    assert!(!unchanged.module("pong").running, "{unchanged:#?}");
    assert_eq!(unchanged.module("ping").pid, before.module("ping").pid);

    // The owner gives that state up: the dead instance is replaced; connections to it get
    // fresh keys and counters.
    cluster
        .app
        .deploy_with(&["--discard-state", "pong"])
        .ok()
        .stderr_has(&["`pong` on `node2`: starts from its default state: the state of the old instance was discarded"]);
    cluster.app.status().assert_healthy();
    let status = cluster.app.status();
    assert_ne!(status.module("pong").pid, Some(pid));
    assert!(status.connections.iter().all(|c| c.keyed), "{status:#?}");
    assert_eq!(
        status.module("ping").pid,
        before.module("ping").pid,
        "ping was kept"
    );
    cluster.app.start_pings(20);
    cluster.app.wait_pings_done(20);
    assert_eq!(cluster.app.call("pong", "count", None), 20);
    let status = cluster.app.status();
    assert_eq!(status.counters("ping-to-pong"), counters(20, 20, 0, 0));
}
