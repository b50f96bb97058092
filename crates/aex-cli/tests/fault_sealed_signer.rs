//! Updates by signer (issue 16): a persistent module that seals by signer
//! (`#[aex::module(persistent(signer))]`, the test kit's `signed`) derives its sealing key from
//! its deployer and its name on the node, not from its code, so its update (a new measurement
//! on the same node) opens what the old instance sealed and takes its state from there; the
//! same update of a module sealed by its code (`tally`) goes through the deployer's copy.
//!
//! A new measurement without a new binary: the descriptor binds each module to a device of
//! the node, and a driver's measurement covers its devices (docs/PROTOCOL.md §4).

use aex_testkit::cluster::AppDir;
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::status::{AppStatus, StatusExt};

use crate::fault_sealed_state::{copy_blobs, swap_blobs};

/// `signed` as `sealed` and `tally` as `plain` on `node`, each bound to a device when
/// `bound`.
fn descriptor(node: &NodeProcess, bound: bool) -> String {
    let mut text = "[application]\nname = \"signer-test\"\n".to_owned();
    text.push_str(&aex_testkit::descriptor::sgx_node(
        "node1",
        node.addr,
        &node.platform_pub_file(),
        &node.identity_pub_file(),
    ));
    for (name, krate, device) in [("sealed", "signed", "lamp"), ("plain", "tally", "bell")] {
        let krate = aex_testkit::paths::testkit_module(krate);
        text.push_str(&format!(
            "\n[[module]]\nname = \"{name}\"\ncrate = {:?}\nnode = \"node1\"\n",
            krate.display().to_string()
        ));
        if bound {
            text.push_str(&format!("devices = [\"{device}\"]\n"));
        }
    }
    text
}

fn start(app: &AppDir) -> NodeProcess {
    NodeOptions::new("node1", app.path().join("node1"))
        .args(&[
            "--device",
            "lamp=digital_out",
            "--device",
            "bell=digital_out",
        ])
        .start()
}

fn stored(status: &AppStatus, module: &str) -> u64 {
    status
        .module(module)
        .persistence
        .as_ref()
        .map_or(0, |p| p.stored)
}

fn bump(app: &AppDir, module: &str, n: u64) -> u64 {
    let total = app.call(module, "bump", Some(&n.to_string()));
    total
        .as_u64()
        .unwrap_or_else(|| panic!("bump answered {total}"))
}

/// The module's `sealed/` directory.
/// The directory of the module `slot` on `node` (in whichever namespace holds it).
fn module_dir(node: &NodeProcess, slot: &str) -> std::path::PathBuf {
    std::fs::read_dir(node.data_dir.join("modules"))
        .unwrap()
        .flatten()
        .map(|ns| ns.path().join(slot))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no directory of `{slot}`"))
}

/// The module's `sealed/` directory.
fn sealed_dir(node: &NodeProcess, slot: &str) -> std::path::PathBuf {
    module_dir(node, slot).join("sealed")
}

#[test]
fn an_update_sealed_by_signer_adopts_its_predecessors_blobs() {
    let app = AppDir::new();
    let node = start(&app);
    app.write_descriptor(&descriptor(&node, false));
    app.deploy().ok();
    app.status().assert_healthy();
    assert_eq!(bump(&app, "sealed", 5), 5);
    assert_eq!(bump(&app, "plain", 5), 5);
    let before = app.status();

    // New measurements (each module now drives a device): both are replaced.
    app.write_descriptor(&descriptor(&node, true));
    let deploy = app.deploy().ok();
    deploy.stderr_has(&[
        "Transferred `sealed` on `node1`: took over the state",
        "from the old instance's sealed blobs (both seal by signer)",
        "Transferred `plain` on `node1`: took over the state",
    ]);
    let plain_line = deploy
        .stderr
        .lines()
        .find(|l| l.contains("Transferred `plain`"))
        .unwrap()
        .to_owned();
    assert!(!plain_line.contains("sealed blobs"), "{plain_line}");
    let after = app.status();
    after.assert_healthy();
    for module in ["sealed", "plain"] {
        assert_ne!(
            after.module(module).measurement,
            before.module(module).measurement,
            "{module} was not updated"
        );
        assert_eq!(app.call(module, "totals", None)["total"], 5, "{module}");
        assert!(stored(&after, module) > stored(&before, module), "{module}");
    }
    // The old instances are gone, their sealed state and their binaries' links with them
    // (their logs stay).
    let json = app.aex(&["status", "--json"]).ok().json();
    assert_eq!(json["nodes"][0]["modules"], 2, "{json:#}");
    assert!(!sealed_dir(&node, "sealed").exists());
    for old in ["sealed", "plain"] {
        let dir = module_dir(&node, old);
        assert!(
            !dir.join("module.bin").exists(),
            "{old}'s binary outlived it"
        );
        assert!(dir.join("module.log").exists());
    }
    assert_eq!(bump(&app, "sealed", 1), 6);
}

/// The node controls the blobs it hands over: here it puts back the old instance's blobs
/// from before its retirement (a rollback) while the update is interrupted. The adoption is
/// refused (the platform counter names another blob), the deployer stages its own copy
/// instead, and the state is exact.
#[test]
fn a_rolled_back_predecessor_is_not_adopted_and_the_state_comes_from_the_deployer() {
    let app = AppDir::new();
    let node = start(&app);
    app.write_descriptor(&descriptor(&node, false));
    app.deploy().ok();
    assert_eq!(bump(&app, "sealed", 5), 5);
    let old = sealed_dir(&node, "sealed");
    let live = app.path().join("live-blobs");
    copy_blobs(&old, &live);

    app.write_descriptor(&descriptor(&node, true));
    aex_testkit::cli::killed_at(
        "handed-over",
        [std::ffi::OsStr::new("deploy"), app.path().as_os_str()],
    );
    // The retired predecessor's blobs replaced by its live ones of before.
    swap_blobs(&live, &old);
    let deploy = app.deploy().ok();
    deploy.stderr_has(&[
        "`sealed` did not adopt its old instance's sealed state (",
        "rollback detected",
        "the deployer's copy of the state was restored instead",
    ]);
    assert_eq!(app.call("sealed", "totals", None)["total"], 5);
    assert_eq!(bump(&app, "sealed", 1), 6);
}
