//! Two deployers on the same nodes: same module names, same connection ids, nothing shared.

use aex_crypto::SigningIdentity;
use std::path::Path;
use std::time::Duration;

use aex_proto::frame::read_message;
use aex_proto::{
    ConnId, Direction, Endpoint, Event, EventKind, NodeErrorKind, NodeRequest, Origin, ToModule,
};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_until, PATIENCE};

use crate::scripts::script;

fn event(counter: u64, byte: u8) -> Event {
    Event {
        conn: ConnId(7),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![byte; 24],
    }
}

fn route(to: Endpoint, from: Origin) -> NodeRequest {
    NodeRequest::Route {
        conn: ConnId(7),
        dir: Direction::Forward,
        to,
        from,
    }
}

/// Waits until `sink` holds exactly `events`, as the node hands them to a module. A sink
/// also records the `Stats` probes of a status taken before the node saw it close its
/// output; they are not events and are skipped.
#[track_caller]
fn sink_holds(sink: &Path, events: &[Event]) {
    let expected: Vec<ToModule> = events.iter().cloned().map(ToModule::Event).collect();
    wait_until(
        &format!("{} to hold exactly {events:?}", sink.display()),
        PATIENCE,
        || {
            let bytes = std::fs::read(sink).map_err(|e| e.to_string())?;
            let mut rest = bytes.as_slice();
            let mut got = vec![];
            loop {
                match read_message::<_, ToModule>(&mut rest) {
                    Ok(Some(ToModule::Stats)) => {}
                    Ok(Some(msg)) => got.push(msg),
                    Ok(None) => break,
                    Err(e) => return Err(format!("{got:?}, then {e}")),
                }
            }
            match got == expected {
                true => Ok(()),
                false => Err(format!("{got:?}")),
            }
        },
    );
}

#[test]
fn namespaces_keep_modules_routes_and_links_apart() {
    // Every test node admits the default deployer (A); these also admit B. The sinks write
    // their output to files, which the node takes for modules that closed their output: a
    // short `exit` limit keeps each status from waiting out the default for their exit.
    let b_id = SigningIdentity::from_seed(&[0xb0; 32]);
    let admit = |c: &mut aex_node::NodeConfig| {
        c.admit.push(aex_proto::DeployerKey::of(&b_id));
        c.timeouts.set("exit", Duration::from_millis(20)).unwrap();
    };
    let x = TestNode::start_with("x", admit);
    let y = TestNode::start_with("y", admit);
    let sinks = [y.scratch.join("a.bin"), y.scratch.join("b.bin")];
    let (a_id, b_id) = (test_deployer(), b_id);

    // Both load `sink` on y (B's first, under the same name) and route connection 7 to it,
    // and route connection 7 from x to y.
    let mut sessions = vec![];
    for (i, id) in [&a_id, &b_id].into_iter().enumerate() {
        let mut on_y = Session::open(y.addr(), id, "shared-name");
        let bin = script(&y.scratch, &format!("exec cat > '{}'", sinks[i].display()));
        on_y.load("sink", &bin).unwrap();
        on_y.request(route(
            Endpoint::Module("sink".into()),
            Origin::Peer(x.identity()),
        ))
        .unwrap();
        let mut on_x = Session::open(x.addr(), id, "shared-name");
        let to_y = Endpoint::Node {
            address: y.addr().to_string(),
            identity: y.identity(),
        };
        on_x.request(route(to_y, Origin::Deployer)).unwrap();
        sessions.push((on_x, on_y));
    }

    // Each deployer sees only its own module.
    for (_, on_y) in &mut sessions {
        let names: Vec<_> = on_y.status().modules.into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["sink"]);
    }

    // Events sent on x with the same connection id reach each deployer's own module on y.
    for (i, (on_x, _)) in sessions.iter_mut().enumerate() {
        on_x.send_event(event(1, i as u8));
    }
    for (i, sink) in sinks.iter().enumerate() {
        sink_holds(sink, &[event(1, i as u8)]);
    }

    // B unloads its `sink`; A's stays and keeps receiving.
    let [(mut a_x, mut a_y), (_b_x, mut b_y)] = <[_; 2]>::try_from(sessions).ok().unwrap();
    let unload = || NodeRequest::Unload {
        module: "sink".into(),
    };
    b_y.request(unload()).unwrap();
    let e = b_y.request(unload()).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::UnknownModule);
    assert!(b_y.status().modules.is_empty());
    assert_eq!(a_y.status().modules.len(), 1);
    a_x.send_event(event(2, 0));
    sink_holds(&sinks[0], &[event(1, 0), event(2, 0)]);
}

