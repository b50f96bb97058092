//! State transfer: `Retire` freezes and snapshots the old instance, `ReadState` reads the
//! snapshot in chunks, `WriteState` stages it in the new one and `Restore` applies it before
//! the new instance is connected.

use aex_proto::{
    Command, CommandReply, Direction, EventKind, FromModule, Retired, Role, SnapshotInfo,
    StateBytes, ToModule, STATE_CHUNK,
};

use aex_testkit::deployer::{sender, wire, Deployer};

use super::harness::{Echo, Harness, ALG};
use crate::clock::Clock;

fn retire(h: &mut Harness, d: &mut Deployer) -> Retired {
    match d.command(h, &Command::Retire) {
        CommandReply::Done(bytes) => Retired::decode(&bytes).unwrap(),
        other => panic!("retire failed: {other:?}"),
    }
}

/// Reads a retired instance's whole snapshot, chunk by chunk, as the deployer does.
fn read_snapshot(h: &mut Harness, d: &mut Deployer, info: SnapshotInfo) -> Vec<u8> {
    let mut bytes = vec![];
    for i in 0..info.chunks() {
        match d.command(
            h,
            &Command::ReadState {
                offset: i * STATE_CHUNK as u64,
            },
        ) {
            CommandReply::Done(chunk) => bytes.extend_from_slice(&chunk),
            other => panic!("reading chunk {i} failed: {other:?}"),
        }
    }
    bytes
}

/// Stages `bytes` in chunks and restores them as the snapshot `info` describes.
fn restore(h: &mut Harness, d: &mut Deployer, bytes: &[u8], info: SnapshotInfo) -> CommandReply {
    for (i, chunk) in bytes.chunks(STATE_CHUNK).enumerate() {
        let staged = d.command(
            h,
            &Command::WriteState {
                offset: (i * STATE_CHUNK) as u64,
                data: StateBytes(chunk.to_vec()),
            },
        );
        if staged != CommandReply::Done(vec![]) {
            return staged;
        }
    }
    d.command(
        h,
        &Command::Restore {
            len: info.len,
            digest: info.digest,
            sealed: None,
        },
    )
}

#[test]
fn retire_snapshots_after_the_last_event_and_drops_every_key() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    let mut tx = sender(1, Direction::Forward, ALG);
    let before = tx.seal(EventKind::Event, b"one").unwrap();
    h.handle(ToModule::Event(before));

    let retired = retire(&mut h, &mut d);
    let info = SnapshotInfo::of(b"one");
    assert_eq!(retired.state, Some(info));
    assert_eq!(read_snapshot(&mut h, &mut d, info), b"one");
    assert!(matches!(
        d.command(&mut h, &Command::ReadState { offset: 3 }),
        CommandReply::Failed(m) if m.contains("outside the snapshot (3 bytes)")
    ));

    // Frozen: an authentic event after the snapshot reaches no code and no key.
    let after = tx.seal(EventKind::Event, b"two").unwrap();
    assert!(h.handle(ToModule::Event(after)).is_empty());
    assert_eq!(h.rt.module().seen, vec![b"one".to_vec()]);
    assert_eq!(h.rt.core_mut().stats().rejected_unknown, 1);

    // Asked again (a deployer that crashed), it answers the same snapshot.
    assert_eq!(retire(&mut h, &mut d), retired);
    assert_eq!(read_snapshot(&mut h, &mut d, info), b"one");
    // And it takes no state in.
    for cmd in [
        Command::WriteState {
            offset: 0,
            data: StateBytes(b"x".to_vec()),
        },
        Command::Restore {
            len: info.len,
            digest: info.digest,
            sealed: None,
        },
    ] {
        assert!(matches!(
            d.command(&mut h, &cmd),
            CommandReply::Failed(m) if m.contains("retired")
        ));
    }
}

#[test]
fn a_fresh_instance_has_no_snapshot_to_read() {
    let mut h = Harness::new();
    let mut d = h.attest();
    assert!(matches!(
        d.command(&mut h, &Command::ReadState { offset: 0 }),
        CommandReply::Failed(m) if m.contains("not retired")
    ));
}

#[test]
fn a_retired_module_runs_no_calls_from_its_threads() {
    let mut h = Harness::new();
    let mut d = h.attest();
    retire(&mut h, &mut d);
    let handle: crate::Handle<Echo> = crate::Handle::new(h.rt.core_mut().link.local_sender());
    let worker =
        std::thread::spawn(move || handle.call(|state, _| state.seen.push(b"late".to_vec())));
    let call = h.next_local_call();
    h.rt.run_local(call);
    assert_eq!(worker.join().unwrap(), Err(crate::Error::Closed));
    assert!(h.rt.module().seen.is_empty());
}

