//! Running cargo for module crates, and reading what it needs from their manifests: the
//! package and binary names, the workspace a crate belongs to, the compiler it uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BuildError, Profile};

/// The `rustc -V` line of the compiler cargo runs for the crate in `crate_dir` (`$RUSTC`, or
/// `rustc` there, so that a `rust-toolchain.toml` beside the crate counts); `None` if it does
/// not answer.
pub(super) fn toolchain(crate_dir: &Path) -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-V")
        .current_dir(crate_dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

/// The manifest of the Cargo workspace `crate_dir` belongs to.
pub(super) fn workspace_root(crate_dir: &Path) -> Result<PathBuf, BuildError> {
    let cargo = cargo();
    let out = cargo_command(&cargo)
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BuildError::Cargo {
            cargo: cargo.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            crate_dir: crate_dir.to_path_buf(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

pub(super) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A `cargo` command without the variables cargo sets for the package of a program it runs
/// (`cargo run`, `cargo test`): build scripts track some of them (ring's reruns when
/// `CARGO_MANIFEST_DIR` changes), so a deployer run by cargo would otherwise rebuild what the
/// outer cargo had built, and the outer cargo rebuild it again after.
pub(super) fn cargo_command(cargo: &str) -> Command {
    let mut cmd = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&name_text.as_ref())
        {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// Runs one `cargo build` for `crate_dirs` (all in one workspace) and returns each crate's
/// executable, in order.
pub(super) fn cargo_build(
    crate_dirs: &[&Path],
    profile: Profile,
    target_dir: Option<&Path>,
    whole_workspace: bool,
) -> Result<Vec<PathBuf>, BuildError> {
    let cargo = cargo();
    // Cargo is given each crate where it really is: through a symbolic link, it would look for
    // the crate's workspace around the link, not around the crate, and name the crate by the
    // link's path in what it reports.
    let manifests: Vec<PathBuf> = crate_dirs
        .iter()
        .map(|d| {
            d.canonicalize()
                .map(|real| real.join("Cargo.toml"))
                .map_err(|source| BuildError::CrateDir {
                    crate_dir: d.to_path_buf(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let mut cmd = cargo_command(&cargo);
    cmd.arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifests[0])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if whole_workspace {
        // Every member selected (so features unify as for the workspace), only the modules'
        // executables built.
        cmd.arg("--workspace");
        for manifest in &manifests {
            for bin in bin_names(manifest)? {
                cmd.arg("--bin").arg(bin);
            }
        }
    } else if manifests.len() > 1 {
        for manifest in &manifests {
            cmd.arg("--package").arg(package_name(manifest)?);
        }
    }
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    if let Some(dir) = target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    let out = cmd.output().map_err(|source| BuildError::Cargo {
        cargo: cargo.clone(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(how) = interruption(&out.status, &stderr) {
            return Err(BuildError::Interrupted {
                crate_dir: crate_dirs[0].to_path_buf(),
                how,
            });
        }
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        return Err(BuildError::Failed {
            crate_dir: crate_dirs[0].to_path_buf(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let mut exes: HashMap<PathBuf, PathBuf> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(path), Some(manifest)) =
            (msg["executable"].as_str(), msg["manifest_path"].as_str())
        {
            let manifest = PathBuf::from(manifest);
            let manifest = manifest.canonicalize().unwrap_or(manifest);
            exes.insert(manifest, PathBuf::from(path));
        }
    }
    crate_dirs
        .iter()
        .zip(manifests)
        .map(|(dir, manifest)| {
            exes.remove(&manifest)
                .ok_or_else(|| BuildError::NoExecutable {
                    crate_dir: dir.to_path_buf(),
                })
        })
        .collect()
}

/// What stopped cargo, if a signal did rather than a build error: cargo itself ended by one,
/// or a compiler it ran (cargo then reports the compiler's signal and fails). Ctrl-C sends
/// SIGINT to cargo and its compilers at once, so either may be seen first.
fn interruption(status: &std::process::ExitStatus, stderr: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Some(format!(
                "cargo ended by signal {signal}{}",
                signal_name(signal)
            ));
        }
    }
    ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"]
        .iter()
        .find(|name| stderr.contains(&format!(", {name}")))
        .map(|name| format!("a compiler cargo ran ended by {name}"))
}

/// ` (SIGINT)` for the signals that stop a build from outside, else nothing.
#[cfg(unix)]
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        9 => " (SIGKILL)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// The `[package] name` of a crate manifest.
fn package_name(manifest: &Path) -> Result<String, BuildError> {
    let doc = read_manifest(manifest)?;
    name_of(&doc, manifest)
}

/// The executables a crate manifest declares: its `[[bin]]` names, or the package's name.
fn bin_names(manifest: &Path) -> Result<Vec<String>, BuildError> {
    let doc = read_manifest(manifest)?;
    let declared: Vec<String> = doc
        .get("bin")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .filter_map(|bin| bin.get("name")?.as_str().map(str::to_string))
        .collect();
    if declared.is_empty() {
        Ok(vec![name_of(&doc, manifest)?])
    } else {
        Ok(declared)
    }
}

fn manifest_error(manifest: &Path, output: String) -> BuildError {
    BuildError::Failed {
        crate_dir: manifest.parent().unwrap_or(manifest).to_path_buf(),
        output,
    }
}

fn read_manifest(manifest: &Path) -> Result<toml::Table, BuildError> {
    let err = |output| manifest_error(manifest, output);
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| err(format!("cannot read {}: {e}", manifest.display())))?;
    toml::from_str(&text).map_err(|e| err(format!("{} is not TOML: {e}", manifest.display())))
}

fn name_of(doc: &toml::Table, manifest: &Path) -> Result<String, BuildError> {
    let err = |output| manifest_error(manifest, output);
    doc.get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| err(format!("{} has no [package] name", manifest.display())))
}
