//! Input held in memory is bounded in bytes: a flood while module code waits on a request is
//! refused on arrival or bounded, and the reader stops reading when the main loop falls
//! behind. (`crates/aex-runtime/tests/runtime_flood.rs` measures a real module process.)

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aex_proto::frame::{self, MAX_FRAME_LEN};
use aex_proto::{
    Command, CommandReply, ConnId, Direction, Event, EventKind, FromModule, Role, ToModule,
};

use aex_testkit::deployer::{sender, Deployer};

use super::harness::{Harness, ALG};
use crate::backlog::{footprint, DEFERRED_BYTES, INBOX_BYTES};
use crate::clock::Clock;
use crate::link::{Link, Recv};

/// The largest ciphertext an event frame carries.
const MAX_CIPHERTEXT: usize = MAX_FRAME_LEN - 64;

/// A module keyed on input 1 and request 5, and the call that waits on `fetch`.
fn waiting() -> (Harness, Deployer, aex_proto::Sealed) {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    d.set_key(&mut h, 5, Role::Request("fetch".into()), ALG);
    let call = d.seal(&Command::Call {
        entry: "call_fetch".into(),
        payload: b"q".to_vec(),
    });
    (h, d, call)
}

fn answer(reply: &[u8]) -> ToModule {
    let reply = aex_proto::reply::encode(1, Ok(reply));
    ToModule::Event(
        sender(5, Direction::Backward, ALG)
            .seal(EventKind::Reply, &reply)
            .unwrap(),
    )
}

fn junk(conn: u32, dir: Direction, counter: u64) -> ToModule {
    ToModule::Event(Event {
        conn: ConnId(conn),
        dir,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![0x5a; MAX_CIPHERTEXT],
    })
}

#[test]
fn a_junk_flood_while_a_request_waits_is_refused_on_arrival_and_the_request_completes() {
    let (mut h, d, call) = waiting();
    // 32 MiB of maximum-size frames, eight times what the runtime holds for later: unknown
    // connections, forged tags on the keyed input, the wrong direction, forged replies on the
    // request connection, and replays of an authentic event.
    let mut input = sender(1, Direction::Forward, ALG);
    let authentic = input.seal(EventKind::Event, b"kept").unwrap();
    h.queue(ToModule::Event(authentic.clone()));
    for i in 0..8 {
        h.queue(junk(77 + i, Direction::Forward, 1));
        h.queue(junk(1, Direction::Forward, 100 + u64::from(i)));
        h.queue(junk(1, Direction::Backward, 1));
        h.queue(junk(5, Direction::Backward, 1));
        h.queue(ToModule::Event(authentic.clone()));
    }
    h.queue(answer(b"through"));
    let out = h.handle(ToModule::Command(call.clone()));
    let reply = out
        .iter()
        .find_map(|m| match m {
            FromModule::CommandReply(r) => Some(r),
            _ => None,
        })
        .expect("the call's reply");
    assert_eq!(
        d.open_reply(reply, call.counter).unwrap(),
        CommandReply::Done(b"through".to_vec())
    );
    // Held for later: the authentic event, once; its replays could only be refused in their
    // turn, so they were refused on arrival.
    let core = h.rt.core_mut();
    let held: Vec<_> = core.deferred.iter().collect();
    assert_eq!(held.len(), 1, "only the authentic event waits");
    assert_eq!(core.deferred.bytes(), footprint(held[0]));
    let stats = core.stats();
    assert_eq!(stats.rejected_unknown, 8);
    assert_eq!(
        stats.conns[0].rejected,
        8 * 3,
        "forged, misdirected and replayed"
    );
    assert_eq!(stats.conns[1].rejected, 8, "forged replies");
    // In its turn the authentic event reaches the module.
    let held = core.deferred.pop().unwrap().0;
    h.handle(held);
    assert_eq!(h.rt.module().seen, [b"kept".to_vec()]);
}

