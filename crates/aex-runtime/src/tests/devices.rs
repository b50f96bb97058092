//! Device accesses: what goes to the TEE layer, what module code gets back, and what happens
//! to everything else that arrives while an access waits.

use std::time::{Duration, Instant};

use aex_proto::{
    Command, CommandReply, DeviceOp, Direction, EventKind, FromModule, Role, ToModule,
};

use aex_testkit::deployer::{receiver, sender};

use super::harness::{Echo, Harness, ALG, OUT};
use crate::clock::Clock;
use crate::link::Incoming;
use crate::{Context, Error};

fn read(h: &mut Harness, device: &str) -> Result<u32, Error> {
    Context::new(h.rt.core_mut()).read_device(device)
}

fn write(h: &mut Harness, device: &str, value: u32) -> Result<(), Error> {
    Context::new(h.rt.core_mut()).write_device(device, value)
}

fn access(id: u64, device: &str, op: DeviceOp) -> FromModule {
    FromModule::Device {
        id,
        device: device.into(),
        op,
    }
}

fn answer(id: u64, result: Result<u32, &str>) -> ToModule {
    ToModule::DeviceReply {
        id,
        result: result.map_err(str::to_owned),
    }
}

#[test]
fn read_returns_the_value_and_write_sends_its_op() {
    let mut h = Harness::new();
    h.attest();
    h.queue(answer(1, Ok(731)));
    assert_eq!(read(&mut h, "soil"), Ok(731));
    assert_eq!(h.out(), vec![access(1, "soil", DeviceOp::Read)]);

    // Ids are fresh per process.
    h.queue(answer(2, Ok(1)));
    assert_eq!(write(&mut h, "valve", 1), Ok(()));
    assert_eq!(h.out(), vec![access(2, "valve", DeviceOp::Write(1))]);
}

