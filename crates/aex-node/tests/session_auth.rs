//! Who may manage a node: admitted keys only, each proven for its own link to this node.

use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_node::NodeError;
use aex_proto::auth::sign_session;
use aex_proto::{
    ConnId, DeployerKey, Direction, Endpoint, Event, EventKind, FromNode, NodeErrorKind, NodeKey,
    NodeRequest, NodeResponse,
};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_for, PATIENCE};

use crate::scripts::script;

fn refused(result: Result<NodeResponse, aex_proto::NodeError>) -> String {
    refused_as(NodeErrorKind::Refused, result)
}

/// The message of a refusal of `kind`.
fn refused_as(kind: NodeErrorKind, result: Result<NodeResponse, aex_proto::NodeError>) -> String {
    let e = result.expect_err("the node refuses");
    assert_eq!(e.kind, kind, "{e}");
    e.message
}

/// The message of a refusal of a key the node does not admit.
fn not_admitted(result: Result<NodeResponse, aex_proto::NodeError>) -> String {
    refused_as(NodeErrorKind::NotAdmitted, result)
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
        let why = not_admitted(c.request(body));
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
fn the_proof_must_be_for_this_link_and_this_node_and_ids_must_increase() {
    let node = TestNode::start("strict");
    let addr = node.addr();
    let me = test_deployer();
    let key = DeployerKey::of(&me);

    // A proof signed by someone else for the admitted key.
    let impostor = SigningIdentity::generate();
    let mut c = Session::open_claiming(addr, key, &impostor, "test-app");
    let why = refused(c.request(NodeRequest::Status));
    assert!(why.contains("authentication failed"), "{why}");

    // A genuine proof recorded from another link (a replayed Hello).
    let other = Session::open(addr, &me, "test-app");
    let recorded = sign_session(&me, &other.handshake_hash(), &node.identity(), "test-app");
    let mut c = Session::linked(addr);
    c.send_hello(key, "test-app", recorded);
    let why = refused(c.request(NodeRequest::Status));
    assert!(why.contains("authentication failed"), "{why}");

    // A genuine proof for this link, made for another node (a Hello relayed by a node that
    // opened its own link to this one).
    let mut c = Session::linked(addr);
    let elsewhere = sign_session(&me, &c.handshake_hash(), &NodeKey([7; 32]), "test-app");
    c.send_hello(key, "test-app", elsewhere);
    let why = refused(c.request(NodeRequest::Status));
    assert!(why.contains("authentication failed"), "{why}");

    // An admitted session: a repeated id is refused and the session goes on.
    let mut c = node.session();
    c.status();
    c.send_request(1, NodeRequest::Status);
    assert!(
        matches!(c.recv(), FromNode::Response { id: 1, result: Err(e) } if e.message.contains("not above"))
    );
    c.send_request(5, NodeRequest::Status);
    assert!(matches!(
        c.recv(),
        FromNode::Response {
            id: 5,
            result: Ok(_)
        }
    ));

    // A request before any Hello ends the link.
    let mut c = Session::linked(addr);
    c.send_request(1, NodeRequest::Status);
    assert!(c.closed_by_node(PATIENCE));

    let mut c = node.session();
    assert_eq!(c.status().name, "strict");
    assert!(c.status().refused >= 4);
}

#[test]
fn a_refused_session_is_closed_at_the_authentication_deadline() {
    let limit = Duration::from_millis(300);
    let node = TestNode::start_with("deadline", |c| c.timeouts.set("hello", limit).unwrap());
    // An admitted session opened first outlives the deadline the refused one meets.
    let mut ok = node.session();
    let started = std::time::Instant::now();
    let mut c = Session::open(node.addr(), &SigningIdentity::generate(), "test-app");
    let why = not_admitted(c.request(NodeRequest::Status));
    assert!(why.contains("does not admit"), "{why}");
    assert!(c.closed_by_node(PATIENCE), "still open after {PATIENCE:?}");
    assert!(
        started.elapsed() >= limit,
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(ok.status().name, "deadline");
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
        from: aex_proto::Origin::Local,
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
