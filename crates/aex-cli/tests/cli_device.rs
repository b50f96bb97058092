//! `aex node --device` and `aex device`: a real node process declaring devices, and the
//! physical world played through its device socket from the command line.

use std::path::Path;

use aex_testkit::cli::{aex, run};
use aex_testkit::descriptor::copy_example;
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::process::Captured;
use aex_testkit::{free_addr, wait_for, PATIENCE};

/// `aex node --device ...` (a button, a valve and a soil probe) with its data in `data_dir`,
/// once its device socket is up.
fn device_node(name: &str, data_dir: &Path) -> NodeProcess {
    let node = NodeOptions::new(name, data_dir.to_path_buf())
        .args(&[
            "--device",
            "button=digital_in",
            "--device",
            "valve=digital_out",
            "--device",
            "soil=analog_in:100@35",
        ])
        .start();
    let socket = aex_node::physics_socket(data_dir);
    wait_for("the node's device socket", PATIENCE, || {
        socket.exists().then_some(())
    });
    node
}

#[test]
fn device_lists_reads_sets_and_watches_a_local_node() {
    let tmp = tempfile::tempdir().unwrap();
    let node = device_node("field", &tmp.path().join("field"));
    let data_dir = node.data_dir.to_str().expect("a UTF-8 path");
    let t = PATIENCE;
    let dev = |args: &[&str]| {
        let mut all = vec!["device", "field"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data-dir", data_dir]);
        run(None, &all, t)
    };

    let list = dev(&[]).ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", list.stdout);
    assert!(lines[0].starts_with("DEVICE") && lines[0].contains("DRIVER"));
    for (line, words) in lines[1..].iter().zip([
        ["button", "digital_in", "0", "free"],
        ["soil", "analog_in:100", "35", "free"],
        ["valve", "digital_out", "0", "free"],
    ]) {
        assert_eq!(line.split_whitespace().collect::<Vec<_>>(), words);
    }

    assert_eq!(dev(&["soil"]).ok().stdout.trim(), "35");
    dev(&["soil", "set", "12"]).ok();
    assert_eq!(dev(&["soil", "read"]).ok().stdout.trim(), "12");

    let refused = dev(&["valve", "set", "1"]).code(1);
    refused.stderr_has(&[
        "failed to set device `valve` of node `field`",
        "device `valve` is an output: only the driver module it is granted to drives it",
    ]);
    dev(&["pump"])
        .code(1)
        .stderr_has(&["no device `pump` (devices: button, soil, valve)"]);
    dev(&["soil", "set", "101"])
        .code(1)
        .stderr_has(&["takes values 0 to 100, not 101"]);

    // Usage mistakes are exit code 2.
    dev(&["soil", "set"]).code(2);
    dev(&["soil", "open"]).code(2);
    dev(&["soil", "set", "-1"]).code(2);

    let mut cmd = aex();
    cmd.args(["device", "field", "button", "watch", "--data-dir", data_dir]);
    let watch = Captured::spawn(cmd, "aex device field button watch");
    let has = |n: usize| {
        let out = watch.stdout_so_far();
        (out.lines().count() >= n).then_some(out)
    };
    wait_for("the first watch line", t, || has(1));
    dev(&["button", "set", "1"]).ok();
    let out = wait_for("the second watch line", t, || has(2));
    let last: Vec<&str> = out.lines().nth(1).unwrap().split(' ').collect();
    assert_eq!(last[1..], ["button", "1"], "{out}");
    assert!(last[0].ends_with('Z') && last[0].contains('T'), "{out}");
}

#[test]
fn device_finds_the_node_in_the_descriptor_or_says_why_not() {
    let tmp = tempfile::tempdir().unwrap();
    copy_example(tmp.path(), free_addr(), free_addr());
    let app = tmp.path().to_str().unwrap();
    let t = PATIENCE;

    // Not running: no socket.
    let missing = run(None, &["device", "node1", "-C", app], t).code(1);
    missing.stderr_has(&[
        "node `node1` has no device socket at",
        ".aex/nodes/node1/physics/devices.sock",
        "is it running on this machine?",
        "works only on the node's own machine",
    ]);
    run(None, &["device", "nodee1", "-C", app], t)
        .code(1)
        .stderr_has(&["no node `nodee1`", "did you mean `node1`?"]);

    let _node = device_node("node1", &tmp.path().join(".aex/nodes/node1"));
    assert_eq!(
        run(None, &["device", "node1", "soil", "-C", app], t)
            .ok()
            .stdout
            .trim(),
        "35"
    );
}

#[test]
fn node_refuses_bad_device_flags_and_help_says_what_device_is() {
    let t = PATIENCE;
    let bad = run(None, &["node", "--open", "--device", "valve=servo"], t).code(2);
    bad.stderr_has(&["valid kinds are digital_in, digital_out, analog_in"]);
    let help = run(None, &["device", "--help"], t).ok();
    assert!(
        help.stdout.contains("physical world") && help.stdout.contains("not an application"),
        "{}",
        help.stdout
    );

    // The same name twice stops the node before it listens.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let twice = run(
        None,
        &[
            "node",
            "--open",
            "--listen",
            &free_addr().to_string(),
            "--data-dir",
            dir.to_str().unwrap(),
            "--device",
            "v=digital_out",
            "--device",
            "v=digital_in",
        ],
        t,
    )
    .code(1);
    twice.stderr_has(&["device `v` is declared twice"]);
}