#[test]
fn authentic_input_beyond_the_ceiling_ends_the_wait_and_none_of_it_is_lost() {
    let (mut h, d, call) = waiting();
    // Authentic events of 512 KiB: they may be accepted in their turn, so they are held, up
    // to the ceiling; the one that crosses it ends the wait at once.
    let mut input = sender(1, Direction::Forward, ALG);
    let n = DEFERRED_BYTES / (512 << 10) + 2;
    for i in 0..n {
        let payload = vec![i as u8; 512 << 10];
        h.queue(ToModule::Event(
            input.seal(EventKind::Event, &payload).unwrap(),
        ));
    }
    let out = h.handle(ToModule::Command(call.clone()));
    let FromModule::CommandReply(reply) = out.last().unwrap() else {
        panic!("{out:?}")
    };
    let CommandReply::Failed(message) = d.open_reply(reply, call.counter).unwrap() else {
        panic!("the request cannot have completed")
    };
    assert!(message.contains("gave up waiting"), "{message}");
    assert_eq!(h.rt.module().fetched, Some(Err(crate::Error::Overloaded)));
    let held = h.rt.core_mut().deferred.bytes();
    assert!(
        (DEFERRED_BYTES..DEFERRED_BYTES + MAX_FRAME_LEN).contains(&held),
        "{held} bytes held"
    );
    // Every event is still there, in order: held, then unread.
    let core = h.rt.core_mut();
    let mut counters = vec![];
    while let Some((msg, _)) = core.deferred.pop() {
        let ToModule::Event(e) = msg else {
            panic!("{msg:?}")
        };
        counters.push(e.counter);
    }
    let held = counters.len();
    let clock = Clock::default();
    for _ in held..n {
        let Recv::Message(ToModule::Event(e)) = core.link.recv(Some(clock.now()), &clock) else {
            panic!("event {} of {n} is missing", counters.len() + 1)
        };
        counters.push(e.counter);
    }
    assert_eq!(counters, (1..=n as u64).collect::<Vec<_>>(), "{held} held");
}

/// A reader that counts the bytes taken from it.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicUsize>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
}

#[test]
fn the_reader_stops_reading_while_the_inbox_is_full() {
    // 24 MiB of input, six times the inbox.
    let frames = 24;
    let mut bytes = Vec::new();
    for i in 0..frames {
        bytes.extend(frame::encode(&junk(9, Direction::Forward, i)));
    }
    let total = bytes.len();
    let read = Arc::new(AtomicUsize::new(0));
    let input = Counted {
        inner: io::Cursor::new(bytes),
        read: read.clone(),
    };
    let inbox = crate::link::spawn_reader(input, Clock::default());
    let budget = inbox.budget.clone();
    let mut link = Link::new(inbox, Box::new(io::sink()));

    // Nothing is taken out: the reader fills the inbox, then stops reading.
    let full = INBOX_BYTES - MAX_FRAME_LEN;
    let started = Instant::now();
    while budget.used() < full {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reader queued {} bytes within 10 s, never {full}",
            budget.used()
        );
        std::thread::yield_now();
    }
    // What it read beyond what it queued is at most the frame it holds and its read buffer;
    // watching for a while is the claim (it would read all 24 MiB in milliseconds).
    let bound = INBOX_BYTES + MAX_FRAME_LEN + 8 * 1024 + 4 * frames as usize;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_millis(200) {
        let r = read.load(Ordering::SeqCst);
        assert!(r <= bound, "read {r} of {total} bytes, bound {bound}");
        std::thread::yield_now();
    }
    assert!(budget.used() <= INBOX_BYTES);

    // Taking messages out lets it go on, to the end and in order.
    let clock = Clock::default();
    for i in 0..frames {
        match link.recv(Some(clock.now() + Duration::from_secs(10)), &clock) {
            Recv::Message(ToModule::Event(e)) => assert_eq!(e.counter, i),
            _ => panic!("message {i} did not arrive within 10 s"),
        }
    }
    assert!(matches!(
        link.recv(Some(clock.now() + Duration::from_secs(10)), &clock),
        Recv::Closed(0)
    ));
    assert_eq!(read.load(Ordering::SeqCst), total);
    assert_eq!(budget.used(), 0);
}
