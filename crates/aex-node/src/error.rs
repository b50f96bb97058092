//! Why a node agent could not start or keep running.
//!
//! These are operator-facing failures of the node itself (data directory, listener, platform
//! key, runtime) and of its configuration files ([`ConfigError`]). Failures of individual
//! requests are not here: they are answered on the wire as [`aex_proto::NodeError`] values and
//! the node keeps running.
//!
//! [`ConfigError`] lives here rather than in `config.rs` because `admission.rs` (admit files)
//! reports it too, and `config.rs` reads admit files through `admission.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;

use aex_tee::PlatformError;

/// The node agent could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create data directory `{path}`: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The platform key could not be loaded or created.
    #[error(transparent)]
    PlatformKey(#[from] PlatformError),
    /// The node's identity key could not be loaded or created.
    #[error("node `{node}`: cannot load its identity key")]
    Identity {
        /// The node's name.
        node: String,
        /// What failed.
        #[source]
        source: aex_link::keys::KeyFileError,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `node.addr` or `node.pid` could not be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configured TEE kind has no backend in this node agent.
    #[error("TEE kind `{0}` is not supported by this node agent")]
    UnsupportedTee(String),
    /// The configuration admits no deployer.
    #[error(
        "node `{node}` admits no deployer: admit deployer keys (printed by `aex identity`) with `--admit KEY` or `--admit-file FILE` (configuration: `admit`, `admit_file`), or pass `--open` (configuration: `open = true`) to admit any deployer for local development"
    )]
    NoDeployers {
        /// The node's name.
        node: String,
    },
    /// The configured limits contradict each other.
    #[error("node `{node}`: invalid limits")]
    Limits {
        /// The node's name.
        node: String,
        /// What is wrong.
        #[source]
        source: crate::limits::LimitError,
    },
    /// The configured devices cannot be used (a name declared twice).
    #[error("node `{node}`: invalid devices: {source}")]
    Devices {
        /// The node's name.
        node: String,
        /// What is wrong.
        source: aex_tee::devices::DeviceSpecError,
    },
    /// The physical-world socket (`devices.sock`) could not be opened on a node that declares
    /// devices.
    #[error("cannot open the device socket `{path}`: {source}")]
    DeviceSocket {
        /// The socket's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The async runtime or the signal handlers could not be set up.
    #[error("cannot set up the node's {what}: {source}")]
    Runtime {
        /// What failed (`"async runtime"`, `"signal handler"`).
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A node configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read node configuration `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or misses a field (the message names line and field).
    #[error("invalid node configuration `{path}`: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser reported.
        message: String,
    },
    /// A field holds a value the node cannot use.
    #[error("invalid node configuration `{path}`: field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field at fault (`timeouts.hello` for a key of a table).
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// An admit file could not be read.
    #[error("cannot read admit file `{path}`: {source}")]
    ReadAdmitFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of an admit file is not a deployer key.
    #[error("{}:{line}: {message}", path.display())]
    AdmitFile {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A request-level refusal, answered on the wire.
pub(crate) fn refuse(
    kind: aex_proto::NodeErrorKind,
    message: impl Into<String>,
) -> aex_proto::NodeError {
    aex_proto::NodeError {
        kind,
        message: message.into(),
    }
}
