//! The module's lifecycle: no module code on the fresh `Default` state before the module is
//! armed, nothing for a retired instance, and revoked connections.

use aex_proto::{
    Command, CommandReply, ConnId, Direction, EventKind, FromModule, Role, StateBytes, ToModule,
    WireKey,
};

use aex_testkit::deployer::{sender, wire, Deployer};

use super::harness::{Echo, Harness, ALG, SILENCE};
use crate::clock::Clock;

fn tick() -> ToModule {
    ToModule::Tick {
        entry: "tick".into(),
    }
}

fn set_key(conn: u32, role: Role) -> Command {
    Command::SetKey {
        conn: ConnId(conn),
        role,
        algorithm: wire(ALG),
        key: WireKey(*aex_testkit::deployer::conn_key(conn).expose_secret()),
    }
}

#[test]
fn ticks_before_the_module_is_armed_are_refused_and_counted() {
    let mut h = Harness::new();
    let mut d = h.attest();
    // Attested, but nothing told it that its state is in place: the fresh `Default` may be a
    // placeholder for a state on its way. The node's ticks run nothing.
    for _ in 0..3 {
        assert!(h.handle(tick()).is_empty());
    }
    let stats = h.rt.core_mut().stats();
    assert_eq!((stats.rejected_ticks, stats.armed), (3, false));
    assert_eq!(h.rt.module().ticks, 0);

    // `Start` (for a module nothing else is sent to) arms it; starting again changes nothing.
    assert_eq!(
        d.command(&mut h, &Command::Start),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.command(&mut h, &Command::Start),
        CommandReply::Done(vec![])
    );
    h.handle(tick());
    assert_eq!(h.rt.module().ticks, 1);
    let stats = h.rt.core_mut().stats();
    assert_eq!((stats.rejected_ticks, stats.armed), (3, true));
}

#[test]
fn a_call_or_a_key_arms_the_module_too() {
    for first in [
        Command::Call {
            entry: "fail".into(),
            payload: vec![],
        },
        set_key(2, Role::Output("out".into())),
    ] {
        let mut h = Harness::new();
        let mut d = h.attest();
        d.command(&mut h, &first);
        h.handle(tick());
        assert_eq!(h.rt.module().ticks, 1, "after {first:?}");
    }
}

#[test]
fn no_call_from_a_module_thread_runs_before_the_module_is_armed() {
    let mut h = Harness::new();
    h.attest();
    let handle: crate::Handle<Echo> = crate::Handle::new(h.rt.core_mut().link.local_sender());
    let worker =
        std::thread::spawn(move || handle.call(|state, _| state.seen.push(b"early".to_vec())));
    let call = h.next_local_call();
    h.rt.run_local(call);
    assert_eq!(worker.join().unwrap(), Err(crate::Error::Closed));
    assert!(h.rt.module().seen.is_empty());
}

fn retire(h: &mut Harness, d: &mut Deployer) {
    assert!(matches!(
        d.command(h, &Command::Retire),
        CommandReply::Done(_)
    ));
}

#[test]
fn a_retired_instance_refuses_keys_calls_starts_and_state() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    retire(&mut h, &mut d);
    let refused = [
        set_key(1, Role::Input("inp".into())),
        Command::Call {
            entry: "inc".into(),
            payload: b"1".to_vec(),
        },
        Command::Start,
        Command::WriteState {
            offset: 0,
            data: StateBytes(b"x".to_vec()),
        },
        Command::Restore {
            len: 1,
            digest: aex_proto::SnapshotInfo::of(b"x").digest,
            sealed: None,
        },
    ];
    for cmd in &refused {
        assert!(
            matches!(d.command(&mut h, cmd), CommandReply::Failed(m) if m.contains("retired")),
            "{cmd:?}"
        );
    }
    // The key was not installed: an authentic event on the old connection reaches nothing.
    let ev = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, b"after")
        .unwrap();
    assert!(h.handle(ToModule::Event(ev)).is_empty());
    assert!(h.handle(tick()).is_empty());
    assert!(h.rt.module().seen.is_empty());
    let stats = h.rt.core_mut().stats();
    assert_eq!(stats.refused_commands, 5);
    assert_eq!((stats.conns.len(), stats.rejected_unknown), (0, 1));
    // Refused under its module key, not rejected as forged: the deployer reads why.
    assert_eq!(stats.rejected_commands, 0);
}

#[test]
fn revoke_drops_every_key_of_the_connection_and_is_idempotent() {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    d.set_key(&mut h, 2, Role::Output("out".into()), ALG);
    d.set_key(&mut h, 4, Role::Handler("answer".into()), ALG);
    let mut input = sender(1, Direction::Forward, ALG);
    let before = input.seal(EventKind::Event, b"before").unwrap();
    let after = input.seal(EventKind::Event, b"after").unwrap();
    assert_eq!(h.handle(ToModule::Event(before.clone())).len(), 1, "echoed");

    for conn in [1, 1, 2, 4, 99] {
        let revoke = Command::Revoke { conn: ConnId(conn) };
        assert_eq!(
            d.command(&mut h, &revoke),
            CommandReply::Done(vec![]),
            "revoke {conn}"
        );
    }
    // Neither the next event nor a replay of an old one reaches the module; nothing goes out
    // on the revoked output, and a request to the revoked handler is not answered.
    assert!(h.handle(ToModule::Event(after)).is_empty());
    assert!(h.handle(ToModule::Event(before)).is_empty());
    assert!(h.handle(tick()).is_empty(), "the tick emits to no one");
    let request = sender(4, Direction::Forward, ALG)
        .seal(EventKind::Request, b"q")
        .unwrap();
    assert!(h.handle(ToModule::Event(request)).is_empty());
    assert_eq!(h.rt.module().seen, [b"before".to_vec()]);
    let stats = h.rt.core_mut().stats();
    assert_eq!((stats.conns.len(), stats.rejected_unknown), (0, 3));

    // The input is no longer connected: its silence raises no alarm, until it is keyed again.
    clock.advance(10 * SILENCE);
    h.rt.run_deadlines();
    assert_eq!(h.rt.module().alarms, 0);
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    clock.advance(SILENCE);
    h.rt.run_deadlines();
    assert_eq!(h.rt.module().alarms, 1);
}

#[test]
fn revoking_one_of_two_connections_of_an_input_keeps_its_deadline() {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    d.set_key(&mut h, 3, Role::Input("inp".into()), ALG);
    let revoke = Command::Revoke { conn: ConnId(1) };
    assert_eq!(d.command(&mut h, &revoke), CommandReply::Done(vec![]));
    clock.advance(SILENCE);
    h.rt.run_deadlines();
    assert_eq!(h.rt.module().alarms, 1);
    // Events on the remaining connection still arrive.
    let ev = sender(3, Direction::Forward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    h.handle(ToModule::Event(ev));
    assert_eq!(h.rt.module().seen, [b"x".to_vec()]);
    assert!(matches!(
        &h.handle(ToModule::Stats)[..],
        [FromModule::Stats(s)] if s.conns.len() == 1
    ));
}
