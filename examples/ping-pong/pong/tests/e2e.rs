//! End to end: the real `pong` binary, driven over stdin/stdout as the node and deployer
//! would drive it.

mod common;

use std::time::Duration;

use aex_crypto::Measurement;
use aex_proto::{CommandReply, Direction, EventKind, FromModule, Role, ToModule};
use common::{measure, receiver, sender, Module};

const PONG: &str = env!("CARGO_BIN_EXE_pong");

#[test]
fn describe_prints_the_interface() {
    let out = std::process::Command::new(PONG)
        .arg("--aex-describe")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"outputs\":[\"pong\"],\"inputs\":[\"ping\"],\"requests\":[],\"handlers\":[],\"entries\":[\"count\"],\"periodic\":[]}\n"
    );
}

#[test]
fn sealed_ping_comes_back_as_sealed_pong() {
    let measurement = measure(PONG);
    let mut pong = Module::spawn(PONG, measurement);
    assert_eq!(pong.interface.inputs, ["ping"]);
    pong.attest(measurement);
    assert!(pong.confirmed, "module key confirmed");

    // A second attestation is refused: one key agreement per process.
    pong.send(&ToModule::Attest {
        challenge: [0; 32],
        deployer_pk: aex_crypto::ModuleKeyAgreement::new().public_key(),
    });
    assert_eq!(pong.recv(), FromModule::AttestRefused);

    assert_eq!(
        pong.set_key(1, Role::Input("ping".into())),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        pong.set_key(2, Role::Output("pong".into())),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        pong.set_key(3, Role::Input("nope".into())),
        CommandReply::Failed("module has no input `nope` (inputs: ping)".into())
    );

    let mut pings = sender(1, Direction::Forward);
    let mut pongs = receiver(2, Direction::Forward);
    for i in 0..3u8 {
        let ping = pings.seal(EventKind::Event, &[i; 40]).unwrap();
        pong.send(&ToModule::Event(ping));
        let back = pong.event();
        assert_eq!(pongs.open(&back).unwrap(), [i; 40]);
    }

    // Replayed and forged pings are dropped without a pong.
    let replay = pings.seal(EventKind::Event, b"again").unwrap();
    pong.send(&ToModule::Event(replay.clone()));
    assert_eq!(pongs.open(&pong.event()).unwrap(), b"again");
    pong.send(&ToModule::Event(replay));
    let mut forged = pings.seal(EventKind::Event, b"forged").unwrap();
    forged.ciphertext[3] ^= 1;
    pong.send(&ToModule::Event(forged));
    assert!(pong.silent_for(Duration::from_millis(200)));

    assert_eq!(pong.call("count", b""), CommandReply::Done(b"4".to_vec()));
    pong.send(&ToModule::Stats);
    let FromModule::Stats(stats) = pong.recv() else {
        panic!()
    };
    assert_eq!((stats.conns[0].received, stats.conns[0].rejected), (4, 2));
    assert_eq!(stats.conns[1].sent, 4);
    assert_eq!(stats.commands, 4);
    assert!(pong.shutdown().success());
}

#[test]
fn a_lying_node_gets_a_key_the_deployer_refuses() {
    let mut pong = Module::spawn(PONG, Measurement::of(b"some other code"));
    pong.attest(measure(PONG));
    assert!(!pong.confirmed);
    // Commands under the deployer's key do not open in the module.
    let sealed = {
        let d = pong.deployer.as_mut().unwrap();
        d.seal_command(&aex_proto::Command::Call {
            entry: "count".into(),
            payload: vec![],
        })
        .unwrap()
    };
    pong.send(&ToModule::Command(sealed));
    assert_eq!(pong.recv(), FromModule::CommandRejected { counter: 1 });
}