/// [`restore`] of a whole small snapshot.
fn restore_all(h: &mut Harness, d: &mut Deployer, state: &[u8]) -> CommandReply {
    restore(h, d, state, SnapshotInfo::of(state))
}

#[test]
fn restore_fills_a_fresh_instance_before_it_runs() {
    let mut h = Harness::new();
    let mut d = h.attest();
    // The module's own refusal comes back sealed, changes nothing, and arms nothing.
    assert_eq!(
        restore_all(&mut h, &mut d, b"bad"),
        CommandReply::Failed("not a snapshot of mine".into())
    );
    assert!(!h.rt.core_mut().stats().armed);
    assert_eq!(
        restore_all(&mut h, &mut d, b"a\nb"),
        CommandReply::Done(vec![])
    );
    assert_eq!(h.rt.module().seen, vec![b"a".to_vec(), b"b".to_vec()]);
    assert!(h.rt.core_mut().stats().armed, "restored: it may run");

    // Its state moves on; the same snapshot again (a deployer that crashed before recording
    // the restore, staging it again) is answered without rolling it back; another one is
    // refused.
    let ev = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, b"c")
        .unwrap();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    h.handle(ToModule::Event(ev));
    assert_eq!(
        restore_all(&mut h, &mut d, b"a\nb"),
        CommandReply::Done(vec![])
    );
    assert!(matches!(
        restore_all(&mut h, &mut d, b"x"),
        CommandReply::Failed(m) if m.contains("before the instance runs")
    ));
    assert_eq!(
        h.rt.module().seen,
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

#[test]
fn restore_is_refused_once_module_code_ran_on_the_fresh_state() {
    for first in [
        Command::Start,
        Command::Call {
            entry: "inc".into(),
            payload: b"1".to_vec(),
        },
        Command::SetKey {
            conn: aex_proto::ConnId(2),
            role: Role::Output("out".into()),
            algorithm: wire(ALG),
            key: aex_proto::WireKey([1; 32]),
        },
    ] {
        let mut h = Harness::new();
        let mut d = h.attest();
        assert!(matches!(d.command(&mut h, &first), CommandReply::Done(_)));
        assert!(
            matches!(restore_all(&mut h, &mut d, b"a"), CommandReply::Failed(m) if m.contains("before the instance runs")),
            "after {first:?}"
        );
        assert!(h.rt.module().seen.is_empty(), "after {first:?}");
    }
}

#[test]
fn restore_applies_only_exactly_the_retired_snapshot() {
    let mut h = Harness::new();
    let mut d = h.attest();
    let info = SnapshotInfo::of(b"x\ny");
    // Nothing staged, a shorter staging, other bytes of the right length: all refused, and
    // each refusal consumes what was staged.
    assert!(matches!(
        d.command(&mut h, &Command::Restore { len: info.len, digest: info.digest, sealed: None }),
        CommandReply::Failed(m) if m.contains("holds 0 bytes, not 3")
    ));
    assert!(matches!(
        restore(&mut h, &mut d, b"x\n", info),
        CommandReply::Failed(m) if m.contains("holds 2 bytes, not 3")
    ));
    assert!(matches!(
        restore(&mut h, &mut d, b"x\nz", info),
        CommandReply::Failed(m) if m.contains("SHA-256")
    ));
    assert!(!h.rt.core_mut().stats().armed);
    // Chunks in order only; offset 0 starts over (a deployer that crashed half-way).
    let write = |h: &mut Harness, d: &mut Deployer, offset: u64, data: &[u8]| {
        d.command(
            h,
            &Command::WriteState {
                offset,
                data: StateBytes(data.to_vec()),
            },
        )
    };
    assert_eq!(write(&mut h, &mut d, 0, b"q"), CommandReply::Done(vec![]));
    assert!(matches!(
        write(&mut h, &mut d, 2, b"y"),
        CommandReply::Failed(m) if m.contains("offset 2, but 1 bytes are staged")
    ));
    assert!(matches!(
        write(&mut h, &mut d, 0, &vec![0; STATE_CHUNK + 1]),
        CommandReply::Failed(m) if m.contains("at most")
    ));
    assert_eq!(write(&mut h, &mut d, 0, b"x\n"), CommandReply::Done(vec![]));
    assert_eq!(write(&mut h, &mut d, 2, b"y"), CommandReply::Done(vec![]));
    assert_eq!(
        d.command(
            &mut h,
            &Command::Restore {
                len: info.len,
                digest: info.digest,
                sealed: None,
            }
        ),
        CommandReply::Done(vec![])
    );
    assert_eq!(h.rt.module().seen, vec![b"x".to_vec(), b"y".to_vec()]);
}

/// A snapshot several frames long crosses from an old instance to a new one in chunks, byte
/// for byte.
#[test]
fn a_snapshot_larger_than_a_frame_moves_in_chunks() {
    let mut old = Harness::new();
    let mut d_old = old.attest();
    // Lines of varying bytes, 2.5 chunks in all (more than two frames).
    let lines: Vec<Vec<u8>> = (0..5u32)
        .map(|i| {
            let len = STATE_CHUNK / 2 + i as usize;
            (0..len)
                .map(|j| b'a' + ((j as u32 * 7 + i) % 26) as u8)
                .collect()
        })
        .collect();
    let joined = lines.join(&b'\n');
    assert_eq!(
        restore_all(&mut old, &mut d_old, &joined),
        CommandReply::Done(vec![])
    );
    assert_eq!(old.rt.module().seen, lines);
    let info = retire(&mut old, &mut d_old).state.expect("a snapshot");
    assert!(info.chunks() >= 3, "{info:?}");
    let bytes = read_snapshot(&mut old, &mut d_old, info);
    assert_eq!(SnapshotInfo::of(&bytes), info);

    let mut new = Harness::new();
    let mut d_new = new.attest();
    assert_eq!(
        restore(&mut new, &mut d_new, &bytes, info),
        CommandReply::Done(vec![])
    );
    assert_eq!(new.rt.module().seen, lines);
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

/// Seals `call_fetch` (counter n) and a re-key of `conn` (counter n + 1), queues the re-key
/// behind `before`, runs the call, and returns how long it took on `clock` and what it wrote.
fn rekey_while_waiting(
    clock: &Clock,
    h: &mut Harness,
    d: &mut Deployer,
    before: Option<ToModule>,
    conn: u32,
) -> (std::time::Duration, Vec<FromModule>) {
    let call = d.seal(&Command::Call {
        entry: "call_fetch".into(),
        payload: b"q".to_vec(),
    });
    let rekey = d.seal(&Command::SetKey {
        conn: aex_proto::ConnId(conn),
        role: Role::Request("fetch".into()),
        algorithm: wire(ALG),
        key: aex_proto::WireKey([0x77; 32]),
    });
    if let Some(m) = before {
        h.queue(m);
    }
    h.queue(ToModule::Command(rekey));
    let started = clock.now();
    let out = h.handle(ToModule::Command(call));
    (clock.now() - started, out)
}

#[test]
fn re_keying_a_waiting_request_ends_the_wait_at_once() {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG);
    let (took, out) = rekey_while_waiting(&clock, &mut h, &mut d, None, 5);
    // The harness's request timeout is 200 ms: the re-key did not wait for it.
    assert_eq!(took, std::time::Duration::ZERO);
    assert!(matches!(
        h.rt.module().fetched,
        Some(Err(crate::Error::Rekeyed { port: "fetch" }))
    ));
    // The request, the re-key's reply (counter 3), then the call's (counter 2), all sealed.
    assert_eq!(out.len(), 3, "{out:?}");
    let FromModule::CommandReply(rekeyed) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(
        d.open_reply(rekeyed, 3).unwrap(),
        CommandReply::Done(vec![])
    );
    let FromModule::CommandReply(called) = &out[2] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(d.open_reply(called, 2).unwrap(), CommandReply::Failed(m) if m.contains("re-keyed"))
    );
    assert!(h.rt.core_mut().deferred.is_empty());
}

#[test]
fn a_re_key_behind_other_messages_keeps_its_turn() {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG);
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    let input = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, b"first")
        .unwrap();
    let (took, out) = rekey_while_waiting(&clock, &mut h, &mut d, Some(ToModule::Event(input)), 5);
    assert!(matches!(
        h.rt.module().fetched,
        Some(Err(crate::Error::Timeout { .. }))
    ));
    assert_eq!(took, std::time::Duration::from_millis(200));
    assert_eq!(out.len(), 2, "the request and the call's reply: {out:?}");
    // Both wait, in arrival order.
    let deferred: Vec<_> = h.rt.core_mut().deferred.iter().collect();
    assert!(matches!(
        deferred[..],
        [ToModule::Event(_), ToModule::Command(_)]
    ));
}
