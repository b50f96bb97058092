//! The real `pong` binary (prebuilt by the test kit through the deployer's build), driven over
//! its stdin and stdout as a node agent and the deployer drive it: its interface, sealed
//! pings echoed as sealed pongs, replayed, reordered, forged and misdirected pings dropped,
//! and a node that lies about what it loaded.
//!
//! Every test runs against both pongs: this crate's, in Rust, and examples/ping-pong-c's, in
//! C (through the runtime's C ABI): the same guarantees hold for both.

use std::path::PathBuf;
use std::time::Duration;

use aex_crypto::{Algorithm, Measurement};
use aex_proto::{Command, CommandReply, Direction, EventKind, FromModule, Role, ToModule};
use aex_testkit::deployer::{measure, receiver, sender, Deployer, ModuleLink, ModuleProcess};

/// The algorithm of the connections the tests key (the descriptor's `pong-to-ping`).
const ALG: Algorithm = Algorithm::ChaCha20Poly1305;

/// The Rust pong and the C pong.
fn pongs() -> [PathBuf; 2] {
    let c = aex_testkit::paths::workspace().join("examples/ping-pong-c/pong");
    [
        aex_testkit::modules::binary(&aex_testkit::paths::ping_pong_crate("pong")),
        aex_testkit::modules::binary(&c),
    ]
}

#[test]
fn describe_prints_the_interface() {
    for pong in pongs() {
        let out = std::process::Command::new(&pong)
            .arg("--aex-describe")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "{\"outputs\":[\"pong\"],\"inputs\":[\"ping\"],\"requests\":[],\"handlers\":[],\"entries\":[\"count\"],\"periodic\":[],\"persistent\":false,\"seal_by_signer\":false}\n",
            "{}",
            pong.display()
        );
    }
}

#[test]
fn sealed_ping_comes_back_as_sealed_pong() {
    for pong in pongs() {
        sealed_ping_comes_back_as_sealed_pong_in(&pong);
    }
}

fn sealed_ping_comes_back_as_sealed_pong_in(path: &std::path::Path) {
    let measurement = measure(path);
    let mut pong = ModuleProcess::spawn(path, &measurement);
    assert_eq!(pong.interface.inputs, ["ping"]);
    let mut d = Deployer::attest(&mut pong, &measurement);
    assert!(d.confirmed, "module key confirmed");

    // A second attestation is refused: one key agreement per process.
    pong.send(ToModule::Attest {
        challenge: [0; 32],
        deployer_pk: aex_crypto::ModuleKeyAgreement::new().public_key(),
    });
    assert_eq!(pong.recv(), FromModule::AttestRefused);

    assert_eq!(
        d.set_key(&mut pong, 1, Role::Input("ping".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut pong, 2, Role::Output("pong".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut pong, 3, Role::Input("nope".into()), ALG),
        CommandReply::Failed("module has no input `nope` (inputs: ping)".into())
    );

    let mut pings = sender(1, Direction::Forward, ALG);
    let mut pongs = receiver(2, Direction::Forward, ALG);
    for i in 0..3u8 {
        let ping = pings.seal(EventKind::Event, &[i; 40]).unwrap();
        pong.send(ToModule::Event(ping));
        let back = pong.event();
        assert_eq!(pongs.open(&back).unwrap(), [i; 40]);
    }
    // Pong grants credit for what it takes in, before it answers: the first ping brought its
    // sender's window from the initial 64 KiB to pong's target.
    let granted = pong.credits();
    assert!(
        granted.iter().all(|c| c.conn == aex_proto::ConnId(1)
            && c.dir == Direction::Forward
            && c.dropped == 0)
            && !granted.is_empty(),
        "{granted:?}"
    );

    // Replayed, forged, reordered and misdirected pings are dropped without a pong.
    let replay = pings.seal(EventKind::Event, b"again").unwrap();
    pong.send(ToModule::Event(replay.clone()));
    assert_eq!(pongs.open(&pong.event()).unwrap(), b"again");
    pong.send(ToModule::Event(replay));
    let mut forged = pings.seal(EventKind::Event, b"forged").unwrap();
    forged.ciphertext[3] ^= 1;
    pong.send(ToModule::Event(forged));
    let (earlier, later) = (
        pings.seal(EventKind::Event, b"earlier").unwrap(),
        pings.seal(EventKind::Event, b"later").unwrap(),
    );
    pong.send(ToModule::Event(later));
    assert_eq!(pongs.open(&pong.event()).unwrap(), b"later");
    pong.send(ToModule::Event(earlier));
    // A ping sealed for another connection, relabelled as this one's: the key differs.
    let mut elsewhere = sender(9, Direction::Forward, ALG);
    let mut misdirected = elsewhere.seal(EventKind::Event, b"elsewhere").unwrap();
    misdirected.conn = aex_proto::ConnId(1);
    pong.send(ToModule::Event(misdirected));
    assert!(pong.silent_for(Duration::from_millis(200)));

    assert_eq!(
        d.call(&mut pong, "count", b""),
        CommandReply::Done(b"5".to_vec())
    );
    pong.send(ToModule::Stats);
    let FromModule::Stats(stats) = pong.recv() else {
        panic!("expected the module's statistics")
    };
    assert_eq!((stats.conns[0].received, stats.conns[0].rejected), (5, 4));
    assert_eq!(stats.conns[1].sent, 5);
    assert_eq!(stats.commands, 4);
    assert!(pong.shutdown().success());
}

#[test]
fn a_lying_node_gets_a_key_the_deployer_refuses() {
    for path in pongs() {
        a_lying_node_gets_a_key_the_deployer_refuses_in(&path);
    }
}

fn a_lying_node_gets_a_key_the_deployer_refuses_in(path: &std::path::Path) {
    let mut pong = ModuleProcess::spawn(path, &Measurement::of(b"some other code"));
    let mut d = Deployer::attest(&mut pong, &measure(path));
    assert!(!d.confirmed);
    // Commands under the deployer's key do not open in the module.
    let refused = d.command_raw(
        &mut pong,
        &Command::Call {
            entry: "count".into(),
            payload: vec![],
        },
    );
    assert_eq!(refused, FromModule::CommandRejected { counter: 1 });
}
