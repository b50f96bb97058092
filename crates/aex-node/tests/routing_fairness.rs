//! Fairness between stakeholders on a shared peer link: one tenant's flood drops that
//! tenant's events, never another's.
//!
//! Two deployers route a connection of their own through node x to the same peer node, which
//! the test plays: it completes the link's handshake and then stops reading, so x's queue for
//! the link fills. Tenant A floods (32 MiB of events) until x drops its events; then tenant B
//! sends 200. When the peer reads again, every one of B's events arrives, in order. (With one
//! queue per link, bounded in events, the flood filled it and every event of B was dropped.)
//!
//! Under honoured credit the queue never fills; this is what protects other tenants from a
//! sender that ignores its credit. A second peer node, played by the test, is that sender: the
//! tenants' routes name it as their events' origin, and it forwards both tenants' events into
//! x without waiting for credit. (A deployer session cannot play it: x drops a deployer's
//! events past its window, and takes them only on routes that keep one.)

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::mpsc;

use aex_crypto::SigningIdentity;
use aex_link::StaticKey;
use aex_proto::frame::read_message;
use aex_proto::{
    AppId, ConnId, Direction, Endpoint, Event, EventKind, NodeRequest, Origin, ToNode,
};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::{PeerConn, Session};
use aex_testkit::wait::{wait_for, PATIENCE};

/// A's flood: events of `FLOOD_SIZE` bytes, 32 MiB in all.
const FLOOD: u64 = 8192;
const FLOOD_SIZE: usize = 4096;
/// B's events, 1 KiB each.
const QUIET: u64 = 200;

fn event(counter: u64, size: usize) -> Event {
    Event {
        conn: ConnId(3),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![counter as u8; size],
    }
}

/// A peer node with identity `key` on `listener`: admits node x's link, reads its `Hello`,
/// waits for `go`, then reads every forwarded event and reports its namespace and counter.
fn stalled_peer(
    listener: TcpListener,
    key: StaticKey,
    go: mpsc::Receiver<()>,
    seen: mpsc::Sender<(AppId, u64)>,
) {
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let Ok((_, mut link)) = aex_link::blocking::accept(&conn, &conn, &key, |_| true) else {
            return;
        };
        link.reader.set_limit(aex_link::MAX_RECORD);
        // The Hello, then nothing read until the test says so.
        if !matches!(
            read_message::<_, ToNode>(&mut link.reader),
            Ok(Some(ToNode::Hello(_)))
        ) {
            return;
        }
        if go.recv().is_err() {
            return;
        }
        while let Ok(Some(ToNode::Forward { app, event })) = read_message(&mut link.reader) {
            if seen.send((app, event.counter)).is_err() {
                return;
            }
        }
    });
}

#[test]
fn one_tenant_s_flood_does_not_drop_another_tenant_s_events_on_a_shared_link() {
    let b_id = SigningIdentity::from_seed(&[0xb2; 32]);
    let x = TestNode::start_with("x", |c| {
        c.admit.push(aex_proto::DeployerKey::of(&b_id));
        // Small queues, so that the flood fills them quickly: 2 MiB per namespace, 4 in all.
        c.limits.set("peer_queue_per_namespace", 2 << 20).unwrap();
        c.limits.set("peer_queue", 4 << 20).unwrap();
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer_addr = listener.local_addr().unwrap();
    let peer_key = StaticKey::generate();
    let to_peer = Endpoint::Node {
        address: peer_addr.to_string(),
        identity: peer_key.public(),
    };
    let (go, go_rx) = mpsc::sync_channel(1);
    #[allow(
        clippy::disallowed_methods,
        reason = "test code: the stalled peer must never block on what it reports"
    )]
    let (seen_tx, seen) = mpsc::channel();
    stalled_peer(listener, peer_key, go_rx, seen_tx);

    // The events come from the flooding peer: see the file's documentation.
    let flooder = StaticKey::generate();
    let route = NodeRequest::Route {
        conn: ConnId(3),
        dir: Direction::Forward,
        to: to_peer,
        from: Origin::Peer(flooder.public()),
    };
    let mut a = Session::open(x.addr(), &test_deployer(), "flood");
    let mut b = Session::open(x.addr(), &b_id, "quiet");
    a.request(route.clone()).unwrap();
    b.request(route).unwrap();
    let (a_app, b_app) = (a.app(), b.app());
    let mut flood = PeerConn::open(x.addr(), &flooder).unwrap();

    // A's flood: the link's queue fills and x starts dropping A's events.
    for counter in 1..=FLOOD {
        flood.forward(a_app, &event(counter, FLOOD_SIZE)).unwrap();
    }
    // The link's queue holds 2 MiB of A's 32: most of the flood is dropped.
    wait_for("x to drop most of A's flood", PATIENCE, || {
        (a.status().dropped > FLOOD / 2).then_some(())
    });

    // B's events on the same link, while it is still full of A's.
    for counter in 1..=QUIET {
        flood.forward(b_app, &event(counter, 1024)).unwrap();
    }

    // The peer reads again: all of B's events arrive, in order.
    go.send(()).unwrap();
    let mut got: HashMap<AppId, Vec<u64>> = HashMap::new();
    wait_for(
        &format!("all {QUIET} of B's events at the peer"),
        PATIENCE,
        || {
            while let Ok((app, counter)) = seen.try_recv() {
                got.entry(app).or_default().push(counter);
            }
            (got.get(&b_app).map_or(0, Vec::len) >= QUIET as usize).then_some(())
        },
    );
    // Every one of B's, in order: x dropped none of them.
    assert_eq!(got[&b_app], (1..=QUIET).collect::<Vec<_>>());
    // A's events that arrived are those x kept: fewer than it sent.
    let a_got = got.get(&a_app).map_or(0, Vec::len) as u64;
    assert!(a_got < FLOOD, "{a_got}");
}
