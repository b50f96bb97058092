//! A compromised node agent between node1 and node2, attacking events.
//!
//! Links are authenticated and encrypted, so the network cannot do any of this any more (a
//! changed record ends the link: `adversarial_links.rs`). A node agent can: it sees every
//! event header and can forward anything. The proxy in front of node2 holds node2's identity
//! key and node1's (it is node2's compromised agent, re-originating node1's link); the
//! descriptor gives node2's address as the proxy's, so node1's event link to node2 (carrying
//! ping's events to pong) crosses it, as do the deployer's sessions with node2 (untouched
//! here). Each test arms one attack on the events of connection `ping-to-pong` once the
//! application is deployed, runs pings, and checks that pong refused and counted the attack,
//! that legitimate events kept flowing, and that nothing crashed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aex_proto::{AppId, ConnId, Direction, Event, ToNode};

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::session as wire;
use aex_testkit::status::{counters, AppStatus as Status, StatusExt};
use aex_testkit::{wait_for, PATIENCE};

/// Pings per run.
const RUN: u64 = 40;
/// The event counter (on `ping-to-pong`) each attack aims at.
const AT: u64 = 10;

/// What the attacker does to event [`AT`] of `ping-to-pong`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Sends a copy with one ciphertext bit flipped, then the original.
    FlipBit,
    /// Sends a copy with a counter far ahead (the tag cannot verify), then the original.
    CounterJump,
    /// Sends the event twice, and once more just before event `AT + 5`.
    Replay,
    /// Holds the event back and sends it after event `AT + 1`.
    Reorder,
    /// Sends a copy relabelled as an event of connection `poke`, then the original.
    Relabel,
    /// Sends a frame whose length prefix exceeds the limit, then the original.
    OversizedFrame,
}

/// The attacker's state.
struct EventAttack {
    attack: Attack,
    /// Connection ids once armed: `ping-to-pong`, and `poke` for relabelling.
    armed: Mutex<Option<(u32, u32)>>,
    /// Event `AT`, kept for later (reorder, replay).
    kept: Mutex<Option<Event>>,
    /// Event `AT` seen (and, for a reorder, held back).
    seen: AtomicBool,
    /// Attack frames sent.
    fired: AtomicU32,
}

impl EventAttack {
    fn new(attack: Attack) -> Arc<Self> {
        Arc::new(EventAttack {
            attack,
            armed: Mutex::new(None),
            kept: Mutex::new(None),
            seen: AtomicBool::new(false),
            fired: AtomicU32::new(0),
        })
    }

    fn arm(&self, target: u32, poke: u32) {
        *self.armed.lock().unwrap() = Some((target, poke));
    }

    fn seen(&self) -> bool {
        self.seen.load(Ordering::SeqCst)
    }

    fn fired(&self) -> u32 {
        self.fired.load(Ordering::SeqCst)
    }

    /// Counts an attack frame.
    fn mark(&self, out: Out) -> Out {
        self.fired.fetch_add(1, Ordering::SeqCst);
        out
    }

    /// What to send for `ev`, an event of the target connection.
    fn attack(&self, app: AppId, ev: Event, poke: u32) -> Vec<Out> {
        let pass = |event: Event| Out::ToNode(ToNode::Forward { app, event });
        if ev.counter == AT {
            self.seen.store(true, Ordering::SeqCst);
        }
        match self.attack {
            Attack::FlipBit if ev.counter == AT => {
                let mut bad = ev.clone();
                let mid = bad.ciphertext.len() / 2;
                bad.ciphertext[mid] ^= 0x01;
                vec![self.mark(pass(bad)), pass(ev)]
            }
            Attack::CounterJump if ev.counter == AT => {
                let mut bad = ev.clone();
                bad.counter = AT + 1_000_000;
                vec![self.mark(pass(bad)), pass(ev)]
            }
            Attack::Replay if ev.counter == AT => {
                *self.kept.lock().unwrap() = Some(ev.clone());
                vec![pass(ev.clone()), self.mark(pass(ev))]
            }
            Attack::Replay if ev.counter == AT + 5 => match self.kept.lock().unwrap().take() {
                Some(old) => vec![self.mark(pass(old)), pass(ev)],
                None => vec![pass(ev)],
            },
            Attack::Reorder if ev.counter == AT => {
                *self.kept.lock().unwrap() = Some(ev);
                vec![]
            }
            Attack::Reorder if ev.counter == AT + 1 => match self.kept.lock().unwrap().take() {
                Some(held) => vec![pass(ev), self.mark(pass(held))],
                None => vec![pass(ev)],
            },
            Attack::Relabel if ev.counter == AT => {
                let mut moved = ev.clone();
                moved.conn = ConnId(poke);
                *self.kept.lock().unwrap() = Some(moved.clone());
                vec![self.mark(pass(moved)), pass(ev)]
            }
            Attack::OversizedFrame if ev.counter == AT => {
                let mut junk = u32::MAX.to_be_bytes().to_vec();
                junk.extend_from_slice(&[1, 2, 3, 4]);
                vec![self.mark(Out::RawToNode(junk)), pass(ev)]
            }
            _ => vec![pass(ev)],
        }
    }
}

