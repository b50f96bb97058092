//! Periodic ticks (untrusted triggers) and deadlines (the module's own clock), on a manual
//! clock (`clock.rs`): nothing sleeps, and every count is exact at an exact instant.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aex_proto::{Command, CommandReply, Direction, EventKind, FromModule, Role, ToModule};

use aex_testkit::deployer::{receiver, sender, Deployer};

use super::harness::{Echo, Harness, ALG, SILENCE};
use crate::clock::Clock;
use crate::link::Incoming;

/// The smallest step of the clock.
const NS: Duration = Duration::from_nanos(1);

fn tick(entry: &str) -> ToModule {
    ToModule::Tick {
        entry: entry.into(),
    }
}

/// Queues a tick of `tick` as if the reader had decoded it at `at`.
fn tick_decoded_at(h: &Harness, at: Instant) {
    h.inbox.send(Incoming::Tick("tick".into(), at)).unwrap();
}

/// The payloads of the events on connection 2 (bound to `out`) in `msgs`.
fn emitted(msgs: &[FromModule]) -> Vec<Vec<u8>> {
    let mut rx = receiver(2, Direction::Forward, ALG);
    msgs.iter()
        .filter_map(|m| match m {
            FromModule::Event(ev) => Some(rx.open(ev).unwrap()),
            _ => None,
        })
        .collect()
}

/// An attested module on a manual clock, with `out` keyed on connection 2.
fn keyed() -> (Harness, Deployer, Clock) {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    assert_eq!(
        d.set_key(&mut h, 2, Role::Output("out".into()), ALG),
        CommandReply::Done(vec![])
    );
    (h, d, clock)
}

#[test]
fn ticks_run_only_declared_periodic_entries_of_a_keyed_module() {
    let mut h = Harness::new();
    assert!(h.handle(tick("tick")).is_empty(), "not attested yet");
    let mut d = h.attest();
    d.set_key(&mut h, 2, Role::Output("out".into()), ALG);
    let out = h.handle(tick("tick"));
    assert_eq!(emitted(&out), [b"tick".to_vec()]);
    // An ordinary entry point, a handler and an unknown name are not periodic.
    for name in ["inc", "answer", "nope"] {
        assert!(h.handle(tick(name)).is_empty(), "{name}");
    }
    d.command(&mut h, &Command::Disable);
    assert!(h.handle(tick("tick")).is_empty(), "disabled");
    assert_eq!(h.rt.module().ticks, 1);
    assert_eq!(h.rt.core_mut().stats().rejected_ticks, 5);
}

#[test]
fn a_tick_that_waited_behind_a_run_of_its_entry_is_dropped() {
    let (mut h, _, clock) = keyed();
    let waited = clock.now();
    clock.advance(SILENCE);
    // A run of `tick` starts; the tick decoded before it waited behind it.
    let started = clock.now();
    assert_eq!(emitted(&h.handle(tick("tick"))), [b"tick".to_vec()]);
    tick_decoded_at(&h, waited);
    // Decoded as that run started: not late.
    tick_decoded_at(&h, started);
    // Decoded before the run that tick just started: late again.
    tick_decoded_at(&h, started - NS);
    h.queue(ToModule::Shutdown);
    assert_eq!(h.rt.serve(), 0);
    assert_eq!(h.rt.module().ticks, 2);
    let out = h.out();
    assert!(matches!(out[0], FromModule::Hello(_)), "{out:?}");
    assert_eq!(out.len(), 2, "one more run: {out:?}");
}

#[test]
fn ticks_arriving_during_a_request_are_dropped() {
    let (mut h, mut d, clock) = keyed();
    d.set_key(&mut h, 4, Role::Request("fetch".into()), ALG);
    tick_decoded_at(&h, clock.now());
    // `call_fetch` waits 200 ms for a reply that never comes; the tick is not deferred.
    let asked = clock.now();
    assert_eq!(
        d.call(&mut h, "call_fetch", b"q"),
        CommandReply::Failed("request `fetch` got no reply within 200 ms".into())
    );
    let out = h.out();
    assert!(
        matches!(&out[..], [FromModule::Event(_)]),
        "the request: {out:?}"
    );
    assert!(matches!(
        h.rt.module().fetched,
        Some(Err(crate::Error::Timeout { .. }))
    ));
    assert_eq!(clock.now() - asked, Duration::from_millis(200));
    assert_eq!(h.rt.module().ticks, 0);
    assert!(h.rt.core_mut().deferred.is_empty());
    // Once the module is free again, a tick runs.
    assert_eq!(emitted(&h.handle(tick("tick"))), [b"tick".to_vec()]);
}

