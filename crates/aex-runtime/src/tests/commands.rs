//! Key agreement, commands, the process lifecycle and the link.

use std::io;

use aex_crypto::{ModuleKeyAgreement, SecretKey};
use aex_proto::frame;
use aex_proto::{
    Command, CommandChannel, CommandReply, Direction, EventKind, FromModule, Role, ToModule,
};
use aex_testkit::deployer::{sender, Deployer};

use super::harness::{Echo, Harness, ALG, MEASURED};
use crate::clock::Clock;
use crate::link::Incoming;

#[test]
fn one_key_agreement_per_process() {
    let mut h = Harness::new();
    h.attest();
    let again = h.handle(ToModule::Attest {
        challenge: [1; 32],
        deployer_pk: ModuleKeyAgreement::new().public_key(),
    });
    assert_eq!(again, vec![FromModule::AttestRefused]);
}

#[test]
fn symmetric_attestation_keys_commands_per_instance() {
    let challenge = [8; 32];
    let attest = |h: &mut Harness| {
        let d = Deployer::attest_symmetric_under(h, "sancus", [5; 32], &MEASURED, challenge);
        assert!(d.confirmed, "the module's key confirmation");
        d
    };
    let mut a = Harness::new();
    let mut da = attest(&mut a);
    let sealed = da.seal(&Command::Call {
        entry: "fail".into(),
        payload: vec![],
    });
    let out = a.handle(ToModule::Command(sealed.clone()));
    let [FromModule::CommandReply(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        da.open_reply(reply, 1).unwrap(),
        CommandReply::Failed("nope".into())
    );
    // A second instance of the same code, same module key, even attested under the same
    // challenge: the recorded command does not authenticate there.
    let mut b = Harness::new();
    attest(&mut b);
    assert_eq!(
        b.handle(ToModule::Command(sealed)),
        vec![FromModule::CommandRejected { counter: 1 }]
    );
    // And no second attestation.
    let again = b.handle(ToModule::Attest {
        challenge: [8; 32],
        deployer_pk: [0; 32],
    });
    assert_eq!(again, vec![FromModule::AttestRefused]);
}

#[test]
fn low_order_deployer_key_is_refused_and_consumes_the_agreement() {
    let mut h = Harness::new();
    let zero = ToModule::Attest {
        challenge: [1; 32],
        deployer_pk: [0; 32],
    };
    assert_eq!(h.handle(zero), vec![FromModule::AttestRefused]);
    let genuine = ToModule::Attest {
        challenge: [1; 32],
        deployer_pk: ModuleKeyAgreement::new().public_key(),
    };
    assert_eq!(h.handle(genuine), vec![FromModule::AttestRefused]);
}

#[test]
fn unauthentic_commands_are_rejected_unsealed() {
    let mut h = Harness::new();
    let mut forger = CommandChannel::new(&SecretKey::from_bytes([9; 32]));
    let cmd = Command::Call {
        entry: "fail".into(),
        payload: vec![],
    };
    // Before attestation.
    let sealed = forger.seal_command(&cmd).unwrap();
    let out = h.handle(ToModule::Command(sealed.clone()));
    assert_eq!(out, vec![FromModule::CommandRejected { counter: 1 }]);

    let mut d = h.attest();
    // Forged (wrong key), then a genuine one, then its replay.
    let out = h.handle(ToModule::Command(sealed));
    assert_eq!(out, vec![FromModule::CommandRejected { counter: 1 }]);
    let genuine = d.seal(&cmd);
    let out = h.handle(ToModule::Command(genuine.clone()));
    let [FromModule::CommandReply(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        d.open_reply(reply, 1).unwrap(),
        CommandReply::Failed("nope".into())
    );
    let out = h.handle(ToModule::Command(genuine));
    assert_eq!(out, vec![FromModule::CommandRejected { counter: 1 }]);

    let stats = h.rt.core_mut().stats();
    assert_eq!((stats.commands, stats.rejected_commands), (1, 3));
}

#[test]
fn disable_drops_every_key_and_its_replay_is_refused() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    let disable = d.seal(&Command::Disable);
    let out = h.handle(ToModule::Command(disable.clone()));
    let [FromModule::CommandReply(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        d.open_reply(reply, disable.counter).unwrap(),
        CommandReply::Done(vec![])
    );
    // The replayed disable, and any later genuine command, find no module key.
    assert_eq!(
        h.handle(ToModule::Command(disable.clone())),
        vec![FromModule::CommandRejected {
            counter: disable.counter
        }]
    );
    let later = d.seal(&Command::Call {
        entry: "fail".into(),
        payload: vec![],
    });
    assert!(matches!(
        &h.handle(ToModule::Command(later))[..],
        [FromModule::CommandRejected { .. }]
    ));
    // Events on the old connection are now unknown.
    let ev = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    assert!(h.handle(ToModule::Event(ev)).is_empty());
    let stats = h.rt.core_mut().stats();
    assert_eq!((stats.rejected_unknown, stats.conns.len()), (1, 0));
}

#[test]
fn set_key_and_call_validate_names() {
    let mut h = Harness::new();
    let mut d = h.attest();
    assert_eq!(
        d.set_key(&mut h, 1, Role::Input("x".into()), ALG),
        CommandReply::Failed("module has no input `x` (inputs: inp)".into())
    );
    assert_eq!(
        d.set_key(&mut h, 1, Role::Handler("inp".into()), ALG),
        CommandReply::Failed("module has no handler `inp` (handlers: answer)".into())
    );
    let call = Command::Call {
        entry: "missing".into(),
        payload: vec![],
    };
    assert_eq!(
        d.command(&mut h, &call),
        CommandReply::Failed(
            "module has no entry point `missing` (entry points: call_fetch, fail, inc)".into()
        )
    );
    assert!(h.rt.core_mut().stats().conns.is_empty());
    assert_eq!(
        d.call(&mut h, "inc", b"41"),
        CommandReply::Done(42u32.to_be_bytes().to_vec())
    );
    let CommandReply::Failed(msg) = d.call(&mut h, "inc", b"\"x\"") else {
        panic!()
    };
    assert!(
        msg.starts_with("invalid argument for `inc`: expected a JSON value of type `u32`"),
        "{msg}"
    );
}

#[test]
fn serve_exits_on_shutdown_or_end_of_input() {
    let mut h = Harness::new();
    h.queue(ToModule::Stats);
    h.queue(ToModule::Shutdown);
    assert_eq!(h.rt.serve(), 0);
    let mut h = Harness::new();
    h.inbox.send(Incoming::Closed(1)).unwrap();
    assert_eq!(h.rt.serve(), 1);
}

#[test]
fn reader_skips_bad_frames_and_stops_when_framing_is_lost() {
    let mut bytes = frame::encode(&ToModule::Stats);
    bytes.extend_from_slice(&[0, 0, 0, 3, 1, 0xff, 0xff]); // undecodable body
    bytes.extend_from_slice(&frame::encode(&ToModule::Tick {
        entry: "tick".into(),
    }));
    bytes.extend_from_slice(&frame::encode(&ToModule::Shutdown));
    // Ticks are stamped with the runtime's clock, the one their lateness is judged on.
    let clock = Clock::manual();
    clock.advance(std::time::Duration::from_secs(7));
    let inbox = crate::link::spawn_reader(io::Cursor::new(bytes), clock.clone());
    drop(inbox.local);
    let got: Vec<_> = inbox.rx.iter().collect();
    assert!(matches!(got[0], Incoming::Message(ToModule::Stats)));
    assert!(matches!(&got[1], Incoming::Tick(entry, at) if entry == "tick" && *at == clock.now()));
    assert!(matches!(got[2], Incoming::Message(ToModule::Shutdown)));
    assert!(matches!(got[3], Incoming::Closed(0)));

    let inbox = crate::link::spawn_reader(
        io::Cursor::new(u32::MAX.to_be_bytes().to_vec()),
        Clock::default(),
    );
    assert!(matches!(inbox.rx.recv().unwrap(), Incoming::Closed(1)));
}

#[test]
fn describe_json_shape() {
    assert_eq!(
        crate::describe_json::<Echo>(),
        r#"{"outputs":["out"],"inputs":["inp"],"requests":["fetch"],"handlers":["answer"],"entries":["call_fetch","fail","inc"],"periodic":["tick"],"persistent":false,"seal_by_signer":false}"#
    );
}
