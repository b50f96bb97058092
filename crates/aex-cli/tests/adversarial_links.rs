//! Attacks on the links themselves: the network changing what crosses them, peers that are not
//! (or not here) admitted, an impostor at a node's pinned address, and connections that never
//! finish authenticating.
//!
//! Every link is a Noise channel that proves the node's pinned identity (and, between nodes,
//! the initiator's), so:
//!
//! * a changed record fails to authenticate: the deployer's command fails with that error
//!   rather than believing a changed answer, and a changed record between nodes ends the
//!   link (its events lost, counted as a gap, none accepted);
//! * a peer link is admitted only from an identity some route names as a source, before any
//!   event is read, and an admitted peer forwards only into the namespaces whose routes name
//!   it;
//! * a node with another identity at the pinned address is refused, naming both keys;
//! * a handshake that stalls is closed at the `hello` deadline, and an oversized first
//!   message is refused from its length, at once.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aex_link::handshake::Initiator;
use aex_link::{LinkError, StaticKey};
use aex_proto::{
    AppId, ConnId, Direction, Endpoint, Event, EventKind, NodeRequest, NodeResponse, Origin,
};

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::node::NodeOptions;
use aex_testkit::proxy::{Link, RecordTamper, Wire};
use aex_testkit::session::{self as wire, PeerConn, Session};
use aex_testkit::status::{counters, StatusExt};
use aex_testkit::{identity, wait_for, PATIENCE};

/// Flips the lowest bit of the last byte of one message of the links to node2, once armed (at
/// most once per arming: every connection numbers its messages from 0).
struct FlipOne {
    link: Link,
    upstream: bool,
    index: usize,
    armed: AtomicBool,
    flipped: AtomicU32,
}

impl FlipOne {
    fn new(link: Link, upstream: bool, index: usize) -> Arc<FlipOne> {
        Arc::new(FlipOne {
            link,
            upstream,
            index,
            armed: AtomicBool::new(false),
            flipped: AtomicU32::new(0),
        })
    }

    fn flip(&self, link: Link, upstream: bool, index: usize, mut message: Vec<u8>) -> Vec<u8> {
        if (link, upstream, index) == (self.link, self.upstream, self.index)
            && self.armed.swap(false, Ordering::SeqCst)
        {
            if let Some(last) = message.last_mut() {
                *last ^= 1;
                self.flipped.fetch_add(1, Ordering::SeqCst);
            }
        }
        message
    }
}

impl RecordTamper for FlipOne {
    fn upstream(&self, link: Link, index: usize, message: Vec<u8>) -> Vec<Wire> {
        vec![Wire::ToNode(self.flip(link, true, index, message))]
    }

    fn downstream(&self, link: Link, index: usize, message: Vec<u8>) -> Vec<Wire> {
        vec![Wire::ToClient(self.flip(link, false, index, message))]
    }
}

/// A sealed-looking event on connection `conn` that no key opens.
fn forged(conn: u32, counter: u64) -> Event {
    Event {
        conn: ConnId(conn),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![0x42; 48],
    }
}

/// The test application's namespace.
fn namespace() -> AppId {
    AppId::of(&identity::deployer().key(), aex_testkit::descriptor::APP)
}

#[test]
fn a_flipped_bit_in_a_management_reply_is_detected_not_believed() {
    // The first record node2 sends a deployer session is the answer to its first request.
    let tamper = FlipOne::new(Link::Deployer, false, 1);
    let cluster = Cluster::start(Options {
        network: Some(tamper.clone()),
        ..Options::default()
    });
    cluster.deploy_ok();
    tamper.armed.store(true, Ordering::SeqCst);

    // `aex status`: node2's status is not shown changed, it is reported as failed, with why.
    let json = cluster.app.aex(&["status", "--json"]).ok().json();
    assert!(
        tamper.flipped.load(Ordering::SeqCst) >= 1,
        "no reply was flipped"
    );
    let node2 = &json["nodes"][1];
    assert_eq!(node2["reachable"], false, "{json:#}");
    let error = node2["error"].as_str().unwrap_or_default();
    assert!(error.contains("did not authenticate"), "{json:#}");

    // `aex deploy` asks node2 first for its status: it fails, and says why.
    tamper.armed.store(true, Ordering::SeqCst);
    cluster.app.deploy().code(1).stderr_has(&[
        "node `node2`",
        "a record did not authenticate (changed, injected, replayed or reordered on the way)",
    ]);

    // Without the attacker, everything is as it was.
    assert_eq!(tamper.flipped.load(Ordering::SeqCst), 2);
    cluster.app.status().assert_healthy();
    cluster.app.start_pings(5);
    cluster.app.wait_pings_done(5);
}

