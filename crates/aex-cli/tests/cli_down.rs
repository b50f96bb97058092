//! Operations that must not get stuck: `aex down` stops what `aex up` started from the
//! application's state, also once the descriptor no longer parses or is gone; a command
//! waiting for another's hold on the state says who holds it and gives up at its `--timeout`;
//! `aex status --watch` looks again and again, drawing each frame over the last on a terminal.

use std::time::Duration;

use aex_deploy::state::StateFile;
use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{copy_example, IdentityPin, PingPong, PlatformKey};
use aex_testkit::process::{self, Captured};
use aex_testkit::{free_addr, wait_for, PATIENCE};

/// Runs `aex up --detach` of the ping-pong example in `app`; returns the two node pids.
fn up_detached(app: &AppDir) -> Vec<u32> {
    copy_example(app.path(), free_addr(), free_addr());
    let dir = app.path().display().to_string();
    cli::run_as(&app.identity, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    let pids = aex_testkit::node::up_node_pids(app.path());
    assert_eq!(pids.len(), 2, "two node pids recorded: {pids:?}");
    pids
}

#[test]
fn status_watch_refreshes_and_down_stops_the_nodes_with_a_broken_descriptor() {
    let app = AppDir::new();
    let pids = up_detached(&app);
    let dir = app.path().display().to_string();

    // Not a terminal: one frame after another, each with the tables.
    let mut watch = cli::aex();
    watch
        .env("AEX_IDENTITY", &app.identity)
        .args(["status", "--watch=100ms", "-C", &dir]);
    let watch = Captured::spawn(watch, "aex status --watch");
    wait_for("three refreshes of `aex status --watch`", PATIENCE, || {
        let out = watch.stdout_so_far();
        let frames = out.matches("aex status ").count();
        let tables = out.matches("ping-to-pong").count();
        (frames >= 3 && tables >= 3).then_some(())
    });
    drop(watch);
    // On a terminal (a pseudo-terminal from `script(1)`), each refresh is drawn over the last
    // from the top left corner: the cursor goes home before each frame, and nothing scrolls.
    let mut tty = cli::aex();
    let line = format!(
        "exec {} status --watch=100ms -C {dir}",
        cli::binary().display()
    );
    tty.env("AEX_IDENTITY", &app.identity).env("TERM", "xterm");
    let mut script = std::process::Command::new("script");
    script.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (key, value) in tty.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    let on_tty = Captured::spawn(script, "script -c 'aex status --watch'");
    wait_for("three frames drawn in place", PATIENCE, || {
        let out = on_tty.stdout_so_far();
        let homes = out.matches("\x1b[H").count();
        (homes >= 3 && out.matches("ping-to-pong").count() >= 3).then_some(())
    });
    let out = on_tty.stdout_so_far();
    assert!(
        out.contains("\x1b[J"),
        "the rest of the screen is cleared: {out:?}"
    );
    for child in process::children(on_tty.pid()) {
        process::signal(child, process::Signal::Kill);
    }
    drop(on_tty);
    let mut json = cli::aex();
    json.env("AEX_IDENTITY", &app.identity)
        .args(["status", "--json", "--watch=100ms", "-C", &dir]);
    let json = Captured::spawn(json, "aex status --json --watch");
    wait_for("two JSON lines of `aex status --watch`", PATIENCE, || {
        let out = json.stdout_so_far();
        let lines: Vec<&str> = out.lines().collect();
        (lines.len() >= 2).then_some(())
    });
    for line in json.stdout_so_far().lines().take(2) {
        let status: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(
            status["modules"].as_array().map(Vec::len),
            Some(2),
            "{line}"
        );
    }
    drop(json);

    // A typo that makes the descriptor unparsable does not keep the nodes running.
    app.write_descriptor("[[node]\nname = \"node1\"\n");
    let down = app.aex(&["down"]).ok();
    down.stderr_has(&[
        "the descriptor cannot be used",
        "stopped from the application's state",
        "node1",
        "node2",
    ]);
    for pid in &pids {
        process::assert_gone(*pid, "a node after `aex down`", Duration::from_secs(10));
    }
    let state = app.state();
    assert!(state.nodes.is_empty(), "{state:?}");
    assert!(
        state.modules.is_empty(),
        "modules of stopped nodes are forgotten"
    );
    app.aex(&["down"])
        .ok()
        .stderr_has(&["no local nodes were running"]);
}

#[test]
fn down_works_once_the_descriptor_is_gone() {
    let app = AppDir::new();
    let pids = up_detached(&app);
    std::fs::remove_file(app.path().join("aex.toml")).unwrap();
    app.aex(&["down"])
        .ok()
        .stderr_has(&["no aex.toml", "stopped node1, node2"]);
    for pid in &pids {
        process::assert_gone(*pid, "a node after `aex down`", Duration::from_secs(10));
    }
}

#[test]
fn a_command_waiting_for_the_state_says_who_holds_it_and_gives_up_at_its_timeout() {
    let app = AppDir::new();
    let key = app.path().join("platform.pub");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    let desc = PingPong {
        nodes: [
            (free_addr(), PlatformKey::File(key.clone())),
            (free_addr(), PlatformKey::File(key)),
        ],
        identities: [
            Some(IdentityPin::Inline("22".repeat(32))),
            Some(IdentityPin::Inline("33".repeat(32))),
        ],
        poke: false,
        c_pong: false,
    };
    app.write_descriptor(&desc.render());
    // This test process holds the application's state, as a long `aex deploy` would.
    let held = StateFile::open(app.path()).unwrap();
    let me = format!("process {}", std::process::id());
    let run = app.aex(&["status", "--timeout", "300ms"]).code(1);
    run.stderr_has(&[
        "Waiting",
        &me,
        "gave up waiting after 300 ms",
        "help: wait for that command to finish, or stop it",
    ]);
    // Without a limit it waits, says for whom, and goes on once the state is free.
    let mut cmd = cli::aex();
    cmd.env("AEX_IDENTITY", &app.identity).args([
        "status",
        "--json",
        "-C",
        &app.path().display().to_string(),
    ]);
    let mut waiting = Captured::spawn(cmd, "aex status");
    let said = waiting.wait_stderr("Waiting", PATIENCE);
    assert!(said.contains(&me), "{said}");
    drop(held);
    let run = waiting.finish(COMMAND_TIMEOUT).ok();
    assert!(run.json()["nodes"].is_array(), "{}", run.stdout);
}
