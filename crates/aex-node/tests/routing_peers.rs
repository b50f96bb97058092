//! Routing events: to local modules, back to deployer sessions, and over persistent links to
//! other nodes, which prove their identities and are admitted only where routes (or the
//! configuration) name them.

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use aex_link::blocking::{LinkReader, LinkWriter};
use aex_link::{LinkError, StaticKey};
use aex_proto::flow::{self, Credit};
use aex_proto::frame::{read_message, write_message};
use aex_proto::{
    ConnId, Direction, Endpoint, Event, EventKind, FromModule, FromNode, Hello, NodeKey,
    NodeRequest, NodeResponse, NodeStatus, Origin, ToModule, ToNode,
};
use aex_testkit::node::TestNode;
use aex_testkit::session::{frame_bytes, PeerConn, Session};
use aex_testkit::wait::{refusing_addr, wait_for, wait_until, PATIENCE};

use crate::scripts::{frame_file, script};

fn event(conn: u32, dir: Direction, counter: u64) -> Event {
    Event {
        conn: ConnId(conn),
        dir,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![counter as u8; 40],
    }
}

fn route(conn: u32, dir: Direction, to: Endpoint) -> NodeRequest {
    route_from(conn, dir, to, Origin::Deployer)
}

fn route_from(conn: u32, dir: Direction, to: Endpoint, from: Origin) -> NodeRequest {
    NodeRequest::Route {
        conn: ConnId(conn),
        dir,
        to,
        from,
    }
}

fn peer_at(address: String, identity: NodeKey) -> Endpoint {
    Endpoint::Node { address, identity }
}

#[test]
fn events_cross_nodes_to_a_module() {
    let a = TestNode::start("a");
    let b = TestNode::start("b");
    let out = b.scratch.join("received.bin");
    let echo = script(&b.scratch, &format!("exec cat > '{}'", out.display()));
    let mut cb = b.session();
    cb.load("sink", &echo).unwrap();
    cb.request(route_from(
        7,
        Direction::Forward,
        Endpoint::Module("sink".into()),
        Origin::Peer(a.identity()),
    ))
    .unwrap();

    let mut ca = a.session();
    ca.request(route(
        7,
        Direction::Forward,
        peer_at(b.addr().to_string(), b.identity()),
    ))
    .unwrap();
    let events: Vec<Event> = (1..=3).map(|i| event(7, Direction::Forward, i)).collect();
    for ev in &events {
        ca.send_event(ev.clone());
    }
    let expected: Vec<u8> = events
        .iter()
        .flat_map(|ev| frame_bytes(&ToModule::Event(ev.clone())))
        .collect();
    wait_until(
        "the module on b to receive the three events in order",
        PATIENCE,
        || match std::fs::read(&out) {
            Ok(got) if got == expected => Ok(()),
            Ok(got) => Err(format!("{} bytes: {got:?}", got.len())),
            Err(e) => Err(e.to_string()),
        },
    );

    let status = ca.status();
    assert_eq!(status.peers.len(), 1);
    assert_eq!(status.peers[0].address, b.addr().to_string());
    assert_eq!(status.peers[0].identity, b.identity());
    assert!(status.peers[0].connected);
    assert_eq!(status.peers[0].forwarded, 3);
    assert_eq!(status.dropped, 0);
}

#[test]
fn module_replies_reach_the_deployer_session() {
    // The module ends its output once it replied: a short `exit` limit keeps status from
    // waiting out the default for its exit.
    let node = TestNode::start_with("bouncer", |c| {
        c.timeouts.set("exit", Duration::from_millis(20)).unwrap()
    });
    let forward = event(5, Direction::Forward, 1);
    let backward = event(5, Direction::Backward, 1);
    let n = frame_bytes(&ToModule::Event(forward.clone())).len();
    let reply = frame_file(
        &node.scratch,
        "reply.bin",
        &FromModule::Event(backward.clone()),
    );
    let bin = script(
        &node.scratch,
        &format!("head -c {n} > /dev/null; cat '{reply}'; exec cat > /dev/null"),
    );
    let mut c = node.session();
    c.load("bounce", &bin).unwrap();
    c.request(route(
        5,
        Direction::Forward,
        Endpoint::Module("bounce".into()),
    ))
    .unwrap();
    c.request(route(5, Direction::Backward, Endpoint::Deployer))
        .unwrap();

    // An event on an unrouted connection is dropped and counted.
    c.send_event(event(99, Direction::Forward, 1));
    c.send_event(forward);
    assert_eq!(c.recv(), FromNode::Event(backward));
    let status = c.status();
    assert_eq!(status.dropped, 1);
}

