//! Routing events: to local modules, back to deployer sessions, and over persistent links to
//! other nodes.

use std::time::Duration;

use aex_proto::frame::{self, LEN_PREFIX};
use aex_proto::{
    ConnId, Direction, Endpoint, Event, EventKind, FromModule, FromNode, Hello, NodeRequest,
    ToModule, ToNode,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::util::{eventually, frame_file, script, TestNode, PATIENCE};

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
    NodeRequest::Route {
        conn: ConnId(conn),
        dir,
        to,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_cross_nodes_to_a_module() {
    let a = TestNode::start("a").await;
    let b = TestNode::start("b").await;
    let out = b.scratch.join("received.bin");
    let echo = script(&b.scratch, &format!("exec cat > '{}'", out.display()));
    let mut cb = b.client().await;
    cb.load("sink", &echo).await.unwrap();
    cb.request(route(
        7,
        Direction::Forward,
        Endpoint::Module("sink".into()),
    ))
    .await
    .unwrap();

    let mut ca = a.client().await;
    ca.request(route(7, Direction::Forward, Endpoint::Node(b.addr())))
        .await
        .unwrap();
    let events: Vec<Event> = (1..=3).map(|i| event(7, Direction::Forward, i)).collect();
    for ev in &events {
        ca.send(&ToNode::Event(ev.clone())).await;
    }
    let expected: Vec<u8> = events
        .iter()
        .flat_map(|ev| frame::encode(&ToModule::Event(ev.clone())))
        .collect();
    assert!(
        eventually(|| std::fs::read(&out).is_ok_and(|got| got == expected)).await,
        "module on b received the events in order"
    );

    let status = ca.status().await;
    assert_eq!(status.peers.len(), 1);
    assert_eq!(status.peers[0].address, b.addr());
    assert!(status.peers[0].connected);
    assert_eq!(status.peers[0].forwarded, 3);
    assert_eq!(status.dropped, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn module_replies_reach_the_deployer_session() {
    let node = TestNode::start("bouncer").await;
    let forward = event(5, Direction::Forward, 1);
    let backward = event(5, Direction::Backward, 1);
    let n = frame::encode(&ToModule::Event(forward.clone())).len();
    let reply = frame_file(
        &node.scratch,
        "reply.bin",
        &FromModule::Event(backward.clone()),
    );
    let bin = script(
        &node.scratch,
        &format!("head -c {n} > /dev/null; cat '{reply}'; exec cat > /dev/null"),
    );
    let mut c = node.client().await;
    c.load("bounce", &bin).await.unwrap();
    c.request(route(
        5,
        Direction::Forward,
        Endpoint::Module("bounce".into()),
    ))
    .await
    .unwrap();
    c.request(route(5, Direction::Backward, Endpoint::Deployer))
        .await
        .unwrap();

    // An event on an unrouted connection is dropped and counted.
    c.send(&ToNode::Event(event(99, Direction::Forward, 1)))
        .await;
    c.send(&ToNode::Event(forward)).await;
    assert_eq!(c.recv().await, FromNode::Event(backward));
    let status = c.status().await;
    assert_eq!(status.dropped, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_links_are_persistent_and_reconnect() {
    let node = TestNode::start("sender").await;
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap().to_string();
    let mut c = node.client().await;
    c.request(route(
        1,
        Direction::Forward,
        Endpoint::Node(peer_addr.clone()),
    ))
    .await
    .unwrap();

    for i in 1..=20 {
        c.send(&ToNode::Event(event(1, Direction::Forward, i)))
            .await;
    }
    let (mut link, _) = tokio::time::timeout(PATIENCE, peer.accept())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(read(&mut link).await, ToNode::Hello(Hello::Peer { node }) if node == "sender")
    );
    // Forwarded events carry the deployer's namespace.
    let app = c.app();
    for i in 1..=20 {
        assert_eq!(
            read(&mut link).await,
            ToNode::Forward {
                app,
                event: event(1, Direction::Forward, i)
            }
        );
    }
    // One connection carried them all.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), peer.accept())
            .await
            .is_err()
    );

    // The peer drops the link; the node notices and reconnects for the next event.
    drop(link);
    let mut reconnected = false;
    for _ in 0..100 {
        if !c.status().await.peers[0].connected {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reconnected, "link loss is noticed");
    c.send(&ToNode::Event(event(1, Direction::Forward, 21)))
        .await;
    let (mut link, _) = tokio::time::timeout(PATIENCE, peer.accept())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        read(&mut link).await,
        ToNode::Hello(Hello::Peer { .. })
    ));
    assert_eq!(
        read(&mut link).await,
        ToNode::Forward {
            app,
            event: event(1, Direction::Forward, 21)
        }
    );
    let status = c.status().await;
    assert_eq!(status.peers[0].forwarded, 21);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_for_an_unreachable_peer_are_dropped() {
    let node = TestNode::start("lonely").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let mut c = node.client().await;
    c.request(route(2, Direction::Forward, Endpoint::Node(addr)))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut counter = 0;
    let status = loop {
        counter += 1;
        c.send(&ToNode::Event(event(2, Direction::Forward, counter)))
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = c.status().await;
        if status.dropped > 0 || tokio::time::Instant::now() > deadline {
            break status;
        }
    };
    assert!(
        status.dropped > 0,
        "queued events are dropped after an outage"
    );
    assert!(!status.peers[0].connected);
    assert_eq!(status.peers[0].forwarded, 0);
}

async fn read(link: &mut tokio::net::TcpStream) -> ToNode {
    tokio::time::timeout(PATIENCE, async {
        let mut prefix = [0u8; LEN_PREFIX];
        link.read_exact(&mut prefix).await.unwrap();
        let mut body = vec![0u8; frame::body_len(prefix).unwrap()];
        link.read_exact(&mut body).await.unwrap();
        frame::decode(&body).unwrap()
    })
    .await
    .unwrap()
}
