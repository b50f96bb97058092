//! Loading, measuring, starting, watching and unloading module processes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use aex_crypto::Measurement;
use aex_proto::frame;
use aex_proto::{
    ConnId, Direction, Endpoint, Event, EventKind, FromModule, ModuleStats, NodeErrorKind,
    NodeRequest, NodeResponse, Sealed, ToModule,
};

use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::process::alive;
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_for, PATIENCE};

use crate::scripts::{frame_file, script};

/// A module that answers every `Stats` request with `stats`.
fn stats_module(node: &TestNode, stats: &ModuleStats) -> Vec<u8> {
    let file = frame_file(
        &node.scratch,
        "stats.bin",
        &FromModule::Stats(stats.clone()),
    );
    let n = frame::encode(&ToModule::Stats).len();
    script(
        &node.scratch,
        &format!("while [ \"$(head -c {n} | wc -c)\" -eq {n} ]; do cat '{file}'; done"),
    )
}

#[test]
fn load_measure_status_unload() {
    let node = TestNode::start("loader");
    let stats = ModuleStats {
        commands: 3,
        ..ModuleStats::default()
    };
    let bin = stats_module(&node, &stats);
    let mut c = node.session();

    let loaded = c.load("counter", &bin).unwrap();
    assert_eq!(
        loaded,
        NodeResponse::Loaded {
            measurement: Measurement::of(&bin).0
        }
    );
    let stored = node
        .data_dir
        .join("modules")
        .join(c.app().to_string())
        .join("counter/module.bin");
    assert_eq!(std::fs::read(&stored).unwrap(), bin);
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    let status = c.status();
    assert_eq!(status.modules.len(), 1);
    let m = &status.modules[0];
    assert_eq!(m.name, "counter");
    assert_eq!(m.measurement, Measurement::of(&bin).0);
    assert!(m.running && m.exit.is_none(), "{m:?}");
    assert_eq!(m.stats, Some(stats));
    let pid = m.pid.expect("a pid");
    assert!(alive(pid), "module process {pid}");

    let e = c
        .request(NodeRequest::LoadBegin {
            module: "counter".into(),
            size: 1,
        })
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::AlreadyExists);

    for body in [
        NodeRequest::Attest {
            module: "nope".into(),
            challenge: [0; 32],
            deployer_pk: [0; 32],
        },
        NodeRequest::Command {
            module: "nope".into(),
            sealed: Sealed {
                counter: 1,
                ciphertext: vec![],
            },
        },
        NodeRequest::Unload {
            module: "nope".into(),
        },
    ] {
        let e = c.request(body).unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::UnknownModule);
        assert!(
            e.message.contains("`nope`") && e.message.contains("`loader`"),
            "{e}"
        );
    }

    assert_eq!(
        c.request(NodeRequest::Unload {
            module: "counter".into()
        }),
        Ok(NodeResponse::Done)
    );
    assert!(c.status().modules.is_empty());
    assert!(!alive(pid), "module process {pid} outlived its unload");
    // The name is free again.
    assert!(c.load("counter", &bin).is_ok());
}

