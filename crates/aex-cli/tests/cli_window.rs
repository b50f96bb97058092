//! A full window on a direct connection: `aex output` sends nothing while the module's window
//! is full, says so (and takes no counter from the state file), and sends once it has room.
//!
//! A compromised agent of node2 (the proxy, which sees decoded frames) answers the deployer's
//! `Window` questions itself, "full", as many times as the test says; later ones go to node2.
//! It records the deployer's events too, to show what was sent. A node can always claim a
//! full window (as it can hold events): what matters is that the deployer then sends nothing
//! and tells the user, rather than sealing an event that goes nowhere. Last, node2 is asked
//! for the window directly, as a deployer asks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aex_proto::{ConnId, Direction, Event, FromNode, NodeRequest, NodeResponse, ToNode};

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::session as wire;

/// The bytes in flight the proxy reports with a full window.
const IN_FLIGHT: u64 = 4096;

/// Answers window questions "full" while `full_for` lasts, and records the deployer's events.
#[derive(Default)]
struct FullWindow {
    /// Window questions still to answer "full".
    full_for: AtomicUsize,
    /// Window questions seen.
    asked: AtomicUsize,
    /// The deployer's events seen.
    events: Mutex<Vec<Event>>,
}

impl FullWindow {
    /// Answers the next `n` window questions "full", and counts questions from zero.
    fn full_for(&self, n: usize) {
        self.full_for.store(n, Ordering::SeqCst);
        self.asked.store(0, Ordering::SeqCst);
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    fn events(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

impl Tamper for FullWindow {
    fn upstream(&self, link: Link, msg: ToNode) -> Vec<Out> {
        if link != Link::Deployer {
            return vec![Out::ToNode(msg)];
        }
        match &msg {
            ToNode::Request {
                id,
                body: NodeRequest::Window { dir, .. },
            } => {
                assert_eq!(
                    *dir,
                    Direction::Forward,
                    "the deployer's own events go forward"
                );
                self.asked.fetch_add(1, Ordering::SeqCst);
                let full = self
                    .full_for
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if full {
                    return vec![Out::ToClient(FromNode::Response {
                        id: *id,
                        result: Ok(NodeResponse::Window {
                            credit: 0,
                            in_flight: IN_FLIGHT,
                        }),
                    })];
                }
            }
            ToNode::Event(event) => self.events.lock().unwrap().push(event.clone()),
            _ => {}
        }
        vec![Out::ToNode(msg)]
    }
}

#[test]
fn output_on_a_full_window_sends_nothing_and_says_so_then_sends_once_there_is_room() {
    let window = Arc::new(FullWindow::default());
    let cluster = Cluster::start(Options {
        tamper: Some(window.clone()),
        poke: true,
        ..Options::default()
    });
    cluster.deploy_ok();
    let app = &cluster.app;
    let last_sent = || app.state().connections["poke"].last_sent;
    let before = last_sent();

    // Full throughout the wait: the deployer asks again, then gives up having sent nothing.
    window.full_for(usize::MAX);
    let run = app
        .aex(&["output", "poke", "--wait", "300ms", "--hex", "01"])
        .code(1);
    run.stderr_has(&[
        "the window of connection `poke` is full",
        &format!("{IN_FLIGHT} bytes in flight"),
        "not yet taken in by module `pong` on node `node2`",
        "after waiting 300 ms",
        "nothing was sent",
        "slow or stopped",
        "`aex status`",
    ]);
    assert!(!run.stderr.contains("Sent"), "{}", run.stderr);
    assert!(window.asked() >= 2, "asked {} times", window.asked());
    assert_eq!(window.events(), 0, "an event crossed the proxy");
    assert_eq!(
        last_sent(),
        before,
        "a counter was taken for an event not sent"
    );

    // `--wait 0s` asks once.
    window.full_for(usize::MAX);
    let run = app
        .aex(&["output", "poke", "--wait", "0s", "--hex", "01"])
        .code(1);
    run.stderr_has(&["is full", "nothing was sent"]);
    assert!(!run.stderr.contains("after waiting"), "{}", run.stderr);
    assert_eq!(window.asked(), 1);
    assert_eq!((window.events(), last_sent()), (0, before));

    // Full for three questions, then node2 answers: the event goes out once, and pong takes it.
    window.full_for(3);
    app.aex(&["output", "poke", "--hex", "01"])
        .ok()
        .stderr_has(&["Sent 1 bytes on `poke`", "the module accepted it"]);
    assert!(window.asked() >= 4, "asked {} times", window.asked());
    assert_eq!(window.events(), 1);
    assert_eq!(last_sent(), before + 1);

    // node2's own answer, asked directly: the deployer's window on `poke` has room left
    // after that one small event.
    let (credit, in_flight) = wire::app_session(cluster.node2.addr)
        .window(ConnId(app.conn_id("poke")), Direction::Forward)
        .expect("node2 keeps the deployer's window on `poke`");
    assert!(credit > 0, "credit {credit}, {in_flight} bytes in flight");

    // The status table has the flow control columns.
    app.aex(&["status"])
        .ok()
        .stdout_has(&["DROPPED", "BLOCKED"]);
}
