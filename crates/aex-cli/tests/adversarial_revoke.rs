//! Removing something revokes it. The attacker holds events it recorded as node2's compromised
//! agent (and kept from their receiver; the network sees only the links' ciphertext), or a node that keeps what it was told to unload, and tries to
//! use them after the owner changed the application:
//!
//! * a re-wired output: `ping.ping` moves from `pong` to `pong2`. The old receiver must get
//!   nothing more, its node must no longer route the old connection, and the recorded events,
//!   handed to it by a compromised node2 that installs the route itself, must be refused;
//! * a module removed from the descriptor, or every module on `aex reset`, behind a node that
//!   ignores `Unload` (a proxy answers it `Done` and drops it): the module keeps running there
//!   but must accept nothing, since it was disabled first.
//!
//! The proxy in front of node2 (holding node2's keys, so it sees frames) records and withholds
//! the events of chosen connections (node1's peer link and the deployer's direct events both
//! cross it); the compromised node2 is a
//! deployer session in the application's namespace that goes to node2 directly.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aex_proto::{
    ConnId, Direction, Endpoint, Event, FromNode, ModuleStats, NodeRequest, NodeResponse, Origin,
    ToNode,
};

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::session as wire;
use aex_testkit::{wait_for, PATIENCE};

/// Withholds (and keeps) the events of chosen connections, and can play a node that ignores
/// `Unload`.
#[derive(Default)]
struct Withhold {
    conns: Mutex<HashSet<u32>>,
    held: Mutex<Vec<Event>>,
    ignore_unload: AtomicBool,
}

impl Withhold {
    fn connection(&self, id: u32) {
        self.conns.lock().unwrap().insert(id);
    }

    /// Waits until `n` events are held, and returns them.
    fn held(&self, n: usize) -> Vec<Event> {
        wait_for(&format!("{n} withheld events"), PATIENCE, || {
            let held = self.held.lock().unwrap();
            (held.len() >= n).then(|| held.clone())
        })
    }
}

impl Tamper for Withhold {
    fn upstream(&self, link: Link, msg: ToNode) -> Vec<Out> {
        let event = match &msg {
            ToNode::Forward { event, .. } if link == Link::Peer => Some(event),
            ToNode::Event(event) if link == Link::Deployer => Some(event),
            _ => None,
        };
        if let Some(event) = event.filter(|e| self.conns.lock().unwrap().contains(&e.conn.0)) {
            self.held.lock().unwrap().push(event.clone());
            return vec![];
        }
        match msg {
            ToNode::Request {
                id,
                body: NodeRequest::Unload { .. },
                ..
            } if self.ignore_unload.load(Ordering::SeqCst) => {
                vec![Out::ToClient(FromNode::Response {
                    id,
                    result: Ok(NodeResponse::Done),
                })]
            }
            msg => vec![Out::ToNode(msg)],
        }
    }
}

fn withheld(poke: bool) -> (Cluster, Arc<Withhold>) {
    let withhold = Arc::new(Withhold::default());
    let cluster = Cluster::start(Options {
        tamper: Some(withhold.clone()),
        poke,
        ..Options::default()
    });
    cluster.deploy_ok();
    (cluster, withhold)
}

/// `module`'s counters on node2, as a compromised node2 sees them.
fn stats(cluster: &Cluster, module: &str) -> ModuleStats {
    wire::node_status(cluster.node2.addr)
        .modules
        .into_iter()
        .find(|m| m.name == module)
        .unwrap_or_else(|| panic!("no module `{module}` on node2"))
        .stats
        .unwrap_or_else(|| panic!("no counters of `{module}`"))
}

/// What a compromised node2 does with events it kept: routes `conn` to `module` itself and
/// hands them over. Returns `module`'s counters once it has dealt with them.
fn hand_over(cluster: &Cluster, conn: u32, module: &str, events: &[Event]) -> ModuleStats {
    let before = stats(cluster, module).rejected_unknown;
    let mut node2 = wire::app_session(cluster.node2.addr);
    node2
        .request(NodeRequest::Route {
            conn: ConnId(conn),
            dir: Direction::Forward,
            to: Endpoint::Module(module.into()),
            from: Origin::Deployer,
        })
        .expect("route");
    for event in events {
        node2.send_event(event.clone());
    }
    wait_for(
        &format!("`{module}` to deal with the events"),
        PATIENCE,
        || {
            let s = stats(cluster, module);
            let received: u64 = s
                .conns
                .iter()
                .filter(|c| c.conn.0 == conn)
                .map(|c| c.received + c.rejected)
                .sum();
            (s.rejected_unknown + received >= before + events.len() as u64).then_some(s)
        },
    )
}

/// The cluster's descriptor with `ping.ping` re-wired from `pong` to a second pong, `pong2`,
/// under the same connection name.
fn rewired(cluster: &Cluster) -> String {
    let pong2 = format!(
        "\n[[module]]\nname = \"pong2\"\ncrate = {:?}\nnode = \"node2\"\n\n[[connection]]",
        aex_testkit::paths::ping_pong_crate("pong")
            .display()
            .to_string()
    );
    let text = cluster
        .descriptor
        .replace(
            "from = \"ping.ping\"\nto = \"pong.ping\"",
            "from = \"ping.ping\"\nto = \"pong2.ping\"",
        )
        .replacen("\n[[connection]]", &pong2, 1);
    assert_ne!(text, cluster.descriptor);
    text
}

