//! Tests of the router's flow control: where the credit a module or a peer grants goes, what
//! is refused, the windows the node keeps for deployers, and the credit of dropped events.
//! Modules here are detached ones (`Module::detached`): their input is a queue the test
//! reads; peers are identities, and the way back to one is a queue the test registers.

use std::time::Duration;

use aex_proto::flow::INITIAL_WINDOW;
use aex_proto::frame::{decode, LEN_PREFIX};
use aex_proto::{Event, EventKind, FromNode, ToModule};
use aex_tee::devices::{Access, DeviceError, Holder};
use tokio::time::{sleep, timeout, Instant};

use super::*;
use crate::credit::Window;

/// A node without devices.
struct NoDevices;

impl DeviceGrants for NoDevices {
    fn claim(&self, _: &Holder, _: &[String]) -> Result<(), DeviceError> {
        Ok(())
    }

    fn release(&self, _: &Holder) {}

    fn access(&self, _: &Holder, device: &str, _: Access) -> Result<u32, DeviceError> {
        Err(DeviceError::Unknown {
            device: device.into(),
            valid: vec![],
        })
    }

    fn is_held(&self, _: &str) -> bool {
        false
    }
}

const APP: AppId = AppId([1; 16]);
const OWNER: DeployerKey = DeployerKey([1; aex_crypto::PUBLIC_IDENTITY_LEN]);

/// A router whose peer links wait as long as `timeouts` say.
fn router_with(timeouts: Timeouts) -> (Arc<Router>, watch::Sender<bool>) {
    router_limited(timeouts, Limits::default())
}

/// A router whose peer links wait as long as `timeouts` say, within `limits`.
fn router_limited(timeouts: Timeouts, limits: Limits) -> (Arc<Router>, watch::Sender<bool>) {
    let (stop, shutdown) = watch::channel(false);
    let router = Router::new(
        "test".into(),
        Arc::new(StaticKey::generate()),
        shutdown,
        Arc::new(NoDevices),
        timeouts,
        limits,
    );
    (router, stop)
}

fn router() -> (Arc<Router>, watch::Sender<bool>) {
    router_with(Timeouts::default())
}

/// Loads a detached module `name` in [`APP`]; returns its input.
fn load(router: &Router, name: &str) -> queue::Receiver {
    let (module, input) = Module::detached(APP, name, 1 << 20);
    router.insert_module(module).unwrap();
    input
}

fn event(conn: u32, dir: Direction, size: usize) -> Event {
    Event {
        conn: ConnId(conn),
        dir,
        kind: EventKind::Event,
        counter: 1,
        ciphertext: vec![7; size],
    }
}

fn credit(conn: u32, dir: Direction, bytes: u32, dropped: u32) -> Credit {
    Credit {
        conn: ConnId(conn),
        dir,
        bytes,
        dropped,
    }
}

/// A router with module `dst` loaded and `(conn, Forward)` routed to it from `from`; `dst`'s
/// input.
fn routed_to_dst(conn: u32, from: Origin) -> (Arc<Router>, watch::Sender<bool>, queue::Receiver) {
    let (router, stop) = router();
    let dst_in = load(&router, "dst");
    route(&router, conn, Direction::Forward, to_module("dst"), from);
    (router, stop, dst_in)
}

/// A deployer session's way back from the router, and what it receives.
fn deployer_session() -> (DeployerTx, queue::Receiver) {
    let (tx, rx) = queue::channel(1 << 20);
    (DeployerTx { session: 1, tx }, rx)
}

fn to_module(name: &str) -> Endpoint {
    Endpoint::Module(name.into())
}

fn route(router: &Router, conn: u32, dir: Direction, to: Endpoint, from: Origin) {
    router
        .install(&OWNER, APP, ConnId(conn), dir, to, from)
        .unwrap();
}

/// The next frame on `queue`, decoded, within a few seconds.
async fn next<M: serde::de::DeserializeOwned>(queue: &mut queue::Receiver) -> M {
    let frame = timeout(Duration::from_secs(5), queue.recv())
        .await
        .expect("a frame within 5 s")
        .expect("the queue is open");
    decode(&frame[LEN_PREFIX..]).unwrap()
}