#[test]
fn deadline_fires_once_per_missed_period_from_when_the_input_is_keyed() {
    let (mut h, mut d, clock) = keyed();
    let alarms = |h: &Harness| h.rt.module().alarms;
    clock.advance(10 * SILENCE);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 0, "no input keyed, no clock");

    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    clock.advance(SILENCE - NS);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 0);
    clock.advance(NS);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 1);
    assert_eq!(emitted(&h.out()), [b"alarm".to_vec()]);
    clock.advance(SILENCE / 2);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 1, "once per period");

    // Busy for three and a half periods: one late alarm, not a burst.
    clock.advance(3 * SILENCE + SILENCE / 2);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 2);
    assert_eq!(emitted(&h.out()), [b"alarm".to_vec()]);

    // Back on the period grid (keyed + 6 periods). Re-keying the input half-way there does
    // not restart the clock.
    clock.advance(SILENCE / 2);
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    clock.advance(SILENCE / 2 - NS);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 2);
    clock.advance(NS);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 3);
    h.out();

    // Checked every half period for three and a half periods: one alarm per period.
    for _ in 0..7 {
        clock.advance(SILENCE / 2);
        h.rt.run_deadlines();
    }
    assert_eq!(alarms(&h), 6);
    assert_eq!(emitted(&h.out()), vec![b"alarm".to_vec(); 3]);

    // Disabling stops it for good.
    d.command(&mut h, &Command::Disable);
    clock.advance(100 * SILENCE);
    h.rt.run_deadlines();
    assert_eq!(alarms(&h), 6);
}

#[test]
fn only_an_authentic_accepted_event_restarts_the_deadline() {
    let (mut h, mut d, clock) = keyed();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    let mut tx = sender(1, Direction::Forward, ALG);
    clock.advance(SILENCE / 2);

    // Forged, replayed and misdirected events arrive half-way; none restarts the clock.
    let authentic = tx.seal(EventKind::Event, b"reading").unwrap();
    let mut forged = tx.seal(EventKind::Event, b"forged").unwrap();
    forged.ciphertext[0] ^= 1;
    let wrong_kind = tx.seal(EventKind::Request, b"x").unwrap();
    let backward = sender(1, Direction::Backward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    for ev in [forged, wrong_kind, backward] {
        assert!(h.handle(ToModule::Event(ev)).is_empty());
    }
    clock.advance(SILENCE / 2);
    h.rt.run_deadlines();
    assert_eq!(h.rt.module().alarms, 1, "due a period after keying");

    // An authentic event half-way to the next alarm does: none at the period boundary.
    clock.advance(SILENCE / 2);
    h.handle(ToModule::Event(authentic.clone()));
    clock.advance(SILENCE / 2);
    h.rt.run_deadlines();
    assert_eq!(h.rt.module().alarms, 1, "restarted by the authentic event");

    // Its replay does not: the alarm comes a period after the authentic event.
    assert!(h.handle(ToModule::Event(authentic)).is_empty());
    clock.advance(SILENCE / 2);
    h.rt.run_deadlines();
    assert_eq!(h.rt.module().alarms, 2);
    assert_eq!(h.rt.module().seen, [b"reading".to_vec()]);
}

#[test]
fn serve_raises_alarms_while_the_node_floods_it_with_forged_events() {
    let (mut h, mut d, clock) = keyed();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    h.out();
    let keyed_at = clock.now();
    // What module code saw between messages: (ms since keying, alarms so far).
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Time passes between two messages: a call from a module thread, which the serve loop runs
    // in order with the messages, records the alarms and moves the clock.
    let pass = |ms: u64| {
        let (clock, seen) = (clock.clone(), seen.clone());
        Incoming::Local(Box::new(move |module, _| {
            let echo = module
                .downcast_mut::<Echo>()
                .expect("the module is an Echo");
            let at = (clock.now() - keyed_at).as_millis();
            seen.lock().unwrap().push((at, echo.alarms));
            clock.advance(Duration::from_millis(ms));
        }))
    };
    let mut tx = sender(1, Direction::Forward, ALG);
    // 300 ms of authentic readings every 20 ms (the last at 280 ms): no alarm.
    for _ in 0..15 {
        let ev = tx.seal(EventKind::Event, b"r").unwrap();
        h.queue(ToModule::Event(ev));
        h.inbox.send(pass(20)).unwrap();
    }
    // Then 500 ms of forged events every 5 ms: an alarm every period all the same.
    for _ in 0..100 {
        let mut ev = tx.seal(EventKind::Event, b"f").unwrap();
        ev.ciphertext[0] ^= 1;
        h.queue(ToModule::Event(ev));
        h.inbox.send(pass(5)).unwrap();
    }
    h.queue(ToModule::Shutdown);
    assert_eq!(h.rt.serve(), 0);

    // Each alarm ran at the first message at or after its due time, never later.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 115);
    for &(at, alarms) in seen.iter() {
        let due = if at < 380 { 0 } else { (at - 280) / 100 };
        assert_eq!(u128::from(alarms), due, "at {at} ms");
    }
    // 500 ms of silence after the last reading, checked before the `Shutdown`: five alarms.
    assert_eq!(h.rt.module().alarms, 5);
    let mut want = vec![b"r".to_vec(); 15];
    want.extend(vec![b"alarm".to_vec(); 5]);
    assert_eq!(emitted(&h.out()), want);
}
