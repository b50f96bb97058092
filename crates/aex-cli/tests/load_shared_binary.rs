//! Deploying many modules of one binary: the deployer uploads it once per node and loads the
//! others from the binary the node holds (`LoadStored`), spread over several sessions; every
//! instance is attested and keyed as if it had been uploaded.

use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aex_testkit::cluster::AppDir;
use aex_testkit::node::NodeProcess;
use aex_testkit::status::StatusExt;

/// Relays in the ring: more than the deployer's sessions per node.
const RING: usize = 20;

/// A ring of `modules` relays on `node` (`m0.output → m1.input → … → m0.input`).
fn ring(app: &AppDir, node: &NodeProcess, modules: usize) {
    let relay = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../aex-bench/modules/relay")
        .canonicalize()
        .expect("crates/aex-bench/modules/relay exists");
    let mut desc = format!(
        "[application]\nname = \"ring\"\n\n[[node]]\nname = \"node1\"\naddress = \"{}\"\ntee = \"sgx\"\nsimulation = true\nplatform_key_file = {:?}\nidentity_file = {:?}\n",
        node.addr,
        node.platform_pub_file().display().to_string(),
        node.identity_pub_file().display().to_string(),
    );
    for i in 0..modules {
        let crate_dir = relay.display().to_string();
        write!(
            desc,
            "\n[[module]]\nname = \"m{i}\"\ncrate = {crate_dir:?}\nnode = \"node1\"\n"
        )
        .unwrap();
    }
    for i in 0..modules {
        let next = (i + 1) % modules;
        write!(
            desc,
            "\n[[connection]]\nname = \"c{i}\"\nfrom = \"m{i}.output\"\nto = \"m{next}.input\"\n"
        )
        .unwrap();
    }
    app.write_descriptor(&desc);
}

/// The node's stored binaries (of every deployer).
fn stored(data: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for deployer in std::fs::read_dir(data.join("binaries")).expect("a binaries directory") {
        for file in std::fs::read_dir(deployer.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files
}

#[test]
fn a_ring_of_one_binary_is_uploaded_once_and_every_instance_attested() {
    let app = AppDir::new();
    let data = app.path().join("node1");
    let node = NodeProcess::start("node1", data.clone());
    ring(&app, &node, RING);
    app.deploy().ok();
    let status = app.status();
    status.assert_healthy();
    assert_eq!(status.modules.len(), RING);
    for i in 0..RING {
        assert!(status.connection(&format!("c{i}")).keyed, "{status:#?}");
    }
    // One file on the node, linked by every module's directory and by the store.
    let files = stored(&data);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().nlink(),
        RING as u64 + 1
    );

    // A module added later is loaded from the stored binary too; the others are kept.
    ring(&app, &node, RING + 1);
    let out = app.deploy().ok();
    let status = app.status();
    status.assert_healthy();
    assert_eq!(status.modules.len(), RING + 1, "{}", out.stdout);
    let files = stored(&data);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().nlink(),
        RING as u64 + 2
    );
}
