//! What a connection, a source address and an admitted deployer may take of a node: each over
//! its limit is refused at once, with an answer that names the limit and the setting that
//! raises it, and counted in `refused`; what is within its limit, and everyone else, is served.

use std::net::IpAddr;
use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_proto::{
    ConnId, DeployerKey, Direction, Endpoint, NodeErrorKind, NodeRequest, NodeResponse, Origin,
};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_for, PATIENCE};

use crate::scripts::script;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Whether the node closes `c` within 300 ms (it does at once for a refused connection; an
/// accepted one that sent nothing stays open until the `hello` limit, 30 s here).
fn refused(c: &mut Session) -> bool {
    c.closed_by_node(Duration::from_millis(300))
}

#[test]
fn connections_over_the_caps_are_closed_at_once_and_counted() {
    let node = TestNode::start_with("caps", |c| {
        c.limits.set("max_connections", 8).unwrap();
        c.limits.set("max_connections_per_address", 3).unwrap();
        c.timeouts.set("hello", Duration::from_secs(30)).unwrap();
    });
    let addr = node.addr();

    // Three connections that say nothing from 127.0.0.2 are held; a fourth is closed at once.
    let mut held: Vec<Session> = (0..3)
        .map(|_| Session::raw_from(addr, ip("127.0.0.2")))
        .collect();
    let mut fourth = Session::raw_from(addr, ip("127.0.0.2"));
    assert!(
        refused(&mut fourth),
        "a fourth connection from one address was served"
    );
    assert!(
        !refused(&mut held[0]),
        "a connection within the caps was closed"
    );

    // Other addresses have their own three, up to eight in all.
    held.extend((0..3).map(|_| Session::raw_from(addr, ip("127.0.0.3"))));
    held.extend((0..2).map(|_| Session::raw_from(addr, ip("127.0.0.4"))));
    let mut ninth = Session::raw_from(addr, ip("127.0.0.5"));
    assert!(refused(&mut ninth), "a ninth connection was served");
    for i in [3, 7] {
        assert!(
            !refused(&mut held[i]),
            "a connection within the caps was closed"
        );
    }

    // The held connections go; their places come back, and the refusals were counted.
    for c in held.drain(..) {
        c.close();
    }
    let status = wait_for("the node to take connections again", PATIENCE, || {
        let mut s = Session::linked_from(addr, ip("127.0.0.5")).ok()?;
        s.send_hello(
            aex_proto::DeployerKey::of(&test_deployer()),
            "test-app",
            aex_proto::auth::sign_session(
                &test_deployer(),
                &s.handshake_hash(),
                &s.node_key(),
                "test-app",
            ),
        );
        Some(s.status())
    });
    // The two above, and any attempt of the wait that came before the node saw the held
    // connections close.
    assert!(status.refused >= 2, "refused {}", status.refused);
}

/// Pipelines `n` `Status` requests on `s`; returns the refusals among the answers.
fn burst(s: &mut Session, first_id: u64, n: u64) -> Vec<String> {
    for id in first_id..first_id + n {
        s.send_request(id, NodeRequest::Status);
    }
    let mut refusals = vec![];
    for _ in 0..n {
        if let aex_proto::FromNode::Response { result: Err(e), .. } = s.recv() {
            assert_eq!(e.kind, NodeErrorKind::Refused, "{e}");
            refusals.push(e.message);
        }
    }
    refusals
}

#[test]
fn an_admitted_deployer_is_held_to_its_request_rate() {
    let other = SigningIdentity::from_seed(&[0xc1; 32]);
    let node = TestNode::start_with("rate", |c| {
        c.admit.push(aex_proto::DeployerKey::of(&other));
        c.limits.set("deployer_requests_per_second", 20).unwrap();
    });
    let addr = node.addr();
    let mut a = Session::open(addr, &test_deployer(), "app-1");

    // A second's worth passes, the rest of a burst of 200 is refused, naming the setting.
    let refusals = burst(&mut a, 1, 200);
    assert!(
        (100..=180).contains(&refusals.len()),
        "{} of 200 refused",
        refusals.len()
    );
    assert!(
        refusals[0].contains("node `rate`")
            && refusals[0].contains("more than 20 requests per second")
            && refusals[0].contains("`deployer_requests_per_second`")
            && refusals[0].contains("aex node --limit deployer_requests_per_second="),
        "{}",
        refusals[0]
    );
    // The rate is the identity's, over all its sessions and applications.
    let mut a2 = Session::open(addr, &test_deployer(), "app-2");
    assert!(!burst(&mut a2, 1, 5).is_empty());
    // Another deployer is not affected, and the refusals were counted.
    let mut b = Session::open(addr, &other, "x");
    assert!(burst(&mut b, 1, 10).is_empty());
    let counted = Session::open(addr, &other, "y").status().refused;
    assert!(counted >= refusals.len() as u64, "{counted}");
    // The rate refills: a request later passes again.
    let mut next = 201;
    wait_for("A's requests to pass again", PATIENCE, || {
        next += 1;
        burst(&mut a, next - 1, 1).is_empty().then_some(())
    });
}

#[test]
fn an_admitted_deployer_is_held_to_its_modules_and_uploads_in_progress() {
    let node = TestNode::start_with("quota", |c| {
        c.limits.set("deployer_modules", 2).unwrap();
        c.limits.set("deployer_upload_bytes", 1 << 20).unwrap();
    });
    let addr = node.addr();
    let bin = script(&node.scratch, "exec sleep 600");
    let mut a = Session::open(addr, &test_deployer(), "app-1");
    a.load("one", &bin).unwrap();

    // Uploads in progress count against the identity's bytes, across its sessions.
    let begin = |module: &str, size: u64| NodeRequest::LoadBegin {
        module: module.into(),
        size,
    };
    assert_eq!(a.request(begin("two", 600 << 10)), Ok(NodeResponse::Done));
    let mut a2 = Session::open(addr, &test_deployer(), "app-2");
    let e = a2.request(begin("big", 600 << 10)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(
        e.message.contains("module `big` (600 KiB)")
            && e.message
                .contains("1200 KiB of uploads in progress (600 KiB already)")
            && e.message
                .contains("limit of 1 MiB (`deployer_upload_bytes`)")
            && e.message
                .contains("aex node --limit deployer_upload_bytes="),
        "{}",
        e.message
    );

    // One module loaded and one upload in progress: a third is refused, in any application.
    let e = a2.request(begin("three", 100)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(
        e.message.contains("deployer ")
            && e.message
                .contains("has 2 modules there (uploads in progress included)")
            && e.message.contains("`deployer_modules`"),
        "{}",
        e.message
    );

    // The upload in progress ends with its session: its bytes and its place come back.
    a.close();
    let mut a3 = Session::open(addr, &test_deployer(), "app-3");
    wait_for(
        "the abandoned upload's quota to come back",
        PATIENCE,
        || a3.load("three", &bin).ok(),
    );
    let e = a3.load("four", &bin).unwrap_err();
    assert!(e.message.contains("`deployer_modules`"), "{}", e.message);
    // Unloading one gives its place back.
    a3.request(NodeRequest::Unload {
        module: "three".into(),
    })
    .unwrap();
    a3.load("four", &bin).unwrap();
}

/// A co-tenant floods the node with routes, in several of its applications, to grow the
/// node's tables and journal without bound: it is refused past `deployer_routes` with the
/// setting that raises it, while another deployer still routes.
#[test]
fn an_admitted_deployer_is_held_to_its_routes() {
    let other = SigningIdentity::generate();
    let node = TestNode::start_with("routes", |c| {
        c.limits.set("deployer_routes", 50).unwrap();
        c.admit.push(DeployerKey::of(&other));
    });
    let addr = node.addr();
    let route = |conn: u32| NodeRequest::Route {
        conn: ConnId(conn),
        dir: Direction::Forward,
        to: Endpoint::Module("nobody".into()),
        from: Origin::Deployer,
    };
    let mut accepted = 0;
    let mut refusal = None;
    for app in ["flood-1", "flood-2", "flood-3"] {
        let mut s = Session::open(addr, &test_deployer(), app);
        for conn in 0..30 {
            match s.request(route(conn)) {
                Ok(_) => accepted += 1,
                Err(e) => refusal = Some(e),
            }
        }
    }
    assert_eq!(accepted, 50, "routes over all the identity's applications");
    let e = refusal.expect("a refusal");
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(
        e.message.contains("has 50 routes") && e.message.contains("--limit deployer_routes="),
        "{}",
        e.message
    );
    // Another deployer identity has its own room.
    let mut o = Session::open(addr, &other, "other");
    assert_eq!(o.request(route(1)), Ok(NodeResponse::Done));
}