#[test]
fn peer_links_are_persistent_and_reconnect() {
    let node = TestNode::start("sender");
    let peer = FakePeer::bind();
    let mut c = node.session();
    c.request(route(1, Direction::Forward, peer.endpoint()))
        .unwrap();

    for i in 1..=20 {
        c.send_event(event(1, Direction::Forward, i));
    }
    let mut link = peer.accept(node.identity());
    assert!(matches!(read(&mut link), ToNode::Hello(Hello::Peer { node }) if node == "sender"));
    // Forwarded events carry the deployer's namespace.
    let app = c.app();
    for i in 1..=20 {
        assert_eq!(
            read(&mut link),
            ToNode::Forward {
                app,
                event: event(1, Direction::Forward, i)
            }
        );
    }
    // One connection carried them all: the node counts them forwarded on a link that is up,
    // and opened no other (a connection it opened would have completed by now).
    // The writer counts an event after its write returns, which can be after the peer read
    // it: wait for the count rather than read it once.
    let status = forwarded(&mut c, 20);
    assert!(status.peers[0].connected);
    assert!(peer.pending().is_none(), "a second link was opened");

    // The peer drops the link; the node notices and reconnects for the next event.
    drop(link);
    wait_for("the node to notice the lost link", PATIENCE, || {
        (!c.status().peers[0].connected).then_some(())
    });
    c.send_event(event(1, Direction::Forward, 21));
    let mut link = peer.accept(node.identity());
    assert!(matches!(read(&mut link), ToNode::Hello(Hello::Peer { .. })));
    assert_eq!(
        read(&mut link),
        ToNode::Forward {
            app,
            event: event(1, Direction::Forward, 21)
        }
    );
    forwarded(&mut c, 21);
    assert!(peer.pending().is_none(), "a third link was opened");
}

/// The node's status once it counts `n` events forwarded to its first peer.
fn forwarded(c: &mut Session, n: u64) -> NodeStatus {
    wait_for(
        &format!("the node to count {n} events forwarded"),
        PATIENCE,
        || {
            let status = c.status();
            (status.peers[0].forwarded == n).then_some(status)
        },
    )
}

#[test]
fn events_for_an_unreachable_peer_are_dropped() {
    // Short reconnection pauses and a short `stale` limit: the test waits the outage out.
    let stale = Duration::from_millis(100);
    let node = TestNode::start_with("lonely", |c| {
        c.timeouts.set("stale", stale).unwrap();
        c.timeouts
            .set("backoff", Duration::from_millis(10))
            .unwrap();
        c.timeouts
            .set("backoff_max", Duration::from_millis(20))
            .unwrap();
    });
    let down = refusing_addr();
    let mut c = node.session();
    c.request(route(
        2,
        Direction::Forward,
        peer_at(down.addr().to_string(), StaticKey::generate().public()),
    ))
    .unwrap();
    let started = Instant::now();
    c.send_event(event(2, Direction::Forward, 1));
    let status = wait_for("the queued event to be dropped", PATIENCE, || {
        let status = c.status();
        (status.dropped > 0).then_some(status)
    });
    assert!(
        started.elapsed() >= stale,
        "dropped after {:?}, before the outage lasted `stale`",
        started.elapsed()
    );
    assert_eq!(status.dropped, 1);
    assert!(!status.peers[0].connected);
    assert_eq!(status.peers[0].forwarded, 0);
}

#[test]
fn peer_links_are_admitted_only_from_identities_routes_or_the_configuration_name() {
    let named = StaticKey::generate();
    let configured = StaticKey::generate();
    let stranger = StaticKey::generate();
    let b = TestNode::start_with("b", |c| c.peers.push(configured.public()));
    let out = b.scratch.join("received.bin");
    let sink = script(&b.scratch, &format!("exec cat > '{}'", out.display()));
    let mut cb = b.session();
    cb.load("sink", &sink).unwrap();
    let app = cb.app();

    // Nothing names `named` yet: its link is refused after the handshake, before anything
    // it sends is read, and counted.
    let before = cb.status().refused;
    let e = PeerConn::open(b.addr(), &named).err().expect("refused");
    assert!(
        matches!(e, LinkError::Refused(k) if k == named.public()),
        "{e}"
    );
    assert_eq!(cb.status().refused, before + 1);

    // A route naming it as the origin of connection 3 admits its links, and its events on
    // connection 3 reach the module.
    cb.request(route_from(
        3,
        Direction::Forward,
        Endpoint::Module("sink".into()),
        Origin::Peer(named.public()),
    ))
    .unwrap();
    cb.request(route_from(
        4,
        Direction::Forward,
        Endpoint::Module("sink".into()),
        Origin::Peer(configured.public()),
    ))
    .unwrap();
    let mut link = PeerConn::open(b.addr(), &named).expect("admitted by the route");
    // Its events on connection 4, which another peer's route names, are dropped.
    let dropped = cb.status().dropped;
    link.forward(app, &event(4, Direction::Forward, 1)).unwrap();
    link.forward(app, &event(3, Direction::Forward, 1)).unwrap();
    // (The sink also records the `Stats` probes of status requests: not events.)
    let expected = vec![ToModule::Event(event(3, Direction::Forward, 1))];
    wait_until(
        "the module to receive the routed event only",
        PATIENCE,
        || {
            let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
            let mut rest = bytes.as_slice();
            let mut got = vec![];
            while let Ok(Some(msg)) = read_message::<_, ToModule>(&mut rest) {
                if msg != ToModule::Stats {
                    got.push(msg);
                }
            }
            match got == expected {
                true => Ok(()),
                false => Err(format!("{got:?}")),
            }
        },
    );
    assert_eq!(cb.status().dropped, dropped + 1);

    // The configuration admits `configured` without a route naming it first; a stranger
    // stays out.
    let mut other = PeerConn::open(b.addr(), &configured).expect("admitted by `peers`");
    other
        .forward(app, &event(4, Direction::Forward, 1))
        .unwrap();
    assert!(matches!(
        PeerConn::open(b.addr(), &stranger),
        Err(LinkError::Refused(_))
    ));
}

