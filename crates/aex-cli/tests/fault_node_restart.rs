//! A node agent dies (SIGKILL: no chance to clean up) and is started again on the same port
//! with the same data directory. Its modules must die with it, and `aex deploy` must load and
//! attest them again with fresh keys and re-key their connections, after which events flow.
//!
//! That is the behaviour of modules that do not persist (ping and pong). A restarted node
//! brings its persistent modules back by itself, resumed, with no deploy:
//! `fault_sealed_state.rs`.

use std::time::Duration;

use aex_deploy::state::State;

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::process;
use aex_testkit::state::key_bytes;
use aex_testkit::status::{counters, StatusExt};

/// What the deployer's state says about the keys involved, and pong's instance id.
#[derive(Debug, PartialEq, Eq)]
struct Keys {
    pong_instance: u64,
    pong_key: [u8; 32],
    ping_key: [u8; 32],
    ping_to_pong: [u8; 32],
    pong_to_ping: [u8; 32],
    kick: [u8; 32],
}

impl Keys {
    fn of(state: &State) -> Keys {
        let conn = |name: &str| key_bytes(&state.connections[name].key);
        Keys {
            pong_instance: state.modules["pong"].instance,
            pong_key: key_bytes(&state.modules["pong"].key),
            ping_key: key_bytes(&state.modules["ping"].key),
            ping_to_pong: conn("ping-to-pong"),
            pong_to_ping: conn("pong-to-ping"),
            kick: conn("kick"),
        }
    }
}

#[test]
fn killed_node_agent_restarts_and_deploy_reattests_with_fresh_keys() {
    let mut cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    cluster.app.start_pings(20);
    cluster.app.wait_pings_done(20);
    let before = cluster.app.status();
    let keys_before = Keys::of(&cluster.app.state());
    let pong_pid = before.module("pong").pid.expect("pong's pid");
    let ping_pid = before.module("ping").pid.expect("ping's pid");

    cluster.node2.kill();
    // Pong's stdin was the dead agent's pipe: it sees the end of its input and exits.
    process::assert_gone(
        pong_pid,
        "pong to stop with its node agent",
        Duration::from_secs(5),
    );
    let status = cluster.app.status();
    assert!(!status.node("node2").reachable, "{status:#?}");
    assert!(status.node("node1").reachable, "{status:#?}");
    assert!(!status.module("pong").attested && !status.module("pong").running);
    assert!(status.module("ping").attested && status.module("ping").running);

    cluster.node2.restart();
    // The new agent knows nothing of pong: not running, not attested, its connections unkeyed.
    let status = cluster.app.status();
    assert!(status.node("node2").reachable, "{status:#?}");
    assert!(!status.module("pong").attested && !status.module("pong").running);
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert!(!status.connection(name).keyed, "{name}: {status:#?}");
    }
    cluster
        .app
        .aex(&["call", "pong", "count"])
        .code(1)
        .stderr_has(&["no module `pong` on node `node2`"]);

    // Pong's state died with the agent: the owner says so.
    cluster
        .app
        .deploy()
        .code(1)
        .stderr_has(&["--discard-state pong"]);
    cluster.deploy_ok_with(&["--discard-state", "pong"]);
    let status = cluster.app.status();
    assert!(status.connections.iter().all(|c| c.keyed), "{status:#?}");
    let pong = status.module("pong");
    assert_ne!(pong.pid, Some(pong_pid));
    assert_eq!(pong.measurement, before.module("pong").measurement);
    assert_eq!(status.module("ping").pid, Some(ping_pid), "ping was kept");
    // A new attested instance with its own module key; pong's connections were re-keyed, and
    // only those: ping keeps its module key and its direct connection's key.
    let keys_after = Keys::of(&cluster.app.state());
    assert_ne!(keys_after.pong_instance, keys_before.pong_instance);
    assert_ne!(keys_after.pong_key, keys_before.pong_key);
    assert_ne!(keys_after.ping_to_pong, keys_before.ping_to_pong);
    assert_ne!(keys_after.pong_to_ping, keys_before.pong_to_ping);
    assert_eq!(keys_after.ping_key, keys_before.ping_key);
    assert_eq!(keys_after.kick, keys_before.kick);

    // Node1 reconnects to the new agent on its own; the re-keyed connections count afresh.
    cluster.app.start_pings(20);
    cluster.app.wait_pings_done(20);
    assert_eq!(cluster.app.call("pong", "count", None), 20);
    let status = cluster.app.status();
    assert_eq!(status.counters("ping-to-pong"), counters(20, 20, 0, 0));
    assert_eq!(status.counters("pong-to-ping"), counters(20, 20, 0, 0));
    cluster.assert_nodes_running();
}