#[test]
fn unroute_removes_only_the_sessions_own_route() {
    let b_id = SigningIdentity::from_seed(&[0xb1; 32]);
    let y = TestNode::start_with("y", |c| {
        c.admit.push(aex_proto::DeployerKey::of(&b_id));
        c.timeouts.set("exit", Duration::from_millis(20)).unwrap();
    });
    let sinks = [y.scratch.join("a.bin"), y.scratch.join("b.bin")];
    let mut sessions = vec![];
    for (i, id) in [&test_deployer(), &b_id].into_iter().enumerate() {
        let mut on_y = Session::open(y.addr(), id, "shared-name");
        let bin = script(&y.scratch, &format!("exec cat > '{}'", sinks[i].display()));
        on_y.load("sink", &bin).unwrap();
        on_y.request(route(Endpoint::Module("sink".into()), Origin::Deployer))
            .unwrap();
        sessions.push(on_y);
    }
    let [mut a, mut b] = <[_; 2]>::try_from(sessions).ok().unwrap();
    let unroute = || NodeRequest::Unroute {
        conn: ConnId(7),
        dir: Direction::Forward,
    };
    // B revokes connection 7; removing it again is no error.
    b.request(unroute()).unwrap();
    b.request(unroute()).unwrap();
    let dropped = b.status().dropped;
    // A session's frames are handled in order: its event is routed before its next request.
    b.send_event(event(1, 0xbb));
    assert_eq!(
        b.status().dropped,
        dropped + 1,
        "B's event had no route and was dropped"
    );
    // A's route to its module stayed; B's module got no event.
    a.send_event(event(1, 0xaa));
    sink_holds(&sinks[0], &[event(1, 0xaa)]);
    sink_holds(&sinks[1], &[]);
}

#[test]
fn a_module_s_log_is_read_in_its_own_namespace_only_and_outlives_the_module() {
    let b_id = SigningIdentity::from_seed(&[0xb1; 32]);
    let node = TestNode::start_with("logs", |c| {
        c.admit.push(aex_proto::DeployerKey::of(&b_id));
        c.timeouts.set("exit", Duration::from_millis(20)).unwrap();
    });
    let mut a = Session::open(node.addr(), &test_deployer(), "farm");
    let mut b = Session::open(node.addr(), &b_id, "farm");
    // A module that writes a secret to its stderr, then waits for its input to end.
    let bin = script(
        &node.scratch,
        "echo 'the forecast of cooperative A' >&2; exec cat > /dev/null",
    );
    a.load("sink", &bin).unwrap();
    let logs = |s: &mut Session, module: &str, from: u64| {
        s.request(NodeRequest::Logs {
            module: module.into(),
            from,
        })
    };
    let mut seen = Vec::new();
    wait_until("the module's line in its log", PATIENCE, || {
        match logs(&mut a, "sink", 0) {
            Ok(aex_proto::NodeResponse::Logs { bytes, .. }) if !bytes.is_empty() => {
                seen = bytes;
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(seen, b"the forecast of cooperative A\n");

    // Another deployer, same application name, same module name: not its namespace.
    let err = logs(&mut b, "sink", 0).unwrap_err();
    assert_eq!(err.kind, NodeErrorKind::UnknownModule, "{err:?}");
    // Names cannot leave the namespace's directory.
    for name in ["../sink", "..", "sink/../../x", ""] {
        let err = logs(&mut b, name, 0).unwrap_err();
        assert_eq!(err.kind, NodeErrorKind::BadRequest, "{name}: {err:?}");
    }

    // Past the end (the file was rotated meanwhile, say): read again from its start.
    let Ok(aex_proto::NodeResponse::Logs { from, bytes, size }) = logs(&mut a, "sink", 1 << 20)
    else {
        panic!("no answer past the end");
    };
    assert_eq!((from, bytes.len() as u64), (0, size));

    // Unloaded, its log stays readable for whoever looks into what it did.
    a.request(NodeRequest::Unload {
        module: "sink".into(),
    })
    .unwrap();
    let Ok(aex_proto::NodeResponse::Logs { bytes, .. }) = logs(&mut a, "sink", 0) else {
        panic!("the log of an unloaded module");
    };
    assert_eq!(bytes, b"the forecast of cooperative A\n");
}
