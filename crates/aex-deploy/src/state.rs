//! The deployer's own durable state: module keys, connection keys and counters.
//!
//! Invariants:
//! * the state file lives beside the descriptor (`.aex/state.json`), never inside it, and is
//!   created with mode 0600;
//! * every update is written to a temporary file, synced, and renamed over the old file, so a
//!   crash leaves either the old or the new state, never a torn one;
//! * a command counter is reserved and saved *before* the command is sent, so no counter is
//!   ever used twice under a module key, even across crashes;
//! * one process at a time: a [`StateFile`] holds an exclusive OS lock on `.aex/state.lock`
//!   from before it reads the state until it is dropped, so two `aex` commands on the same
//!   application (say a following `aex up` and an `aex output`) never work from stale copies
//!   and never reserve the same counter twice.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aex_crypto::SecretKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Directory (beside the descriptor) holding the deployer's state and local node data.
pub const STATE_DIR: &str = ".aex";
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";
const FORMAT_VERSION: u32 = 1;

/// Everything the deployer remembers about one application.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Format version of this file.
    pub version: u32,
    /// Next connection id to allocate (ids are never reused within an application).
    pub next_conn_id: u32,
    /// Nodes this deployer started locally.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Attested modules.
    pub modules: BTreeMap<String, ModuleRecord>,
    /// Established connections.
    pub connections: BTreeMap<String, ConnectionRecord>,
    /// Instances replaced by an update, still to be unloaded (module name → where it ran).
    #[serde(default)]
    pub retired: BTreeMap<String, Vec<RetiredInstance>>,
}

/// An instance that handed its state over (or was replaced) and waits to be unloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredInstance {
    /// Node it runs on.
    pub node: String,
    /// Its name on that node.
    pub slot: String,
}

/// A node started by `aex up` on this machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Listen address.
    pub address: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// OS process id of the node agent.
    pub pid: Option<u32>,
}

/// An attested module instance.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Node it runs on.
    pub node: String,
    /// TEE kind of that node.
    pub tee: String,
    /// Expected measurement (hex) — from the deployer's own build.
    pub measurement: String,
    /// Random id of this attested instance; connections record which instance they keyed.
    pub instance: u64,
    /// Module key from the key agreement.
    pub key: StoredKey,
    /// Last command counter used under `key`.
    pub last_command: u64,
    /// Unix time of attestation.
    pub attested_at: u64,
    /// Whether the evidence came from a simulated root.
    pub simulated: bool,
    /// Whether the module runs without any TEE (`native`, allowed by the descriptor).
    #[serde(default)]
    pub insecure: bool,
    /// Whether the module has a `status` entry point for `aex status` to call.
    #[serde(default)]
    pub reports_status: bool,
    /// How many times the module was replaced; names its instance on the node (see
    /// [`ModuleRecord::slot`]), so an old and a new instance can run side by side on one
    /// node while the state moves.
    #[serde(default)]
    pub generation: u32,
    /// A state snapshot taken from the previous instance and not yet restored into this one.
    /// Kept until the restore is confirmed, so a crash in between loses no state.
    #[serde(default)]
    pub pending_state: Option<StoredBytes>,
}

impl ModuleRecord {
    /// The instance's name on its node: the module name, then `name.1`, `name.2`, ... for
    /// later generations (a `.` cannot appear in a descriptor's module name).
    pub fn slot(&self, module: &str) -> String {
        slot_name(module, self.generation)
    }
}

/// The node-side name of generation `generation` of `module`.
pub fn slot_name(module: &str, generation: u32) -> String {
    match generation {
        0 => module.to_string(),
        g => format!("{module}.{g}"),
    }
}

/// Secret bytes as stored in the state file (hex). Zeroized on drop; no `Debug` output.
pub struct StoredBytes(pub Zeroizing<Vec<u8>>);

impl core::fmt::Debug for StoredBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StoredBytes({} bytes, REDACTED)", self.0.len())
    }
}

impl Serialize for StoredBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(&*self.0)))
    }
}

impl<'de> Deserialize<'de> for StoredBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        hex::decode(s.as_bytes())
            .map(|b| StoredBytes(Zeroizing::new(b)))
            .map_err(|_| serde::de::Error::custom("stored bytes are hex"))
    }
}

/// A connection whose key was delivered.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// Connection id.
    pub id: u32,
    /// Connection key (kept for direct connections, where the deployer is an endpoint).
    pub key: StoredKey,
    /// Algorithm name.
    pub algorithm: String,
    /// `module.port` or `deployer`.
    pub from: String,
    /// `module.port`.
    pub to: String,
    /// Module instances that hold this key (module name → instance id).
    pub instances: BTreeMap<String, u64>,
    /// Last forward counter the deployer used (direct connections).
    pub last_sent: u64,
    /// Last backward counter the deployer accepted (direct connections).
    pub last_received: u64,
}

