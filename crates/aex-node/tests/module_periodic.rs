//! Periodic triggers against a real module process: ticks reach it, a trigger list it cannot
//! honour is refused with the reason and installs nothing, and unloading the module ends its
//! triggers.
//!
//! The schedule itself (exact cadence, an unchanged trigger keeping its phase, removal, busy
//! modules, missed periods) is shown in paused time by the unit tests in
//! `src/periodic_tests.rs`; nothing here depends on how fast the machine is.

use std::path::{Path, PathBuf};

use aex_proto::{
    FromModule, Interface, NodeErrorKind, NodeRequest, NodeResponse, ToModule, Trigger,
};
use aex_testkit::node::TestNode;
use aex_testkit::session::frame_bytes;
use aex_testkit::wait::{wait_until, PATIENCE};

use crate::scripts::frame_file;

/// What the recorder writes once the node has closed the module's input.
const END: &[u8] = b"END";

/// A module declaring the periodic entry `tick` whose input is copied to `scratch/<name>.log`
/// by a separate process: it outlives the module's own process (which the node kills) and
/// writes [`END`] when the node closes the module's input, after which nothing can reach the
/// log.
fn recorder(node: &TestNode, name: &str) -> (Vec<u8>, PathBuf) {
    let hello = frame_file(
        &node.scratch,
        "hello-periodic.bin",
        &FromModule::Hello(Interface {
            periodic: vec!["tick".into()],
            ..Interface::default()
        }),
    );
    let log = node.scratch.join(format!("{name}.log"));
    let bin = format!(
        "#!/bin/sh\ncat '{hello}'\nsh -c 'cat; printf END' > '{}'\n",
        log.display()
    )
    .into_bytes();
    (bin, log)
}

/// How many ticks the log holds.
fn ticks(log: &Path) -> usize {
    let tick = frame_bytes(&ToModule::Tick {
        entry: "tick".into(),
    });
    let bytes = std::fs::read(log).unwrap_or_default();
    bytes.windows(tick.len()).filter(|w| *w == tick).count()
}

/// Waits until the log holds at least `n` ticks.
#[track_caller]
fn wait_ticks(log: &Path, n: usize) {
    wait_until(
        &format!("{n} ticks to reach {}", log.display()),
        PATIENCE,
        || match ticks(log) {
            got if got >= n => Ok(()),
            got => Err(format!("{got} ticks")),
        },
    );
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

#[test]
fn triggers_tick_a_real_module_and_go_with_it() {
    let node = TestNode::start("periodic");
    let (bin, log) = recorder(&node, "m");
    let (witness_bin, witness_log) = recorder(&node, "witness");
    let mut c = node.session();
    c.load("m", &bin).unwrap();
    c.load("witness", &witness_bin).unwrap();

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
        let e = c.request(request).unwrap_err();
        assert_eq!(e.kind, kind, "{e}");
        assert!(e.message.contains(needle), "{e}");
    }

    // A refused list installs nothing: by the fifth tick of another module's trigger every
    // 20 ms, installed after the refusals, a tick every 50 ms of a refused list would have
    // reached `m`.
    assert_eq!(
        c.request(periodic("witness", &[("tick", 20)])).unwrap(),
        NodeResponse::Done
    );
    wait_ticks(&witness_log, 5);
    assert_eq!(ticks(&log), 0, "a refused list installed a trigger");

    assert_eq!(
        c.request(periodic("m", &[("tick", 20)])).unwrap(),
        NodeResponse::Done
    );
    wait_ticks(&log, 3);

    // Unloading the module ends its triggers with it: the node closes the module's input,
    // which it would not while a trigger still held it, and the log is then final.
    c.request(NodeRequest::Unload { module: "m".into() })
        .unwrap();
    let e = c.request(periodic("m", &[("tick", 20)])).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::UnknownModule, "{e}");
    wait_until(
        "the node to close the unloaded module's input",
        PATIENCE,
        || match std::fs::read(&log).unwrap_or_default().ends_with(END) {
            true => Ok(()),
            false => Err(format!("{} ticks logged, no END", ticks(&log))),
        },
    );
}
