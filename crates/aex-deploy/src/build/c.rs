//! Building C modules: every `.c` file of the module's directory compiled with the system's C
//! compiler (`$CC`, else `cc`) against `aex.h`, and linked with `libaex_c.a`, the runtime's C
//! ABI that cargo builds from the aex-c crate (the same trusted runtime a Rust module links).
//!
//! * **Reproducible.** The compiler runs in the module's directory on relative file names,
//!   with `-ffile-prefix-map` mapping that directory (and aex.h's) to fixed names, no debug
//!   information, `-Werror=date-time` (no `__DATE__` or `__TIME__`), and `-frandom-seed` per
//!   file, so the same sources give the same bytes wherever they are checked out.
//! * **Only what changed.** Each object keeps a stamp: the SHA-256 of the compiler's
//!   identity, the flags, the `.c` file, every header of the directory and `aex.h`. An object
//!   whose stamp matches is not compiled again; the binary is linked again only when an
//!   object or the library changed.
//! * **Errors where they are.** The compiler's diagnostics name files relative to the module's
//!   directory; they are shown with that directory in front, as the descriptor names it
//!   (`examples/ping-pong-c/pong/pong.c:12:5: error: ...`).
//! * **Typed ports.** `-Werror=incompatible-pointer-types`: a port function of the wrong
//!   shape in the module's table does not compile.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aex_crypto::sha256;

use super::cargo::{cargo, cargo_command};
use super::{BuildError, Profile};

/// The environment variable naming the aex-c crate directory, for a deployer installed
/// without its sources (by default the crate beside the deployer's own sources).
pub const AEX_C_DIR_ENV: &str = "AEX_C_DIR";

/// The environment variable adding sanitizers to C builds (`address,undefined`): the long
/// test step builds and runs the C examples so.
pub const SANITIZE_ENV: &str = "AEX_C_SANITIZE";

/// What a C module is compiled and linked with.
#[derive(Debug, Clone)]
pub(super) struct Kit {
    /// The directory holding `aex.h`.
    include: PathBuf,
    /// `libaex_c.a`.
    library: PathBuf,
    /// Where object files and binaries go (one directory per module).
    out: PathBuf,
    /// The C compiler and its leading arguments (`$CC` may be `ccache gcc`).
    cc: Vec<String>,
    /// `cc --version`'s first line and `rustc -V`'s, for the audit ledger.
    pub(super) toolchain: String,
    /// Flags every compilation gets (besides the per-file ones).
    flags: Vec<String>,
    /// Flags the link gets before the objects (sanitizers).
    link_flags: Vec<String>,
}

/// The aex-c crate's directory: `$AEX_C_DIR`, else the crate beside this one's sources.
fn aex_c_dir() -> PathBuf {
    match std::env::var_os(AEX_C_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../aex-c"),
    }
}

/// The libraries Rust's std needs from the system when linked into a C program (what
/// `rustc --print native-static-libs` lists for `*-linux-gnu`).
const NATIVE_LIBS: [&str; 6] = ["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"];

/// How the binary is linked, as rustc links a Rust module: unused sections dropped (the
/// library holds all of std and the runtime; a module needs part of it), and no debug
/// information (cargo's release default; it would also name the library's build paths).
/// The C pong is then 1.26 MB, as the Rust one (9.1 MB without).
const LINK_FLAGS: [&str; 2] = ["-Wl,--gc-sections", "-Wl,--strip-debug"];

impl Kit {
    /// Builds `libaex_c.a` with cargo (`profile`, into `target_dir` if given) and finds the C
    /// compiler.
    ///
    /// With `whole_workspace`, the library is built with every library of its Cargo workspace
    /// (`--workspace --lib`), so that its dependencies have the workspace's features and are
    /// the builds the workspace's tests already made ([`super::Builder::whole_workspace_features`]).
    pub(super) fn prepare(
        profile: Profile,
        target_dir: Option<&Path>,
        whole_workspace: bool,
    ) -> Result<Kit, BuildError> {
        Self::prepare_from(aex_c_dir(), profile, target_dir, whole_workspace)
    }

