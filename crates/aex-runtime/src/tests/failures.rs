//! Where a failing port's message goes: sealed to its caller and bounded in length, never in
//! clear to the node (stderr), which must not read payload bytes quoted in it.

use aex_proto::{Command, CommandReply, Direction, EventKind, FromModule, Role, ToModule};

use aex_testkit::deployer::{receiver, sender};

use super::harness::{Harness, ALG};
use super::LOGGED;
use crate::failure::MAX_FAILURE_LEN;

/// A payload a module must not leak, in a form its message quotes.
const SECRET: &[u8] = b"quote:the-combination-is-0451";

fn logged() -> Vec<String> {
    LOGGED.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Checks that nothing logged quotes the secret, and that each line is short.
#[track_caller]
fn assert_logs_withhold_the_payload() -> Vec<String> {
    let lines = logged();
    assert!(!lines.is_empty(), "the failure is logged");
    for line in &lines {
        assert!(!line.contains("0451"), "the node reads this: {line}");
        assert!(line.len() < 200, "{} bytes: {line}", line.len());
    }
    lines
}

#[test]
fn a_failing_handler_answers_a_bounded_message_and_logs_none_of_it() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 4, Role::Handler("answer".into()), ALG);
    logged();
    let req = sender(4, Direction::Forward, ALG)
        .seal(EventKind::Request, SECRET)
        .unwrap();
    let out = h.handle(ToModule::Event(req));
    let [FromModule::Event(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    let pt = receiver(4, Direction::Backward, ALG).open(reply).unwrap();
    let Some((1, Err(message))) = aex_proto::reply::decode(&pt) else {
        panic!("not a failure: {pt:?}")
    };
    // The module's message is about 20 KiB; its requester gets the first KiB, sealed.
    assert!(message.len() <= MAX_FAILURE_LEN, "{} bytes", message.len());
    assert!(message.starts_with("cannot take quote:the-combination-is-0451; "));
    assert!(message.ends_with(" [cut]"), "{message}");
    let lines = assert_logs_withhold_the_payload();
    assert!(lines[0].starts_with("handler `answer` failed"), "{lines:?}");
}

#[test]
fn a_failing_input_logs_none_of_its_message() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    logged();
    let ev = sender(1, Direction::Forward, ALG)
        .seal(EventKind::Event, SECRET)
        .unwrap();
    assert!(h.handle(ToModule::Event(ev)).is_empty());
    let lines = assert_logs_withhold_the_payload();
    assert!(lines[0].contains("input `inp` failed"), "{lines:?}");
}

#[test]
fn an_entry_point_failure_is_bounded_too() {
    let mut h = Harness::new();
    let mut d = h.attest();
    // serde's error quotes the string it could not take as a number: all 5,000 bytes of it.
    let long = format!("\"{}\"", "7".repeat(5_000));
    let CommandReply::Failed(message) = d.command(
        &mut h,
        &Command::Call {
            entry: "inc".into(),
            payload: long.into_bytes(),
        },
    ) else {
        panic!("a string is no u32")
    };
    assert!(message.len() <= MAX_FAILURE_LEN, "{} bytes", message.len());
    assert!(
        message.starts_with("invalid argument for `inc`"),
        "{message}"
    );
    // Cut at a character boundary, whatever the message is made of.
    assert_eq!(
        crate::failure::bounded("€".repeat(MAX_FAILURE_LEN)).len(),
        MAX_FAILURE_LEN - 1
    );
    assert_eq!(crate::failure::bounded("short".into()), "short");
}

#[test]
fn an_input_failure_is_counted_as_failed_not_received_with_its_reason() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    let mut tx = sender(1, Direction::Forward, ALG);
    for payload in [&b"fine"[..], SECRET, b"fine again"] {
        let ev = tx.seal(EventKind::Event, payload).unwrap();
        h.handle(ToModule::Event(ev));
    }
    h.out();
    let stats = h.rt.core_mut().stats();
    let c = &stats.conns[0];
    assert_eq!((c.received, c.failed, c.gaps), (2, 1, 0), "{c:?}");
    let [failure] = &stats.failures[..] else {
        panic!("{:?}", stats.failures)
    };
    assert_eq!(
        (
            failure.port.as_str(),
            failure.failed,
            failure.conn,
            failure.counter
        ),
        ("input inp", 1, Some(aex_proto::ConnId(1)), 2)
    );
    assert!(
        failure.reason.contains("returned an error") && !failure.reason.contains("0451"),
        "the node reads this: {failure:?}"
    );
    assert_logs_withhold_the_payload();
    // The event trace (`aex events`) shows the second event as failed, the others accepted.
    use aex_proto::TraceOutcome::{Accepted, Failed};
    let outcomes: Vec<_> =
        h.rt.core_mut()
            .conns
            .trace
            .since(0)
            .entries
            .iter()
            .map(|e| (e.counter, e.outcome))
            .collect();
    assert_eq!(
        outcomes,
        [
            (1, Accepted { gap: 0 }),
            (2, Failed { gap: 0 }),
            (3, Accepted { gap: 0 })
        ]
    );
}

#[test]
fn a_panicking_handler_answers_its_requester_then_the_module_stops() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 4, Role::Handler("answer".into()), ALG);
    logged();
    let req = sender(4, Direction::Forward, ALG)
        .seal(EventKind::Request, super::harness::PANIC)
        .unwrap();
    let out = h.handle(ToModule::Event(req));
    let [FromModule::Event(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    let pt = receiver(4, Direction::Backward, ALG).open(reply).unwrap();
    let Some((1, Err(message))) = aex_proto::reply::decode(&pt) else {
        panic!("not a failure: {pt:?}")
    };
    assert!(
        message.starts_with("`answer` panicked at ") && message.ends_with("the module stopped"),
        "{message}"
    );
    assert_eq!(h.rt.stopping(), Some(crate::failure::PANIC_EXIT));
    let stats = h.rt.core_mut().stats();
    assert_eq!((stats.conns[0].received, stats.conns[0].failed), (0, 1));
    assert_eq!(stats.failures[0].port, "handler answer");
    assert!(stats.failures[0].reason.contains("panicked"), "{stats:?}");
}

#[test]
fn a_panicking_input_stops_the_module_before_it_takes_anything_else() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    let mut tx = sender(1, Direction::Forward, ALG);
    let ev = tx.seal(EventKind::Event, super::harness::PANIC).unwrap();
    h.handle(ToModule::Event(ev));
    assert_eq!(h.rt.stopping(), Some(crate::failure::PANIC_EXIT));
    // The serve loop ends at once, with the panic's exit status, though more input waits.
    let ev = tx.seal(EventKind::Event, b"after").unwrap();
    h.queue(ToModule::Event(ev));
    assert_eq!(h.rt.serve(), crate::failure::PANIC_EXIT);
    assert!(h.rt.module().seen.is_empty(), "nothing ran after the panic");
}
