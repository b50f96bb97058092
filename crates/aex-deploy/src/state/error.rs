//! The error of reading or writing the deployer's state.

use std::path::PathBuf;
use std::time::Duration;

use super::lock::LockHolder;

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// I/O on the state file.
    #[error("cannot {action} deployer state `{path}`: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[error(
        "cannot {action} deployer state `{path}`: {source} (check the disk and the file's \
         permissions; a file another program holds open must be closed first)"
    )]
    Store {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Database error (boxed: it is large, and errors travel by value).
        source: Box<redb::Error>,
    },
    /// The file is not valid state.
    #[error(
        "deployer state `{path}` is corrupt: {reason} (restore it from a backup; or move it \
         away and run `aex reset`, then `aex deploy`, to replace every module with fresh keys)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser detail (never a secret).
        reason: String,
    },
    /// Another process held the application's state for longer than the caller would wait.
    #[error(
        "the application's state `{}` is in use by {}; gave up waiting after {}",
        path.display(),
        holder.as_ref().map_or_else(|| "another process (it has not said which)".to_owned(), ToString::to_string),
        crate::duration::show_duration(*waited)
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as its note says.
        holder: Option<LockHolder>,
        /// How long this process waited.
        waited: Duration,
    },
}