impl Tamper for EventAttack {
    fn upstream(&self, link: Link, msg: ToNode) -> Vec<Out> {
        let armed = *self.armed.lock().unwrap();
        match (link, msg, armed) {
            (Link::Peer, ToNode::Forward { app, event }, Some((target, poke)))
                if event.conn == ConnId(target) && event.dir == Direction::Forward =>
            {
                self.attack(app, event, poke)
            }
            (_, msg, _) => vec![Out::ToNode(msg)],
        }
    }
}

/// A deployed cluster with `attack` armed on `ping-to-pong`; also returns pong's pid.
fn attacked(attack: Attack) -> (Cluster, Arc<EventAttack>, Option<u32>) {
    attacked_pong(attack, false)
}

/// [`attacked`], with the C pong (examples/ping-pong-c) if `c_pong`.
fn attacked_pong(attack: Attack, c_pong: bool) -> (Cluster, Arc<EventAttack>, Option<u32>) {
    let tamper = EventAttack::new(attack);
    let cluster = Cluster::start(Options {
        tamper: Some(tamper.clone()),
        poke: true,
        c_pong,
        ..Options::default()
    });
    cluster.deploy_ok();
    let app = &cluster.app;
    let (target, poke) = (app.conn_id("ping-to-pong"), app.conn_id("poke"));
    tamper.arm(target, poke);
    let status = app.status();
    // `aex status` shows the ids the deployer recorded.
    assert_eq!(status.connection("ping-to-pong").id, Some(target));
    assert_eq!(status.connection("poke").id, Some(poke));
    let pong = status.module("pong").pid;
    assert!(pong.is_some());
    (cluster, tamper, pong)
}

/// Nothing crashed: both nodes and both modules (the same pong process) still run attested,
/// and pong answered exactly `pongs` pings.
fn assert_survived(cluster: &mut Cluster, pong_pid: Option<u32>, pongs: u64) -> Status {
    cluster.assert_nodes_running();
    let status = cluster.app.status();
    status.assert_healthy();
    assert_eq!(status.module("pong").pid, pong_pid, "pong was restarted");
    assert_eq!(cluster.app.call("pong", "count", None), pongs);
    status
}

/// Runs one ping run through an attack that leaves a legitimate copy of every event flowing;
/// returns the status afterwards.
fn run_through(attack: Attack, expect_fired: u32) -> Status {
    run_through_pong(attack, expect_fired, false)
}

/// [`run_through`], with the C pong if `c_pong`.
fn run_through_pong(attack: Attack, expect_fired: u32, c_pong: bool) -> Status {
    let (mut cluster, tamper, pong) = attacked_pong(attack, c_pong);
    cluster.app.start_pings(RUN as u32);
    cluster.app.wait_pings_done(RUN as u32);
    assert_eq!(tamper.fired(), expect_fired, "the attack ran");
    let status = assert_survived(&mut cluster, pong, RUN);
    assert_eq!(status.counters("pong-to-ping"), counters(RUN, RUN, 0, 0));
    status
}

#[test]
fn flipped_ciphertext_bit_is_rejected() {
    let status = run_through(Attack::FlipBit, 1);
    assert_eq!(status.counters("ping-to-pong"), counters(RUN, RUN, 1, 0));
}

#[test]
fn forged_counter_is_rejected_and_does_not_advance_the_receiver() {
    // Had the forged counter been accepted (or advanced the window), the genuine event and all
    // later ones would be stale and the run would stall.
    let status = run_through(Attack::CounterJump, 1);
    assert_eq!(status.counters("ping-to-pong"), counters(RUN, RUN, 1, 0));
}

#[test]
fn replayed_events_are_rejected() {
    // Once right after the original, once five events later.
    let status = run_through(Attack::Replay, 2);
    assert_eq!(status.counters("ping-to-pong"), counters(RUN, RUN, 2, 0));
}

/// The same attacks on the C pong (examples/ping-pong-c): the runtime it links refuses them
/// as it does for the Rust pong.
#[test]
fn flipped_forged_and_replayed_events_are_rejected_by_the_c_pong() {
    for (attack, fired) in [
        (Attack::FlipBit, 1),
        (Attack::CounterJump, 1),
        (Attack::Replay, 2),
    ] {
        let status = run_through_pong(attack, fired, true);
        assert_eq!(
            status.counters("ping-to-pong"),
            counters(RUN, RUN, u64::from(fired), 0)
        );
    }
}

