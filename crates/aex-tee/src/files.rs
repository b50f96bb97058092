//! Key files in a node's data directory, and the error of opening a platform.
//!
//! Invariant: a secret file is created with mode 0600 (on Unix) in one `create_new` call, so it
//! is never readable by others, not even briefly; secret bytes read back live in `Zeroizing`
//! buffers.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Opening or creating a backend's platform material failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// Reading or writing a file failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key the platform must already have is not there.
    #[error(
        "no node key `{path}`: this is not the data directory of a node of this TEE kind (a node \
         creates its key when it first starts)"
    )]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// A file exists but does not hold what it should.
    #[error("`{path}` is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> PlatformError {
    let path = path.to_path_buf();
    move |source| PlatformError::Io {
        action,
        path,
        source,
    }
}

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> PlatformError {
    PlatformError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a secret file of exactly `N` bytes, or `None` if it does not exist.
pub(crate) fn read_secret<const N: usize>(
    path: &Path,
) -> Result<Option<Zeroizing<[u8; N]>>, PlatformError> {
    let bytes = match fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    if bytes.len() != N {
        return Err(corrupt(
            path,
            format!("expected {N} bytes, found {}", bytes.len()),
        ));
    }
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&bytes);
    Ok(Some(out))
}

/// Creates `path` (and its directory) with mode 0600 and writes `bytes`; fails if it exists.
pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), PlatformError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err("create the directory of", path))?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err("create", path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err("write", path))
}

/// Replaces `path` with `bytes` so that a crash or power cut leaves either the old or the new
/// contents, and the new ones survive once this returns: written aside, synced, renamed into
/// place, and the directory synced. For state a node must find again after it restarts (the
/// platform counters here, the node agent's journal).
pub fn replace_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let aside = path.with_extension("partial");
    let mut f = fs::File::create(&aside)?;
    f.write_all(bytes).and_then(|()| f.sync_all())?;
    fs::rename(&aside, path)?;
    fs::File::open(dir).and_then(|d| d.sync_all())
}

/// Writes a public file (replacing it), e.g. `platform.pub` or a certificate.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<(), PlatformError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err("create the directory of", path))?;
    }
    fs::write(path, bytes).map_err(io_err("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/k.key");
        assert!(read_secret::<4>(&p).unwrap().is_none());
        write_secret(&p, b"abcd").unwrap();
        assert_eq!(*read_secret::<4>(&p).unwrap().unwrap(), *b"abcd");
        assert!(matches!(
            write_secret(&p, b"abcd"),
            Err(PlatformError::Io { .. })
        ));
        let err = read_secret::<5>(&p).unwrap_err();
        assert!(
            err.to_string().contains("expected 5 bytes, found 4"),
            "{err}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
