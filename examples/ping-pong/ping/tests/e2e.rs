//! End to end: the real `ping` binary, with this test playing the node, the deployer and the
//! pong module.

#[path = "../../pong/tests/common/mod.rs"]
mod common;

use aex_proto::{CommandReply, Direction, EventKind, FromModule, Role, ToModule};
use aex_proto::{RecvChannel, SendChannel};
use common::{measure, receiver, sender, Module};

const PING: &str = env!("CARGO_BIN_EXE_ping");

fn keyed_ping() -> Module {
    let measurement = measure(PING);
    let mut ping = Module::spawn(PING, measurement);
    ping.attest(measurement);
    assert!(ping.confirmed);
    assert_eq!(
        ping.set_key(1, Role::Output("ping".into())),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        ping.set_key(2, Role::Input("pong".into())),
        CommandReply::Done(vec![])
    );
    ping
}

/// The pong module's ends of connections 1 (ping → pong) and 2 (pong → ping).
struct Pong {
    pings: RecvChannel,
    pongs: SendChannel,
}

impl Pong {
    fn new() -> Self {
        Pong {
            pings: receiver(1, Direction::Forward),
            pongs: sender(2, Direction::Forward),
        }
    }
}

/// Echoes `n` pings back as pongs, checking their sequence numbers and sizes.
fn play_pong(ping: &mut Module, pong: &mut Pong, n: u64, size: usize) {
    let Pong { pings, pongs } = pong;
    for seq in 1..=n {
        let data = pings.open(&ping.event()).unwrap();
        assert_eq!(data.len(), size);
        assert_eq!(data[..8], seq.to_be_bytes());
        ping.send(&ToModule::Event(
            pongs.seal(EventKind::Event, &data).unwrap(),
        ));
    }
}

fn stats(ping: &mut Module) -> serde_json::Value {
    let CommandReply::Done(json) = ping.call("stats", b"") else {
        panic!("stats failed")
    };
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn a_run_started_by_entry_point_completes() {
    let mut ping = keyed_ping();
    let reply = ping.call("start", br#"{"count":5,"size":16}"#);
    assert_eq!(reply, CommandReply::Done(vec![]));
    play_pong(&mut ping, &mut Pong::new(), 5, 16);
    let s = stats(&mut ping);
    assert_eq!(s["count"], 5);
    assert_eq!(s["completed"], 5);
    assert_eq!(s["done"], true);
    assert_eq!(s["size"], 16);
    assert!(s["min_us"].as_f64().unwrap() <= s["max_us"].as_f64().unwrap());

    // A bad argument is a clear failure, not a crash.
    let CommandReply::Failed(msg) = ping.call("start", b"{\"count\":\"many\"}") else {
        panic!()
    };
    assert!(msg.starts_with("invalid argument for `start`"), "{msg}");
    assert!(ping.shutdown().success());
}

#[test]
fn defaults_kick_and_report_handler() {
    let mut ping = keyed_ping();
    assert_eq!(
        ping.set_key(3, Role::Input("kick".into())),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        ping.set_key(4, Role::Handler("report".into())),
        CommandReply::Done(vec![])
    );

    // The deployer's direct connection kicks off a run with the default size.
    let kick = sender(3, Direction::Forward).seal(EventKind::Event, br#"{"count":2}"#);
    ping.send(&ToModule::Event(kick.unwrap()));
    let mut pong = Pong::new();
    play_pong(&mut ping, &mut pong, 2, 64);

    // Another module asks for the report.
    let request = sender(4, Direction::Forward)
        .seal(EventKind::Request, b"")
        .unwrap();
    ping.send(&ToModule::Event(request));
    let FromModule::Event(reply) = ping.recv() else {
        panic!()
    };
    let plaintext = receiver(4, Direction::Backward).open(&reply).unwrap();
    let (echo, outcome) = aex_proto::reply::decode(&plaintext).unwrap();
    assert_eq!(echo, 1);
    let report: serde_json::Value = serde_json::from_slice(&outcome.unwrap()).unwrap();
    assert_eq!(
        (report["completed"].as_u64(), report["done"].as_bool()),
        (Some(2), Some(true))
    );

    // With no argument at all, `start` uses count 100, size 64.
    assert_eq!(ping.call("start", b""), CommandReply::Done(vec![]));
    play_pong(&mut ping, &mut pong, 100, 64);
    assert_eq!(stats(&mut ping)["completed"], 100);
}