#[test]
fn the_node_keeps_the_deployer_s_window_from_route_to_unroute() {
    let node = TestNode::start("windows");
    let sink = script(&node.scratch, "exec cat > /dev/null");
    let mut c = node.session();
    c.load("sink", &sink).unwrap();
    let window = |c: &mut aex_testkit::session::Session| {
        c.request(NodeRequest::Window {
            conn: ConnId(6),
            dir: Direction::Forward,
        })
    };
    // No route takes the deployer's events on it yet.
    let e = window(&mut c).unwrap_err();
    assert_eq!(e.kind, aex_proto::NodeErrorKind::BadRequest, "{e}");
    c.request(route(
        6,
        Direction::Forward,
        Endpoint::Module("sink".into()),
    ))
    .unwrap();
    let full = i64::from(flow::INITIAL_WINDOW);
    assert_eq!(
        window(&mut c),
        Ok(NodeResponse::Window {
            credit: full,
            in_flight: 0
        })
    );
    // An event is routed as it is read, before the request behind it is answered.
    let sent = event(6, Direction::Forward, 1);
    let cost = flow::cost(&sent);
    c.send_event(sent);
    assert_eq!(
        window(&mut c),
        Ok(NodeResponse::Window {
            credit: full - i64::from(cost),
            in_flight: u64::from(cost)
        })
    );
    c.request(NodeRequest::Unroute {
        conn: ConnId(6),
        dir: Direction::Forward,
    })
    .unwrap();
    assert!(window(&mut c).is_err());
}

#[test]
fn credit_a_module_grants_crosses_nodes_back_to_the_module_that_sent_the_events() {
    let a = TestNode::start("a");
    let b = TestNode::start("b");
    let sent = event(13, Direction::Forward, 1);
    let granted = Credit {
        conn: ConnId(13),
        dir: Direction::Forward,
        bytes: flow::cost(&sent),
        dropped: 0,
    };
    // On b, a module that takes the event in, grants its credit, and idles.
    let n = frame_bytes(&ToModule::Event(sent.clone())).len();
    let grant = frame_file(&b.scratch, "grant.bin", &FromModule::Credit(granted));
    let sink = script(
        &b.scratch,
        &format!("head -c {n} > /dev/null; cat '{grant}'; exec cat > /dev/null"),
    );
    let mut cb = b.session();
    cb.load("sink", &sink).unwrap();
    cb.request(route_from(
        13,
        Direction::Forward,
        Endpoint::Module("sink".into()),
        Origin::Peer(a.identity()),
    ))
    .unwrap();
    // On a, the route first (the module sends as soon as it starts), then the sender.
    let mut ca = a.session();
    ca.request(route_from(
        13,
        Direction::Forward,
        peer_at(b.addr().to_string(), b.identity()),
        Origin::Local,
    ))
    .unwrap();
    let emit = frame_file(&a.scratch, "emit.bin", &FromModule::Event(sent));
    let out = a.scratch.join("input.bin");
    let src = script(
        &a.scratch,
        &format!("cat '{emit}'; exec cat > '{}'", out.display()),
    );
    ca.load("src", &src).unwrap();
    let expected = vec![ToModule::Credit(granted)];
    wait_until(
        "the sending module on a to receive the credit the module on b granted",
        PATIENCE,
        || {
            let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
            let mut rest = bytes.as_slice();
            let mut got = vec![];
            while let Ok(Some(msg)) = read_message::<_, ToModule>(&mut rest) {
                if msg != ToModule::Stats {
                    got.push(msg);
                }
            }
            match got == expected {
                true => Ok(()),
                false => Err(format!("{got:?}")),
            }
        },
    );
    assert_eq!(ca.status().dropped, 0);
    assert_eq!(cb.status().dropped, 0);
}