#[test]
fn a_rewired_output_leaves_the_old_receiver_nothing_to_accept() {
    let (cluster, withhold) = withheld(false);
    let app = &cluster.app;
    app.start_pings(5);
    app.wait_pings_done(5);
    assert_eq!(app.call("pong", "count", None), 5);

    // The attacker keeps three pings from pong: ping sends one per run, and hears no pong.
    let old = app.conn_id("ping-to-pong");
    withhold.connection(old);
    for _ in 0..3 {
        app.aex(&["call", "ping", "start", r#"{"count":1,"size":64}"#])
            .ok();
    }
    let held = withhold.held(3);
    assert!(
        held.iter().all(|e| e.counter > 5),
        "fresh counters: {held:?}"
    );

    // The owner re-wires ping's output to pong2 (same name, new destination).
    app.write_descriptor(&rewired(&cluster));
    app.deploy()
        .ok()
        .stderr_has(&["Revoked connection `ping-to-pong`"]);
    let new = app.conn_id("ping-to-pong");
    assert_ne!(new, old, "a revoked connection's id is never used again");
    assert!(app.state().revocations.is_empty(), "revocation complete");
    // Pong holds no key for the old connection any more; pong2 holds the new one.
    assert!(stats(&cluster, "pong")
        .conns
        .iter()
        .all(|c| c.conn.0 != old));
    app.aex(&["call", "ping", "start", r#"{"count":1,"size":64}"#])
        .ok();
    wait_for("pong2 to get the ping", PATIENCE, || {
        (app.call("pong2", "count", None) == 1).then_some(())
    });
    assert_eq!(app.call("pong", "count", None), 5, "pong got nothing more");

    // Node2 no longer routes the old connection: a kept event handed to it is dropped.
    let mut node2 = wire::app_session(cluster.node2.addr);
    let dropped = node2.status().dropped;
    node2.send_event(held[0].clone());
    assert_eq!(node2.status().dropped, dropped + 1, "no route for #{old}");
    // A compromised node2 routes it anyway: pong refuses every kept event.
    let after = hand_over(&cluster, old, "pong", &held);
    assert!(after.conns.iter().all(|c| c.conn.0 != old), "{after:?}");
    assert_eq!(app.call("pong", "count", None), 5, "no kept ping accepted");
    assert_eq!(app.call("pong2", "count", None), 1);
}

/// Deploys pong's removal (`remove`: from the descriptor, else `aex reset`) behind a node2
/// that ignores `Unload`, then hands pong a kept event of its direct connection `poke`.
fn unload_ignored(remove: bool) {
    let (cluster, withhold) = withheld(true);
    let app = &cluster.app;
    let poke = app.conn_id("poke");
    withhold.connection(poke);
    // `aex output` hears from pong's counters that the event never arrived.
    app.aex(&["output", "poke", "--hex", "0000000000000001"])
        .code(1)
        .stderr_has(&["module `pong` did not accept the event", "node `node2`"]);
    let held = withhold.held(1);

    withhold.ignore_unload.store(true, Ordering::SeqCst);
    if remove {
        let without_pong: String = cluster
            .descriptor
            .split("\n\n")
            .filter(|block| !block.contains("name = \"pong\"") && !block.contains("\"pong."))
            .collect::<Vec<_>>()
            .join("\n\n");
        app.write_descriptor(&without_pong);
        app.deploy()
            .ok()
            .stderr_has(&["1 removed", "Revoked connection `poke`"]);
    } else {
        app.aex(&["reset"]).ok().stderr_has(&["Reset"]);
    }
    assert!(!app.state().modules.contains_key("pong"));

    // Node2 kept pong running; it holds no key, so it accepts nothing.
    let kept = wire::node_status(cluster.node2.addr);
    assert!(
        kept.modules.iter().any(|m| m.name == "pong" && m.running),
        "node2 ignored the Unload: {kept:?}"
    );
    let after = hand_over(&cluster, poke, "pong", &held);
    assert!(
        after.conns.is_empty(),
        "pong kept a connection key: {after:?}"
    );
    assert!(after.rejected_unknown >= 1, "{after:?}");
}

#[test]
fn a_module_removed_behind_a_node_that_ignores_unload_accepts_nothing() {
    unload_ignored(true);
}

#[test]
fn reset_behind_a_node_that_ignores_unload_leaves_modules_that_accept_nothing() {
    unload_ignored(false);
}

/// `aex deploy` with `AEX_CRASH_AT=point`, which must die there.
fn deploy_killed_at(cluster: &Cluster, point: &str) {
    aex_testkit::cli::killed_at(
        point,
        [
            std::ffi::OsStr::new("deploy"),
            cluster.app.path().as_os_str(),
        ],
    );
}

#[test]
fn a_revocation_a_crash_interrupted_is_completed_by_the_next_deploy() {
    for point in ["revoke-recorded", "revoked"] {
        let (cluster, _) = withheld(false);
        let app = &cluster.app;
        let old = app.conn_id("ping-to-pong");
        app.write_descriptor(&rewired(&cluster));
        deploy_killed_at(&cluster, point);
        // Saved before anything was sent: the old connection is still to be revoked.
        let pending = app.state().revocations;
        assert_eq!(pending.len(), 1, "after `{point}`: {pending:?}");
        assert_eq!(pending[0].id, old);
        if point == "revoke-recorded" {
            assert!(
                stats(&cluster, "pong")
                    .conns
                    .iter()
                    .any(|c| c.conn.0 == old),
                "nothing was sent before the crash"
            );
        }
        app.deploy()
            .ok()
            .stderr_has(&["Revoked connection `ping-to-pong`"]);
        assert!(app.state().revocations.is_empty(), "after `{point}`");
        assert!(
            stats(&cluster, "pong")
                .conns
                .iter()
                .all(|c| c.conn.0 != old),
            "after `{point}`: pong still holds the old key"
        );
        assert_ne!(app.conn_id("ping-to-pong"), old);
        app.deploy().ok().stderr_has(&["Unchanged"]);
    }
}
