//! Two stakeholders on shared nodes (issue 4 item 5): deployers A and B each run ping-pong on
//! the same two node agents, with the same module names and the same connection ids. B then
//! tries to reach A's application every way the protocol offers, and an unadmitted deployer C
//! tries anything at all. A's application must not notice.

use std::net::SocketAddr;

use aex_proto::{AppId, ConnId, Direction, Event, EventKind, NodeErrorKind, NodeRequest, Sealed};

use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::APP;
use aex_testkit::descriptor::{IdentityPin, PingPong, PlatformKey};
use aex_testkit::identity::{self, TestIdentity};
use aex_testkit::node::NodeOptions;
use aex_testkit::session::{self as wire, Session};
use aex_testkit::status::StatusExt;
use aex_testkit::{cli, wait_for, PATIENCE};

/// A garbage event on connection `conn` (it cannot open under any key).
fn forged(conn: u32, counter: u64) -> Event {
    Event {
        conn: ConnId(conn),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![0x42; 48],
    }
}

/// Every request kind a deployer can send, aimed at `module`, except `Shutdown` (the test
/// nodes honour it from admitted deployers).
fn every_request(module: &str) -> Vec<NodeRequest> {
    let module = module.to_string();
    vec![
        NodeRequest::Status,
        NodeRequest::LoadBegin {
            module: module.clone(),
            size: 4,
        },
        NodeRequest::LoadChunk {
            module: module.clone(),
            data: vec![0; 4],
        },
        NodeRequest::LoadEnd {
            module: module.clone(),
        },
        NodeRequest::Attest {
            module: module.clone(),
            challenge: [1; 32],
            deployer_pk: [9; 32],
        },
        NodeRequest::Command {
            module: module.clone(),
            sealed: Sealed {
                counter: 99,
                ciphertext: vec![0; 32],
            },
        },
        NodeRequest::Route {
            conn: ConnId(1),
            dir: Direction::Forward,
            to: aex_proto::Endpoint::Module(module.clone()),
            from: aex_proto::Origin::Local,
        },
        NodeRequest::Unload { module },
    ]
}

/// Names and pids of the modules `who` sees on the node at `addr`.
fn modules_seen(addr: SocketAddr, who: &TestIdentity) -> Vec<(String, Option<u32>)> {
    let status = wire::status_as(addr, who.identity.signing(), APP);
    status
        .modules
        .into_iter()
        .map(|m| (m.name, m.pid))
        .collect()
}

