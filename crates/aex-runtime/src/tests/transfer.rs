//! State transfer: `Retire` freezes and snapshots the old instance, `Restore` fills the new one
//! before it is connected.

use aex_proto::{
    Command, CommandReply, Direction, EventKind, FromModule, Retired, Role, StateBytes, ToModule,
};

use super::harness::{sender, Echo, Harness};

fn retire(h: &mut Harness) -> Retired {
    match h.command(&Command::Retire) {
        CommandReply::Done(bytes) => Retired::decode(&bytes).unwrap(),
        other => panic!("retire failed: {other:?}"),
    }
}

#[test]
fn retire_snapshots_after_the_last_event_and_drops_every_key() {
    let mut h = Harness::new();
    h.attest();
    h.set_key(1, Role::Input("inp".into()));
    let mut tx = sender(1, Direction::Forward);
    let before = tx.seal(EventKind::Event, b"one").unwrap();
    h.handle(ToModule::Event(before));

    let retired = retire(&mut h);
    assert_eq!(retired.state, Some(StateBytes(b"one".to_vec())));
    assert!(!format!("{retired:?}").contains("one"), "snapshots are redacted");

    // Frozen: an authentic event after the snapshot reaches no code and no key.
    let after = tx.seal(EventKind::Event, b"two").unwrap();
    assert!(h.handle(ToModule::Event(after)).is_empty());
    assert_eq!(h.rt.module().seen, vec![b"one".to_vec()]);
    assert_eq!(h.rt.core_mut().stats().rejected_unknown, 1);

    // Asked again (a deployer that crashed), it answers the same snapshot.
    assert_eq!(retire(&mut h), retired);
    // And it takes no state in.
    assert!(matches!(
        h.command(&Command::Restore { state: StateBytes(b"x".to_vec()) }),
        CommandReply::Failed(m) if m.contains("retired")
    ));
}

#[test]
fn a_retired_module_runs_no_calls_from_its_threads() {
    let mut h = Harness::new();
    h.attest();
    retire(&mut h);
    let handle: crate::Handle<Echo> = crate::Handle::new(h.rt.core_mut().link.local_sender());
    let worker = std::thread::spawn(move || handle.call(|state, _| state.seen.push(b"late".to_vec())));
    let call = loop {
        match h.rt.core_mut().link.recv(Some(
            std::time::Instant::now() + std::time::Duration::from_secs(5),
        )) {
            crate::link::Recv::Local(call) => break call,
            crate::link::Recv::Timeout => panic!("no local call arrived"),
            _ => continue,
        }
    };
    h.rt.run_local(call);
    assert_eq!(worker.join().unwrap(), Err(crate::Error::Closed));
    assert!(h.rt.module().seen.is_empty());
}

#[test]
fn restore_fills_a_fresh_instance_before_its_connections() {
    let mut h = Harness::new();
    h.attest();
    let state = StateBytes(b"a\nb".to_vec());
    assert_eq!(
        h.command(&Command::Restore { state: state.clone() }),
        CommandReply::Done(vec![])
    );
    assert_eq!(h.rt.module().seen, vec![b"a".to_vec(), b"b".to_vec()]);
    // The module's own refusal comes back sealed, and changes nothing.
    assert_eq!(
        h.command(&Command::Restore { state: StateBytes(b"bad".to_vec()) }),
        CommandReply::Failed("not a snapshot of mine".into())
    );
    h.set_key(1, Role::Input("inp".into()));
    assert!(matches!(
        h.command(&Command::Restore { state }),
        CommandReply::Failed(m) if m.contains("before any connection is keyed")
    ));
}

#[test]
fn transfer_commands_need_the_module_key() {
    let mut h = Harness::new();
    // Not attested: refused unsealed, like every command.
    let mut forger = aex_proto::CommandChannel::new(&aex_crypto::SecretKey::from_bytes([9; 32]));
    let sealed = forger.seal_command(&Command::Retire).unwrap();
    assert_eq!(
        h.handle(ToModule::Command(sealed)),
        vec![FromModule::CommandRejected { counter: 1 }]
    );
    assert!(h.rt.core_mut().retired.is_none());
}
