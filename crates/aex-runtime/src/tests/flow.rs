//! Flow control (`flow.rs`): credit granted for what is taken in, emits that stop at the
//! window and wait for credit, and what a node can and cannot do with credit.
//!
//! The runtime is on a manual clock: a wait with nothing queued ends at its deadline at once,
//! so a wait for credit that none answers times out without sleeping.

use aex_proto::flow::{cost_of, INITIAL_WINDOW};
use aex_proto::{ConnId, Credit, Direction, EventKind, FromModule, Role, ToModule};
use aex_testkit::deployer::{receiver, sender};

use super::harness::{Harness, ALG, FETCH, OUT};
use crate::clock::Clock;
use crate::flow::{target_window, GRANT_AFTER};
use crate::{Context, Error};

/// What an event with a `len`-byte payload costs (AES-GCM adds a 16-byte tag).
fn cost(len: usize) -> u32 {
    cost_of(len + 16)
}

fn credit(conn: u32, dir: Direction, bytes: u32, dropped: u32) -> ToModule {
    ToModule::Credit(Credit {
        conn: ConnId(conn),
        dir,
        bytes,
        dropped,
    })
}

/// An attested module on a manual clock with `out` keyed on connection 2 (and `inp` on 1).
fn keyed() -> (Harness, Clock) {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    d.set_key(&mut h, 2, Role::Output("out".into()), ALG);
    (h, clock)
}

/// Emits `len` bytes on `out` (directly, as module code would) until one does not go out.
fn fill(h: &mut Harness, len: usize) -> (u32, Error) {
    let payload = vec![7; len];
    for sent in 0.. {
        match Context::new(h.rt.core_mut()).try_emit(OUT, &payload) {
            Ok(()) => {}
            Err(e) => return (sent, e),
        }
    }
    unreachable!()
}

