//! Where things are: the workspace, its examples, and the cargo target directory the running
//! test binary was built into (so the test kit builds modules into the same one).

use std::path::{Path, PathBuf};

/// The workspace root (the directory of the root `Cargo.toml`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the test kit lives in crates/aex-testkit of the workspace")
}

/// The directory of example `name` (e.g. `ping-pong`) in the workspace, absolute.
pub fn example(name: &str) -> PathBuf {
    let dir = workspace().join("examples").join(name);
    assert!(dir.is_dir(), "no example `{name}` at {}", dir.display());
    dir
}

/// The directory of the ping-pong example's crate `name` (`ping` or `pong`), absolute.
pub fn ping_pong_crate(name: &str) -> PathBuf {
    example("ping-pong").join(name)
}

/// The directory of the test kit's own module crate `name` (`crates/aex-testkit/modules/`),
/// absolute.
pub fn testkit_module(name: &str) -> PathBuf {
    let dir = workspace().join("crates/aex-testkit/modules").join(name);
    assert!(
        dir.is_dir(),
        "no test kit module `{name}` at {}",
        dir.display()
    );
    dir
}

/// The profile directory the running test binary lives in (`target/debug`): test binaries
/// are `target/<profile>/deps/<name>-<hash>`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_path_buf()
}

/// The cargo target directory the running test binary was built into.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("a profile directory lives in the target directory")
        .to_path_buf()
}

/// A scratch directory of the test kit inside the target directory (created on first use),
/// for files that outlive one test: identities, the prebuilt manifest.
pub fn scratch() -> PathBuf {
    let dir = target_dir().join("aex-testkit");
    std::fs::create_dir_all(&dir).expect("create the test kit's scratch directory");
    dir
}
