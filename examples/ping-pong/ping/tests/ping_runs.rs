//! The real `ping` binary (prebuilt by the test kit through the deployer's build), with this
//! test playing the node, the deployer and the pong module: runs started by the `start` entry
//! point or the `kick` input complete, and `stats` and the `report` handler summarise them.

use aex_crypto::Algorithm;
use aex_proto::{CommandReply, Direction, EventKind, Role, ToModule};
use aex_proto::{RecvChannel, SendChannel};
use aex_testkit::deployer::{measure, receiver, sender, Deployer, ModuleLink, ModuleProcess};

/// The algorithm of the connections the tests key.
const ALG: Algorithm = Algorithm::ChaCha20Poly1305;

/// The running `ping`, attested, with `ping` keyed on connection 1 and `pong` on 2.
fn keyed_ping() -> (ModuleProcess, Deployer) {
    let path = aex_testkit::modules::binary(&aex_testkit::paths::ping_pong_crate("ping"));
    let measurement = measure(&path);
    let mut ping = ModuleProcess::spawn(&path, &measurement);
    let mut d = Deployer::attest(&mut ping, &measurement);
    assert!(d.confirmed, "module key confirmed");
    assert_eq!(
        d.set_key(&mut ping, 1, Role::Output("ping".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut ping, 2, Role::Input("pong".into()), ALG),
        CommandReply::Done(vec![])
    );
    (ping, d)
}

/// The pong module's ends of connections 1 (ping → pong) and 2 (pong → ping).
struct Pong {
    pings: RecvChannel,
    pongs: SendChannel,
}

impl Pong {
    fn new() -> Self {
        Pong {
            pings: receiver(1, Direction::Forward, ALG),
            pongs: sender(2, Direction::Forward, ALG),
        }
    }
}

/// Echoes `n` pings back as pongs, checking their sequence numbers and sizes.
fn play_pong(ping: &mut ModuleProcess, pong: &mut Pong, n: u64, size: usize) {
    let Pong { pings, pongs } = pong;
    for seq in 1..=n {
        let data = pings.open(&ping.event()).unwrap();
        assert_eq!(data.len(), size);
        assert_eq!(data[..8], seq.to_be_bytes());
        ping.send(ToModule::Event(
            pongs.seal(EventKind::Event, &data).unwrap(),
        ));
    }
}

fn stats(ping: &mut ModuleProcess, d: &mut Deployer) -> serde_json::Value {
    let CommandReply::Done(json) = d.call(ping, "stats", b"") else {
        panic!("stats failed")
    };
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn a_run_started_by_entry_point_completes() {
    let (mut ping, mut d) = keyed_ping();
    let reply = d.call(&mut ping, "start", br#"{"count":5,"size":16}"#);
    assert_eq!(reply, CommandReply::Done(vec![]));
    play_pong(&mut ping, &mut Pong::new(), 5, 16);
    let s = stats(&mut ping, &mut d);
    assert_eq!(s["count"], 5);
    assert_eq!(s["completed"], 5);
    assert_eq!(s["done"], true);
    assert_eq!(s["size"], 16);
    assert!(s["min_us"].as_f64().unwrap() <= s["max_us"].as_f64().unwrap());

    // A bad argument is a clear failure, not a crash.
    let CommandReply::Failed(msg) = d.call(&mut ping, "start", b"{\"count\":\"many\"}") else {
        panic!("a count that is not a number was accepted")
    };
    assert!(msg.starts_with("invalid argument for `start`"), "{msg}");
    assert!(ping.shutdown().success());
}

#[test]
fn defaults_kick_and_report_handler() {
    let (mut ping, mut d) = keyed_ping();
    assert_eq!(
        d.set_key(&mut ping, 3, Role::Input("kick".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut ping, 4, Role::Handler("report".into()), ALG),
        CommandReply::Done(vec![])
    );

    // The deployer's direct connection kicks off a run with the default size.
    let kick = sender(3, Direction::Forward, ALG).seal(EventKind::Event, br#"{"count":2}"#);
    ping.send(ToModule::Event(kick.unwrap()));
    let mut pong = Pong::new();
    play_pong(&mut ping, &mut pong, 2, 64);

    // Another module asks for the report.
    let request = sender(4, Direction::Forward, ALG)
        .seal(EventKind::Request, b"")
        .unwrap();
    ping.send(ToModule::Event(request));
    let reply = ping.event();
    let plaintext = receiver(4, Direction::Backward, ALG).open(&reply).unwrap();
    let (echo, outcome) = aex_proto::reply::decode(&plaintext).unwrap();
    assert_eq!(echo, 1);
    let report: serde_json::Value = serde_json::from_slice(&outcome.unwrap()).unwrap();
    assert_eq!(
        (report["completed"].as_u64(), report["done"].as_bool()),
        (Some(2), Some(true))
    );

    // With no argument at all, `start` uses count 100, size 64.
    assert_eq!(d.call(&mut ping, "start", b""), CommandReply::Done(vec![]));
    play_pong(&mut ping, &mut pong, 100, 64);
    assert_eq!(stats(&mut ping, &mut d)["completed"], 100);
}