#[test]
fn an_input_grants_credit_for_what_it_takes_in() {
    let (mut h, clock) = keyed();
    // The module emits each input on `out`: room enough that it never waits (a wait would
    // move the manual clock).
    h.handle(credit(2, Direction::Forward, 1 << 30, 0));
    let mut tx = sender(1, Direction::Forward, ALG);
    let target = target_window(1);
    // The first event brings the sender's window from the initial one to the target.
    h.handle(ToModule::Event(tx.seal(EventKind::Event, b"a").unwrap()));
    let granted = h.credits();
    assert_eq!(
        granted,
        [Credit {
            conn: ConnId(1),
            dir: Direction::Forward,
            bytes: target - INITIAL_WINDOW + cost(1),
            dropped: 0
        }]
    );
    // Then in batches of a quarter window while events come fast...
    let per_batch = (target / 4).div_ceil(cost(1000));
    for _ in 0..per_batch - 1 {
        h.handle(ToModule::Event(
            tx.seal(EventKind::Event, &[0; 1000]).unwrap(),
        ));
    }
    assert!(h.credits().is_empty(), "batched, not per event");
    h.handle(ToModule::Event(
        tx.seal(EventKind::Event, &[0; 1000]).unwrap(),
    ));
    assert_eq!(h.credits()[0].bytes, per_batch * cost(1000));
    // ...and what is owed once a slow receiver sat on it for a while.
    h.handle(ToModule::Event(tx.seal(EventKind::Event, b"b").unwrap()));
    assert!(h.credits().is_empty());
    clock.advance(GRANT_AFTER);
    h.handle(ToModule::Event(tx.seal(EventKind::Event, b"c").unwrap()));
    assert_eq!(h.credits()[0].bytes, 2 * cost(1));
    // Credit counts what was taken in, authentic or not: a forged event is credited too (its
    // sender's bytes are gone either way), on connections this module receives on only.
    let mut forged = tx.seal(EventKind::Event, b"d").unwrap();
    forged.ciphertext[0] ^= 1;
    h.handle(ToModule::Event(forged));
    clock.advance(GRANT_AFTER);
    let on_output = sender(2, Direction::Forward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    h.handle(ToModule::Event(on_output));
    assert!(h.credits().is_empty(), "no credit for events on an output");
    h.handle(ToModule::Event(tx.seal(EventKind::Event, b"e").unwrap()));
    assert_eq!(h.credits()[0].bytes, 2 * cost(1));
}

#[test]
fn an_emit_stops_at_the_window_and_goes_on_with_credit() {
    let (mut h, _clock) = keyed();
    let (sent, e) = fill(&mut h, 1000);
    // Sends while credit is above zero: the last event may overdraw it.
    assert_eq!(sent, INITIAL_WINDOW.div_ceil(cost(1000)));
    assert_eq!(
        e,
        Error::WouldBlock {
            port: "out",
            conns: vec![ConnId(2)]
        }
    );
    let events = h.out();
    assert_eq!(events.len(), sent as usize);
    // Nothing was sealed for the event that did not go: no counter is skipped.
    let mut rx = receiver(2, Direction::Forward, ALG);
    for ev in &events {
        let FromModule::Event(ev) = ev else { panic!() };
        rx.open(ev).unwrap();
    }
    // `emit` waits; with no credit coming (the manual clock ends the wait at once) it fails.
    let waited = Context::new(h.rt.core_mut()).emit(OUT, b"late");
    assert!(matches!(
        &waited,
        Err(Error::WindowFull { port: "out", conns, .. }) if conns == &[ConnId(2)]
    ));
    // Stalled: the next emit does not wait again.
    assert!(matches!(
        Context::new(h.rt.core_mut()).emit(OUT, b"later"),
        Err(Error::WindowFull { waited, .. }) if waited.is_zero()
    ));
    // Credit for another connection or direction changes nothing; for this one it reopens.
    h.handle(credit(2, Direction::Backward, 1 << 20, 0));
    h.handle(credit(9, Direction::Forward, 1 << 20, 0));
    assert!(Context::new(h.rt.core_mut()).try_emit(OUT, b"x").is_err());
    h.handle(credit(2, Direction::Forward, 1 << 20, 0));
    Context::new(h.rt.core_mut()).emit(OUT, b"now").unwrap();
    let [FromModule::Event(ev)] = &h.out()[..] else {
        panic!()
    };
    assert_eq!(rx.open(ev).unwrap(), b"now");
    let stats = h.rt.core_mut().stats();
    let out = stats.conns.iter().find(|c| c.conn == ConnId(2)).unwrap();
    assert_eq!((out.sent, out.blocked), (u64::from(sent) + 1, 4));
}

#[test]
fn credit_arriving_while_an_emit_waits_lets_it_through() {
    let (mut h, _clock) = keyed();
    fill(&mut h, 1000);
    h.out();
    // An input event arrives while the module's emit waits: it is handled after the emit, and
    // credited at once, so a module that waits on this one is not stuck behind it.
    let mut tx = sender(1, Direction::Forward, ALG);
    h.queue(ToModule::Event(tx.seal(EventKind::Event, b"in").unwrap()));
    h.queue(credit(2, Direction::Forward, 5000, 0));
    Context::new(h.rt.core_mut()).emit(OUT, b"waited").unwrap();
    assert_eq!(h.out().len(), 1, "the emit went out");
    assert_eq!(h.credits().len(), 1, "the deferred input was credited");
    assert!(
        h.rt.module().seen.is_empty(),
        "no module code ran meanwhile"
    );
}

#[test]
fn a_module_that_emits_on_input_is_slowed_not_failed() {
    // The harness's module emits each input on `out`: with credit queued behind each input, as
    // a receiver grants it, every input goes out, in order.
    let (mut h, _clock) = keyed();
    let mut tx = sender(1, Direction::Forward, ALG);
    let mut rx = receiver(2, Direction::Forward, ALG);
    for i in 0..500u32 {
        let payload = [i.to_be_bytes().to_vec(), vec![0; 996]].concat();
        if i >= 60 {
            h.queue(credit(2, Direction::Forward, cost(1000), 0));
        }
        let out = h.handle(ToModule::Event(
            tx.seal(EventKind::Event, &payload).unwrap(),
        ));
        let [FromModule::Event(ev)] = &out[..] else {
            panic!("event {i}: {out:?}")
        };
        assert_eq!(rx.open(ev).unwrap(), payload);
    }
    assert!(h.rt.module().emitted.iter().all(Result::is_ok));
}

#[test]
fn a_request_waits_for_credit_and_a_handler_replies_regardless() {
    let mut h = Harness::new();
    h.rt.set_clock(Clock::manual());
    let mut d = h.attest();
    d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG);
    d.set_key(&mut h, 4, Role::Handler("answer".into()), ALG);
    // One large request uses the window up (it goes: credit was above zero)...
    let big = vec![0; INITIAL_WINDOW as usize];
    let first = Context::new(h.rt.core_mut()).request(FETCH, &big);
    assert!(matches!(first, Err(Error::Timeout { .. })), "{first:?}");
    // ...so the next waits for credit, and fails without being sent.
    h.out();
    let second = Context::new(h.rt.core_mut()).request(FETCH, b"small");
    assert!(
        matches!(&second, Err(Error::WindowFull { port: "fetch", conns, .. }) if conns == &[ConnId(5)]),
        "{second:?}"
    );
    assert!(h.out().is_empty(), "nothing sent");
    // A handler's reply goes out even past its window: its requester asked for it.
    let mut tx = sender(4, Direction::Forward, ALG);
    for _ in 0..3 {
        let req = tx.seal(EventKind::Request, &big).unwrap();
        let out = h.handle(ToModule::Event(req));
        assert!(matches!(&out[..], [FromModule::Event(_)]), "{out:?}");
    }
}

