//! A compromised node2 replays management messages it saw: a sealed key delivery
//! (`Command::SetKey`) and an entry-point call (`Command::Call`) that the deployer sent to
//! pong through node2. (The network sees only the links' ciphertext and cannot record or
//! inject a command.)
//!
//! A proxy in front of node2, holding node2's keys (its compromised agent), records every
//! command for pong; the test checks what each is by opening it with pong's module key from
//! the deployer's state. The replay goes out on a deployer session in the application's
//! namespace (standing for the compromised node2, which can hand its modules anything), so
//! node2 relays it to pong like any command. Pong must refuse it, node2 must answer `Refused`, `aex status` must
//! count it in `rejected_commands`, and events and genuine commands must keep working.

use std::sync::{Arc, Mutex};

use aex_proto::{
    Command, CommandChannel, CommandError, ConnId, Direction, Event, NodeError, NodeErrorKind,
    NodeRequest, NodeResponse, Role, Sealed, ToNode,
};

use aex_testkit::cluster::{AppDir, Cluster, Options};
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::session as wire;
use aex_testkit::status::{counters, StatusExt};
use aex_testkit::{process, wait_for, PATIENCE};

/// Records what crosses the proxy: the deployer's commands for pong, and node1's events.
#[derive(Default)]
struct Recorder {
    commands: Mutex<Vec<Sealed>>,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn commands(&self) -> Vec<Sealed> {
        self.commands.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

impl Tamper for Recorder {
    fn upstream(&self, link: Link, msg: ToNode) -> Vec<Out> {
        match (link, &msg) {
            (
                Link::Deployer,
                ToNode::Request {
                    body: NodeRequest::Command { module, sealed },
                    ..
                },
            ) if module == "pong" => self.commands.lock().unwrap().push(sealed.clone()),
            (Link::Peer, ToNode::Forward { event, .. }) => {
                self.events.lock().unwrap().push(event.clone())
            }
            _ => {}
        }
        vec![Out::ToNode(msg)]
    }
}

/// Opens a recorded command with `module`'s key from the deployer's state (a fresh replay
/// window, so any counter opens).
fn open(app: &AppDir, module: &str, sealed: &Sealed) -> Result<Command, CommandError> {
    let state = app.state();
    let record = state
        .modules
        .get(module)
        .unwrap_or_else(|| panic!("no record of `{module}` in the deployer state"));
    CommandChannel::new(record.key.expose_secret()).open_command(sealed)
}

/// `rejected_commands` of `module` in `aex status`.
fn rejected_commands(app: &AppDir, module: &str) -> u64 {
    app.status().module(module).rejected_commands
}

/// Sends `sealed` to pong on a session of the application's namespace with node2 (what a
/// compromised node2 could do).
fn replay(cluster: &Cluster, sealed: Sealed) -> Result<NodeResponse, NodeError> {
    wire::app_session(cluster.node2.addr).request(NodeRequest::Command {
        module: "pong".into(),
        sealed,
    })
}

/// The node relayed the command and the module refused it.
#[track_caller]
fn assert_refused(answer: Result<NodeResponse, NodeError>) {
    match answer {
        Err(NodeError {
            kind: NodeErrorKind::Refused,
            message,
        }) => assert!(
            message.contains("module `pong` rejected the command"),
            "{message}"
        ),
        other => panic!("a replayed command was answered {other:?}"),
    }
}

/// A cluster deployed with a recorder in front of node2.
fn recorded() -> (Cluster, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let cluster = Cluster::start(Options {
        tamper: Some(recorder.clone()),
        ..Options::default()
    });
    cluster.deploy_ok();
    (cluster, recorder)
}

#[test]
fn replayed_key_delivery_is_refused_and_resets_nothing() {
    let (cluster, recorder) = recorded();
    let app = &cluster.app;
    let target = ConnId(app.conn_id("ping-to-pong"));
    // The deploy sent pong its two connection keys; pick the one for `ping-to-pong`.
    let commands = recorder.commands();
    assert_eq!(commands.len(), 2, "pong got one key per connection");
    let set_key = commands
        .iter()
        .find(|s| {
            matches!(open(app, "pong", s),
                Ok(Command::SetKey { conn, role: Role::Input(ref port), .. })
                    if conn == target && port == "ping")
        })
        .expect("the key delivery of `ping-to-pong` was recorded")
        .clone();

    app.start_pings(10);
    app.wait_pings_done(10);
    let first = recorder
        .events()
        .into_iter()
        .find(|e| e.conn == target && e.dir == Direction::Forward && e.counter == 1)
        .expect("ping's first event was recorded");

    // Had pong accepted the old key delivery again, it would have reset the connection's
    // replay window, and the first ping, replayed right after, would be accepted again.
    assert_refused(replay(&cluster, set_key));
    // Replayed the way the event came: over a peer link as node1 (whose identity key its
    // operator holds), the only origin node2's route for it admits.
    let (node1, _) = aex_link::keys::load_or_create(&cluster.node1.data_dir).unwrap();
    let app_id = wire::app_session(cluster.node2.addr).app();
    wire::forward_as_peer(cluster.node2.addr, &node1, app_id, &[first]).unwrap();
    let status = wait_for("pong to refuse the replayed event", PATIENCE, || {
        let s = app.status();
        (s.counters("ping-to-pong").rejected == 1).then_some(s)
    });
    status.assert_healthy();
    assert_eq!(status.counters("ping-to-pong"), counters(10, 10, 1, 0));
    assert_eq!(rejected_commands(app, "pong"), 1);
    assert_eq!(app.call("pong", "count", None), 10, "no ping counted twice");

    // Events and the deployer's own commands keep working.
    app.start_pings(10);
    app.wait_pings_done(10);
    assert_eq!(app.call("pong", "count", None), 20);
    let status = app.status();
    assert_eq!(status.counters("ping-to-pong"), counters(20, 20, 1, 0));
    assert_eq!(status.counters("pong-to-ping"), counters(20, 20, 0, 0));
    assert_eq!(rejected_commands(app, "pong"), 1);
}

#[test]
fn replayed_entry_point_call_is_refused_also_by_a_later_instance() {
    let (mut cluster, recorder) = recorded();
    let app = &cluster.app;
    assert_eq!(app.call("pong", "count", None), 0);
    let call = recorder
        .commands()
        .last()
        .expect("a command was recorded")
        .clone();
    match open(app, "pong", &call) {
        Ok(Command::Call { entry, payload }) => {
            assert_eq!((&*entry, &*payload), ("count", &[][..]))
        }
        other => panic!("the last command for pong opens as {other:?}"),
    }

    // Replayed as it was, and with a counter far ahead (which the seal binds).
    assert_refused(replay(&cluster, call.clone()));
    let mut ahead = call.clone();
    ahead.counter += 1000;
    assert_refused(replay(&cluster, ahead));
    assert_eq!(rejected_commands(app, "pong"), 2);
    // The forged counter did not advance pong's window: the deployer's next command works.
    assert_eq!(app.call("pong", "count", None), 0);
    app.start_pings(5);
    app.wait_pings_done(5);

    // A new pong instance gets a new module key and starts its counters again: the old call's
    // counter is fresh for it, so only the key refuses the replay.
    let pid = app.status().module("pong").pid.expect("pong's pid");
    process::signal(pid, process::Signal::Kill);
    wait_for("pong to be reported stopped", PATIENCE, || {
        (!app.status().module("pong").running).then_some(())
    });
    cluster.deploy_ok_with(&["--discard-state", "pong"]);
    let app = &cluster.app;
    assert_eq!(
        app.state().modules["pong"].last_command,
        2,
        "the new instance got two commands, both below the old call's counter"
    );
    assert!(call.counter > 2);
    assert_refused(replay(&cluster, call));
    assert_eq!(rejected_commands(app, "pong"), 1);
    assert_eq!(app.call("pong", "count", None), 0);
    app.start_pings(5);
    app.wait_pings_done(5);
    cluster.assert_nodes_running();
}
