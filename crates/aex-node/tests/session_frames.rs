//! Hostile or broken input on the listener: refused per connection, never fatal to the node,
//! and bounded before authentication.

use std::time::{Duration, Instant};

use aex_link::handshake::MAX_HANDSHAKE_MESSAGE;
use aex_link::FIRST_RECORD_LIMIT;
use aex_proto::frame::MAX_FRAME_LEN;
use aex_proto::ToNode;
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::{frame_bytes, Session};
use aex_testkit::PATIENCE;

#[test]
fn malformed_and_oversized_frames_are_refused_without_crashing() {
    let node = TestNode::start("frames");
    let addr = node.addr();
    let session = || Session::open(addr, &test_deployer(), "test-app");

    // Not an aex link: an older client's frame prefix as the very first bytes.
    let mut c = Session::raw(addr);
    assert!(c.send_bytes(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes()));
    assert!(c.closed_by_node(PATIENCE));

    // Inside an admitted session: u32::MAX as a frame's length.
    let mut c = session();
    assert!(c.send_plain(&u32::MAX.to_be_bytes()));
    assert!(c.closed_by_node(PATIENCE));

    // A body that is not a message.
    let mut c = session();
    assert!(c.send_plain(&[0, 0, 0, 3, 1, 0xff, 0xff]));
    assert!(c.closed_by_node(PATIENCE));

    // A Hello of another wire version.
    let mut c = Session::linked(addr);
    let mut hello = frame_bytes(&ToNode::Hello(aex_proto::Hello::Deployer {
        client: "x".into(),
        key: aex_proto::DeployerKey([1; 32]),
        app: "x".into(),
        signature: aex_proto::Signature([0; 64]),
    }));
    hello[4] = 99;
    assert!(c.send_plain(&hello));
    assert!(c.closed_by_node(PATIENCE));

    // An empty frame as the first.
    let mut c = Session::linked(addr);
    assert!(c.send_plain(&[0, 0, 0, 0]));
    assert!(c.closed_by_node(PATIENCE));

    // A peer's Hello on a deployer link.
    let mut c = Session::linked(addr);
    c.send(&ToNode::Hello(aex_proto::Hello::Peer { node: "x".into() }));
    assert!(c.closed_by_node(PATIENCE));

    // Bytes injected into a link from outside it (a record that does not authenticate).
    let mut c = session();
    c.status();
    assert!(c.send_bytes(&[
        0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
    ]));
    assert!(c.closed_by_node(PATIENCE));

    // A frame cut short: the node waits for the rest, then the client goes away.
    let mut c = session();
    assert!(c.send_plain(&[0, 0, 0, 100, 1, 2, 3]));
    c.close();

    // The node still answers, and counted what it refused.
    let status = session().status();
    assert_eq!(status.name, "frames");
    assert_eq!(status.tee, "sgx");
    assert_eq!(status.platform_key, node.handle().platform_key().to_vec());
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(status.dropped >= 7, "dropped {}", status.dropped);
}

/// Before a connection has authenticated, what it announces is refused from the length prefix,
/// at once: the node neither allocates for it nor waits for the rest (the old wire held a
/// 1 MiB buffer for 10 s on five bytes).
#[test]
fn oversized_first_messages_are_refused_from_their_length_at_once() {
    // A long opening deadline: refusals must not wait for it.
    let node = TestNode::start_with("bounded", |c| {
        c.timeouts.set("hello", Duration::from_secs(30)).unwrap();
        c.timeouts.set("body", Duration::from_secs(30)).unwrap();
    });
    let addr = node.addr();
    let prompt = Duration::from_secs(5);
    let before = node.session().status().dropped;

    // The first handshake message announcing 64 KiB, and one byte of it.
    let started = Instant::now();
    let mut c = Session::raw(addr);
    assert!(c.send_bytes(&[b'D', 0xff, 0xff, 0]));
    assert!(c.closed_by_node(PATIENCE));
    assert!(
        started.elapsed() < prompt,
        "closed after {:?}",
        started.elapsed()
    );
    const { assert!(MAX_HANDSHAKE_MESSAGE < 0xffff) };

    // After the handshake, a first record longer than a Hello.
    let started = Instant::now();
    let mut c = Session::linked(addr);
    let len = (FIRST_RECORD_LIMIT + 1) as u16;
    let mut announce = len.to_be_bytes().to_vec();
    announce.push(0);
    assert!(c.send_bytes(&announce));
    assert!(c.closed_by_node(PATIENCE));
    assert!(
        started.elapsed() < prompt,
        "closed after {:?}",
        started.elapsed()
    );

    // Inside the first record, a Hello frame announcing 1 MiB.
    let started = Instant::now();
    let mut c = Session::linked(addr);
    assert!(c.send_plain(&(MAX_FRAME_LEN as u32).to_be_bytes()));
    assert!(c.closed_by_node(PATIENCE));
    assert!(
        started.elapsed() < prompt,
        "closed after {:?}",
        started.elapsed()
    );

    let status = node.session().status();
    assert!(status.dropped >= before + 3, "dropped {}", status.dropped);
}