/// Waits until the router has counted `n` drops.
async fn dropped(router: &Router, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while router.dropped() < n {
        assert!(
            Instant::now() < deadline,
            "{} drops, not {n}",
            router.dropped()
        );
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(router.dropped(), n);
}

#[tokio::test]
async fn a_module_s_credit_reaches_the_local_module_that_sent_the_events() {
    let (router, _stop) = router();
    let mut src_in = load(&router, "src");
    let mut dst_in = load(&router, "dst");
    route(
        &router,
        1,
        Direction::Forward,
        to_module("dst"),
        Origin::Local,
    );
    let (mut src, dst) = (
        router.connect_module(APP, "src"),
        router.connect_module(APP, "dst"),
    );
    let ev = event(1, Direction::Forward, 100);
    src.event(ev.view());
    assert_eq!(next::<ToModule>(&mut dst_in).await, ToModule::Event(ev));
    let granted = credit(1, Direction::Forward, 132, 0);
    dst.credit(granted);
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(granted)
    );
    assert_eq!(router.dropped(), 0);
}

#[tokio::test]
async fn a_module_crediting_events_not_routed_to_it_is_ignored_and_counted() {
    let (router, _stop) = router();
    let mut src_in = load(&router, "src");
    let _dst_in = load(&router, "dst");
    let _other_in = load(&router, "other");
    route(
        &router,
        1,
        Direction::Forward,
        to_module("dst"),
        Origin::Local,
    );
    assert!(router.note_source(APP, (ConnId(1), Direction::Forward), "src"));
    let other = router.connect_module(APP, "other");
    // Routed to another module, and not routed at all.
    other.credit(credit(1, Direction::Forward, 1000, 0));
    other.credit(credit(9, Direction::Forward, 1000, 0));
    dropped(&router, 2).await;
    assert!(src_in.try_recv().is_none());
}

#[tokio::test]
async fn a_peer_s_credit_counts_only_for_events_routed_to_its_identity() {
    let (router, _stop) = router();
    let mut src_in = load(&router, "src");
    let (peer, stranger) = (NodeKey([2; 32]), NodeKey([3; 32]));
    let to_peer = Endpoint::Node {
        address: "127.0.0.1:9".into(),
        identity: peer,
    };
    route(&router, 2, Direction::Forward, to_peer, Origin::Local);
    assert!(router.note_source(APP, (ConnId(2), Direction::Forward), "src"));
    let granted = credit(2, Direction::Forward, 500, 0);
    router.credit_from_peer(&stranger, APP, granted);
    assert_eq!(router.dropped(), 1);
    assert!(src_in.try_recv().is_none());
    router.credit_from_peer(&peer, APP, granted);
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(granted)
    );
    // Another namespace's route is not this one's.
    router.credit_from_peer(&peer, AppId([9; 16]), granted);
    assert_eq!(router.dropped(), 2);
}

#[tokio::test]
async fn a_deployer_window_debits_refuses_past_zero_credits_back_and_resets() {
    let (router, _stop, mut dst_in) = routed_to_dst(3, Origin::Deployer);
    let (session, _session_rx) = deployer_session();
    let window = |router: &Router| router.window(APP, ConnId(3), Direction::Forward);
    let fresh = Window {
        credit: i64::from(INITIAL_WINDOW),
        in_flight: 0,
    };
    assert_eq!(window(&router), Some(fresh));

    // Events of 10,000 bytes: the seventh takes the window below zero, the eighth is refused.
    let ev = event(3, Direction::Forward, 10_000);
    let cost = flow::cost(&ev);
    for _ in 0..7 {
        router.route(APP, ev.view(), Source::Deployer(&session));
    }
    let spent = Window {
        credit: i64::from(INITIAL_WINDOW) - 7 * i64::from(cost),
        in_flight: 7 * u64::from(cost),
    };
    assert!(spent.credit < 0);
    assert_eq!(window(&router), Some(spent));
    assert_eq!(router.dropped(), 0);
    router.route(APP, ev.view(), Source::Deployer(&session));
    assert_eq!(router.dropped(), 1);
    assert_eq!(window(&router), Some(spent));
    for _ in 0..7 {
        assert_eq!(
            next::<ToModule>(&mut dst_in).await,
            ToModule::Event(ev.clone())
        );
    }
    assert!(dst_in.try_recv().is_none());

    // The module takes two in: the window has room again.
    router.credit_from_module(APP, "dst", credit(3, Direction::Forward, 2 * cost, 0));
    let credited = Window {
        credit: spent.credit + 2 * i64::from(cost),
        in_flight: 5 * u64::from(cost),
    };
    assert_eq!(window(&router), Some(credited));

    // Re-routed (re-keyed): afresh. Unrouted: gone, and events are no longer debited.
    route(
        &router,
        3,
        Direction::Forward,
        to_module("dst"),
        Origin::Deployer,
    );
    assert_eq!(window(&router), Some(fresh));
    router.uninstall(APP, ConnId(3), Direction::Forward);
    assert_eq!(window(&router), None);
}

