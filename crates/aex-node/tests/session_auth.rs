//! Who may manage a node: admitted keys only, proven per session, every request signed.

use aex_crypto::SigningIdentity;
use aex_node::{Node, NodeError};
use aex_proto::auth::sign_session;
use aex_proto::{
    ConnId, DeployerKey, Direction, Endpoint, Event, EventKind, FromNode, NodeErrorKind,
    NodeRequest, NodeResponse, Signature, ToNode,
};

use crate::util::{config, deployer, script, Client, TestNode};

fn refused(result: Result<NodeResponse, aex_proto::NodeError>) -> String {
    let e = result.expect_err("the node refuses");
    assert_eq!(e.kind, NodeErrorKind::Refused, "{e}");
    e.message
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_admitted_deployers_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("closed", dir.path().join("data"), false);
    c.admit.clear();
    let e = Node::start(c).await.unwrap_err();
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

#[tokio::test(flavor = "multi_thread")]
async fn unadmitted_deployers_are_refused_every_request() {
    let node = TestNode::start("guarded").await;
    let stranger = SigningIdentity::generate();
    let mut c = Client::connect_as(&node.addr(), &stranger, "test-app").await;
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
        let why = refused(c.request(body).await);
        assert!(
            why.contains("does not admit") && why.contains(&key),
            "{why}"
        );
    }
    // Its events are dropped, not routed.
    let mut admitted = node.client().await;
    let before = admitted.status().await;
    assert!(before.refused >= 4, "refused {}", before.refused);
    c.send(&ToNode::Event(Event {
        conn: ConnId(1),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter: 1,
        ciphertext: vec![0; 20],
    }))
    .await;
    let mut dropped = before.dropped;
    for _ in 0..100 {
        dropped = admitted.status().await.dropped;
        if dropped > before.dropped {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(dropped, before.dropped + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_must_follow_a_valid_proof_and_be_signed_in_order() {
    let node = TestNode::start("strict").await;
    let addr = node.addr();

    // A request before the proof.
    let mut c = Client::hello(&addr, &deployer(), "test-app").await;
    let why = refused(c.request(NodeRequest::Status).await);
    assert!(why.contains("before the session proved"), "{why}");

    // A proof signed by someone else for the admitted key.
    let mut c = Client::hello(&addr, &deployer(), "test-app").await;
    let forged = sign_session(&SigningIdentity::generate(), &c.challenge, "test-app");
    c.send(&ToNode::Auth { signature: forged }).await;
    let why = refused(c.request(NodeRequest::Status).await);
    assert!(why.contains("authentication failed"), "{why}");

    // An admitted session: a bad signature, a replayed id and a lower id are refused, and the
    // session goes on.
    let mut c = node.client().await;
    c.status().await;
    let ToNode::Request { id, body, .. } = c.signed(2, NodeRequest::Status) else {
        unreachable!()
    };
    let bad = ToNode::Request {
        id,
        body,
        signature: Signature([0; 64]),
    };
    c.send(&bad).await;
    assert!(
        matches!(c.recv().await, FromNode::Response { id: 2, result: Err(e) } if e.message.contains("not signed"))
    );
    let replay = c.signed(1, NodeRequest::Status);
    c.send(&replay).await;
    assert!(
        matches!(c.recv().await, FromNode::Response { id: 1, result: Err(e) } if e.message.contains("replayed"))
    );
    c.next_id = 2;
    assert_eq!(c.status().await.name, "strict");
    assert!(c.status().await.refused >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn open_mode_admits_anyone_but_keeps_namespaces() {
    let node = TestNode::start_config("open", |c| {
        c.admit.clear();
        c.open = true;
    })
    .await;
    let stranger = SigningIdentity::generate();
    let mut s = Client::connect_as(&node.addr(), &stranger, "test-app").await;
    let bin = script(&node.scratch, "exec cat > /dev/null");
    s.load("m", &bin).await.unwrap();
    assert_eq!(s.status().await.modules.len(), 1);
    // The stranger's module is not the admitted deployer's.
    let mut d = node.client().await;
    assert!(d.status().await.modules.is_empty());
    let e = d
        .request(NodeRequest::Route {
            conn: ConnId(1),
            dir: Direction::Forward,
            to: Endpoint::Module("m".into()),
        })
        .await;
    assert_eq!(
        e,
        Ok(NodeResponse::Done),
        "routes name modules in the own namespace"
    );
    let e = d
        .request(NodeRequest::Unload { module: "m".into() })
        .await
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::UnknownModule);
}