#[test]
fn a_changed_record_between_nodes_ends_the_link_and_nothing_is_accepted() {
    // node1's link to node2: the kind byte (0), messages 1 and 3 (1, 2), the Hello (3), then
    // one record per ping (ping waits for each pong): flip the record of ping 10.
    const AT: u64 = 10;
    const RUN: u64 = 20;
    let tamper = FlipOne::new(Link::Peer, true, 3 + AT as usize);
    let cluster = Cluster::start(Options {
        network: Some(tamper.clone()),
        ..Options::default()
    });
    cluster.deploy_ok();
    tamper.armed.store(true, Ordering::SeqCst);
    let dropped = wire::node_status(cluster.node2.addr).dropped;
    cluster.app.start_pings(RUN as u32);
    wait_for(
        "the first run to stall at the changed record",
        PATIENCE,
        || {
            let s = cluster.app.ping_stats();
            (tamper.flipped.load(Ordering::SeqCst) == 1 && s["completed"] == AT - 1).then_some(())
        },
    );
    // Node2 refused the record and closed the link; node1 reconnects for the next run.
    assert!(wire::node_status(cluster.node2.addr).dropped > dropped);
    cluster.app.start_pings(RUN as u32);
    cluster.app.wait_pings_done(RUN as u32);
    let status = cluster.app.status();
    status.assert_healthy();
    let delivered = AT - 1 + RUN;
    assert_eq!(
        status.counters("ping-to-pong"),
        counters(AT + RUN, delivered, 0, 1)
    );
    assert_eq!(status.module("pong").rejected_unknown, 0);
}

#[test]
fn a_peer_without_an_admitted_identity_cannot_inject() {
    let cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    let target = cluster.app.conn_id("ping-to-pong");
    let before = cluster.app.status();
    let refused = wire::node_status(cluster.node2.addr).refused;

    // Any identity no route names: the link is refused right after the handshake, before
    // node2 reads anything it sends.
    let stranger = StaticKey::generate();
    let events: Vec<Event> = (1..=20).map(|i| forged(target, 1_000 + i)).collect();
    let got = wire::forward_as_peer(cluster.node2.addr, &stranger, namespace(), &events);
    assert!(
        matches!(&got, Err(LinkError::Refused(k)) if *k == stranger.public()),
        "the stranger's link was not refused"
    );
    assert_eq!(
        wire::node_status(cluster.node2.addr).refused,
        refused + 1,
        "node2 counted the refused link"
    );

    // Pong spent nothing on it: a full run later, its refusal counters have not moved.
    cluster.app.start_pings(10);
    cluster.app.wait_pings_done(10);
    let after = cluster.app.status();
    assert_eq!(
        after.counters("ping-to-pong").rejected,
        before.counters("ping-to-pong").rejected
    );
    assert_eq!(
        after.module("pong").rejected_unknown,
        before.module("pong").rejected_unknown
    );
}

#[test]
fn an_admitted_peer_of_another_namespace_cannot_inject_into_this_one() {
    let cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    let node2 = cluster.node2.addr;
    let target = cluster.app.conn_id("ping-to-pong");
    let before = cluster.app.status();

    // Another namespace on node2 (the same deployer, another application) names a peer of
    // its own as the source of one of its connections: that admits the peer's links.
    let other = StaticKey::generate();
    let mut other_app = Session::open(node2, identity::deployer().identity.signing(), "elsewhere");
    let route = NodeRequest::Route {
        conn: ConnId(target),
        dir: Direction::Forward,
        to: Endpoint::Module("pong".into()),
        from: Origin::Peer(other.public()),
    };
    assert_eq!(other_app.request(route), Ok(NodeResponse::Done));

    // Its link is admitted, but what it forwards into this application's namespace is
    // dropped by node2: this namespace's route names node1.
    let dropped = wire::node_status(node2).dropped;
    let mut link = PeerConn::open(node2, &other).expect("admitted by the other namespace's route");
    for i in 1..=5 {
        link.forward(namespace(), &forged(target, 2_000 + i))
            .unwrap();
    }
    wait_for("node2 to drop the five forwards", PATIENCE, || {
        (wire::node_status(node2).dropped >= dropped + 5).then_some(())
    });
    cluster.app.start_pings(10);
    cluster.app.wait_pings_done(10);
    let after = cluster.app.status();
    assert_eq!(
        after.counters("ping-to-pong").rejected,
        before.counters("ping-to-pong").rejected
    );
    assert_eq!(
        after.module("pong").rejected_unknown,
        before.module("pong").rejected_unknown
    );
}

