//! Every module crate of the workspace, built once per test run.
//!
//! The first test that needs a module builds all of them with one cargo run, through the
//! deployer's own build code ([`aex_deploy::build::Builder::build_many`]), into the target
//! directory the tests were built into, and writes a [`Prebuilt`] manifest there. Every `aex`
//! a test runs gets `AEX_PREBUILT` pointing at it ([`crate::cli::aex`]), so `aex deploy`
//! measures, describes and uploads those binaries exactly as it would its own builds, without
//! running cargo again (one cargo run per deploy, all serialized on the target directory's
//! lock, was most of the suite's time).
//!
//! The manifest names lean copies of cargo's outputs, without their debug sections ([`lean`]):
//! a dev build's line tables make a module binary about 8 MB, of which under 2 MB is code and
//! symbols, and every deploy uploads, stores, measures and starts each binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use aex_deploy::build::{Builder, Prebuilt, Profile};

use crate::paths;

/// The module crates of the workspace: the examples' modules, the benchmark's, the test kit's
/// own (`crates/aex-testkit/modules/`) and the governor (`crates/aex-governor`).
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
                "crates/aex-governor",
            ]
            .iter()
            .any(|dir| m.starts_with(dir))
        })
        .map(|m| root.join(m))
        .filter(|dir| is_module_crate(dir))
        .collect()
}

/// The C modules of the examples and of the test kit: directories under `examples/` (three
/// levels deep) and `crates/aex-testkit/modules/` holding a `.c` file with `AEX_MAIN`.
pub fn c_modules() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let root = paths::workspace();
    let mut pending = vec![
        (root.join("examples"), 0),
        (root.join("crates/aex-testkit/modules"), 1),
    ];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut is_module = false;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && depth < 3 {
                pending.push((path, depth + 1));
            } else if path.extension().is_some_and(|x| x == "c") {
                is_module |= std::fs::read_to_string(&path).is_ok_and(|c| c.contains("AEX_MAIN("));
            }
        }
        if is_module {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

/// A binary crate that uses `aex::main!` (the examples also hold library crates).
fn is_module_crate(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("src/main.rs")).is_ok_and(|main| main.contains("aex::main!"))
}

/// The profile modules are built with: `dev`, unless `AEX_TESTKIT_PROFILE=release` (what a
/// benchmark built on the kit sets, so that module code is measured optimized, as users run
/// it; a test run keeps the quicker dev builds).
pub fn profile() -> Profile {
    match std::env::var("AEX_TESTKIT_PROFILE").as_deref() {
        Ok("release") => Profile::Release,
        _ => Profile::Dev,
    }
}

/// The built modules: crate directory → executable. Builds them on first use.
pub fn prebuilt() -> &'static Prebuilt {
    static BUILT: OnceLock<Prebuilt> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dirs = crates();
        // Build into the target directory the tests were built into, whatever cargo would
        // pick from the crates' own location, with the features `cargo test --workspace`
        // resolved, so the modules link the dependencies the tests were built with.
        let mut builder = Builder::new(profile())
            .target_dir(paths::target_dir())
            .whole_workspace_features();
        let mut binaries = builder
            .build_many(&dirs)
            .unwrap_or_else(|e| panic!("building the workspace's module crates failed: {e}"));
        // The C modules, through the deployer's C build (their objects are kept between runs:
        // only what changed is compiled again).
        let c_dirs = c_modules();
        for dir in &c_dirs {
            let built = builder
                .build_c(dir)
                .unwrap_or_else(|e| panic!("building the C module {} failed: {e}", dir.display()));
            binaries.push(built.binary);
        }
        let modules = dirs
            .iter()
            .chain(&c_dirs)
            .map(|d| d.canonicalize().expect("module directory"))
            .zip(binaries.iter().map(|b| lean(b)))
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

/// A copy of the executable `binary` without its debug sections (symbols stay, so a module's
/// panic still names functions), in the test kit's scratch directory; `binary` itself if the
/// copy cannot be made (no `strip` on this machine), which only makes deploys slower.
///
/// Stripping happens here rather than in cargo: a `strip` setting in the build profile would
/// compile every dependency of the modules a second time. Copies are named by the size and
/// modification time of what cargo built, so test binaries running in parallel (nextest)
/// share them, and a rebuilt module gets a new copy.
pub fn lean(binary: &Path) -> PathBuf {
    let try_copy = || -> Result<PathBuf, String> {
        let name = binary.file_name().ok_or("no file name")?;
        let meta = std::fs::metadata(binary).map_err(|e| e.to_string())?;
        let built = meta
            .modified()
            .map_err(|e| e.to_string())?
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        // One directory per built binary: two modules may have the same file name (the Rust
        // and the C `pong`), and the cleanup below must not remove the other's copy.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(binary, &mut hasher);
        let dir = paths::scratch().join("lean").join(format!(
            "{}-{:016x}",
            name.to_string_lossy(),
            std::hash::Hasher::finish(&hasher)
        ));
        let copy = dir.join(format!("{}-{}", meta.len(), built.as_nanos()));
        if copy.is_file() {
            return Ok(copy);
        }
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // Written under a name of this process, then renamed: a reader never sees half a copy.
        let tmp = dir.join(format!("tmp-{}", std::process::id()));
        let status = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&tmp)
            .arg(binary)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `strip`: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("`strip` exited with {status}"));
        }
        std::fs::rename(&tmp, &copy).map_err(|e| e.to_string())?;
        // Copies of earlier builds of this binary are no longer named by any manifest.
        for old in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = old.path();
            let current = path == copy;
            let anothers_tmp = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tmp-"));
            if !current && !anothers_tmp {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(copy)
    };
    try_copy().unwrap_or_else(|why| {
        eprintln!(
            "aex-testkit: deploying {} with its debug sections ({why})",
            binary.display()
        );
        binary.to_path_buf()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lean_copy_runs_is_smaller_and_is_made_once_per_build() {
        let exe = std::env::current_exe().expect("path of the running test binary");
        let copy = lean(&exe);
        assert_ne!(copy, exe, "no lean copy was made");
        let size = |p: &Path| std::fs::metadata(p).expect("metadata").len();
        assert!(
            size(&copy) < size(&exe),
            "{} is not smaller",
            copy.display()
        );
        assert_eq!(lean(&exe), copy, "the same build gets the same copy");
        let listed = Command::new(&copy)
            .args(["--list", "a_lean_copy_runs"])
            .output()
            .expect("run the lean copy");
        let out = String::from_utf8_lossy(&listed.stdout);
        assert!(out.contains("a_lean_copy_runs_is_smaller"), "{out}");
    }
}