/// A key as stored in the state file (hex). No `Debug` output of the bytes.
pub struct StoredKey(pub SecretKey);

impl core::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StoredKey(REDACTED)")
    }
}

impl Serialize for StoredKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = Zeroizing::new(hex::encode(self.0.expose_secret()));
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for StoredKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(s.as_bytes(), &mut bytes[..])
            .map_err(|_| serde::de::Error::custom("a stored key is 64 hex characters"))?;
        Ok(StoredKey(SecretKey::from_bytes(*bytes)))
    }
}

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
    /// The file is not valid state.
    #[error("deployer state `{path}` is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser detail.
        reason: String,
    },
}

/// A state file bound to its path.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The current state.
    pub state: State,
    /// Held (locked) for as long as this value lives.
    _lock: fs::File,
}

impl StateFile {
    /// The state directory for a descriptor directory.
    pub fn dir_for(descriptor_dir: &Path) -> PathBuf {
        descriptor_dir.join(STATE_DIR)
    }

    /// Opens (or starts empty) the state beside a descriptor directory.
    ///
    /// Waits while another process holds this application's state.
    pub fn open(descriptor_dir: &Path) -> Result<Self, StateError> {
        let dir = Self::dir_for(descriptor_dir);
        let path = dir.join(STATE_FILE);
        let lock_path = dir.join(LOCK_FILE);
        let io = |action, path: &Path, source| StateError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        fs::create_dir_all(&dir).map_err(|e| io("create the directory of", &path, e))?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("open", &lock_path, e))?;
        // Released when the file is closed, also if the process dies.
        lock.lock().map_err(|e| io("lock", &lock_path, e))?;
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let s: State = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if s.version != FORMAT_VERSION {
                    return Err(StateError::Corrupt {
                        path,
                        reason: format!(
                            "format version {} (this aex reads version {FORMAT_VERSION})",
                            s.version
                        ),
                    });
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                version: FORMAT_VERSION,
                next_conn_id: 1,
                ..State::default()
            },
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        Ok(StateFile {
            path,
            state,
            _lock: lock,
        })
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Durably replaces the file with the current state.
    pub fn save(&self) -> Result<(), StateError> {
        let io = |action, source| StateError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        let json = Zeroizing::new(serde_json::to_vec_pretty(&self.state).map_err(|e| {
            StateError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            }
        })?);
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io("write", e))?;
        f.write_all(&json).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("sync", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| io("replace", e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_private_and_no_key_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let mut sf = StateFile::open(dir.path()).unwrap();
        sf.state.modules.insert(
            "m".into(),
            ModuleRecord {
                node: "n".into(),
                tee: "sgx".into(),
                measurement: "00".repeat(32),
                instance: 1,
                key: StoredKey(SecretKey::from_bytes([0xcd; 32])),
                last_command: 4,
                attested_at: 0,
                simulated: true,
                insecure: false,
                reports_status: false,
                generation: 2,
                pending_state: Some(StoredBytes(Zeroizing::new(b"count 41".to_vec()))),
            },
        );
        sf.save().unwrap();
        // One holder at a time, even within a process.
        drop(sf);
        let again = StateFile::open(dir.path()).unwrap();
        let m = &again.state.modules["m"];
        assert_eq!(m.key.0.expose_secret(), &[0xcd; 32]);
        assert_eq!(m.last_command, 4);
        assert!(!format!("{:?}", again.state).contains("cdcd"));
        assert_eq!(m.slot("m"), "m.2");
        assert_eq!(*m.pending_state.as_ref().unwrap().0, b"count 41");
        assert!(!format!("{:?}", again.state).contains("count"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(again.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_second_opener_waits_for_the_first_and_sees_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = StateFile::open(dir.path()).unwrap();
        let path = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let second = std::thread::spawn(move || {
            let sf = StateFile::open(&path).unwrap();
            tx.send(()).unwrap();
            sf.state.next_conn_id
        });
        // The second opener is blocked while the first holds the state.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        first.state.next_conn_id = 42;
        first.save().unwrap();
        drop(first);
        assert_eq!(second.join().unwrap(), 42);
    }

    #[test]
    fn corrupt_state_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        fs::write(dir.path().join(STATE_DIR).join(STATE_FILE), b"{nope").unwrap();
        let err = StateFile::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is corrupt"), "{err}");
    }
}