#[test]
fn bad_uploads_are_refused() {
    let node = TestNode::start("uploads");
    let mut c = node.session();
    let refused = |r: Result<NodeResponse, aex_proto::NodeError>| r.unwrap_err().kind;

    let begin = |module: &str, size: u64| NodeRequest::LoadBegin {
        module: module.into(),
        size,
    };
    let chunk = |module: &str, n: usize| NodeRequest::LoadChunk {
        module: module.into(),
        data: vec![0; n],
    };
    let end = |module: &str| NodeRequest::LoadEnd {
        module: module.into(),
    };

    let e = c.request(begin("../evil", 1)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(e.message.contains("invalid module name"), "{e}");
    let e = c.request(begin("huge", (256 << 20) + 1)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(e.message.contains("256 MiB"), "{e}");
    assert_eq!(
        refused(c.request(chunk("ghost", 1))),
        NodeErrorKind::BadRequest
    );
    assert_eq!(refused(c.request(end("ghost"))), NodeErrorKind::BadRequest);

    // Overflow abandons the upload and frees the name.
    c.request(begin("over", 4)).unwrap();
    let e = c.request(chunk("over", 5)).unwrap_err();
    assert!(e.message.contains("overflows"), "{e}");
    assert_eq!(refused(c.request(end("over"))), NodeErrorKind::BadRequest);
    c.request(begin("over", 4)).unwrap();

    // Incomplete upload.
    c.request(begin("short", 10)).unwrap();
    c.request(chunk("short", 3)).unwrap();
    let e = c.request(end("short")).unwrap_err();
    assert!(e.message.contains("received 3 of 10"), "{e}");

    // A name being uploaded in one session is taken for the others until it is abandoned.
    let mut other = node.session();
    assert_eq!(
        refused(other.request(begin("over", 4))),
        NodeErrorKind::AlreadyExists
    );
    c.close();
    wait_for(
        "closing a session to abandon its uploads (`over` free again)",
        PATIENCE,
        || other.request(begin("over", 4)).is_ok().then_some(()),
    );
}

#[test]
fn modules_that_fail_to_start_are_reported() {
    let node = TestNode::start("failures");
    let mut c = node.session();

    let crash = b"#!/bin/sh\necho boom >&2\nexit 101\n";
    let e = c.load("crash", crash).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable);
    assert!(
        e.message
            .contains("module `crash` exited during start: exit status: 101"),
        "{e}"
    );
    assert!(e.message.contains("module.log"), "{e}");
    let dir = node.data_dir.join("modules").join(c.app().to_string());
    let log = std::fs::read_to_string(dir.join("crash/module.log")).unwrap();
    assert!(log.contains("boom"), "{log}");

    // A module that logs without end takes a bounded share of the disk: its log is rotated
    // at 1 MiB, one older part kept, and its last lines are there when its end is reported.
    let chatty =
        b"#!/bin/sh\nhead -c 3145728 /dev/zero | tr '\\000' x >&2\necho last words >&2\nexit 7\n";
    let e = c.load("chatty", chatty).unwrap_err();
    assert!(
        e.message.contains("exited during start: exit status: 7"),
        "{e}"
    );
    let log = dir.join("chatty/module.log");
    let older = dir.join("chatty/module.log.1");
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    assert!(size(&log) <= 1 << 20, "{}", size(&log));
    assert!(
        size(&older) <= 1 << 20 && size(&older) > 1 << 19,
        "{}",
        size(&older)
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .ends_with("last words\n"));

    let e = c.load("garbage", b"\x7fELF not really").unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Io);
    assert!(e.message.contains("cannot start module `garbage`"), "{e}");

    let e = c
        .load(
            "chatty",
            b"#!/bin/sh\nprintf '\\000\\000\\000\\002\\001\\377'\nexec sleep 5\n",
        )
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable);
    assert!(e.message.contains("bad first frame"), "{e}");

    assert!(c.status().modules.is_empty());
}

#[test]
fn a_dead_module_shows_not_running_and_drops_events() {
    let node = TestNode::start("graveyard");
    let mut c = node.session();
    let bin = script(&node.scratch, "exit 3");
    c.load("brief", &bin).unwrap();

    let m = wait_for("module `brief` to show as not running", PATIENCE, || {
        let m = c.status().modules[0].clone();
        (!m.running).then_some(m)
    });
    assert_eq!(m.exit.as_deref(), Some("exit status: 3"));
    assert_eq!(m.stats, None);

    let e = c
        .request(NodeRequest::Command {
            module: "brief".into(),
            sealed: Sealed {
                counter: 1,
                ciphertext: vec![1; 16],
            },
        })
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable);
    assert!(e.message.contains("exit status: 3"), "{e}");

    c.request(NodeRequest::Route {
        conn: ConnId(1),
        dir: Direction::Forward,
        to: Endpoint::Module("brief".into()),
        from: aex_proto::Origin::Local,
    })
    .unwrap();
    let before = c.status().dropped;
    c.send_event(Event {
        conn: ConnId(1),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter: 1,
        ciphertext: vec![0; 32],
    });
    let after = wait_for(
        "the event for the dead module to be dropped",
        PATIENCE,
        || {
            let dropped = c.status().dropped;
            (dropped > before).then_some(dropped)
        },
    );
    assert_eq!(after, before + 1);
}

