//! The ping-pong example's module crates, built once per test run.
//!
//! The build runs exactly the cargo command the deployer runs for `AEX_BUILD_PROFILE=dev`
//! (same manifest, profile and target directory), so every later `aex deploy` finds its
//! binaries fresh and only measures them. Tests that deploy call [`built`] first, so the
//! first of them pays for the build and the rest wait for it rather than race cargo.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Paths of the built example modules.
#[derive(Debug)]
pub struct Built {
    pub ping: PathBuf,
    pub pong: PathBuf,
}

/// The example's directory, `examples/ping-pong` in the workspace.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/ping-pong")
        .canonicalize()
        .expect("examples/ping-pong exists")
}

/// The directory of example `name` (e.g. `button-led`) in the workspace, absolute.
pub fn named_example_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    dir.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The directory of the example crate `name` (`ping` or `pong`), absolute.
pub fn crate_dir(name: &str) -> PathBuf {
    example_dir().join(name)
}

/// Builds both module crates (once per process) and returns their executables.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| Built {
        ping: build(&crate_dir("ping")),
        pong: build(&crate_dir("pong")),
    })
}

/// Builds the module crate in `dir` exactly as the deployer does with `AEX_BUILD_PROFILE=dev`
/// and returns its executable.
pub fn build(dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = dir.join("Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build of {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no executable for {}", dir.display()))
}
