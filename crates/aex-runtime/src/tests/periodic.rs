//! Periodic ticks (untrusted triggers) and deadlines (the module's own clock).

use std::thread;
use std::time::{Duration, Instant};

use aex_proto::{Command, CommandReply, Direction, EventKind, FromModule, Role, ToModule};

use super::harness::{receiver, sender, Harness, SILENCE};
use crate::link::Incoming;

fn tick(entry: &str) -> ToModule {
    ToModule::Tick {
        entry: entry.into(),
    }
}

/// The payloads of the events on connection 2 (bound to `out`) in `msgs`.
fn emitted(msgs: &[FromModule]) -> Vec<Vec<u8>> {
    let mut rx = receiver(2, Direction::Forward);
    msgs.iter()
        .filter_map(|m| match m {
            FromModule::Event(ev) => Some(rx.open(ev).unwrap()),
            _ => None,
        })
        .collect()
}

fn keyed() -> Harness {
    let mut h = Harness::new();
    h.attest();
    assert_eq!(
        h.set_key(2, Role::Output("out".into())),
        CommandReply::Done(vec![])
    );
    h
}

#[test]
fn ticks_run_only_declared_periodic_entries_of_a_keyed_module() {
    let mut h = Harness::new();
    assert!(h.handle(tick("tick")).is_empty(), "not attested yet");
    h.attest();
    h.set_key(2, Role::Output("out".into()));
    let out = h.handle(tick("tick"));
    assert_eq!(emitted(&out), [b"tick".to_vec()]);
    // An ordinary entry point, a handler and an unknown name are not periodic.
    for name in ["inc", "answer", "nope"] {
        assert!(h.handle(tick(name)).is_empty(), "{name}");
    }
    h.command(&Command::Disable);
    assert!(h.handle(tick("tick")).is_empty(), "disabled");
    assert_eq!(h.rt.module().ticks, 1);
    assert_eq!(h.rt.core_mut().stats().rejected_ticks, 5);
}

#[test]
fn a_tick_that_waited_behind_a_run_of_its_entry_is_dropped() {
    let mut h = keyed();
    let before = Instant::now();
    h.handle(tick("tick"));
    // Decoded before the run above started: it waited, so it is late.
    h.inbox.send(Incoming::Tick("tick".into(), before)).unwrap();
    h.inbox
        .send(Incoming::Tick("tick".into(), Instant::now()))
        .unwrap();
    h.queue(ToModule::Shutdown);
    assert_eq!(h.rt.serve(), 0);
    assert_eq!(h.rt.module().ticks, 2);
}

#[test]
fn ticks_arriving_during_a_request_are_dropped() {
    let mut h = keyed();
    h.set_key(4, Role::Request("fetch".into()));
    h.inbox
        .send(Incoming::Tick("tick".into(), Instant::now()))
        .unwrap();
    // `call_fetch` waits 200 ms for a reply that never comes; the tick is not deferred.
    let out = h.command_raw(&Command::Call {
        entry: "call_fetch".into(),
        payload: b"q".to_vec(),
    });
    assert!(!out.is_empty());
    assert_eq!(h.rt.module().ticks, 0);
    assert!(h.rt.core_mut().deferred.is_empty());
}

#[test]
fn deadline_fires_once_per_missed_period_from_when_the_input_is_keyed() {
    let mut h = keyed();
    let start = Instant::now();
    h.rt.run_deadlines(start + 10 * SILENCE);
    assert_eq!(h.rt.module().alarms, 0, "no input keyed, no clock");

    let before = Instant::now();
    h.set_key(1, Role::Input("inp".into()));
    let after = Instant::now();
    h.rt.run_deadlines(before + SILENCE - Duration::from_millis(1));
    assert_eq!(h.rt.module().alarms, 0);
    h.rt.run_deadlines(after + SILENCE);
    assert_eq!(h.rt.module().alarms, 1);
    assert_eq!(emitted(&h.out()), [b"alarm".to_vec()]);
    h.rt.run_deadlines(after + SILENCE + SILENCE / 2);
    assert_eq!(h.rt.module().alarms, 1, "once per period");
    // Busy for eight more periods: one late alarm, not a burst of eight.
    h.rt.run_deadlines(after + 10 * SILENCE);
    assert_eq!(h.rt.module().alarms, 2);
    assert_eq!(emitted(&h.out()).len(), 1);
    // Re-keying the input does not restart the clock.
    h.set_key(1, Role::Input("inp".into()));
    h.rt.run_deadlines(after + 11 * SILENCE);
    assert_eq!(h.rt.module().alarms, 3);
    h.out();
    // Disabling stops it for good.
    h.command(&Command::Disable);
    h.rt.run_deadlines(after + 100 * SILENCE);
    assert_eq!(h.rt.module().alarms, 3);
}