#[test]
fn a_node_reports_dropped_events_through_credit() {
    let (mut h, _clock) = keyed();
    h.handle(credit(2, Direction::Forward, cost(10) * 3, 3));
    // Credit on the input's direction is no report on what this module sent.
    h.handle(credit(1, Direction::Forward, 100, 5));
    let [FromModule::Stats(stats)] = &h.handle(ToModule::Stats)[..] else {
        panic!()
    };
    let dropped: Vec<_> = stats.conns.iter().map(|c| (c.conn.0, c.dropped)).collect();
    assert_eq!(dropped, [(1, 0), (2, 3)]);
}

#[test]
fn the_inbox_grows_with_the_windows_it_must_hold() {
    let mut h = Harness::new();
    let mut d = h.attest();
    for conn in 1..=100 {
        d.set_key(&mut h, conn, Role::Input("inp".into()), ALG);
    }
    let core = h.rt.core_mut();
    assert_eq!(core.conns.window_cap(), INITIAL_WINDOW);
    let ceiling = crate::backlog::inbox_ceiling(100, INITIAL_WINDOW);
    assert_eq!(
        ceiling,
        100 * INITIAL_WINDOW as usize + crate::backlog::INBOX_SLACK
    );
}

#[test]
fn a_stalled_window_sends_one_probe_per_emit_timeout() {
    // Events lost on the way (written into a link that broke) never come back as credit: a
    // window full of them would stall the connection for good without a probe.
    let (mut h, clock) = keyed();
    fill(&mut h, 1000);
    h.out();
    let emit = |h: &mut Harness| Context::new(h.rt.core_mut()).emit(OUT, b"probe?");
    assert!(matches!(emit(&mut h), Err(Error::WindowFull { .. })));
    assert!(
        matches!(emit(&mut h), Err(Error::WindowFull { .. })),
        "stalled: no probe yet"
    );
    clock.advance(crate::core::DEFAULT_EMIT_TIMEOUT);
    emit(&mut h).expect("the probe goes out");
    assert_eq!(h.out().len(), 1);
    assert!(emit(&mut h).is_err(), "one probe per period");
    assert!(h.out().is_empty());
}

#[test]
fn a_counter_gap_gives_the_lost_events_credit_back_at_once() {
    let (mut h, _clock) = keyed();
    h.handle(credit(2, Direction::Forward, 1 << 30, 0));
    let mut tx = sender(1, Direction::Forward, ALG);
    h.handle(ToModule::Event(
        tx.seal(EventKind::Event, &[0; 100]).unwrap(),
    ));
    h.credits();
    // Three events of the same size are lost on the way; the next one reveals them.
    for _ in 0..3 {
        tx.seal(EventKind::Event, &[0; 100]).unwrap();
    }
    h.handle(ToModule::Event(
        tx.seal(EventKind::Event, &[0; 100]).unwrap(),
    ));
    let granted: u32 = h.credits().iter().map(|c| c.bytes).sum();
    assert_eq!(
        granted,
        4 * cost(100),
        "the lost three and the one taken in"
    );
}