#[test]
fn event_relabelled_to_another_connection_is_rejected_there() {
    let (mut cluster, tamper, pong) = attacked(Attack::Relabel);
    let node2 = cluster.node2.addr;
    let dropped = wire::node_status(node2).dropped;
    cluster.app.start_pings(RUN as u32);
    cluster.app.wait_pings_done(RUN as u32);
    assert_eq!(tamper.fired(), 1, "the attack ran");
    // Forwarded on node1's link, the relabelled copy is dropped by node2: the route of `poke`
    // names the deployer as its events' origin, not node1.
    assert_eq!(wire::node_status(node2).dropped, dropped + 1);
    // Handed to pong by node2's own agent (a session in the application's namespace), pong
    // refuses it: it holds a key for `poke`, but the event's authentication binds
    // `ping-to-pong`'s id and key.
    let moved = tamper
        .kept
        .lock()
        .unwrap()
        .clone()
        .expect("the relabelled copy");
    wire::app_session(node2).send_event(moved);
    wait_for("pong to refuse the relabelled event", PATIENCE, || {
        (cluster.app.status().counters("poke").rejected == 1).then_some(())
    });
    let status = assert_survived(&mut cluster, pong, RUN);
    assert_eq!(status.counters("ping-to-pong"), counters(RUN, RUN, 0, 0));
    assert_eq!(status.counters("poke"), counters(0, 0, 1, 0));
}

/// Starts a run, waits until the attack has taken event [`AT`] and the run has stalled at
/// `AT - 1` round trips, runs `meanwhile`, then starts a second run, which must complete.
fn stall_then_second_run(cluster: &Cluster, tamper: &EventAttack, meanwhile: impl FnOnce()) {
    cluster.app.start_pings(RUN as u32);
    wait_for("the attack to take its event", PATIENCE, || {
        tamper.seen().then_some(())
    });
    wait_for("the first run to stall", PATIENCE, || {
        let s = cluster.app.ping_stats();
        (s["completed"] == AT - 1).then_some(())
    });
    let stats = cluster.app.ping_stats();
    assert_eq!(stats["done"], false, "{stats}");
    meanwhile();
    cluster.app.start_pings(RUN as u32);
    cluster.app.wait_pings_done(RUN as u32);
}

#[test]
fn reordered_events_one_accepted_with_a_gap_the_other_rejected() {
    reordered(false);
}

#[test]
fn reordered_events_to_the_c_pong_one_accepted_with_a_gap_the_other_rejected() {
    reordered(true);
}

fn reordered(c_pong: bool) {
    let (mut cluster, tamper, pong) = attacked_pong(Attack::Reorder, c_pong);
    // Ping sends the next ping only on a pong: holding event AT stalls the first run; the
    // second run's first event (AT + 1) releases it, after itself.
    stall_then_second_run(&cluster, &tamper, || {});
    assert_eq!(tamper.fired(), 1, "the held event was sent late");
    let delivered = AT - 1 + RUN;
    let status = assert_survived(&mut cluster, pong, delivered);
    assert_eq!(
        status.counters("ping-to-pong"),
        counters(AT + RUN, delivered, 1, 1)
    );
    assert_eq!(
        status.counters("pong-to-ping"),
        counters(delivered, delivered, 0, 0)
    );
}

#[test]
fn oversized_frame_on_the_peer_link_closes_it_without_harm() {
    let (mut cluster, tamper, pong) = attacked(Attack::OversizedFrame);
    let dropped_before = cluster.app.status().node("node2").dropped;
    // Node2 refuses the frame from its length prefix and closes the link, losing event AT
    // behind it; node1 reconnects for the second run, whose first event shows the gap.
    stall_then_second_run(&cluster, &tamper, || {
        wait_for("node1 to see its link to node2 closed", PATIENCE, || {
            let peers = wire::node_status(cluster.node1.addr).peers;
            assert_eq!(peers.len(), 1, "{peers:?}");
            (!peers[0].connected).then_some(())
        });
    });
    assert_eq!(tamper.fired(), 1);
    let delivered = AT - 1 + RUN;
    let status = assert_survived(&mut cluster, pong, delivered);
    assert!(
        status.node("node2").dropped > dropped_before,
        "node2 counted the bad frame: {status:#?}"
    );
    assert_eq!(
        status.counters("ping-to-pong"),
        counters(AT + RUN, delivered, 0, 1)
    );
}
