//! A reply answers exactly the request it belongs to: a handler that outlives its
//! connection's key (re-keyed while it waits on a device or a request of its own) must not seal
//! its late reply under the new key, where it would answer the new requester's first request,
//! which carries the same counter.

use aex_crypto::SecretKey;
use aex_proto::{
    Command, CommandReply, ConnId, Direction, Event, EventKind, FromModule, RecvChannel, Role,
    SendChannel, ToModule, WireKey,
};

use aex_testkit::deployer::{sender, wire};

use super::harness::{Harness, ALG};

/// The handler connection, and the key it gets when the requester is replaced.
const HANDLER: u32 = 4;
const NEW_KEY: [u8; 32] = [0x77; 32];

/// The new requester's ends of the re-keyed handler connection.
fn new_requester() -> (SendChannel, RecvChannel) {
    let key = SecretKey::from_bytes(NEW_KEY);
    (
        SendChannel::new(ALG, &key, ConnId(HANDLER), Direction::Forward),
        RecvChannel::new(ALG, &key, ConnId(HANDLER), Direction::Backward),
    )
}

/// Plays the attack: the old requester's request `payload` blocks the handler; meanwhile the
/// deployer re-keys the connection (the requester was replaced), the new requester sends its
/// first request, and then `unblock` lets the handler finish. Returns what the new requester
/// accepts as the answer to its request, and the module's count of dropped replies.
fn late_reply(
    payload: &[u8],
    prepare: impl FnOnce(&mut Harness, &mut aex_testkit::deployer::Deployer),
    unblock: ToModule,
) -> (Vec<u8>, u64) {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, HANDLER, Role::Handler("answer".into()), ALG);
    prepare(&mut h, &mut d);
    let old = sender(HANDLER, Direction::Forward, ALG)
        .seal(EventKind::Request, payload)
        .unwrap();
    assert_eq!(old.counter, 1);

    let rekey = d.seal(&Command::SetKey {
        conn: ConnId(HANDLER),
        role: Role::Handler("answer".into()),
        algorithm: wire(ALG),
        key: WireKey(NEW_KEY),
    });
    let (mut tx, mut rx) = new_requester();
    let new = tx.seal(EventKind::Request, b"new").unwrap();
    assert_eq!(new.counter, 1, "the same counter as the blocked request");
    h.queue(ToModule::Command(rekey.clone()));
    h.queue(ToModule::Event(new));
    h.queue(unblock);

    let mut out = h.handle(ToModule::Event(old));
    // The re-key went through at once, while the handler waited.
    let rekeyed = out
        .iter()
        .find_map(|m| match m {
            FromModule::CommandReply(r) if r.counter == rekey.counter => Some(r.clone()),
            _ => None,
        })
        .expect("the re-key's reply");
    assert_eq!(
        d.open_reply(&rekeyed, rekey.counter).unwrap(),
        CommandReply::Done(vec![])
    );
    // Then the new request is handled in its turn.
    while let Some((msg, _)) = h.rt.core_mut().deferred.pop() {
        out.extend(h.handle(msg));
    }
    // The new requester takes the first reply on its connection that opens and echoes its
    // counter, as the runtime's own request does.
    let answer = out
        .iter()
        .filter_map(|m| match m {
            FromModule::Event(e) if e.conn == ConnId(HANDLER) => Some(e),
            _ => None,
        })
        .filter_map(|e: &Event| rx.open(e).ok())
        .filter_map(|pt| aex_proto::reply::decode(&pt))
        .find(|(echo, _)| *echo == 1)
        .expect("an answer to the new request");
    let body = answer.1.expect("the handler succeeded");
    (body, h.rt.core_mut().stats().dropped_replies)
}

#[test]
fn a_handler_blocked_on_a_device_while_its_connection_is_re_keyed_sends_no_late_reply() {
    let (answer, dropped) = late_reply(
        b"device",
        |_, _| {},
        ToModule::DeviceReply {
            id: 1,
            result: Ok(7),
        },
    );
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "re:new",
        "the new request's answer"
    );
    assert_eq!(dropped, 1);
}

#[test]
fn a_handler_blocked_on_a_request_while_its_connection_is_re_keyed_sends_no_late_reply() {
    let reply = sender(5, Direction::Backward, ALG)
        .seal(
            EventKind::Reply,
            &aex_proto::reply::encode(1, Ok(b"inner answer")),
        )
        .unwrap();
    let (answer, dropped) = late_reply(
        b"fetch",
        |h, d| {
            d.set_key(h, 5, Role::Request("fetch".into()), ALG);
        },
        ToModule::Event(reply),
    );
    assert_eq!(String::from_utf8_lossy(&answer), "re:new");
    assert_eq!(dropped, 1);
}

#[test]
fn a_handler_whose_key_did_not_change_still_answers() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, HANDLER, Role::Handler("answer".into()), ALG);
    // Another connection is keyed while the handler waits: not its own.
    let other = d.seal(&Command::SetKey {
        conn: ConnId(9),
        role: Role::Output("out".into()),
        algorithm: wire(ALG),
        key: WireKey([9; 32]),
    });
    h.queue(ToModule::Command(other));
    h.queue(ToModule::DeviceReply {
        id: 1,
        result: Ok(3),
    });
    let req = sender(HANDLER, Direction::Forward, ALG)
        .seal(EventKind::Request, b"device")
        .unwrap();
    let out = h.handle(ToModule::Event(req));
    let mut rx = aex_testkit::deployer::receiver(HANDLER, Direction::Backward, ALG);
    let replies: Vec<_> = out
        .iter()
        .filter_map(|m| match m {
            FromModule::Event(e) if e.conn == ConnId(HANDLER) => rx.open(e).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        [aex_proto::reply::encode(1, Ok(b"re:device:3"))],
        "{out:?}"
    );
    assert_eq!(h.rt.core_mut().stats().dropped_replies, 0);
}