#[test]
fn only_an_authentic_accepted_event_restarts_the_deadline() {
    let mut h = keyed();
    h.set_key(1, Role::Input("inp".into()));
    let armed = Instant::now();
    let mut tx = sender(1, Direction::Forward);
    thread::sleep(SILENCE / 2);

    // Forged, replayed and misdirected events arrive; none restarts the clock.
    let authentic = tx.seal(EventKind::Event, b"reading").unwrap();
    let mut forged = tx.seal(EventKind::Event, b"forged").unwrap();
    forged.ciphertext[0] ^= 1;
    let wrong_kind = tx.seal(EventKind::Request, b"x").unwrap();
    let backward = sender(1, Direction::Backward)
        .seal(EventKind::Event, b"x")
        .unwrap();
    for ev in [forged, wrong_kind, backward] {
        assert!(h.handle(ToModule::Event(ev)).is_empty());
    }
    h.rt.run_deadlines(armed + SILENCE);
    assert_eq!(h.rt.module().alarms, 1);

    // An authentic event does.
    let heard = Instant::now();
    h.handle(ToModule::Event(authentic.clone()));
    let accepted = Instant::now();
    h.rt.run_deadlines(heard + SILENCE - Duration::from_millis(1));
    assert_eq!(h.rt.module().alarms, 1);
    // Its replay does not.
    thread::sleep(SILENCE / 2);
    assert!(h.handle(ToModule::Event(authentic)).is_empty());
    h.rt.run_deadlines(accepted + SILENCE);
    assert_eq!(h.rt.module().alarms, 2);
    assert_eq!(h.rt.module().seen, [b"reading".to_vec()]);
}

#[test]
fn serve_raises_alarms_while_the_node_floods_it_with_forged_events() {
    let mut h = keyed();
    h.set_key(1, Role::Input("inp".into()));
    h.out();
    let inbox = h.inbox.clone();
    let feeder = thread::spawn(move || {
        let mut tx = sender(1, Direction::Forward);
        // 300 ms of authentic readings every 20 ms: no alarm.
        let start = Instant::now();
        while start.elapsed() < 3 * SILENCE {
            let ev = tx.seal(EventKind::Event, b"r").unwrap();
            inbox.send(Incoming::Message(ToModule::Event(ev))).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        // Then 500 ms of forged events every 5 ms: five alarms, the flood notwithstanding.
        let silent = Instant::now();
        while silent.elapsed() < 5 * SILENCE {
            let mut ev = tx.seal(EventKind::Event, b"f").unwrap();
            ev.ciphertext[0] ^= 1;
            inbox.send(Incoming::Message(ToModule::Event(ev))).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        inbox.send(Incoming::Message(ToModule::Shutdown)).unwrap();
    });
    assert_eq!(h.rt.serve(), 0);
    feeder.join().unwrap();
    let alarms = h.rt.module().alarms;
    // 500 ms of silence after the last reading at most ~20 ms before it: 4 or 5 alarms, and
    // a loaded machine may lose one at the edges.
    assert!((3..=6).contains(&alarms), "{alarms} alarms");
    let out = emitted(&h.out());
    assert_eq!(out.iter().filter(|p| p == &b"alarm").count() as u32, alarms);
    assert!(out.iter().take_while(|p| p == &b"r").count() >= 10);
}