    /// [`Kit::prepare`] with the aex-c crate in `dir`.
    pub(super) fn prepare_from(
        dir: PathBuf,
        profile: Profile,
        target_dir: Option<&Path>,
        whole_workspace: bool,
    ) -> Result<Kit, BuildError> {
        let dir = dir.canonicalize().map_err(|e| BuildError::CAbi {
            dir: dir.clone(),
            detail: e.to_string(),
        })?;
        let manifest = dir.join("Cargo.toml");
        let cargo = cargo();
        let mut cmd = cargo_command(&cargo);
        cmd.args(["build", "--message-format=json-render-diagnostics", "--lib"])
            .arg("--manifest-path")
            .arg(&manifest)
            .stdin(Stdio::null());
        if whole_workspace {
            cmd.arg("--workspace");
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
            return Err(BuildError::CAbi {
                dir,
                detail: format!(
                    "cargo failed:\n{}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let library = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["reason"] == "compiler-artifact")
            .flat_map(|msg| {
                msg["filenames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(PathBuf::from))
                    .collect::<Vec<_>>()
            })
            .find(|f| f.file_name().is_some_and(|n| n == "libaex_c.a"))
            .ok_or_else(|| BuildError::CAbi {
                dir: dir.clone(),
                detail: "cargo built no libaex_c.a".into(),
            })?;
        // Objects beside the library's profile directory: `target/<profile>/c-modules/`.
        let out = library.parent().unwrap_or(Path::new(".")).join("c-modules");

        let cc: Vec<String> = std::env::var("CC")
            .ok()
            .filter(|cc| !cc.trim().is_empty())
            .unwrap_or_else(|| "cc".into())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let version = Command::new(&cc[0])
            .args(&cc[1..])
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BuildError::Compiler {
                cc: cc.join(" "),
                source,
            })?;
        let cc_line = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let rustc = super::cargo::toolchain(&dir).unwrap_or_default();

        let include = dir.join("include");
        let mut flags: Vec<String> = [
            "-std=c11",
            "-O2",
            "-Wall",
            "-Werror=incompatible-pointer-types",
            "-Werror=implicit-function-declaration",
            "-Werror=int-conversion",
            "-Wdate-time",
            "-Werror=date-time",
            "-g0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        flags.push(format!("-ffile-prefix-map={}=aex-c", dir.display()));
        let mut link_flags = Vec::new();
        if let Ok(sanitize) = std::env::var(SANITIZE_ENV) {
            if !sanitize.trim().is_empty() {
                let flag = format!("-fsanitize={}", sanitize.trim());
                // A finding ends the process (a module that dies is seen), rather than a line
                // in a log that nobody reads.
                flags.extend([
                    flag.clone(),
                    "-fno-sanitize-recover=all".into(),
                    "-fno-omit-frame-pointer".into(),
                ]);
                link_flags.push(flag);
            }
        }
        Ok(Kit {
            include,
            library,
            out,
            cc,
            toolchain: format!("{cc_line}; {rustc}"),
            flags,
            link_flags,
        })
    }

    /// Compiles (what changed of) the C module in `dir` and links it; returns the binary.
    pub(super) fn build(&self, dir: &Path) -> Result<PathBuf, BuildError> {
        let real = dir.canonicalize().map_err(|source| BuildError::CrateDir {
            crate_dir: dir.to_path_buf(),
            source,
        })?;
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module".into());
        let sources = files_with(&real, "c", dir)?;
        if sources.is_empty() {
            return Err(BuildError::NoSources {
                dir: dir.to_path_buf(),
            });
        }
        // One output directory per module directory (two modules may share a name) and link
        // flags (a sanitized build does not overwrite the plain one, which may run meanwhile).
        let key = sha256(&[
            real.as_os_str().as_encoded_bytes(),
            self.link_flags.join(" ").as_bytes(),
        ]);
        let out = self.out.join(format!("{name}-{}", &hex(&key)[..16]));
        std::fs::create_dir_all(&out).map_err(|source| BuildError::Write {
            path: out.clone(),
            source,
        })?;

        let mut flags = self.flags.clone();
        flags.push(format!("-ffile-prefix-map={}=.", real.display()));
        flags.push("-I".into());
        flags.push(self.include.display().to_string());
        if real.join("Makefile").is_file() {
            return self.make(dir, &real, &out.join(&name), &flags);
        }
        // Headers: the directory's own and aex.h, all part of every object's stamp.
        let mut headers = Vec::new();
        for h in files_with(&real, "h", dir)? {
            headers.push(read(&real.join(&h))?);
        }
        headers.push(read(&self.include.join("aex.h"))?);

        let mut objects = Vec::new();
        let mut link_key: Vec<Vec<u8>> = vec![
            self.toolchain.clone().into_bytes(),
            LINK_FLAGS.join(" ").into_bytes(),
            self.link_flags.join(" ").into_bytes(),
            // The library is part of the binary: a new runtime relinks every module.
            sha256(&[&read(&self.library)?]).to_vec(),
        ];
        for source in &sources {
            let object = out.join(format!("{source}.o"));
            let stamp_path = out.join(format!("{source}.o.stamp"));
            let mut parts: Vec<&[u8]> = vec![self.toolchain.as_bytes()];
            let joined = flags.join("\u{0}");
            parts.push(joined.as_bytes());
            let code = read(&real.join(source))?;
            parts.push(&code);
            parts.extend(headers.iter().map(Vec::as_slice));
            let stamp = hex(&sha256(&parts));
            let fresh =
                object.is_file() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
            if !fresh {
                let _ = std::fs::remove_file(&stamp_path);
                let tmp = temporary(&object);
                self.run(dir, &real, |cmd| {
                    cmd.args(&flags)
                        .arg(format!("-frandom-seed={source}"))
                        .arg("-c")
                        .arg(source)
                        .arg("-o")
                        .arg(&tmp);
                })?;
                rename(&tmp, &object)?;
                write(&stamp_path, stamp.as_bytes())?;
            }
            link_key.push(stamp.into_bytes());
            objects.push(object);
        }

        let binary = out.join(&name);
        let stamp_path = out.join(format!("{name}.stamp"));
        let parts: Vec<&[u8]> = link_key.iter().map(Vec::as_slice).collect();
        let stamp = hex(&sha256(&parts));
        let fresh =
            binary.is_file() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
        if !fresh {
            let _ = std::fs::remove_file(&stamp_path);
            let tmp = temporary(&binary);
            self.run(dir, &real, |cmd| {
                cmd.args(LINK_FLAGS)
                    .args(&self.link_flags)
                    .arg("-o")
                    .arg(&tmp)
                    .args(&objects)
                    .arg(&self.library)
                    .args(NATIVE_LIBS);
            })?;
            rename(&tmp, &binary)?;
            write(&stamp_path, stamp.as_bytes())?;
        }
        Ok(binary)
    }

    /// Builds a module whose directory has a `Makefile`: `make` runs there, given what to
    /// build with as variables, and decides itself what is out of date.
    ///
    /// `CC`, `AEX_CFLAGS` (the flags above: `aex.h`'s directory, the reproducible ones),
    /// `AEX_LDFLAGS`, `AEX_LIB` (`libaex_c.a`, for a dependency), `AEX_LDLIBS` (the library and
    /// what it needs), `AEX_OBJDIR` (where objects go, outside the sources) and `AEX_OUT` (the
    /// binary to make). docs/DESCRIPTOR.md has a Makefile that uses them.
    fn make(
        &self,
        shown: &Path,
        real: &Path,
        binary: &Path,
        flags: &[String],
    ) -> Result<PathBuf, BuildError> {
        let make: Vec<String> = std::env::var("MAKE")
            .ok()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "make".into())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let objdir = binary.with_extension("objects");
        std::fs::create_dir_all(&objdir).map_err(|source| BuildError::Write {
            path: objdir.clone(),
            source,
        })?;
        let ldflags: Vec<String> = LINK_FLAGS
            .iter()
            .map(|f| f.to_string())
            .chain(self.link_flags.iter().cloned())
            .collect();
        let ldlibs = format!("{} {}", self.library.display(), NATIVE_LIBS.join(" "));
        self.run_program(&make, shown, real, |cmd| {
            cmd.arg("--no-print-directory")
                .arg(format!("CC={}", self.cc.join(" ")))
                .arg(format!("AEX_CFLAGS={}", flags.join(" ")))
                .arg(format!("AEX_LDFLAGS={}", ldflags.join(" ")))
                .arg(format!("AEX_LIB={}", self.library.display()))
                .arg(format!("AEX_LDLIBS={ldlibs}"))
                .arg(format!("AEX_OBJDIR={}", objdir.display()))
                .arg(format!("AEX_OUT={}", binary.display()));
        })?;
        if !binary.is_file() {
            return Err(BuildError::CompileFailed {
                dir: shown.to_path_buf(),
                output: format!(
                    "`make` succeeded but made no {} (the Makefile must build $(AEX_OUT))",
                    binary.display()
                ),
            });
        }
        Ok(binary.to_path_buf())
    }

    /// Runs the compiler in `real` (the module's directory), set up by `args`; a failure
    /// shows its diagnostics with the file names as the descriptor reaches them (`shown`).
    fn run(
        &self,
        shown: &Path,
        real: &Path,
        args: impl FnOnce(&mut Command),
    ) -> Result<(), BuildError> {
        self.run_program(&self.cc, shown, real, args)
    }

    /// [`Kit::run`] with `program` (the compiler, or `make`) and its leading arguments.
    fn run_program(
        &self,
        program: &[String],
        shown: &Path,
        real: &Path,
        args: impl FnOnce(&mut Command),
    ) -> Result<(), BuildError> {
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..])
            .current_dir(real)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        args(&mut cmd);
        let out = cmd.output().map_err(|source| BuildError::Compiler {
            cc: program.join(" "),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Err(BuildError::CompileFailed {
            dir: shown.to_path_buf(),
            output: located(&text, shown, real),
        })
    }
}

/// The compiler's diagnostics with every file of the module's directory named as the
/// descriptor reaches it: `pong.c:3:5: error` becomes `<shown>/pong.c:3:5: error`.
fn located(text: &str, shown: &Path, real: &Path) -> String {
    let sources: Vec<String> = ["c", "h"]
        .iter()
        .flat_map(|ext| files_with(real, ext, shown).unwrap_or_default())
        .collect();
    text.lines()
        .map(|line| {
            // GCC and Clang start a located line with the file name as given (relative),
            // or after "In file included from ".
            for prefix in ["", "In file included from ", "                 from "] {
                if let Some(rest) = line.strip_prefix(prefix) {
                    if let Some(file) = sources.iter().find(|f| rest.starts_with(&format!("{f}:")))
                    {
                        return format!(
                            "{prefix}{}{}",
                            shown.join(file).display(),
                            &rest[file.len()..]
                        );
                    }
                }
            }
            line.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names of the files of `dir` ending in `.ext`, sorted.
fn files_with(dir: &Path, ext: &str, shown: &Path) -> Result<Vec<String>, BuildError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BuildError::CrateDir {
        crate_dir: shown.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| Path::new(n).extension().is_some_and(|x| x == ext))
        .collect();
    names.sort();
    Ok(names)
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A name beside `path` for this build only: outputs are written there and renamed into
/// place, so that two builds of one module at once (two deployers, test binaries run in
/// parallel) never see, or link, half a file.
fn temporary(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp{}-{n}", std::process::id()))
}

fn rename(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::rename(from, to).map_err(|source| BuildError::Write {
        path: to.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file (see [`temporary`]).
fn write(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let tmp = temporary(path);
    std::fs::write(&tmp, bytes).map_err(|source| BuildError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    rename(&tmp, path)
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