#[test]
fn load_stored_starts_modules_from_a_binary_the_deployer_uploaded_once() {
    let b_id = aex_crypto::SigningIdentity::from_seed(&[0xb2; 32]);
    let node = TestNode::start_with("stored", |c| {
        c.admit.push(aex_proto::DeployerKey::of(&b_id));
        c.limits.set("deployer_modules", 3).unwrap();
    });
    let bin = script(&node.scratch, "exec sleep 600");
    let m = Measurement::of(&bin);
    let stored = |module: &str, measurement: &Measurement| NodeRequest::LoadStored {
        module: module.into(),
        measurement: measurement.0,
    };
    let mut a = node.session();
    // Nothing uploaded yet: the deployer is told to upload.
    let e = a.request(stored("r0", &m)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::NotStored, "{e}");
    a.load("r0", &bin).unwrap();
    let loaded = NodeResponse::Loaded { measurement: m.0 };
    assert_eq!(a.request(stored("r1", &m)), Ok(loaded.clone()));
    // Another of the deployer's namespaces may use it too.
    let mut a2 = Session::open(node.addr(), &test_deployer(), "other-app");
    assert_eq!(a2.request(stored("r2", &m)), Ok(loaded));
    let status = a.status();
    assert_eq!(status.modules.len(), 2);
    assert!(status
        .modules
        .iter()
        .all(|s| s.running && s.measurement == m.0));
    // One file on disk: the store's, linked by each module's directory.
    let dir = |app: &Session, name: &str| {
        node.data_dir
            .join("modules")
            .join(app.app().to_string())
            .join(name)
            .join("module.bin")
    };
    assert_eq!(std::fs::read(dir(&a, "r1")).unwrap(), bin);
    assert_eq!(std::fs::metadata(dir(&a, "r1")).unwrap().nlink(), 4);

    // Names and quotas as for an upload.
    let e = a.request(stored("r1", &m)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::AlreadyExists, "{e}");
    let e = a.request(stored("../x", &m)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest, "{e}");
    let e = a.request(stored("r3", &m)).unwrap_err();
    assert!(e.message.contains("`deployer_modules`"), "{}", e.message);
    // Another measurement, or another deployer, finds nothing (and learns nothing).
    a.request(NodeRequest::Unload {
        module: "r0".into(),
    })
    .unwrap();
    let other = Measurement::of(b"other");
    assert_eq!(
        a.request(stored("r3", &other)).unwrap_err().kind,
        NodeErrorKind::NotStored
    );
    let mut b = Session::open(node.addr(), &b_id, "test-app");
    assert_eq!(
        b.request(stored("r0", &m)).unwrap_err().kind,
        NodeErrorKind::NotStored
    );
    assert!(b.status().modules.is_empty());

    // Once no module directory links it any more, it is gone: here every name that ran it
    // is loaded again with another binary.
    for (s, name) in [(&mut a, "r1"), (&mut a2, "r2")] {
        s.request(NodeRequest::Unload {
            module: name.into(),
        })
        .unwrap();
    }
    let bin2 = script(&node.scratch, "exec sleep 601");
    a.load("r0", &bin2).unwrap();
    a.load("r1", &bin2).unwrap();
    a2.load("r2", &bin2).unwrap();
    a2.request(NodeRequest::Unload {
        module: "r2".into(),
    })
    .unwrap();
    assert_eq!(
        a.request(stored("r3", &m)).unwrap_err().kind,
        NodeErrorKind::NotStored
    );
    let held = node
        .data_dir
        .join("binaries")
        .join(hex::encode(aex_proto::DeployerKey::of(&test_deployer()).0));
    assert_eq!(std::fs::read_dir(held).unwrap().count(), 1);
    let m2 = Measurement::of(&bin2);
    assert_eq!(
        a.request(stored("r3", &m2)),
        Ok(NodeResponse::Loaded { measurement: m2.0 })
    );
}
