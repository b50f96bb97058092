//! Who may manage a node: admitted keys only, proven per session, every request signed.

use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_node::NodeError;
use aex_proto::{
    ConnId, DeployerKey, Direction, Endpoint, Event, EventKind, FromNode, NodeErrorKind,
    NodeRequest, NodeResponse, Signature, ToNode,
};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_for, PATIENCE};

use crate::scripts::script;

fn refused(result: Result<NodeResponse, aex_proto::NodeError>) -> String {
    let e = result.expect_err("the node refuses");
    assert_eq!(e.kind, NodeErrorKind::Refused, "{e}");
    e.message
}

#[test]
fn a_node_without_admitted_deployers_does_not_start() {
    let Err(e) = TestNode::try_start_with("closed", |c| c.admit.clear()) else {
        panic!("a node admitting nobody started");
    };
    assert!(matches!(e, NodeError::NoDeployers { .. }), "{e}");
    let msg = e.to_string();
    for needle in [
        "`closed`",
        "--admit",
        "--admit-file",
        "--open",
        "aex identity",
    ] {
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
}

#[test]
fn unadmitted_deployers_are_refused_every_request() {
    let node = TestNode::start("guarded");
    let stranger = SigningIdentity::generate();
    let mut c = Session::open(node.addr(), &stranger, "test-app");
    let key = DeployerKey::of(&stranger).to_string();
    for body in [
        NodeRequest::Status,
        NodeRequest::LoadBegin {
            module: "m".into(),
            size: 1,
        },
        NodeRequest::Unload { module: "m".into() },
        NodeRequest::Shutdown,
    ] {
        let why = refused(c.request(body));
        assert!(
            why.contains("does not admit") && why.contains(&key),
            "{why}"
        );
    }
    // Its events are dropped, not routed.
    let mut admitted = node.session();
    let before = admitted.status();
    assert!(before.refused >= 4, "refused {}", before.refused);
    c.send_event(Event {
        conn: ConnId(1),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter: 1,
        ciphertext: vec![0; 20],
    });
    let dropped = wait_for(
        "the unadmitted session's event to be dropped",
        PATIENCE,
        || {
            let dropped = admitted.status().dropped;
            (dropped > before.dropped).then_some(dropped)
        },
    );
    assert_eq!(dropped, before.dropped + 1);
}

#[test]
fn requests_must_follow_a_valid_proof_and_be_signed_in_order() {
    let node = TestNode::start("strict");
    let addr = node.addr();

    // A request before the proof.
    let mut c = Session::hello(addr, &test_deployer(), "test-app");
    let why = refused(c.request(NodeRequest::Status));
    assert!(why.contains("before the session proved"), "{why}");

    // A proof signed by someone else for the admitted key.
    let impostor = SigningIdentity::generate();
    let mut c = Session::open_claiming(
        addr,
        DeployerKey::of(&test_deployer()),
        &impostor,
        "test-app",
    );
    let why = refused(c.request(NodeRequest::Status));
    assert!(why.contains("authentication failed"), "{why}");

    // An admitted session: a bad signature and a replayed id are refused, and the session
    // goes on with the id the unsigned request did not use up.
    let mut c = node.session();
    c.status();
    let ToNode::Request { id, body, .. } = c.signed(2, NodeRequest::Status) else {
        unreachable!()
    };
    let bad = ToNode::Request {
        id,
        body,
        signature: Signature([0; 64]),
    };
    c.send(&bad);
    assert!(
        matches!(c.recv(), FromNode::Response { id: 2, result: Err(e) } if e.message.contains("not signed"))
    );
    let replay = c.signed(1, NodeRequest::Status);
    c.send(&replay);
    assert!(
        matches!(c.recv(), FromNode::Response { id: 1, result: Err(e) } if e.message.contains("replayed"))
    );
    assert_eq!(c.status().name, "strict");
    assert!(c.status().refused >= 4);
}

#[test]
fn open_mode_admits_anyone_but_keeps_namespaces() {
    // The module sends nothing after its hello (its output goes to /dev/null): a short
    // `exit` limit keeps status from waiting out the default for its exit.
    let node = TestNode::start_with("open", |c| {
        c.admit.clear();
        c.open = true;
        c.timeouts.set("exit", Duration::from_millis(20)).unwrap();
    });
    let stranger = SigningIdentity::generate();
    let mut s = Session::open(node.addr(), &stranger, "test-app");
    let bin = script(&node.scratch, "exec cat > /dev/null");
    s.load("m", &bin).unwrap();
    assert_eq!(s.status().modules.len(), 1);
    // The stranger's module is not the admitted deployer's.
    let mut d = node.session();
    assert!(d.status().modules.is_empty());
    let e = d.request(NodeRequest::Route {
        conn: ConnId(1),
        dir: Direction::Forward,
        to: Endpoint::Module("m".into()),
    });
    assert_eq!(
        e,
        Ok(NodeResponse::Done),
        "routes name modules in the own namespace"
    );
    let e = d
        .request(NodeRequest::Unload { module: "m".into() })
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::UnknownModule);
}
