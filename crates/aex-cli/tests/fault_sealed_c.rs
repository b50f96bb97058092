//! A persistent module written in C (the test kit's `ctally`, sealed through its `save` and
//! `restore`) gets what a Rust one gets: a killed process resumes by itself with its state and
//! keys, an old blob put back is refused as a rollback; and its handler, request and deadline
//! work across modules.
//!
//! (`ctally`'s deadline watches its input `beat`, which only the deadline test connects: an
//! armed deadline runs, and a persistent module commits, every period; the sealed-state test
//! keeps its commits to its own calls.)

use aex_proto::ResumeOutcome;
use aex_testkit::status::StatusExt;
use aex_testkit::{wait_for, PATIENCE};

use crate::fault_sealed_state::{copy_blobs, resume, swap_blobs, Tallies};

#[test]
fn a_killed_c_module_resumes_with_its_state_and_an_old_blob_is_refused() {
    let t = Tallies::deploy_in_c(1, &[("tally", "node1")], false, "");
    assert!(t.app.status().module("tally").persistence.is_some());
    assert_eq!(t.bump("tally", 5), 5);
    t.feed(3);
    assert_eq!(
        t.totals("tally"),
        serde_json::json!({"total": 8, "added": 2})
    );

    let status = t.kill_and_wait_restart("tally");
    assert!(
        matches!(resume(&status, "tally"), ResumeOutcome::Resumed { .. }),
        "{status:#?}"
    );
    // The same instance for its deployer: its state, keys and counters came back.
    assert_eq!(t.totals("tally")["total"], 8);
    t.feed(1);
    assert_eq!(t.bump("tally", 1), 10);

    // Rollback: blobs saved at total 10 are put back after the total moved on.
    let old = t.app.path().join("stolen");
    copy_blobs(&t.sealed(1, "tally"), &old);
    t.bump("tally", 1);
    swap_blobs(&old, &t.sealed(1, "tally"));
    let status = t.kill_and_wait_restart("tally");
    match resume(&status, "tally") {
        ResumeOutcome::Refused(reason) => assert!(reason.contains("rollback detected"), "{reason}"),
        other => panic!("an old blob was taken: {other:?}"),
    }
    t.app.aex(&["call", "tally", "totals"]).code(1);
}

#[test]
fn a_c_request_reaches_a_c_handler_and_a_silent_input_runs_the_deadline() {
    let extra = "\n[[connection]]\nname = \"ask\"\nfrom = \"asker.ask\"\nto = \"tally.peek\"\n\
                 \n[[connection]]\nname = \"beat\"\nfrom = \"deployer\"\nto = \"tally.beat\"\n";
    let t = Tallies::deploy_in_c(1, &[("tally", "node1"), ("asker", "node1")], false, extra);
    assert_eq!(t.bump("tally", 7), 7);
    assert_eq!(t.app.call("asker", "ask_peer", None), 7);
    // `tally.beat` gets one beat, then stays silent: its deadline (300 ms) runs, on the
    // module's own clock.
    t.app
        .aex(&["output", "beat", "1"])
        .ok()
        .stderr_has(&["the module accepted it"]);
    wait_for("the deadline of `tally.beat` to run", PATIENCE, || {
        let n = t.app.call("tally", "silences", None).as_u64()?;
        (n >= 1).then_some(())
    });
    t.feed(1);
    assert_eq!(t.app.call("asker", "ask_peer", None), 8);
    // A request on a connection the module does not have: the C module's message names it.
    let e = t.app.aex(&["call", "tally", "ask_peer"]).code(1);
    e.stderr_has(&["AEX_NOT_CONNECTED", "`ask`"]);
}
