//! Building module crates and measuring what was built.
//!
//! The deployer never trusts a node to say what code it runs: it builds each module itself
//! with cargo, measures the exact executable bytes it will upload, and asks the binary for its
//! declared interface (`--aex-describe`) to check the descriptor against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aex_crypto::Measurement;
use aex_proto::Interface;

/// A module binary ready to upload.
#[derive(Debug, Clone)]
pub struct Built {
    /// Path of the executable.
    pub binary: PathBuf,
    /// Its bytes, exactly as uploaded.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// The module's identity as its TEE reports it: SHA-256 of `bytes`, covering `devices`
    /// if it drives any (`Measurement::with_devices`).
    pub measurement: Measurement,
    /// The interface the binary declares.
    pub interface: Interface,
    /// The devices the descriptor binds to this module (sorted; empty for most modules).
    pub devices: Vec<String>,
}

impl Built {
    /// This build as the driver of `devices`: the node's TEE layer grants them at load, and
    /// the measurement the deployer expects covers them.
    pub fn bound_to(mut self, devices: &[String]) -> Self {
        self.measurement = Measurement::of(&self.bytes).with_devices(devices);
        self.devices = devices.to_vec();
        self
    }
}

/// Building or inspecting a module failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// cargo could not be started.
    #[error("cannot run `{cargo}`: {source}")]
    Cargo {
        /// The cargo command.
        cargo: String,
        /// OS error.
        source: std::io::Error,
    },
    /// cargo reported a build failure.
    #[error("cargo build of `{crate_dir}` failed:\n{output}")]
    Failed {
        /// Crate directory.
        crate_dir: PathBuf,
        /// The tail of cargo's diagnostics.
        output: String,
    },
    /// The build produced no executable.
    #[error("building `{crate_dir}` produced no executable (a module crate is a binary crate with `aex::main!`)")]
    NoExecutable {
        /// Crate directory.
        crate_dir: PathBuf,
    },
    /// Reading the executable failed.
    #[error("cannot read module binary `{path}`: {source}")]
    Read {
        /// The binary.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The binary did not describe its interface.
    #[error(
        "`{path} --aex-describe` failed: {detail} (is this an aex module built with `aex::main!`?)"
    )]
    Describe {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// Cargo build profile for modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// `--release` (default: measured binaries are what production runs).
    #[default]
    Release,
    /// The dev profile (faster builds for tests).
    Dev,
}

impl Profile {
    /// The profile from `AEX_BUILD_PROFILE` (`dev` or `release`), default release.
    pub fn from_env() -> Self {
        match std::env::var("AEX_BUILD_PROFILE").as_deref() {
            Ok("dev") | Ok("debug") => Profile::Dev,
            _ => Profile::Release,
        }
    }
}

/// Builds crates once each, however many modules use them.
#[derive(Default)]
pub struct Builder {
    profile: Profile,
    cache: HashMap<PathBuf, Built>,
}

impl Builder {
    /// A builder for `profile`.
    pub fn new(profile: Profile) -> Self {
        Builder {
            profile,
            cache: HashMap::new(),
        }
    }

    /// Builds (or reuses) the module crate in `crate_dir`.
    pub fn build(&mut self, crate_dir: &Path) -> Result<Built, BuildError> {
        if let Some(b) = self.cache.get(crate_dir) {
            return Ok(b.clone());
        }
        let binary = cargo_build(crate_dir, self.profile)?;
        let built = inspect(&binary)?;
        self.cache.insert(crate_dir.to_path_buf(), built.clone());
        Ok(built)
    }
}

/// Measures and describes an already built module binary.
pub fn inspect(binary: &Path) -> Result<Built, BuildError> {
    let bytes = std::fs::read(binary).map_err(|source| BuildError::Read {
        path: binary.to_path_buf(),
        source,
    })?;
    let measurement = Measurement::of(&bytes);
    let interface = describe(binary)?;
    Ok(Built {
        binary: binary.to_path_buf(),
        bytes: std::sync::Arc::new(bytes),
        measurement,
        interface,
        devices: Vec::new(),
    })
}

fn describe(binary: &Path) -> Result<Interface, BuildError> {
    let err = |detail: String| BuildError::Describe {
        path: binary.to_path_buf(),
        detail,
    };
    let out = Command::new(binary)
        .arg("--aex-describe")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(format!("exit {}", out.status)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| err(format!("bad interface JSON: {e}")))
}

fn cargo_build(crate_dir: &Path, profile: Profile) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = crate_dir.join("Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let out = cmd.output().map_err(|source| BuildError::Cargo {
        cargo: cargo.clone(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        return Err(BuildError::Failed {
            crate_dir: crate_dir.to_path_buf(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let mut exe = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(path) = msg["executable"].as_str() else {
            continue;
        };
        let same_crate = msg["manifest_path"]
            .as_str()
            .map(|m| Path::new(m) == manifest)
            .unwrap_or(false);
        if same_crate {
            exe = Some(PathBuf::from(path));
        }
    }
    exe.ok_or_else(|| BuildError::NoExecutable {
        crate_dir: crate_dir.to_path_buf(),
    })
}
