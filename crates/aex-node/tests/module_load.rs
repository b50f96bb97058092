//! Loading, measuring, starting, watching and unloading module processes.

use std::os::unix::fs::PermissionsExt;

use aex_crypto::Measurement;
use aex_proto::frame;
use aex_proto::{
    ConnId, Direction, Endpoint, Event, EventKind, FromModule, ModuleStats, NodeErrorKind,
    NodeRequest, NodeResponse, Sealed, ToModule, ToNode,
};

use crate::util::{frame_file, script, Client, TestNode, PATIENCE};

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

#[tokio::test(flavor = "multi_thread")]
async fn load_measure_status_unload() {
    let node = TestNode::start("loader").await;
    let stats = ModuleStats {
        commands: 3,
        ..ModuleStats::default()
    };
    let bin = stats_module(&node, &stats);
    let mut c = node.client().await;

    let loaded = c.load("counter", &bin).await.unwrap();
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

    let status = c.status().await;
    assert_eq!(status.modules.len(), 1);
    let m = &status.modules[0];
    assert_eq!(m.name, "counter");
    assert_eq!(m.measurement, Measurement::of(&bin).0);
    assert!(m.running && m.exit.is_none(), "{m:?}");
    assert_eq!(m.stats, Some(stats));
    let pid = m.pid.expect("a pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    let e = c
        .request(NodeRequest::LoadBegin {
            module: "counter".into(),
            size: 1,
        })
        .await
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
        let e = c.request(body).await.unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::UnknownModule);
        assert!(
            e.message.contains("`nope`") && e.message.contains("`loader`"),
            "{e}"
        );
    }

    assert_eq!(
        c.request(NodeRequest::Unload {
            module: "counter".into()
        })
        .await,
        Ok(NodeResponse::Done)
    );
    assert!(c.status().await.modules.is_empty());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    // The name is free again.
    assert!(c.load("counter", &bin).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_are_refused() {
    let node = TestNode::start("uploads").await;
    let mut c = node.client().await;
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

    let e = c.request(begin("../evil", 1)).await.unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(e.message.contains("invalid module name"), "{e}");
    let e = c.request(begin("huge", (256 << 20) + 1)).await.unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(e.message.contains("256 MiB"), "{e}");
    assert_eq!(
        refused(c.request(chunk("ghost", 1)).await),
        NodeErrorKind::BadRequest
    );
    assert_eq!(
        refused(c.request(end("ghost")).await),
        NodeErrorKind::BadRequest
    );

    // Overflow abandons the upload and frees the name.
    c.request(begin("over", 4)).await.unwrap();
    let e = c.request(chunk("over", 5)).await.unwrap_err();
    assert!(e.message.contains("overflows"), "{e}");
    assert_eq!(
        refused(c.request(end("over")).await),
        NodeErrorKind::BadRequest
    );
    c.request(begin("over", 4)).await.unwrap();

    // Incomplete upload.
    c.request(begin("short", 10)).await.unwrap();
    c.request(chunk("short", 3)).await.unwrap();
    let e = c.request(end("short")).await.unwrap_err();
    assert!(e.message.contains("received 3 of 10"), "{e}");

    // A name being uploaded in one session is taken for the others until it is abandoned.
    let mut other = Client::connect(&node.addr()).await;
    assert_eq!(
        refused(other.request(begin("over", 4)).await),
        NodeErrorKind::AlreadyExists
    );
    drop(c);
    let mut freed = false;
    for _ in 0..100 {
        if other.request(begin("over", 4)).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(freed, "closing a session abandons its uploads");
}

#[tokio::test(flavor = "multi_thread")]
async fn modules_that_fail_to_start_are_reported() {
    let node = TestNode::start("failures").await;
    let mut c = node.client().await;

    let crash = b"#!/bin/sh\necho boom >&2\nexit 101\n";
    let e = c.load("crash", crash).await.unwrap_err();
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

    let e = c.load("garbage", b"\x7fELF not really").await.unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Io);
    assert!(e.message.contains("cannot start module `garbage`"), "{e}");

    let e = c
        .load(
            "chatty",
            b"#!/bin/sh\nprintf '\\000\\000\\000\\002\\001\\377'\nexec sleep 5\n",
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable);
    assert!(e.message.contains("bad first frame"), "{e}");

    assert!(c.status().await.modules.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_module_shows_not_running_and_drops_events() {
    let node = TestNode::start("graveyard").await;
    let mut c = node.client().await;
    let bin = script(&node.scratch, "exit 3");
    c.load("brief", &bin).await.unwrap();

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let m = loop {
        let status = c.status().await;
        let m = status.modules[0].clone();
        if !m.running || tokio::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(!m.running);
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
        .await
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable);
    assert!(e.message.contains("exit status: 3"), "{e}");

    c.request(NodeRequest::Route {
        conn: ConnId(1),
        dir: Direction::Forward,
        to: Endpoint::Module("brief".into()),
    })
    .await
    .unwrap();
    let before = c.status().await.dropped;
    c.send(&ToNode::Event(Event {
        conn: ConnId(1),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter: 1,
        ciphertext: vec![0; 32],
    }))
    .await;
    let mut after = before;
    for _ in 0..100 {
        after = c.status().await.dropped;
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(after, before + 1);
}
