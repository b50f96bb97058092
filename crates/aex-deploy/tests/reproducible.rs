//! Every member of a consortium must compute the same expected measurement from the same
//! source, wherever their clone lives: the deployer's build of one module from two clones of
//! the repository, at different paths, gives the same bytes.
//!
//! What this does not cover yet: both clones share this machine's `CARGO_HOME`, and a binary
//! names its dependencies' sources by absolute path there (`$CARGO_HOME/registry/src/…`, in
//! panic locations), so members whose `CARGO_HOME` differs get different bytes until module
//! builds remap that prefix (`--remap-path-prefix`; cargo's `trim-paths` is not stable yet).
//! The toolchain must match too (same `rustc -V`).

use std::path::{Path, PathBuf};
use std::process::Command;

use aex_deploy::build::{Builder, Profile};

/// The repository's root (this crate is `crates/aex-deploy`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// A clone of the repository's committed state at `dir`.
fn clone_into(repo: &Path, dir: &Path) {
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(repo)
        .arg(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git clone into {} failed", dir.display());
}

#[test]
#[ignore = "long: builds one module in release in two clones (about 4 min on 2 cores)"]
fn one_module_built_in_two_clones_measures_the_same() {
    let repo = repo();
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = first.path().join("aex");
    let b = second.path().join("somewhere/else/aex");
    clone_into(&repo, &a);
    clone_into(&repo, &b);
    let module = "examples/ping-pong/pong";
    // Each clone builds in its own target directory, as two members' machines would.
    let built_a = Builder::new(Profile::Release)
        .build(&a.join(module))
        .expect("the first clone builds");
    let built_b = Builder::new(Profile::Release)
        .build(&b.join(module))
        .expect("the second clone builds");
    assert_ne!(built_a.binary, built_b.binary, "two builds, not one reused");
    // What the ledger records beside the measurement, for a member who rebuilds.
    assert!(built_a.toolchain.is_some());
    assert_eq!(built_a.toolchain, built_b.toolchain);
    assert_eq!(
        built_a.measurement,
        built_b.measurement,
        "the same source measured differently in {} and {}",
        a.display(),
        b.display()
    );
}
