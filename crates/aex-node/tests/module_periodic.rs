//! Periodic triggers against a real module process: ticks reach it, a trigger list it cannot
//! honour is refused with the reason, and unloading the module ends its triggers.
//!
//! The schedule itself (exact cadence, an unchanged trigger keeping its phase, removal, busy
//! modules, missed periods) is shown in paused time by the unit tests in
//! `src/periodic_tests.rs`; nothing here depends on how fast the machine is.

use aex_proto::frame;
use aex_proto::{
    FromModule, Interface, NodeErrorKind, NodeRequest, NodeResponse, ToModule, Trigger,
};

use crate::util::{eventually, frame_file, TestNode};

/// What the recorder writes once the node has closed the module's input.
const END: &[u8] = b"END";

/// A module declaring the periodic entry `tick` whose input is copied to a log by a
/// separate process: it outlives the module's own process (which the node kills) and writes
/// [`END`] when the node closes the module's input, after which nothing can reach the log.
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
    let bin = format!(
        "#!/bin/sh\ncat '{hello}'\nsh -c 'cat; printf END' > '{}'\n",
        log.display()
    )
    .into_bytes();
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
async fn triggers_tick_a_real_module_and_go_with_it() {
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
    assert_eq!(ticks(&log), 0, "a refused list installs nothing");

    assert_eq!(
        c.request(periodic("m", &[("tick", 20)])).await.unwrap(),
        NodeResponse::Done
    );
    assert!(
        eventually(|| ticks(&log) >= 3).await,
        "{} ticks reached the module",
        ticks(&log)
    );

    // Unloading the module ends its triggers with it: the node closes the module's input,
    // which it would not while a trigger still held it, and the log is then final.
    c.request(NodeRequest::Unload { module: "m".into() })
        .await
        .unwrap();
    let e = c.request(periodic("m", &[("tick", 20)])).await.unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::UnknownModule, "{e}");
    assert!(
        eventually(|| std::fs::read(&log).unwrap_or_default().ends_with(END)).await,
        "the node never closed the unloaded module's input ({} ticks logged)",
        ticks(&log)
    );
}