#[test]
fn an_impostor_at_the_pinned_address_is_refused_naming_both_keys() {
    let mut cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    let pinned = cluster.node2.identity();
    let addr = cluster.node2.addr;

    // node2 goes; another node (its own data directory, so its own identity) takes its
    // address.
    cluster.node2.kill();
    let dir = cluster.app.path().join("impostor");
    let impostor = NodeOptions::new("node2", dir).start_on(addr);
    let actual = impostor.identity();
    assert_ne!(actual, pinned);

    let json = cluster.app.aex(&["status", "--json"]).ok().json();
    let error = json["nodes"][1]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for key in [pinned, actual] {
        assert!(error.contains(&key.to_string()), "{json:#}");
    }
    cluster.app.deploy().code(1).stderr_has(&[
        "node `node2`",
        &format!("its identity key is {actual}, but {pinned} is pinned for it"),
        "help: if the operator of node `node2` rotated its identity key",
        &format!("identity = \"{actual}\""),
    ]);
    // The impostor learned nothing: no session reached it.
    let seen = wire::node_status(impostor.addr);
    assert!(seen.modules.is_empty());
    assert!(seen.refused >= 2, "refused {}", seen.refused);
}

#[test]
fn a_rotated_identity_is_accepted_only_once_the_descriptor_pins_it() {
    let mut cluster = Cluster::start(Options::default());
    // Pin node2 inline, as a descriptor for a remote node would.
    let old = cluster.node2.identity();
    let path = cluster.app.path().join("aex.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file_pin = format!(
        "identity_file = {:?}",
        cluster.node2.identity_pub_file().display().to_string()
    );
    assert!(text.contains(&file_pin), "{text}");
    cluster
        .app
        .write_descriptor(&text.replace(&file_pin, &format!("identity = \"{old}\"")));
    cluster.deploy_ok();

    // `aex node identity` prints what the descriptor pins.
    let dir = cluster.node2.data_dir.display().to_string();
    let args = ["node", "identity", "--data-dir", &dir];
    let shown = aex_testkit::cli::run(None, &args, aex_testkit::cli::COMMAND_TIMEOUT).ok();
    assert_eq!(shown.stdout.trim(), old.to_string());

    // The operator rotates node2's identity and restarts it.
    cluster.node2.kill();
    let args = ["node", "rotate-identity", "--data-dir", &dir];
    let run = aex_testkit::cli::run(None, &args, aex_testkit::cli::COMMAND_TIMEOUT).ok();
    let new = cluster.node2.identity();
    assert_ne!(new, old);
    assert!(run.stdout.contains(&new.to_string()), "{run:?}");
    assert!(cluster
        .node2
        .data_dir
        .join("node-identity.key.old")
        .exists());
    cluster.node2.restart();

    // The deployer refuses it until told.
    cluster.app.deploy().code(1).stderr_has(&[
        &format!("its identity key is {new}, but {old} is pinned for it"),
        &format!("identity = \"{new}\""),
    ]);
    let text = std::fs::read_to_string(&path).unwrap();
    cluster.app.write_descriptor(&text.replace(
        &format!("identity = \"{old}\""),
        &format!("identity = \"{new}\""),
    ));
    // (The restart lost pong and its state: the owner says so.)
    cluster.deploy_ok_with(&["--discard-state", "pong"]);
    cluster.app.start_pings(5);
    cluster.app.wait_pings_done(5);
}

/// How long until the node closes `stream`, reading (and discarding) what it sends.
fn closed_after(stream: &mut std::net::TcpStream, started: Instant) -> Duration {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!(
                "the node kept the connection open for {:?} ({e})",
                started.elapsed()
            ),
        }
    }
}

#[test]
fn stalled_handshakes_meet_the_deadline_and_oversized_first_messages_are_refused_at_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let limit = Duration::from_millis(500);
    let short = NodeOptions::new("short", dir.path().join("short"))
        .args(&["--timeout", "hello=500ms"])
        .start();
    let patient = NodeOptions::new("patient", dir.path().join("patient")).start();

    // A handshake that sends its first message, reads the node's answer, then stalls.
    let started = Instant::now();
    let mut stalled = std::net::TcpStream::connect(short.addr).unwrap();
    let (_, first) = Initiator::deployer(&short.identity()).unwrap();
    stalled.write_all(&first).unwrap();
    let mut answer = [0u8; 2 + 49];
    stalled.read_exact(&mut answer).unwrap();
    let took = closed_after(&mut stalled, started);
    assert!(took >= limit && took < PATIENCE, "closed after {took:?}");

    // The first message announcing 64 KiB, on a node that would wait 10 s for a Hello: refused
    // from its length at once, without waiting for the rest.
    let started = Instant::now();
    let mut big = std::net::TcpStream::connect(patient.addr).unwrap();
    big.write_all(&[b'D', 0xff, 0xff, 0]).unwrap();
    let took = closed_after(&mut big, started);
    assert!(took < Duration::from_secs(2), "closed after {took:?}");

    // Both still serve.
    assert_eq!(wire::node_status(short.addr).name, "short");
    assert!(wire::node_status(patient.addr).dropped >= 1);
}
