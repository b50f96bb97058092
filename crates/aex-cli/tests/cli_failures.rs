//! What the owner learns when module code fails (issue 17): the `fragile` test module on a
//! real node, driven by the `aex` commands a user runs.
//!
//! * an event whose payload does not decode as the input's argument: `aex output` fails,
//!   naming the input and why, and `aex status` counts it as failed, not received;
//! * a handler that panics: `aex request` fails at once with the sealed failure reply, and
//!   the module is reported stopped, with its exit status and its log's last lines (which
//!   say where it panicked, never the panic's message);
//! * a module that is gone: `aex request`, `aex output` and `aex call` say so within about a
//!   second, not after their timeouts, and `aex deploy` and `aex up` start it from its default
//!   state only when told to (`--yes`, `--discard-state`, or yes on a terminal).

use std::time::{Duration, Instant};

use aex_testkit::cli::COMMAND_TIMEOUT;
use aex_testkit::cluster::AppDir;
use aex_testkit::status::StatusExt;
use aex_testkit::{free_addr, paths};

/// How soon a command must report a stopped module: its node tells at once; what remains is
/// starting `aex`, one session and the liveness poll (a quarter second). The default reply
/// timeout is 10 s.
const PROMPT: Duration = Duration::from_secs(3);

fn descriptor(app: &AppDir) {
    app.write_descriptor(&format!(
        r#"[application]
name = "fragile"

[[node]]
name = "n1"
address = "{}"
tee = "sgx"

[[module]]
name = "fragile"
crate = {:?}
node = "n1"

[[connection]]
name = "level"
from = "deployer"
to = "fragile.level"

[[connection]]
name = "crash"
from = "deployer"
to = "fragile.crash"

[[connection]]
name = "ask"
from = "deployer"
to = "fragile.ask"
"#,
        free_addr(),
        paths::testkit_module("fragile").display().to_string()
    ));
}

#[test]
fn failures_of_module_code_reach_the_owner() {
    let app = AppDir::new();
    descriptor(&app);
    app.aex_timeout(&["up", "--detach"], COMMAND_TIMEOUT).ok();

    // A payload of the input's type is taken; others fail, loudly.
    app.aex(&["output", "level", r#"{"metres": 1.5}"#])
        .ok()
        .stderr_has(&["the module accepted it"]);
    for bad in [r#"{"centimetres": 3}"#, "cm=3"] {
        let run = app.aex(&["output", "level", bad]);
        assert_ne!(
            run.code, 0,
            "`aex output level {bad}` succeeded:\n{}",
            run.stderr
        );
        run.stderr_has(&[
            "input `level` failed on it: the payload does not decode as its argument",
            "aex status",
        ]);
        assert!(!run.stderr.contains("Sent"), "{}", run.stderr);
    }
    let status = app.status();
    let level = status.connection("level");
    assert_eq!((level.received, level.failed), (1, 2), "{level:?}");
    let fragile = status.module("fragile");
    let [failure] = &fragile.failures[..] else {
        panic!("{fragile:?}")
    };
    assert_eq!((failure.port.as_str(), failure.failed), ("input level", 2));
    assert_eq!(failure.counter, 3, "the last failed event: {failure:?}");
    app.aex(&["status"]).ok().stderr_has(&[
        "module `fragile`: input `level` failed 2 times; the last time (event 3 on connection `level`): the payload does not decode as its argument",
    ]);

    // A handler's answer, then its panic: the requester learns it from the sealed reply.
    let answer = app.aex(&["request", "ask", r#""how high""#]).ok().json();
    assert_eq!(answer, "how high? 1 levels, the last 1.5 m");
    let started = Instant::now();
    let run = app.aex(&["request", "ask", r#""panic""#]);
    let took = started.elapsed();
    assert_ne!(run.code, 0, "{}", run.stderr);
    run.stderr_has(&["`ask` panicked at ", "the module stopped"]);
    assert!(took < PROMPT, "the panic was reported after {took:?}");

    // The module is reported stopped: its exit status, and where it panicked, not why.
    let status = app.status();
    let fragile = status.module("fragile");
    assert!(!fragile.running, "{fragile:?}");
    assert_eq!(
        fragile.exit.as_deref(),
        Some("exit status: 101"),
        "{fragile:?}"
    );
    let log = fragile.log_tail.join("\n");
    assert!(log.contains("module code panicked at "), "{log}");
    assert!(
        log.contains("handler `ask` failed: it panicked at "),
        "{log}"
    );
    assert!(
        !log.contains("asked to panic"),
        "the message is not logged: {log}"
    );
    app.aex(&["status"]).ok().stderr_has(&[
        "module `fragile` is not running: exit status: 101",
        "panicked at",
    ]);

    // Everything sent to the stopped module says so within about a second.
    for args in [
        &["request", "ask", r#""still there""#][..],
        &["output", "level", r#"{"metres": 2}"#],
        &["call", "fragile", "levels"],
    ] {
        let started = Instant::now();
        let run = app.aex(args);
        let took = started.elapsed();
        eprintln!(
            "`aex {}` reported the stopped module in {took:?}",
            args.join(" ")
        );
        assert_ne!(run.code, 0, "{args:?}: {}", run.stderr);
        run.stderr_has(&["not running (exit status: 101)", "module code panicked at"]);
        assert!(took < PROMPT, "{args:?} took {took:?}");
    }

    // A new instance: the deployment refuses to start it from its default state until told
    // to (the stopped instance cannot hand its state over).
    // Here nobody can be asked (stdin is no terminal): it stops, and says what to do.
    app.deploy().code(1).stderr_has(&[
        "the state of module `fragile` is lost: its recorded instance on node `n1` cannot hand it over",
        "module `fragile` is not running (exit status: 101)",
        "the state of module `fragile` cannot be taken over",
        "--discard-state fragile",
        "--yes",
    ]);
    app.deploy_with(&["--yes"]).ok().stderr_has(&[
        "Discarding the state of `fragile`: it starts from its default state",
        "starts from its default state: the state of the old instance was discarded",
    ]);
    assert_eq!(app.call("fragile", "levels", None), 0, "a fresh state");
    // An input that panics stops it, and `aex output` says so.
    let run = app.aex(&["output", "crash", "x"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    run.stderr_has(&[
        "is not running (exit status: 101)",
        "input `crash` failed: it panicked",
    ]);
    assert!(!run.stderr.contains("secret payload"), "{}", run.stderr);

    // `aex up` on the running application asks the same question, and `--yes` answers it.
    app.aex_timeout(&["up", "--detach"], COMMAND_TIMEOUT)
        .code(1)
        .stderr_has(&[
            "the state of module `fragile` cannot be taken over",
            "--yes",
        ]);
    app.aex_timeout(&["up", "--detach", "--yes"], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["Discarding the state of `fragile`: it starts from its default state"]);

    // An entry point that panics: its caller gets the sealed failure.
    let run = app.aex(&["call", "fragile", "boom"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    run.stderr_has(&["`boom` panicked at "]);
    app.aex(&["down"]).ok();
}