#[test]
fn a_refusal_becomes_a_device_error() {
    let mut h = Harness::new();
    h.attest();
    h.queue(answer(
        1,
        Err("device `valve` is not granted to this module"),
    ));
    let err = write(&mut h, "valve", 0).unwrap_err();
    assert_eq!(
        err,
        Error::Device {
            device: "valve".into(),
            message: "device `valve` is not granted to this module".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "device `valve`: device `valve` is not granted to this module"
    );
}

#[test]
fn stale_and_late_answers_are_ignored() {
    let mut h = Harness::new();
    let clock = Clock::manual();
    h.rt.set_clock(clock.clone());
    h.attest();
    Context::new(h.rt.core_mut()).request_timeout(Duration::from_millis(50));
    // No answer: the access times out, after exactly the timeout.
    let asked = clock.now();
    assert_eq!(
        read(&mut h, "button"),
        Err(Error::DeviceTimeout {
            device: "button".into(),
            after: Duration::from_millis(50),
        })
    );
    assert_eq!(clock.now() - asked, Duration::from_millis(50));
    assert_eq!(
        Error::DeviceTimeout {
            device: "button".into(),
            after: Duration::from_millis(50),
        }
        .to_string(),
        "device `button`: no answer from the TEE layer within 50 ms"
    );
    assert_eq!(h.out(), vec![access(1, "button", DeviceOp::Read)]);
    // Its late answer, and one with an id never used, do not answer the next access.
    h.queue(answer(1, Ok(1)));
    h.queue(answer(9, Ok(1)));
    h.queue(answer(2, Ok(0)));
    assert_eq!(read(&mut h, "button"), Ok(0));
    assert_eq!(
        clock.now() - asked,
        Duration::from_millis(50),
        "answered in time"
    );
    assert_eq!(h.out(), vec![access(2, "button", DeviceOp::Read)]);
    // With nothing waiting, the main loop drops a late answer too.
    assert!(h.handle(answer(2, Ok(1))).is_empty());
    assert!(h.rt.core_mut().deferred.is_empty());
}

#[test]
fn stats_are_answered_and_ticks_dropped_while_an_access_waits() {
    let mut h = Harness::new();
    h.attest();
    h.queue(ToModule::Stats);
    h.inbox
        .send(Incoming::Tick("tick".into(), Instant::now()))
        .unwrap();
    h.queue(answer(1, Ok(1)));
    assert_eq!(read(&mut h, "button"), Ok(1));
    let out = h.out();
    assert!(
        matches!(
            &out[..],
            [FromModule::Device { id: 1, .. }, FromModule::Stats(_)]
        ),
        "{out:?}"
    );
    assert!(h.rt.core_mut().deferred.is_empty());
    assert_eq!(h.rt.module().ticks, 0);
}

#[test]
fn what_arrives_while_an_access_waits_is_handled_afterwards_in_order() {
    let mut h = Harness::new();
    let mut d = h.attest();
    d.set_key(&mut h, 1, Role::Input("inp".into()), ALG);
    d.set_key(&mut h, 2, Role::Output("out".into()), ALG);
    let mut tx = sender(1, Direction::Forward, ALG);
    h.queue(ToModule::Event(tx.seal(EventKind::Event, b"a").unwrap()));
    let inc = Command::Call {
        entry: "inc".into(),
        payload: b"1".to_vec(),
    };
    let sealed = d.seal(&inc);
    let counter = sealed.counter;
    h.queue(ToModule::Command(sealed));
    h.queue(ToModule::Event(tx.seal(EventKind::Event, b"b").unwrap()));
    h.inbox
        .send(Incoming::Local(Box::new(|module, core| {
            if let Some(echo) = module.downcast_mut::<Echo>() {
                echo.seen.push(b"local".to_vec());
                let sent = crate::Context::new(core).emit(OUT, b"local");
                echo.emitted.push(sent);
            }
        })))
        .unwrap();
    h.queue(answer(1, Ok(1)));

    assert_eq!(read(&mut h, "button"), Ok(1));
    // No module code ran while waiting.
    assert_eq!(h.out(), vec![access(1, "button", DeviceOp::Read)]);
    assert!(h.rt.module().seen.is_empty());

    h.queue(ToModule::Shutdown);
    assert_eq!(h.rt.serve(), 0);
    // Calls from module threads run first (as after a request), then the messages in order.
    assert_eq!(
        h.rt.module().seen,
        vec![b"local".to_vec(), b"a".to_vec(), b"b".to_vec()]
    );
    let out = h.out();
    let [FromModule::Hello(_), FromModule::Event(local), FromModule::Event(a), FromModule::CommandReply(reply), FromModule::Event(b)] =
        &out[..]
    else {
        panic!("{out:?}")
    };
    let mut rx = receiver(2, Direction::Forward, ALG);
    for (event, payload) in [(local, &b"local"[..]), (a, b"a"), (b, b"b")] {
        assert_eq!(rx.open(event).unwrap(), payload);
    }
    assert_eq!(
        d.open_reply(reply, counter).unwrap(),
        CommandReply::Done(2u32.to_be_bytes().to_vec())
    );
}

#[test]
fn a_closed_link_ends_the_wait() {
    let mut h = Harness::new();
    h.attest();
    h.inbox.send(Incoming::Closed(0)).unwrap();
    assert_eq!(write(&mut h, "led", 1), Err(Error::Closed));
}

#[test]
fn disabled_or_retired_instances_send_no_access() {
    let mut h = Harness::new();
    let mut d = h.attest();
    assert_eq!(
        d.command(&mut h, &Command::Disable),
        CommandReply::Done(vec![])
    );
    let disabled = Error::Disabled {
        device: "valve".into(),
    };
    assert_eq!(write(&mut h, "valve", 1), Err(disabled.clone()));
    assert_eq!(read(&mut h, "valve"), Err(disabled));
    assert!(h.out().is_empty());

    let mut h = Harness::new();
    let mut d = h.attest();
    let CommandReply::Done(_) = d.command(&mut h, &Command::Retire) else {
        panic!("retire failed")
    };
    let retired = Error::Retired {
        device: "valve".into(),
    };
    assert_eq!(write(&mut h, "valve", 1), Err(retired.clone()));
    assert_eq!(read(&mut h, "valve"), Err(retired));
    assert!(h.out().is_empty());
}

/// A persistent module's held write that the TEE layer refuses after the commit is counted
/// (module code was told it succeeded, so `aex status` must say otherwise); a late answer to
/// an access no one held is not.
#[test]
fn a_refused_held_write_is_counted_for_status() {
    let mut h = Harness::new();
    let core = h.rt.core_mut();
    let mut persistence = crate::sealing::Persistence::default();
    persistence.held_writes.insert(9, "valve".into());
    core.persist = Some(persistence);
    core.device_answered(9, &Err("device `valve` is not granted".into()));
    core.device_answered(10, &Err("late".into()));
    assert_eq!(core.stats().refused_writes, 1);
    core.device_answered(9, &Err("again".into()));
    assert_eq!(
        core.stats().refused_writes,
        1,
        "each held write counts once"
    );
}
