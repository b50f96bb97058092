//! Checks before work: what `aex up` can know from the descriptor, the local nodes' addresses
//! and the built interfaces is reported before it builds (addresses) or starts a node (the
//! rest), in the error itself; an interrupted build says so.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::copy_example;
use aex_testkit::process::{self, Captured};
use aex_testkit::{free_addr, wait_for, PATIENCE};

/// `aex up --detach` of `app`, with no cargo to build with: a build would fail on it, so an
/// error about anything else shows that the check came before any build.
fn up_without_cargo(app: &AppDir) -> aex_testkit::process::Run {
    let mut cmd = cli::aex();
    cmd.env("AEX_IDENTITY", &app.identity)
        .env_remove(aex_deploy::build::PREBUILT_ENV)
        .env("CARGO", "/nonexistent/cargo")
        .args(["up", "--detach"])
        .arg(app.path());
    cli::run_command(cmd, "aex up --detach (no cargo)".into(), COMMAND_TIMEOUT)
}

/// Asserts that `aex up` started no node for `app`.
#[track_caller]
fn no_node_started(app: &AppDir) {
    let pids = aex_testkit::node::up_node_pids(app.path());
    assert!(pids.is_empty(), "nodes were started: {pids:?}");
}

#[test]
fn a_port_in_use_is_named_in_the_error_before_any_build() {
    let app = AppDir::new();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    copy_example(app.path(), free_addr(), addr);
    let run = up_without_cargo(&app).code(1);
    run.stderr_has(&[
        &format!("local node `node2` cannot start on {addr}"),
        &format!("process {} (", std::process::id()),
        "listens there",
        "help: stop what listens on",
        "give node `node2` a free port",
    ]);
    assert!(!run.stderr.contains("cargo"), "{}", run.stderr);
    no_node_started(&app);
}

#[test]
fn another_applications_node_on_the_address_is_named_before_any_build() {
    let first = AppDir::new();
    let (a1, a2) = (free_addr(), free_addr());
    copy_example(first.path(), a1, a2);
    let dir = first.path().display().to_string();
    cli::run_as(&first.identity, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();

    let second = AppDir::new();
    copy_example(second.path(), a1, free_addr());
    up_without_cargo(&second).code(1).stderr_has(&[
        &format!("local node `node1` cannot start on {a1}"),
        "an aex node with identity key",
        "not the node this application provisioned in .aex/nodes/node1/",
        "belongs to another application",
        "`aex down` in that application's directory",
    ]);
    no_node_started(&second);
}

#[test]
fn a_wrong_port_name_fails_after_the_build_and_before_any_node_starts() {
    let app = AppDir::new();
    copy_example(app.path(), free_addr(), free_addr());
    let path = app.path().join("aex.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"pong.ping\"", "\"pong.pnig\"", 1)).unwrap();
    let dir = app.path().display().to_string();
    cli::run_as(&app.identity, &["up", "--detach", &dir], COMMAND_TIMEOUT)
        .code(1)
        .stderr_has(&["connection[0].to", "pnig"]);
    no_node_started(&app);
}

/// A module crate whose build script sleeps, so a build of it lasts until it is interrupted.
fn slow_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"slow\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        dir.join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(120)); }\n",
    )
    .unwrap();
}

#[test]
fn ctrl_c_during_a_build_says_interrupted() {
    let app = AppDir::new();
    slow_crate(&app.path().join("slow"));
    let addr: SocketAddr = free_addr();
    app.write_descriptor(&format!(
        "[[node]]\nname = \"n1\"\naddress = \"{addr}\"\ntee = \"sgx\"\n\n\
         [[module]]\nname = \"slow\"\ncrate = \"slow\"\nnode = \"n1\"\n"
    ));
    let mut cmd = cli::aex();
    cmd.env("AEX_IDENTITY", &app.identity)
        .env_remove("CARGO_TARGET_DIR")
        .arg("up")
        .arg(app.path());
    // Its own process group, as a shell runs a foreground job: Ctrl-C signals the group.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let up = Captured::spawn(cmd, "aex up");
    let group = up.pid();
    wait_for("the build script to run", PATIENCE, || {
        let mut pids = vec![group];
        let mut script = false;
        while let Some(pid) = pids.pop() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            script |= comm.starts_with("build-script");
            pids.extend(process::children(pid));
        }
        script.then_some(())
    });
    Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    let run = up.finish(COMMAND_TIMEOUT).code(1);
    run.stderr_has(&["was interrupted", "nothing was changed on any node"]);
    assert!(
        !run.stderr.contains("fix the build error"),
        "{}",
        run.stderr
    );
    no_node_started(&app);
}

/// Appends a `[governance]` section (one member) to `app`'s descriptor.
fn declare_governance(app: &AppDir) {
    let path = app.path().join("aex.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let governance = format!(
        "\n[governance]\n\n[[governance.member]]\nname = \"farm\"\nkey = \"{}\"\n\n\
         [governance.rules]\ndeploy = \"any 1\"\n",
        "5f".repeat(32)
    );
    std::fs::write(&path, text + &governance).unwrap();
}

#[test]
fn a_governed_descriptor_is_refused_before_any_build_or_node_start() {
    // A governed application changes through its governor: the deployer's single key would
    // bypass the members' rules.
    let app = AppDir::new();
    copy_example(app.path(), free_addr(), free_addr());
    declare_governance(&app);
    let refused = [
        "refused:",
        "declares `[governance]`: its nodes change only through its governor",
        "would act under this single deployer key",
        "help: propose the change with `aex propose --action deploy`",
    ];
    let run = up_without_cargo(&app).code(1);
    run.stderr_has(&refused);
    run.stderr_has(&["`aex up` refused"]);
    assert!(!run.stderr.contains("cargo"), "{}", run.stderr);
    no_node_started(&app);

    let dir = app.path().display().to_string();
    let deploy = |args: &[&str]| {
        let mut cmd = cli::aex();
        cmd.env("AEX_IDENTITY", &app.identity)
            .env_remove(aex_deploy::build::PREBUILT_ENV)
            .env("CARGO", "/nonexistent/cargo")
            .args(args)
            .arg(&dir);
        cli::run_command(cmd, format!("aex {args:?}"), COMMAND_TIMEOUT)
    };
    let run = deploy(&["deploy"]).code(1);
    run.stderr_has(&refused);
    run.stderr_has(&["`aex deploy` refused"]);
    assert!(!run.stderr.contains("cargo"), "{}", run.stderr);
    // A dry run changes nothing: it goes past the refusal (to the build, which has no cargo).
    let run = deploy(&["deploy", "--dry-run"]);
    assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    no_node_started(&app);
}
