//! Building module crates and measuring what was built.
//!
//! The deployer never trusts a node to say what code it runs: it builds each module itself
//! with cargo, measures the exact executable bytes it will upload, and asks the binary for its
//! declared interface (`--aex-describe`) to check the descriptor against it.
//!
//! Binaries built elsewhere (a CI job, a test kit that builds every module once per run) can
//! be named in a [`Prebuilt`] manifest (`AEX_PREBUILT`). The deployer then skips cargo for
//! those crates, but measures and describes the binaries exactly as it does its own builds:
//! whatever it uploads is what it measured.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aex_crypto::Measurement;
use aex_proto::Interface;

use cargo::{cargo_build, toolchain, workspace_root};

mod c;
mod cargo;

pub use c::{AEX_C_DIR_ENV, SANITIZE_ENV};

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
    /// The compiler that built it (`rustc -V`, as cargo would run it in the crate's
    /// directory), recorded in the audit ledger so that a member can rebuild the same bytes;
    /// `None` for a binary built elsewhere (`AEX_PREBUILT`).
    pub toolchain: Option<String>,
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
    /// cargo was stopped by a signal (Ctrl-C, say) before it finished: nothing is wrong with
    /// the crate.
    #[error("the build of `{crate_dir}` was interrupted ({how})")]
    Interrupted {
        /// Crate directory.
        crate_dir: PathBuf,
        /// What stopped it, e.g. `cargo ended by signal 2 (SIGINT)`.
        how: String,
    },
    /// A crate directory could not be resolved to the directory it names.
    #[error("cannot resolve crate directory `{crate_dir}`: {source}")]
    CrateDir {
        /// Crate directory, as the descriptor gives it.
        crate_dir: PathBuf,
        /// OS error.
        source: std::io::Error,
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
    /// The prebuilt manifest could not be read.
    #[error("cannot use the prebuilt module manifest `{path}` (from ${PREBUILT_ENV}): {detail}")]
    Prebuilt {
        /// The manifest.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The C compiler could not be started.
    #[error("cannot run the C compiler `{cc}` (set CC to the one to use): {source}")]
    Compiler {
        /// The compiler command.
        cc: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Compiling or linking a C module failed.
    #[error("the C module in `{dir}` does not build:\n{output}")]
    CompileFailed {
        /// The module's directory, as the descriptor reaches it.
        dir: PathBuf,
        /// The compiler's diagnostics, file names as the descriptor reaches them.
        output: String,
    },
    /// The runtime's C ABI library (`libaex_c.a`, from the aex-c crate) could not be built.
    #[error(
        "cannot build the runtime's C ABI (the aex-c crate) at `{dir}`: {detail} (set ${env} to \
         the crates/aex-c directory of an aex checkout)",
        env = AEX_C_DIR_ENV
    )]
    CAbi {
        /// Where the deployer looked for the aex-c crate.
        dir: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A C module's directory holds no `.c` file.
    #[error("the C module directory `{dir}` holds no `.c` file")]
    NoSources {
        /// The directory.
        dir: PathBuf,
    },
    /// Writing a build product failed.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The binary did not describe its interface.
    #[error(
        "`{path} --aex-describe` failed: {detail} (is this an aex module built with `aex::main!` or `AEX_MAIN`?)"
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

/// The environment variable naming a [`Prebuilt`] manifest.
pub const PREBUILT_ENV: &str = "AEX_PREBUILT";

/// Module binaries built before the deployer runs: crate directory → executable.
///
/// The manifest is JSON, `{"modules": {"/abs/crate/dir": "/abs/path/to/binary"}}`. A crate it
/// does not name is built with cargo as usual. Prebuilt binaries are measured and described
/// like the deployer's own builds, so a manifest changes where the bytes come from, never what
/// is checked: the deployer machine is trusted, and so is the manifest it is told to use.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prebuilt {
    /// Canonical crate directory → executable.
    pub modules: BTreeMap<PathBuf, PathBuf>,
}

impl Prebuilt {
    /// The manifest named by `AEX_PREBUILT`, if it is set.
    pub fn from_env() -> Result<Option<Prebuilt>, BuildError> {
        match std::env::var_os(PREBUILT_ENV) {
            Some(path) if !path.is_empty() => Prebuilt::read(Path::new(&path)).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a manifest.
    pub fn read(path: &Path) -> Result<Prebuilt, BuildError> {
        let err = |detail: String| BuildError::Prebuilt {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_slice(&text).map_err(|e| err(e.to_string()))
    }

    /// Writes the manifest to `path` atomically (a reader never sees half of it).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// The prebuilt executable of the crate in `crate_dir`, if the manifest names it.
    pub fn binary(&self, crate_dir: &Path) -> Option<&Path> {
        let dir = crate_dir.canonicalize().ok()?;
        self.modules.get(&dir).map(PathBuf::as_path)
    }
}

/// Builds crates once each, however many modules use them.
#[derive(Default)]
pub struct Builder {
    profile: Profile,
    prebuilt: Prebuilt,
    target_dir: Option<PathBuf>,
    whole_workspace: bool,
    cache: HashMap<PathBuf, Built>,
    /// What C modules are built with, made at the first C module.
    c_kit: Option<c::Kit>,
}

impl Builder {
    /// A builder for `profile`.
    pub fn new(profile: Profile) -> Self {
        Builder {
            profile,
            prebuilt: Prebuilt::default(),
            target_dir: None,
            whole_workspace: false,
            cache: HashMap::new(),
            c_kit: None,
        }
    }

    /// Builds into `dir` (`cargo build --target-dir`) instead of the crates' own target
    /// directory.
    pub fn target_dir(mut self, dir: PathBuf) -> Self {
        self.target_dir = Some(dir);
        self
    }

    /// Resolves the features of the crates' dependencies as for their whole Cargo workspace
    /// (`cargo build --workspace --bin NAME…`) rather than for the module crates alone.
    ///
    /// Cargo compiles a dependency once per feature set. Built alone, module crates ask their
    /// dependencies for fewer features than the rest of a workspace does, so after a
    /// `cargo test --workspace` every dependency of every module would be compiled a second
    /// time; resolved as the workspace is, the binaries link the builds the tests already
    /// made. The bytes, hence the measurement, may differ from a crate built alone.
    pub fn whole_workspace_features(mut self) -> Self {
        self.whole_workspace = true;
        self
    }

    /// Takes the binaries `prebuilt` names instead of building those crates (tests, and
    /// deployers that build elsewhere).
    pub fn prebuilt(mut self, prebuilt: Prebuilt) -> Self {
        self.prebuilt = prebuilt;
        self
    }

    /// A builder as the environment says: the profile from `AEX_BUILD_PROFILE`, and the
    /// binaries of the `AEX_PREBUILT` manifest, if set.
    pub fn from_env() -> Result<Self, BuildError> {
        let mut builder = Builder::new(Profile::from_env());
        builder.prebuilt = Prebuilt::from_env()?.unwrap_or_default();
        Ok(builder)
    }

    /// Builds (or reuses) the module crate in `crate_dir`.
    pub fn build(&mut self, crate_dir: &Path) -> Result<Built, BuildError> {
        if let Some(b) = self.cache.get(crate_dir) {
            return Ok(b.clone());
        }
        let (binary, toolchain) = match self.prebuilt.binary(crate_dir) {
            Some(binary) => (binary.to_path_buf(), None),
            None => (
                self.cargo_build(&[crate_dir])?.remove(0),
                toolchain(crate_dir),
            ),
        };
        let built = Built {
            toolchain,
            ..inspect(&binary)?
        };
        self.cache.insert(crate_dir.to_path_buf(), built.clone());
        Ok(built)
    }

    /// Builds (or reuses) the C module in `dir`: its `.c` files compiled with the system's C
    /// compiler and linked with the runtime's C ABI (`libaex_c.a`, built by cargo first).
    /// Recompiles only the files whose inputs changed (`c.rs`).
    pub fn build_c(&mut self, dir: &Path) -> Result<Built, BuildError> {
        if let Some(b) = self.cache.get(dir) {
            return Ok(b.clone());
        }
        let (binary, toolchain) = match self.prebuilt.binary(dir) {
            Some(binary) => (binary.to_path_buf(), None),
            None => {
                if self.c_kit.is_none() {
                    self.c_kit = Some(c::Kit::prepare(
                        self.profile,
                        self.target_dir.as_deref(),
                        self.whole_workspace,
                    )?);
                }
                let kit = self.c_kit.as_ref().ok_or(BuildError::NoSources {
                    dir: dir.to_path_buf(),
                })?;
                (kit.build(dir)?, Some(kit.toolchain.clone()))
            }
        };
        let built = Built {
            toolchain,
            ..inspect(&binary)?
        };
        self.cache.insert(dir.to_path_buf(), built.clone());
        Ok(built)
    }

    /// Builds every crate in `crate_dirs` with one cargo run per Cargo workspace they belong
    /// to, and returns the executables in the same order.
    ///
    /// One run is much faster than one per crate, but cargo unifies the features of the
    /// crates' dependencies across the run, so a binary built this way may differ (in bytes,
    /// hence in measurement) from the same crate built alone, as `aex deploy` does. Use it
    /// to build binaries that are then deployed through a [`Prebuilt`] manifest.
    pub fn build_many(&mut self, crate_dirs: &[PathBuf]) -> Result<Vec<PathBuf>, BuildError> {
        let mut by_workspace: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
        for (i, dir) in crate_dirs.iter().enumerate() {
            by_workspace
                .entry(workspace_root(dir)?)
                .or_default()
                .push(i);
        }
        let mut out = vec![PathBuf::new(); crate_dirs.len()];
        for members in by_workspace.values() {
            let dirs: Vec<&Path> = members.iter().map(|&i| crate_dirs[i].as_path()).collect();
            for (&i, binary) in members.iter().zip(self.cargo_build(&dirs)?) {
                out[i] = binary;
            }
        }
        Ok(out)
    }

    fn cargo_build(&self, crate_dirs: &[&Path]) -> Result<Vec<PathBuf>, BuildError> {
        cargo_build(
            crate_dirs,
            self.profile,
            self.target_dir.as_deref(),
            self.whole_workspace,
        )
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
        toolchain: None,
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
        // The module's own words first: a C module's runtime says what is wrong with its
        // port table there.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect();
        return Err(err(if said.is_empty() {
            format!("{}", out.status)
        } else {
            format!("{}: {}", out.status, said.join("; "))
        }));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| err(format!("bad interface JSON: {e}")))
}

#[cfg(test)]
mod tests;