#[tokio::test]
async fn a_dropped_event_returns_its_credit_to_its_local_source() {
    let (router, _stop) = router();
    let mut src_in = load(&router, "src");
    // No route.
    let ev = event(4, Direction::Forward, 50);
    let cost = flow::cost(&ev);
    router.route(APP, ev.view(), Source::Module("src"));
    assert_eq!(router.dropped(), 1);
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(credit(4, Direction::Forward, cost, 1))
    );
    // A route to a module that is not loaded.
    route(
        &router,
        4,
        Direction::Forward,
        to_module("gone"),
        Origin::Local,
    );
    router.route(
        APP,
        event(4, Direction::Forward, 50).view(),
        Source::Module("src"),
    );
    assert_eq!(router.dropped(), 2);
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(credit(4, Direction::Forward, cost, 1))
    );
}

#[tokio::test]
async fn a_deployer_event_on_a_route_between_modules_is_dropped_not_delivered() {
    // A connection between two modules: its events come from a local module, and no window
    // exists for the deployer's.
    let (router, _stop, mut dst_in) = routed_to_dst(4, Origin::Local);
    let (session, _session_rx) = deployer_session();
    for _ in 0..3 {
        router.route(
            APP,
            event(4, Direction::Forward, 100).view(),
            Source::Deployer(&session),
        );
    }
    dropped(&router, 3).await;
    assert!(dst_in.try_recv().is_none());
    assert_eq!(router.window(APP, ConnId(4), Direction::Forward), None);
}

#[tokio::test]
async fn an_event_for_a_deployer_session_is_credited_once_queued() {
    let (router, _stop) = router();
    let mut src_in = load(&router, "src");
    route(
        &router,
        5,
        Direction::Backward,
        Endpoint::Deployer,
        Origin::Local,
    );
    let reply = event(5, Direction::Backward, 60);
    let cost = flow::cost(&reply);
    // No session yet: dropped, and credited as such.
    router.route(APP, reply.view(), Source::Module("src"));
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(credit(5, Direction::Backward, cost, 1))
    );
    let (session, mut session_rx) = deployer_session();
    // The session's event on the connection makes it the destination of the replies.
    router.route(
        APP,
        event(5, Direction::Forward, 1).view(),
        Source::Deployer(&session),
    );
    assert_eq!(router.dropped(), 2);
    router.route(APP, reply.view(), Source::Module("src"));
    assert_eq!(
        next::<FromNode>(&mut session_rx).await,
        FromNode::Event(reply)
    );
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(credit(5, Direction::Backward, cost, 0))
    );
    assert_eq!(router.dropped(), 2);
}

#[tokio::test]
async fn credit_for_a_peer_s_events_goes_back_over_its_inbound_link() {
    let (router, _stop) = router();
    let _dst_in = load(&router, "dst");
    let peer = NodeKey([4; 32]);
    let (tx, mut back) = queue::channel(64 << 10);
    let token = router.register_inbound(peer, tx);
    route(
        &router,
        6,
        Direction::Forward,
        to_module("dst"),
        Origin::Peer(peer),
    );
    let granted = credit(6, Direction::Forward, 777, 0);
    router.credit_from_module(APP, "dst", granted);
    assert_eq!(
        next::<FromNode>(&mut back).await,
        FromNode::Credit {
            app: APP,
            credit: granted
        }
    );
    // Its event on a connection with no route: dropped, and its credit sent back.
    let ev = event(8, Direction::Forward, 10);
    let cost = flow::cost(&ev);
    router.route(APP, ev.view(), Source::Peer(&peer));
    assert_eq!(
        next::<FromNode>(&mut back).await,
        FromNode::Credit {
            app: APP,
            credit: credit(8, Direction::Forward, cost, 1)
        }
    );
    // Once its link is gone, credit for it is dropped and counted.
    router.unregister_inbound(&peer, token);
    router.credit_from_module(APP, "dst", granted);
    assert_eq!(router.dropped(), 2);
}