#[test]
fn two_stakeholders_share_nodes_without_reaching_each_other() {
    let (a_id, b_id, c_id) = (
        identity::deployer(),
        TestIdentity::named("b"),
        TestIdentity::named("c"),
    );
    let nodes = tempfile::tempdir().unwrap();
    let admit = [a_id.hex(), b_id.hex()];
    let node1 = NodeOptions::new("node1", nodes.path().join("node1"))
        .admit(&admit)
        .start();
    let node2 = NodeOptions::new("node2", nodes.path().join("node2"))
        .admit(&admit)
        .start();
    let desc = PingPong {
        nodes: [
            (node1.addr, PlatformKey::File(node1.platform_pub_file())),
            (node2.addr, PlatformKey::File(node2.platform_pub_file())),
        ],
        identities: [
            Some(IdentityPin::File(node1.identity_pub_file())),
            Some(IdentityPin::File(node2.identity_pub_file())),
        ],
        poke: true,
        c_pong: false,
    }
    .render();
    // The same descriptor, application name included, for both deployers.
    let a = AppDir::deployed_by(&a_id.path);
    let b = AppDir::deployed_by(&b_id.path);
    a.write_descriptor(&desc);
    b.write_descriptor(&desc);

    // Both deploy and work; same names and connection ids, different module instances.
    a.deploy().ok();
    b.deploy().ok();
    let (a_status, b_status) = (a.status(), b.status());
    a_status.assert_healthy();
    b_status.assert_healthy();
    for conn in ["ping-to-pong", "pong-to-ping", "poke"] {
        assert_eq!(a.conn_id(conn), b.conn_id(conn), "`{conn}` ids differ");
    }
    for module in ["ping", "pong"] {
        assert_ne!(a_status.module(module).pid, b_status.module(module).pid);
    }
    a.start_pings(10);
    b.start_pings(10);
    a.wait_pings_done(10);
    b.wait_pings_done(10);

    // Status lists only the asking deployer's own modules.
    for (addr, name) in [(node1.addr, "ping"), (node2.addr, "pong")] {
        let (seen_a, seen_b) = (modules_seen(addr, a_id), modules_seen(addr, &b_id));
        assert_eq!(seen_a, [(name.to_string(), a_status.module(name).pid)]);
        assert_eq!(seen_b, [(name.to_string(), b_status.module(name).pid)]);
    }

    // B claiming A's key cannot prove it: every request is refused.
    let mut impostor = Session::open_claiming(node2.addr, a_id.key(), b_id.identity.signing(), APP);
    for body in every_request("pong") {
        let e = impostor.request(body).unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::Refused, "{e}");
        assert!(e.message.contains("authentication failed"), "{e}");
    }

    // Events on A's connection ids in B's namespace (forwarded as node1, which B's route for
    // them names; a deployer's session may send only on routes that take its events): they
    // stay in B's namespace, where B's own pong rejects them; A's pong sees nothing.
    let target = a.conn_id("ping-to-pong");
    let a_rejected = a.status().counters("ping-to-pong").rejected;
    let b_rejected = b.status().counters("ping-to-pong").rejected;
    let (node1_key, _) = aex_link::keys::load_or_create(&node1.data_dir).unwrap();
    let b_app = AppId::of(&b_id.key(), APP);
    wire::forward_as_peer(node2.addr, &node1_key, b_app, &[forged(target, 1_000)]).unwrap();
    wait_for("B's pong to reject B's forged event", PATIENCE, || {
        (b.status().counters("ping-to-pong").rejected == b_rejected + 1).then_some(())
    });
    assert_eq!(a.status().counters("ping-to-pong").rejected, a_rejected);

    // A peer link from an identity no route names is refused before it forwards anything
    // into A's namespace (adversarial_links.rs plays the other peer attacks).
    let a_app = AppId::of(&a_id.key(), APP);
    let stranger = aex_link::StaticKey::generate();
    let refused = wire::forward_as_peer(node2.addr, &stranger, a_app, &[forged(target, 2_000)]);
    assert!(matches!(refused, Err(aex_link::LinkError::Refused(_))));
    a.start_pings(5);
    a.wait_pings_done(5);
    assert_eq!(a.status().counters("ping-to-pong").rejected, a_rejected);

    // B disables its pong: A's keeps answering.
    b.aex(&["disable", "pong"]).ok();
    a.start_pings(5);
    a.wait_pings_done(5);

    // B resets: B's modules go, A's stay.
    b.aex(&["reset"]).ok();
    for (addr, name) in [(node1.addr, "ping"), (node2.addr, "pong")] {
        assert!(modules_seen(addr, &b_id).is_empty(), "B's modules remain");
        assert_eq!(modules_seen(addr, a_id).len(), 1, "A's `{name}` is gone");
    }
    a.status().assert_healthy();

    // With no modules of its own, B reaches none: A's module names are unknown to B's
    // requests, and B's events on A's connection ids are dropped by the node.
    let mut b_on_node1 = Session::open(node1.addr, b_id.identity.signing(), APP);
    for body in every_request("ping") {
        let kind = format!("{body:?}");
        let targets_module = matches!(
            body,
            NodeRequest::Attest { .. } | NodeRequest::Command { .. } | NodeRequest::Unload { .. }
        );
        let answer = b_on_node1.request(body);
        if targets_module {
            let e = answer.unwrap_err();
            assert_eq!(e.kind, NodeErrorKind::UnknownModule, "{kind}: {e}");
        }
    }
    let dropped = wire::node_status(node2.addr).dropped;
    Session::open(node2.addr, b_id.identity.signing(), APP).send_event(forged(target, 3_000));
    wait_for("node2 to drop B's event", PATIENCE, || {
        (wire::node_status(node2.addr).dropped > dropped).then_some(())
    });
    assert_eq!(
        a.status().counters("ping-to-pong").rejected,
        a_rejected,
        "A's pong saw B's event"
    );

    // B deploys again (under the same module names): its own new instances; A's untouched.
    b.deploy().ok();
    b.status().assert_healthy();
    let a_now = a.status();
    a_now.assert_healthy();
    assert_eq!(a_now.module("pong").pid, a_status.module("pong").pid);
    a.start_pings(10);
    a.wait_pings_done(10);
    b.start_pings(3);
    b.wait_pings_done(3);

    // C is not admitted: every request is refused, with what to do about it.
    for addr in [node1.addr, node2.addr] {
        let mut c_session = Session::open(addr, c_id.identity.signing(), APP);
        let mut requests = every_request("ping");
        requests.push(NodeRequest::Shutdown);
        for body in requests {
            let e = c_session.request(body).unwrap_err();
            assert_eq!(e.kind, NodeErrorKind::NotAdmitted, "{e}");
            assert!(
                e.message.contains("does not admit") && e.message.contains(&c_id.hex()),
                "{e}"
            );
        }
        assert!(wire::node_status(addr).refused >= every_request("ping").len() as u64);
    }
    let c = AppDir::deployed_by(&c_id.path);
    c.write_descriptor(&desc);
    c.deploy()
        .code(1)
        .stderr_has(&["does not admit", &c_id.hex(), "help:", "aex identity"]);

    // Both applications still run, and `aex identity` prints the key nodes admit.
    a.status().assert_healthy();
    b.status().assert_healthy();
    let printed = cli::run_as(&b_id.path, &["identity"], PATIENCE).ok();
    assert_eq!(printed.stdout.trim(), b_id.hex());
    assert!(!printed
        .stdout
        .contains(&hex::encode(b_id.identity.signing().expose_secret())));
}
