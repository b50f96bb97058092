//! `aex new`: an application outside the repository, one Cargo workspace with two modules, a
//! descriptor and a README, that `aex up` runs at once.

use std::path::Path;
use std::time::Duration;

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::process;
use aex_testkit::status::{AppStatus, StatusExt};
use aex_testkit::{paths, wait_for, PATIENCE};

/// `aex new NAME --dir DIR args...`.
fn new(name: &str, dir: &Path, args: &[&str]) -> aex_testkit::process::Run {
    let dir_arg = dir.display().to_string();
    let mut all = vec!["new", name, "--dir", &dir_arg];
    all.extend(args);
    cli::run(None, &all, COMMAND_TIMEOUT)
}

#[test]
fn new_writes_a_workspace_with_two_modules_a_descriptor_and_a_readme() {
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("demo");
    new("demo", &app, &[])
        .ok()
        .stderr_has(&["Created", "`demo`"]);
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "aex.toml",
        "README.md",
        ".gitignore",
        "ping/Cargo.toml",
        "ping/src/main.rs",
        "pong/src/main.rs",
    ] {
        assert!(app.join(file).is_file(), "{file} missing");
    }
    // By version, overridden by the checkout this `aex` was built from.
    let manifest = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    let checkout = paths::workspace().canonicalize().unwrap();
    for needle in [
        "members = [\"ping\", \"pong\"]",
        "aex = { package = \"aex-sdk\", version = \"0.1.0\" }",
        "[patch.crates-io]",
        &format!(
            "aex-sdk = {{ path = \"{}\" }}",
            checkout.join("crates/aex").display()
        ),
    ] {
        assert!(manifest.contains(needle), "{needle} not in\n{manifest}");
    }
    // The descriptor is valid as written: every command reads it (the nodes are not running).
    let status = cli::run(
        None,
        &["status", "--json", "-C", &app.display().to_string()],
        COMMAND_TIMEOUT,
    )
    .ok();
    let status = AppStatus::parse(status.json());
    assert_eq!(status.modules.len(), 2, "{status:?}");
    // Never over an existing application, nor with a name the descriptor would refuse.
    new("demo", &app, &[])
        .code(1)
        .stderr_has(&["already exists and is not an empty directory"]);
    new("my demo", &root.path().join("x"), &[])
        .code(1)
        .stderr_has(&["invalid application name `my demo`"]);
    let other = root.path().join("other");
    new("other", &other, &["--sdk", "/nonexistent"])
        .code(1)
        .stderr_has(&["is not an aex checkout"]);
    new(
        "sa",
        &root.path().join("sa"),
        &["--template", "sensor-actuator"],
    )
    .ok();
    let desc = std::fs::read_to_string(root.path().join("sa/aex.toml")).unwrap();
    assert!(desc.contains("call = \"sensor.sample\""), "{desc}");
}

/// `aex up --detach` of the scaffold in `app`, built by cargo (no prebuilt modules) into
/// `target`, in the dev profile.
fn up_built(app: &Path, target: &Path) -> aex_testkit::process::Run {
    let mut cmd = cli::aex();
    cmd.env_remove(aex_deploy::build::PREBUILT_ENV)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(app)
        .args(["up", "--detach"]);
    cli::run_command(
        cmd,
        "aex up --detach (a scaffold)".into(),
        Duration::from_secs(1200),
    )
}

#[test]
#[ignore = "long: builds the SDK and two scaffolds' modules with cargo (minutes)"]
fn both_templates_run_outside_the_repository_through_up_and_down() {
    let root = tempfile::tempdir().unwrap();
    assert!(!root.path().starts_with(paths::workspace()));
    let target = root.path().join("target");

    let app = root.path().join("pp");
    new("pp", &app, &[]).ok();
    let up = up_built(&app, &target).ok();
    assert!(up.stdout.contains("\"done\": true"), "{}", up.stdout);
    let dir = app.display().to_string();
    let status = |dir: &str| {
        AppStatus::parse(
            cli::run(None, &["status", "--json", "-C", dir], COMMAND_TIMEOUT)
                .ok()
                .json(),
        )
    };
    let pp = status(&dir);
    pp.assert_healthy();
    assert_eq!(pp.connection("ping-to-pong").sent, 1000);
    let pids = aex_testkit::node::up_node_pids(&app);
    cli::run(None, &["down", "-C", &dir], COMMAND_TIMEOUT).ok();
    for pid in pids {
        process::assert_gone(pid, "a node after `aex down`", Duration::from_secs(10));
    }

    let app = root.path().join("sa");
    new("sa", &app, &["--template", "sensor-actuator"]).ok();
    up_built(&app, &target).ok();
    let dir = app.display().to_string();
    cli::run(
        None,
        &["output", "-C", &dir, "reading", "{\"celsius\": 16.5}"],
        COMMAND_TIMEOUT,
    )
    .ok();
    // The node samples the sensor every second: readings flow to the heater.
    wait_for("three periodic readings at the heater", PATIENCE, || {
        (status(&dir).connection("temperature").received >= 3).then_some(())
    });
    let heater = cli::run(
        None,
        &["call", "-C", &dir, "heater", "status"],
        COMMAND_TIMEOUT,
    )
    .ok()
    .json();
    assert_eq!(heater["on"], true, "{heater}");
    let pids = aex_testkit::node::up_node_pids(&app);
    cli::run(None, &["down", "-C", &dir], COMMAND_TIMEOUT).ok();
    for pid in pids {
        process::assert_gone(pid, "a node after `aex down`", Duration::from_secs(10));
    }
}
