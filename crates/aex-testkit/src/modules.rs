//! Every module crate of the workspace, built once per test run.
//!
//! The first test that needs a module builds all of them with one cargo run, through the
//! deployer's own build code ([`aex_deploy::build::Builder::build_many`]), into the target
//! directory the tests were built into, and writes a [`Prebuilt`] manifest there. Every `aex`
//! a test runs gets `AEX_PREBUILT` pointing at it ([`crate::cli::aex`]), so `aex deploy`
//! measures, describes and uploads those binaries exactly as it would its own builds, without
//! running cargo again (one cargo run per deploy, all serialized on the target directory's
//! lock, was most of the suite's time).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aex_deploy::build::{Builder, Prebuilt, Profile};

use crate::paths;

/// The module crates of the workspace: the examples' modules, the benchmark's and the test
/// kit's own (`crates/aex-testkit/modules/`).
pub fn crates() -> Vec<PathBuf> {
    let root = paths::workspace();
    let text =
        std::fs::read_to_string(root.join("Cargo.toml")).expect("read the workspace manifest");
    let doc: toml::Table = toml::from_str(&text).expect("the workspace manifest is TOML");
    let members = doc["workspace"]["members"]
        .as_array()
        .expect("workspace members");
    members
        .iter()
        .filter_map(|m| m.as_str())
        .filter(|m| {
            [
                "examples/",
                "crates/aex-bench/modules/",
                "crates/aex-testkit/modules/",
            ]
            .iter()
            .any(|dir| m.starts_with(dir))
        })
        .map(|m| root.join(m))
        .filter(|dir| is_module_crate(dir))
        .collect()
}

/// A binary crate that uses `aex::main!` (the examples also hold library crates).
fn is_module_crate(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("src/main.rs")).is_ok_and(|main| main.contains("aex::main!"))
}

/// The built modules: crate directory → executable. Builds them on first use.
pub fn prebuilt() -> &'static Prebuilt {
    static BUILT: OnceLock<Prebuilt> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dirs = crates();
        // Build into the target directory the tests were built into, whatever cargo would
        // pick from the crates' own location.
        let binaries = Builder::new(Profile::Dev)
            .target_dir(paths::target_dir())
            .build_many(&dirs)
            .unwrap_or_else(|e| panic!("building the workspace's module crates failed: {e}"));
        let modules = dirs
            .iter()
            .map(|d| d.canonicalize().expect("module crate directory"))
            .zip(binaries)
            .collect();
        let prebuilt = Prebuilt { modules };
        prebuilt
            .write(&manifest_path())
            .expect("write the prebuilt module manifest");
        prebuilt
    })
}

/// The manifest of [`prebuilt`] (building the modules first if needed), for `AEX_PREBUILT`.
pub fn manifest() -> PathBuf {
    prebuilt();
    manifest_path()
}

/// The prebuilt executable of the module crate in `crate_dir`.
#[track_caller]
pub fn binary(crate_dir: &Path) -> PathBuf {
    prebuilt()
        .binary(crate_dir)
        .unwrap_or_else(|| {
            panic!(
                "{} is not a module crate of the workspace",
                crate_dir.display()
            )
        })
        .to_path_buf()
}

fn manifest_path() -> PathBuf {
    paths::scratch().join(format!("prebuilt-{}.json", std::process::id()))
}