#[test]
fn credit_a_peer_sends_back_reaches_the_module_that_sent_the_events() {
    let node = TestNode::start("sender");
    let peer = FakePeer::bind();
    let mut c = node.session();
    let app = c.app();
    // The route first: the module sends its event as soon as it starts.
    c.request(route_from(
        11,
        Direction::Forward,
        peer.endpoint(),
        Origin::Local,
    ))
    .unwrap();
    let sent = event(11, Direction::Forward, 1);
    let emit = frame_file(&node.scratch, "emit.bin", &FromModule::Event(sent.clone()));
    let out = node.scratch.join("input.bin");
    let src = script(
        &node.scratch,
        &format!("cat '{emit}'; exec cat > '{}'", out.display()),
    );
    c.load("src", &src).unwrap();
    let (mut link, mut back) = peer.accept_both(node.identity());
    assert!(matches!(read(&mut link), ToNode::Hello(Hello::Peer { .. })));
    assert_eq!(
        read(&mut link),
        ToNode::Forward {
            app,
            event: sent.clone()
        }
    );

    // The peer grants credit for the event, after credit for a connection the node did not
    // route to it, which is ignored and counted.
    let dropped = c.status().dropped;
    let stray = Credit {
        conn: ConnId(12),
        dir: Direction::Forward,
        bytes: 1000,
        dropped: 0,
    };
    let granted = Credit {
        conn: ConnId(11),
        dir: Direction::Forward,
        bytes: flow::cost(&sent),
        dropped: 0,
    };
    for credit in [stray, granted] {
        write_message(&mut back, &FromNode::Credit { app, credit }).unwrap();
    }
    back.flush().unwrap();
    let expected = vec![ToModule::Credit(granted)];
    wait_until(
        "the module to receive the credit granted for its event",
        PATIENCE,
        || {
            let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
            let mut rest = bytes.as_slice();
            let mut got = vec![];
            while let Ok(Some(msg)) = read_message::<_, ToModule>(&mut rest) {
                if msg != ToModule::Stats {
                    got.push(msg);
                }
            }
            match got == expected {
                true => Ok(()),
                false => Err(format!("{got:?}")),
            }
        },
    );
    let status = c.status();
    assert_eq!(status.dropped, dropped + 1);
    assert!(status.peers[0].connected, "credit closed the link");
}

/// A listener standing in for a peer node, with an identity of its own: it accepts the links
/// the node under test opens (their handshake) and reads what they carry.
struct FakePeer {
    listener: TcpListener,
    key: StaticKey,
}

impl FakePeer {
    fn bind() -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Non-blocking, so that accepting waits with a deadline and `pending` can look.
        listener.set_nonblocking(true).unwrap();
        FakePeer {
            listener,
            key: StaticKey::generate(),
        }
    }

    /// The route destination that names this peer.
    fn endpoint(&self) -> Endpoint {
        peer_at(
            self.listener.local_addr().unwrap().to_string(),
            self.key.public(),
        )
    }

    /// A link the node opened and completed (its TCP handshake), if there is one.
    fn pending(&self) -> Option<TcpStream> {
        match self.listener.accept() {
            Ok((link, _)) => Some(link),
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => panic!("accept on the fake peer: {e}"),
        }
    }

    /// The next link the node opens, once its handshake proved `node`'s identity.
    #[track_caller]
    fn accept(&self, node: NodeKey) -> LinkReader<TcpStream> {
        self.accept_both(node).0
    }

    /// Like [`FakePeer::accept`], with the link's way back to the node.
    #[track_caller]
    fn accept_both(&self, node: NodeKey) -> (LinkReader<TcpStream>, LinkWriter<TcpStream>) {
        let link = wait_for("the node to open a link to the peer", PATIENCE, || {
            self.pending()
        });
        link.set_nonblocking(false).unwrap();
        link.set_read_timeout(Some(PATIENCE)).unwrap();
        let (_, link) =
            aex_link::blocking::accept(link.try_clone().unwrap(), link, &self.key, |k| *k == node)
                .expect("the node's link handshake");
        let mut reader = link.reader;
        reader.set_limit(aex_link::MAX_RECORD);
        (reader, link.writer)
    }
}

/// The next frame on a link.
#[track_caller]
fn read(link: &mut LinkReader<TcpStream>) -> ToNode {
    match read_message(link) {
        Ok(Some(msg)) => msg,
        Ok(None) => panic!("the node closed its link"),
        Err(e) => panic!("no frame on the link within {PATIENCE:?}: {e}"),
    }
}
