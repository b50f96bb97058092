//! End to end: examples/ping-pong-c, a pong written in C with the Rust ping, through
//! `aex up`, `call`, `output`, `request`, `update` (the C module's state hooks move its count)
//! and `down`; and a descriptor that names a port the C module does not declare, refused with
//! the error a Rust module gets.

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{example_descriptor, write_toml};
use aex_testkit::status::{counters, StatusExt};
use aex_testkit::{free_addr, wait_for, PATIENCE};

/// Pings the example's `[[up]]` steps make.
const UP_PINGS: u64 = 1000;

fn example_app() -> (AppDir, toml::Table) {
    let app = AppDir::new();
    let doc = example_descriptor("ping-pong-c", &[free_addr(), free_addr()]);
    write_toml(app.path(), &doc);
    (app, doc)
}

#[test]
fn a_c_pong_answers_the_rust_ping_and_keeps_its_count_across_an_update() {
    let (app, _) = example_app();
    let dir = app.path().display().to_string();
    let up = cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    assert!(
        up.stdout.contains("ping.stats") && up.stdout.contains("\"done\": true"),
        "`aex up` shows the run's statistics:\n{}",
        up.stdout
    );
    let status = app.status();
    status.assert_healthy();
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert_eq!(
            status.counters(name),
            counters(UP_PINGS, UP_PINGS, 0, 0),
            "connection {name}"
        );
    }
    assert_eq!(app.call("pong", "count", None), UP_PINGS);

    // An authentic event from the owner starts a new run through the C module.
    app.aex(&["output", "kick", "{\"count\":5,\"size\":300}"])
        .ok()
        .stderr_has(&["Sent"]);
    wait_for("the kicked run to complete", PATIENCE, || {
        let stats = app.aex(&["request", "stats"]).ok().json();
        (stats["count"] == 5 && stats["done"] == true).then_some(())
    });
    assert_eq!(app.call("pong", "count", None), UP_PINGS + 5);

    // Moving pong to node1 hands its state over through its `save` and `restore`.
    let before = app.status().module("pong").measurement.clone();
    app.aex_timeout(&["update", "pong", "--node", "node1"], COMMAND_TIMEOUT)
        .ok();
    let moved = app.status();
    assert_eq!(moved.module("pong").node, "node1");
    assert_eq!(
        moved.module("pong").measurement,
        before,
        "the same C binary"
    );
    assert_eq!(app.call("pong", "count", None), UP_PINGS + 5);

    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}

#[test]
fn a_port_the_c_module_does_not_declare_gets_the_rust_modules_error() {
    let (app, mut doc) = example_app();
    // `pong.pnig`: the C module declares `ping`.
    for conn in doc["connection"].as_array_mut().unwrap() {
        if conn["to"].as_str() == Some("pong.ping") {
            conn["to"] = toml::Value::String("pong.pnig".into());
        }
    }
    let path = write_toml(app.path(), &doc);
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().position(|l| l.contains("pong.pnig")).unwrap() + 1;
    let out = app.aex_timeout(&["deploy"], COMMAND_TIMEOUT).code(1);
    out.stderr_has(&[
        &format!("aex.toml:{line}:"),
        "connection[0].to",
        "`pnig`",
        "did you mean `ping`",
    ]);
}

/// The C pong built with AddressSanitizer and UndefinedBehaviorSanitizer (`AEX_C_SANITIZE`),
/// run end to end with the Rust ping: a finding ends the module's process (the build makes
/// every finding fatal), which the counters, the calls and the log would show.
#[test]
#[ignore = "long: builds the C example again with sanitizers and runs it"]
fn the_c_pong_runs_clean_under_address_and_undefined_behaviour_sanitizers() {
    let (app, _) = example_app();
    let dir = app.path().display().to_string();
    let aex = sanitized_aex(&app);
    aex(&["up", "--detach", &dir]).ok();
    let status = app.status();
    status.assert_healthy();
    assert_eq!(
        status.counters("pong-to-ping"),
        counters(UP_PINGS, UP_PINGS, 0, 0)
    );
    // Payloads of other sizes (ping sends at least 8 bytes), up to 16 KiB.
    for size in [8, 9, 4095, 16384] {
        let kick = format!("{{\"count\":20,\"size\":{size}}}");
        aex(&["output", "kick", &kick, "-C", &dir]).ok();
        wait_for("the kicked run to complete", PATIENCE, || {
            let stats = app.aex(&["request", "stats"]).ok().json();
            (stats["count"] == 20 && stats["done"] == true && stats["size"] == size).then_some(())
        });
    }
    aex(&["update", "pong", "--node", "node1", "-C", &dir]).ok();
    assert_eq!(app.call("pong", "count", None), UP_PINGS + 80);
    assert_no_sanitizer_findings(&app, &["pong"]);
    app.status().assert_healthy();
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}

/// `aex ARGS` for `app` with the C modules built by the deployer itself with AddressSanitizer
/// and UndefinedBehaviorSanitizer (`AEX_C_SANITIZE`): the test kit's prebuilt manifest without
/// its C modules, so that the Rust modules are not built again.
pub(crate) fn sanitized_aex(app: &AppDir) -> impl Fn(&[&str]) -> aex_testkit::process::Run {
    let c_dirs: Vec<_> = aex_testkit::modules::c_modules()
        .iter()
        .map(|d| d.canonicalize().unwrap())
        .collect();
    let mut prebuilt = aex_testkit::modules::prebuilt().clone();
    prebuilt.modules.retain(|dir, _| !c_dirs.contains(dir));
    let manifest = app.path().join("prebuilt-without-c.json");
    prebuilt.write(&manifest).unwrap();
    move |args: &[&str]| {
        let mut cmd = cli::aex();
        cmd.env(aex_deploy::build::PREBUILT_ENV, &manifest)
            .env(aex_deploy::build::SANITIZE_ENV, "address,undefined")
            .args(args);
        cli::run_command(cmd, format!("aex {}", args.join(" ")), COMMAND_TIMEOUT)
    }
}

/// Fails if a module's log shows a sanitizer's report (every finding is fatal, so a report
/// would also have stopped the module).
pub(crate) fn assert_no_sanitizer_findings(app: &AppDir, modules: &[&str]) {
    for module in modules {
        let logs = app.aex(&["logs", module]).ok();
        for finding in ["Sanitizer", "runtime error"] {
            assert!(!logs.stdout.contains(finding), "{module}: {}", logs.stdout);
        }
    }
}
