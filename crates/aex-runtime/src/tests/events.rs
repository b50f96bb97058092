//! Events in every direction, requests and replies, and the refusals the runtime counts.

use aex_proto::{Command, CommandReply, Direction, Event, EventKind, FromModule, Role, ToModule};

use aex_testkit::deployer::{receiver, sender};

use super::harness::{Harness, ALG};
use crate::clock::Clock;
use crate::Error;

#[test]
fn input_events_fan_out_and_refusals_are_counted() {
    let mut h = Harness::new();
    let mut d = h.attest();
    assert_eq!(
        d.set_key(&mut h, 1, Role::Input("inp".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut h, 2, Role::Output("out".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut h, 3, Role::Output("out".into()), ALG),
        CommandReply::Done(vec![])
    );

    let mut tx = sender(1, Direction::Forward, ALG);
    let e1 = tx.seal(EventKind::Event, b"hello").unwrap();
    let out = h.handle(ToModule::Event(e1.clone()));
    assert_eq!(out.len(), 2, "one event per output connection");
    for (msg, conn) in out.iter().zip([2, 3]) {
        let FromModule::Event(ev) = msg else { panic!() };
        assert_eq!(
            receiver(conn, Direction::Forward, ALG).open(ev).unwrap(),
            b"hello"
        );
    }

    // Replay, forgery, wrong kind, wrong direction, output connection, unknown connection.
    assert!(h.handle(ToModule::Event(e1)).is_empty());
    let mut forged = tx.seal(EventKind::Event, b"x").unwrap();
    forged.ciphertext[0] ^= 1;
    assert!(h.handle(ToModule::Event(forged)).is_empty());
    let request = tx.seal(EventKind::Request, b"x").unwrap();
    assert!(h.handle(ToModule::Event(request)).is_empty());
    let backward = sender(1, Direction::Backward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    assert!(h.handle(ToModule::Event(backward)).is_empty());
    let to_output = sender(2, Direction::Forward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    assert!(h.handle(ToModule::Event(to_output)).is_empty());
    let unknown = sender(9, Direction::Forward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    assert!(h.handle(ToModule::Event(unknown)).is_empty());

    // A later authentic event still gets through; skipped counters are gaps.
    let e5 = tx.seal(EventKind::Event, b"again").unwrap();
    assert_eq!(h.handle(ToModule::Event(e5)).len(), 2);
    assert_eq!(
        h.rt.module().seen,
        vec![b"hello".to_vec(), b"again".to_vec()]
    );

    let out = h.handle(ToModule::Stats);
    let [FromModule::Stats(stats)] = &out[..] else {
        panic!()
    };
    let c = &stats.conns;
    assert_eq!((c[0].received, c[0].rejected, c[0].gaps), (2, 4, 2));
    assert_eq!((c[1].sent, c[1].rejected), (2, 1));
    assert_eq!(c[2].sent, 2);
    assert_eq!(stats.rejected_unknown, 1);
    assert_eq!(stats.commands, 3);

    // The trace (`aex events`) tells the same story, event by event, in order.
    let out = h.handle(ToModule::Trace { after: 0 });
    let [FromModule::Trace(report)] = &out[..] else {
        panic!("{out:?}")
    };
    use aex_proto::TraceOutcome::{Accepted, Rejected, Sent, UnknownConn};
    let seen: Vec<_> = report
        .entries
        .iter()
        .map(|e| (e.conn.0, e.counter, e.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            (1, 1, Accepted { gap: 0 }),
            (2, 1, Sent),
            (3, 1, Sent),
            (1, 1, Rejected),
            (1, 2, Rejected),
            (1, 3, Rejected),
            (1, 1, Rejected),
            (2, 1, Rejected),
            (9, 1, UnknownConn),
            (1, 4, Accepted { gap: 2 }),
            (2, 2, Sent),
            (3, 2, Sent),
        ]
    );
    assert_eq!(report.last, 12);
    assert!(report.entries.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    // Asked again after the last: nothing new.
    let out = h.handle(ToModule::Trace { after: 12 });
    assert!(matches!(&out[..], [FromModule::Trace(r)] if r.entries.is_empty() && r.last == 12));
}

#[test]
fn handler_replies_echo_the_request_counter() {
    let mut h = Harness::new();
    let mut d = h.attest();
    assert_eq!(
        d.set_key(&mut h, 4, Role::Handler("answer".into()), ALG),
        CommandReply::Done(vec![])
    );
    let mut tx = sender(4, Direction::Forward, ALG);
    tx.seal(EventKind::Request, b"skipped").unwrap();
    let req = tx.seal(EventKind::Request, b"q").unwrap();
    let out = h.handle(ToModule::Event(req));
    let [FromModule::Event(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (reply.dir, reply.kind),
        (Direction::Backward, EventKind::Reply)
    );
    let pt = receiver(4, Direction::Backward, ALG).open(reply).unwrap();
    assert_eq!(pt, aex_proto::reply::encode(2, Ok(b"re:q")));
}

#[test]
fn a_failing_handler_answers_with_an_authentic_failure() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 4, Role::Handler("answer".into()), ALG);
    let req = sender(4, Direction::Forward, ALG)
        .seal(EventKind::Request, b"fail")
        .unwrap();
    let out = h.handle(ToModule::Event(req));
    let [FromModule::Event(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    let pt = receiver(4, Direction::Backward, ALG).open(reply).unwrap();
    assert_eq!(
        aex_proto::reply::decode(&pt),
        Some((1, Err("cannot answer that".into())))
    );
}

#[test]
fn requests_wait_for_their_reply_and_defer_the_rest() {
    let mut h = Harness::new();
    let mut d = h.attest();
    assert_eq!(
        d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut h, 1, Role::Input("inp".into()), ALG),
        CommandReply::Done(vec![])
    );

    // Queued before the call: an input event, a stats request, a reply echoing the wrong
    // counter, then the right reply. The request will be counter 1.
    let mut back = sender(5, Direction::Backward, ALG);
    let input = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, b"later")
        .unwrap();
    h.queue(ToModule::Event(input));
    h.queue(ToModule::Stats);
    let wrong = back.seal(EventKind::Reply, &aex_proto::reply::encode(9, Ok(b"no")));
    h.queue(ToModule::Event(wrong.unwrap()));
    let right = back.seal(EventKind::Reply, &aex_proto::reply::encode(1, Ok(b"yes")));
    h.queue(ToModule::Event(right.unwrap()));

    let call = Command::Call {
        entry: "call_fetch".into(),
        payload: b"what".to_vec(),
    };
    let out = h.handle(ToModule::Command(d.seal(&call)));
    assert_eq!(out.len(), 3, "{out:?}");
    let FromModule::Event(req) = &out[0] else {
        panic!()
    };
    assert_eq!(
        receiver(5, Direction::Forward, ALG).open(req).unwrap(),
        b"what"
    );
    assert!(matches!(out[1], FromModule::Stats(_)));
    let FromModule::CommandReply(reply) = &out[2] else {
        panic!()
    };
    assert_eq!(
        d.open_reply(reply, 3).unwrap(),
        CommandReply::Done(b"yes".to_vec())
    );

    // The input event waited its turn.
    assert!(h.rt.module().seen.is_empty());
    let deferred = h.rt.core_mut().deferred.pop().unwrap().0;
    h.handle(deferred);
    assert_eq!(h.rt.module().seen, vec![b"later".to_vec()]);
    assert_eq!(
        h.rt.core_mut().stats().conns[1].rejected,
        1,
        "wrong-counter reply"
    );
}

#[test]
fn request_timeout_and_unwaited_replies() {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    let mut d = h.attest();
    let call = Command::Call {
        entry: "call_fetch".into(),
        payload: vec![],
    };
    assert_eq!(
        d.command(&mut h, &call),
        CommandReply::Failed("request `fetch` is not connected to any handler".into())
    );
    assert_eq!(
        d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG),
        CommandReply::Done(vec![])
    );
    let asked = clock.now();
    assert_eq!(
        d.command(&mut h, &call),
        CommandReply::Failed("request `fetch` got no reply within 200 ms".into())
    );
    let out = h.out();
    assert!(
        matches!(&out[..], [FromModule::Event(_)]),
        "the request: {out:?}"
    );
    assert!(matches!(
        h.rt.module().fetched,
        Some(Err(Error::Timeout { port: "fetch", .. }))
    ));
    // It waited exactly the timeout the module set (on the runtime's clock).
    assert_eq!(clock.now() - asked, std::time::Duration::from_millis(200));
    // The late reply finds nobody waiting.
    let late = sender(5, Direction::Backward, ALG)
        .seal(EventKind::Reply, &1u64.to_be_bytes())
        .unwrap();
    assert!(h.handle(ToModule::Event(late)).is_empty());
    assert_eq!(h.rt.core_mut().stats().conns[0].rejected, 1);
}

#[test]
fn events_before_keys_are_unknown() {
    let mut h = Harness::new();
    let ev: Event = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, b"x")
        .unwrap();
    assert!(h.handle(ToModule::Event(ev)).is_empty());
    assert_eq!(h.rt.core_mut().stats().rejected_unknown, 1);
}

#[test]
fn handles_run_calls_from_module_threads_between_events() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 2, Role::Output("out".into()), ALG);
    let handle: crate::Handle<super::harness::Echo> =
        crate::Handle::new(h.rt.core_mut().link.local_sender());
    let worker = std::thread::spawn(move || {
        handle.call(|state, ctx| {
            let sent = ctx.emit(super::harness::OUT, b"from a thread");
            (state.seen.len(), sent)
        })
    });
    // The runtime runs the call when it next waits for input.
    let call = h.next_local_call();
    h.rt.run_local(call);
    assert_eq!(worker.join().unwrap(), Ok((0, Ok(()))));
    let out = h.out();
    let [FromModule::Event(ev)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        receiver(2, Direction::Forward, ALG).open(ev).unwrap(),
        b"from a thread"
    );
}

#[test]
fn a_request_timeout_too_long_for_the_clock_waits_without_limit() {
    let mut h = Harness::new();
    h.rt.set_clock(Clock::manual());
    let mut d = h.attest();
    d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG);
    let reply = sender(5, Direction::Backward, ALG)
        .seal(EventKind::Reply, &aex_proto::reply::encode(1, Ok(b"late")))
        .unwrap();
    h.queue(ToModule::Event(reply));
    // `now + Duration::MAX` does not fit an `Instant`: no deadline, not a panic.
    let mut ctx = crate::Context::new(h.rt.core_mut());
    ctx.request_timeout(std::time::Duration::MAX);
    assert_eq!(
        ctx.request(super::harness::FETCH, b"q"),
        Ok(b"late".to_vec())
    );
}
