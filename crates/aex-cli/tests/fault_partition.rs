//! A network partition between node1 and node2 that heals.
//!
//! A proxy in front of node2 carries node1's event link (and the deployer's sessions with
//! node2, left alone). In the middle of a ping run it cuts the link: it closes every
//! connection node1 has or opens to node2 at its next frame, so events in flight and events
//! sent during the partition are lost. After healing, new events must flow, pong must see the
//! lost ones as a gap, and none of them may ever arrive later (node1 must not re-send an old
//! event after reconnecting, and pong must accept no event twice): the healing waits until
//! node1 has let go of every event sent before it, and a later run shows that none came back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aex_proto::{ConnId, Direction, ToNode};

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::session as wire;
use aex_testkit::status::{counters, StatusExt};
use aex_testkit::{wait_for, wait_until, PATIENCE};

/// Pings per run.
const RUN: u64 = 30;
/// The event counter (on `ping-to-pong`) at which the partition starts.
const AT: u64 = 10;
/// Runs started during the partition (each sends one ping, which is lost).
const DURING: u64 = 3;
/// Pings of the run after the healed one.
const LATER: u64 = 5;

/// The network between node1 and node2.
#[derive(Default)]
struct Partition {
    /// `ping-to-pong`'s id, once deployed.
    target: Mutex<Option<u32>>,
    /// Whether the link is cut.
    cut: AtomicBool,
    /// Once healed: the last counter ping had sent before (0 until then).
    healed_after: AtomicU64,
    /// Connections closed by the partition.
    closed: AtomicU32,
    /// Counters of `ping-to-pong` events the partition swallowed.
    lost: Mutex<BTreeSet<u64>>,
    /// Counters of `ping-to-pong` events seen after healing that were sent before it.
    stale: Mutex<Vec<u64>>,
}

impl Partition {
    fn arm(&self, target: u32) {
        *self.target.lock().unwrap() = Some(target);
    }

    /// Ends the partition; ping had sent events up to counter `last` before.
    fn heal(&self, last: u64) {
        self.healed_after.store(last, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
    }

    fn cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl Tamper for Partition {
    fn upstream(&self, link: Link, msg: ToNode) -> Vec<Out> {
        let target = *self.target.lock().unwrap();
        if link != Link::Peer || target.is_none() {
            return vec![Out::ToNode(msg)];
        }
        let event = match &msg {
            ToNode::Forward { event: ev, .. } if Some(ev.conn) == target.map(ConnId) => {
                (ev.dir == Direction::Forward).then_some(ev.counter)
            }
            _ => None,
        };
        let healed_after = self.healed_after.load(Ordering::SeqCst);
        match event {
            Some(counter) if healed_after > 0 && counter <= healed_after => {
                self.stale.lock().unwrap().push(counter);
            }
            Some(AT) if healed_after == 0 => self.cut.store(true, Ordering::SeqCst),
            _ => {}
        }
        if self.cut() {
            if let Some(counter) = event {
                self.lost.lock().unwrap().insert(counter);
            }
            self.closed.fetch_add(1, Ordering::SeqCst);
            return vec![Out::Close];
        }
        vec![Out::ToNode(msg)]
    }
}

#[test]
fn partition_drops_events_shows_gaps_and_replays_nothing_after_healing() {
    let partition = Arc::new(Partition::default());
    let mut cluster = Cluster::start(Options {
        tamper: Some(partition.clone()),
        ..Options::default()
    });
    cluster.deploy_ok();
    let app = &cluster.app;
    let node1 = cluster.node1.addr;
    partition.arm(app.conn_id("ping-to-pong"));
    let dropped_before = wire::node_status(node1).dropped;

    // The partition starts at event AT: the run stalls after AT - 1 round trips.
    app.start_pings(RUN as u32);
    wait_for("the partition to start", PATIENCE, || {
        partition.cut().then_some(())
    });
    wait_for("the run to stall", PATIENCE, || {
        (app.ping_stats()["completed"] == AT - 1).then_some(())
    });
    // More events during the partition: each new run sends one ping, lost too.
    for _ in 0..DURING {
        app.start_pings(RUN as u32);
    }
    let sent = AT + DURING;
    wait_for("ping to have sent every event", PATIENCE, || {
        (app.status().counters("ping-to-pong").sent == sent).then_some(())
    });
    // Node1 keeps none of them: each was written to a connection the partition closed, or
    // dropped and counted. Whatever node1 still held could cross once the partition heals.
    wait_until(
        "node1 to have written or dropped every event sent to node2",
        PATIENCE,
        || {
            let status = wire::node_status(node1);
            let written = status.peers.first().map_or(0, |p| p.forwarded);
            let dropped = status.dropped - dropped_before;
            if written + dropped >= sent {
                Ok(())
            } else {
                Err(format!("{written} written, {dropped} dropped of {sent}"))
            }
        },
    );
    let status = app.status();
    assert_eq!(
        status.counters("ping-to-pong"),
        counters(sent, AT - 1, 0, 0),
        "nothing crossed the partition"
    );
    assert!(partition.closed.load(Ordering::SeqCst) >= 1);
    assert!(partition.lost.lock().unwrap().contains(&AT));

    // Healed: a new run completes; the lost events show as one gap of their number.
    partition.heal(sent);
    app.start_pings(RUN as u32);
    app.wait_pings_done(RUN as u32);
    let delivered = AT - 1 + RUN;
    assert_eq!(app.call("pong", "count", None), delivered);

    // Nothing old arrives later either: another run's events cross the same link after the
    // first one's, and still no event sent before the healing was seen on the wire or counted
    // by pong.
    app.start_pings(LATER as u32);
    app.wait_pings_done(LATER as u32);
    let status = app.status();
    status.assert_healthy();
    let (forward, delivered) = (sent + RUN + LATER, delivered + LATER);
    assert_eq!(
        status.counters("ping-to-pong"),
        counters(forward, delivered, 0, DURING + 1)
    );
    assert_eq!(
        status.counters("pong-to-ping"),
        counters(delivered, delivered, 0, 0)
    );
    assert_eq!(app.call("pong", "count", None), delivered);
    let stale = partition.stale.lock().unwrap().clone();
    assert!(stale.is_empty(), "node1 re-sent old events {stale:?}");
    cluster.assert_nodes_running();
}