#[tokio::test]
async fn events_a_peer_link_drops_as_stale_return_their_credit_to_their_source() {
    let mut timeouts = Timeouts::default();
    timeouts.set("stale", Duration::from_millis(50)).unwrap();
    timeouts.set("backoff", Duration::from_millis(10)).unwrap();
    timeouts
        .set("backoff_max", Duration::from_millis(20))
        .unwrap();
    let (router, _stop) = router_with(timeouts);
    let mut src_in = load(&router, "src");
    // A port nothing listens on (any more).
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let to_peer = Endpoint::Node {
        address,
        identity: NodeKey([5; 32]),
    };
    route(&router, 7, Direction::Forward, to_peer, Origin::Local);
    let mut src = router.connect_module(APP, "src");
    let ev = event(7, Direction::Forward, 30);
    let cost = flow::cost(&ev);
    src.event(ev.view());
    src.event(ev.view());
    assert_eq!(
        next::<ToModule>(&mut src_in).await,
        ToModule::Credit(credit(7, Direction::Forward, 2 * cost, 2))
    );
    assert_eq!(router.dropped(), 2);
}

/// A co-tenant that turns hostile installs routes until the node refuses: its routes and the
/// peer nodes they lead to are capped per identity, over all its namespaces, a refused route
/// creates no peer link, and replacing, removing and forgetting routes gives their room back.
#[tokio::test]
async fn a_deployer_s_routes_and_peers_are_capped_over_all_its_namespaces() {
    let limits = Limits {
        deployer_routes: 4,
        deployer_peers: 2,
        ..Limits::default()
    };
    let (router, _stop) = router_limited(Timeouts::default(), limits);
    let other = DeployerKey([2; aex_crypto::PUBLIC_IDENTITY_LEN]);
    let peer = |n: u8| Endpoint::Node {
        address: format!("127.0.0.1:{}", 40_000 + u16::from(n)),
        identity: NodeKey([n; 32]),
    };
    let install = |owner: &DeployerKey, app: u8, conn: u32, to: Endpoint| {
        router.install(
            owner,
            AppId([app; 16]),
            ConnId(conn),
            Direction::Forward,
            to,
            Origin::Deployer,
        )
    };
    // Two namespaces of one identity share its quota.
    install(&OWNER, 1, 1, to_module("a")).unwrap();
    install(&OWNER, 2, 1, peer(1)).unwrap();
    install(&OWNER, 2, 2, peer(2)).unwrap();
    let third_peer = install(&OWNER, 1, 2, peer(3)).unwrap_err();
    assert_eq!(third_peer.kind, NodeErrorKind::Refused);
    assert!(
        third_peer.message.contains("`deployer_peers`"),
        "{}",
        third_peer.message
    );
    assert_eq!(lock(&router.peers).len(), 2, "a refused route made no link");
    // A known peer takes no new room for peers.
    install(&OWNER, 1, 2, peer(1)).unwrap();
    let fifth = install(&OWNER, 1, 3, to_module("a")).unwrap_err();
    assert!(
        fifth.message.contains("`deployer_routes`"),
        "{}",
        fifth.message
    );
    assert!(
        fifth.message.contains("--limit deployer_routes="),
        "{}",
        fifth.message
    );
    // Replacing a route takes no more room; another identity has its own.
    install(&OWNER, 1, 1, to_module("b")).unwrap();
    install(&other, 3, 1, peer(3)).unwrap();
    assert_eq!(router.routes.held(&OWNER), (4, 2));
    // Removed and forgotten routes give their room back.
    router.uninstall(AppId([2; 16]), ConnId(2), Direction::Forward);
    assert_eq!(router.routes.held(&OWNER), (3, 1));
    router.routes.forget_module(AppId([1; 16]), "b");
    assert_eq!(router.routes.held(&OWNER), (2, 1));
    install(&OWNER, 1, 3, peer(3)).unwrap();
    install(&OWNER, 1, 4, to_module("a")).unwrap();
    assert_eq!(router.routes.held(&OWNER), (4, 2));
}
