//! Hostile or broken input on the listener: refused per connection, never fatal to the node.

use aex_proto::frame::MAX_FRAME_LEN;
use aex_proto::{NodeRequest, ToNode};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::{frame_bytes, Session};
use aex_testkit::PATIENCE;

#[test]
fn malformed_and_oversized_frames_are_refused_without_crashing() {
    let node = TestNode::start("frames");
    let addr = node.addr();
    let session = || Session::open(addr, &test_deployer(), "test-app");

    // An oversized length prefix as the very first bytes.
    let mut c = Session::raw(addr);
    assert!(c.send_bytes(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes()));
    assert!(c.closed_by_node(PATIENCE));

    // u32::MAX after a valid hello.
    let mut c = session();
    assert!(c.send_bytes(&u32::MAX.to_be_bytes()));
    assert!(c.closed_by_node(PATIENCE));

    // A body that is not a message, after a valid hello.
    let mut c = session();
    assert!(c.send_bytes(&[0, 0, 0, 3, 1, 0xff, 0xff]));
    assert!(c.closed_by_node(PATIENCE));

    // Another wire version.
    let mut c = Session::raw(addr);
    let mut hello = frame_bytes(&ToNode::Hello(aex_proto::Hello::Deployer {
        client: "x".into(),
        key: aex_proto::DeployerKey([1; 32]),
        app: "x".into(),
    }));
    hello[4] = 99;
    assert!(c.send_bytes(&hello));
    assert!(c.closed_by_node(PATIENCE));

    // An empty frame.
    let mut c = Session::raw(addr);
    assert!(c.send_bytes(&[0, 0, 0, 0]));
    assert!(c.closed_by_node(PATIENCE));

    // A request before any hello.
    let mut c = Session::raw(addr);
    c.send(&c.signed(1, NodeRequest::Status));
    assert!(c.closed_by_node(PATIENCE));

    // A frame cut short: the node waits for the rest, then the client goes away.
    let mut c = session();
    assert!(c.send_bytes(&[0, 0, 0, 100, 1, 2, 3]));
    c.close();

    // The node still answers, and counted what it refused.
    let status = session().status();
    assert_eq!(status.name, "frames");
    assert_eq!(status.tee, "sgx");
    assert_eq!(status.platform_key, node.handle().platform_key().to_vec());
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(status.dropped >= 6, "dropped {}", status.dropped);
}
