//! Output commit for device writes (issue 16): a persistent driver's write to its device is
//! an effect like an event, so the device does not change before the state that explains the
//! write is sealed and stored. Played with the node's storage failing, as a full disk would.

use aex_testkit::cli::run;
use aex_testkit::cluster::AppDir;
use aex_testkit::node::NodeOptions;
use aex_testkit::status::StatusExt;
use aex_testkit::{wait_for, PATIENCE};

#[test]
fn a_persistent_driver_changes_its_device_only_once_its_state_is_stored() {
    let app = AppDir::new();
    let node = NodeOptions::new("node1", app.path().join("node1"))
        .args(&["--device", "lamp=digital_out"])
        .start();
    let mut descriptor = aex_testkit::descriptor::tally(
        &[aex_testkit::descriptor::sgx_node(
            "node1",
            node.addr,
            &node.platform_pub_file(),
            &node.identity_pub_file(),
        )],
        &[("tally", "node1")],
        false,
    );
    descriptor = descriptor.replace(
        "node = \"node1\"\n",
        "node = \"node1\"\ndevices = [\"lamp\"]\n",
    );
    descriptor.push_str(
        "\n[[connection]]\nname = \"switch\"\nfrom = \"deployer\"\nto = \"tally.drive\"\n",
    );
    app.write_descriptor(&descriptor);
    app.deploy().ok();
    app.status().assert_healthy();

    let data_dir = node.data_dir.to_str().expect("a UTF-8 path").to_owned();
    let lamp = || {
        run(
            None,
            &["device", "node1", "lamp", "--data-dir", &data_dir],
            PATIENCE,
        )
        .ok()
        .stdout
        .trim()
        .to_owned()
    };
    let switch = |on: &str| {
        app.aex(&["output", "switch", on])
            .ok()
            .stderr_has(&["the module accepted it"]);
    };
    switch("1");
    wait_for("the lamp to go on", PATIENCE, || {
        (lamp() == "1").then_some(())
    });

    // The node's storage fails (its `sealed` directory replaced by a file).
    let sealed = std::fs::read_dir(node.data_dir.join("modules"))
        .unwrap()
        .flatten()
        .map(|ns| ns.path().join("tally").join("sealed"))
        .find(|p| p.is_dir())
        .expect("tally's sealed directory");
    std::fs::remove_dir_all(&sealed).unwrap();
    std::fs::write(&sealed, b"not a directory").unwrap();
    switch("0");
    // The module handled the event and tried to commit (status says the store fails): the
    // write it made is held, so the lamp is still on.
    wait_for("status to say the store fails", PATIENCE, || {
        let s = app.status();
        let p = s.module("tally").persistence.clone();
        p.is_some_and(|p| p.store_error.is_some()).then_some(())
    });
    assert_eq!(
        lamp(),
        "1",
        "the write reached the device before its state was stored"
    );

    // The disk comes back: the commit goes through, and the held write with it.
    std::fs::remove_file(&sealed).unwrap();
    wait_for("the held write to turn the lamp off", PATIENCE, || {
        (lamp() == "0").then_some(())
    });
    assert_eq!(app.call("tally", "totals", None)["added"], 2);
}
