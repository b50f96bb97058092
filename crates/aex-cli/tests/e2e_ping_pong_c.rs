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
