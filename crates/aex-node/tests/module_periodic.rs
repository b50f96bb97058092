//! Periodic triggers: installed per module, validated, replaced as a whole, removed with the
//! module.

use std::time::Duration;

use aex_proto::frame;
use aex_proto::{
    FromModule, Interface, NodeErrorKind, NodeRequest, NodeResponse, ToModule, Trigger,
};

use crate::util::{eventually, frame_file, TestNode};

/// A module declaring the periodic entry `tick` that records everything it is sent.
fn recorder(node: &TestNode) -> (Vec<u8>, std::path::PathBuf) {
    let hello = frame_file(
        &node.scratch,
        "hello-periodic.bin",
        &FromModule::Hello(Interface {
            periodic: vec!["tick".into()],
            ..Interface::default()
        }),
    );
    let log = node.scratch.join("stdin.log");
    let bin = format!("#!/bin/sh\ncat '{hello}'\ncat > '{}'\n", log.display()).into_bytes();
    (bin, log)
}

fn ticks(log: &std::path::Path) -> usize {
    let tick = frame::encode(&ToModule::Tick {
        entry: "tick".into(),
    });
    let bytes = std::fs::read(log).unwrap_or_default();
    bytes.windows(tick.len()).filter(|w| *w == tick).count()
}

fn periodic(module: &str, triggers: &[(&str, u64)]) -> NodeRequest {
    NodeRequest::Periodic {
        module: module.into(),
        triggers: triggers
            .iter()
            .map(|(entry, period_ms)| Trigger {
                entry: (*entry).into(),
                period_ms: *period_ms,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_tick_replace_and_go_with_the_module() {
    let node = TestNode::start("periodic").await;
    let (bin, log) = recorder(&node);
    let mut c = node.client().await;
    c.load("m", &bin).await.unwrap();

    for (request, kind, needle) in [
        (
            periodic("m", &[("tock", 50)]),
            NodeErrorKind::BadRequest,
            "no periodic entry `tock` (periodic entries: tick)",
        ),
        (
            periodic("m", &[("tick", 5)]),
            NodeErrorKind::BadRequest,
            "below the minimum of 10 ms",
        ),
        (
            periodic("m", &[("tick", 50), ("tick", 60)]),
            NodeErrorKind::BadRequest,
            "two triggers",
        ),
        (
            periodic("x", &[("tick", 50)]),
            NodeErrorKind::UnknownModule,
            "no module `x`",
        ),
    ] {
        let e = c.request(request).await.unwrap_err();
        assert_eq!(e.kind, kind, "{e}");
        assert!(e.message.contains(needle), "{e}");
    }

    assert_eq!(
        c.request(periodic("m", &[("tick", 50)])).await.unwrap(),
        NodeResponse::Done
    );
    // Idempotent: the same list again keeps the running timer.
    c.request(periodic("m", &[("tick", 50)])).await.unwrap();
    assert!(
        eventually(|| ticks(&log) >= 4).await,
        "{} ticks",
        ticks(&log)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // At least 4, then about 10 more in 500 ms from one timer (two would make about 24).
    let n = ticks(&log);
    assert!((8..=20).contains(&n), "{n} ticks");

    // An empty list removes them.
    c.request(periodic("m", &[])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = ticks(&log);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ticks(&log), stopped);

    // Unloading the module ends its triggers with it.
    c.request(periodic("m", &[("tick", 20)])).await.unwrap();
    c.request(NodeRequest::Unload { module: "m".into() })
        .await
        .unwrap();
    let e = c.request(periodic("m", &[("tick", 20)])).await.unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::UnknownModule);
}
