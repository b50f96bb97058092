//! Configured timeouts reach their uses: a node started with short limits closes stalled
//! connections, fails a silent module's load and requests, and says which limit it applied.
//!
//! Each check waits for the node's verdict (with the kit's deadline) and asserts that it did
//! not come before the configured limit, so none depends on the machine's speed.

use std::time::{Duration, Instant};

use aex_proto::{NodeErrorKind, NodeRequest, Sealed};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::PATIENCE;

use crate::scripts::script;

const SHORT: Duration = Duration::from_millis(300);

fn short_node(name: &str) -> TestNode {
    TestNode::start_with(name, |c| {
        for name in ["hello", "body", "start", "reply", "stats"] {
            c.timeouts.set(name, SHORT).unwrap();
        }
    })
}

#[test]
fn stalled_connections_are_closed_after_the_configured_limits() {
    let node = short_node("short-conn");
    let addr = node.addr();

    // `hello`: a connection that never says anything. (Each clock starts before the node's
    // can, so that the node closing no sooner than the limit is a sound check.)
    let started = Instant::now();
    let mut c = Session::raw(addr);
    assert!(c.closed_by_node(PATIENCE), "still open after {PATIENCE:?}");
    assert!(
        started.elapsed() >= SHORT,
        "closed after {:?}",
        started.elapsed()
    );

    // `hello` bounds the whole opening: a handshake stalled after its first message.
    let started = Instant::now();
    let mut c = Session::raw(addr);
    let (_, first) = aex_link::handshake::Initiator::deployer(&node.identity()).unwrap();
    assert!(c.send_bytes(&first));
    assert!(c.closed_by_node(PATIENCE), "still open after {PATIENCE:?}");
    assert!(
        started.elapsed() >= SHORT,
        "closed after {:?}",
        started.elapsed()
    );

    // And a link whose handshake completed but which never says Hello.
    let started = Instant::now();
    let mut c = Session::linked(addr);
    assert!(c.closed_by_node(PATIENCE), "still open after {PATIENCE:?}");
    assert!(
        started.elapsed() >= SHORT,
        "closed after {:?}",
        started.elapsed()
    );

    // `body`: a session whose next frame stops after its length prefix and two bytes.
    let mut c = Session::open(addr, &test_deployer(), "test-app");
    let started = Instant::now();
    assert!(c.send_plain(&[0, 0, 0, 100, 1, 2]));
    assert!(c.closed_by_node(PATIENCE), "still open after {PATIENCE:?}");
    assert!(
        started.elapsed() >= SHORT,
        "closed after {:?}",
        started.elapsed()
    );

    // The node carries on.
    assert_eq!(node.session().status().name, "short-conn");
}

#[test]
fn silent_modules_fail_in_the_configured_limits() {
    let node = short_node("short-module");
    let mut c = node.session();

    // `start`: a module that never says hello.
    let started = Instant::now();
    let e = c.load("mute", b"#!/bin/sh\nexec sleep 30\n").unwrap_err();
    assert!(started.elapsed() >= SHORT);
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable, "{e}");
    assert!(e.message.contains("did not say hello within 300 ms"), "{e}");

    // `reply`: a module that says hello, then reads its input and never answers (its shell
    // keeps the output open).
    c.load("deaf", &script(&node.scratch, "cat > /dev/null"))
        .unwrap();
    let started = Instant::now();
    let e = c
        .request(NodeRequest::Command {
            module: "deaf".into(),
            sealed: Sealed {
                counter: 1,
                ciphertext: vec![1; 16],
            },
        })
        .unwrap_err();
    assert!(started.elapsed() >= SHORT);
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable, "{e}");
    assert!(e.message.contains("did not answer within 300 ms"), "{e}");

    // `stats`: status reports the silent module's counters as unknown once the limit passed.
    let started = Instant::now();
    let status = c.status();
    assert!(started.elapsed() >= SHORT);
    assert_eq!(status.modules.len(), 1);
    assert!(status.modules[0].running && status.modules[0].stats.is_none());
}
