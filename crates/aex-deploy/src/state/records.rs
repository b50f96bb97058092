//! The records of the deployer's state: the serialized types the store keeps, one row per
//! record. Keys serialize as hex ([`StoredKey`]) and never show in `Debug`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aex_crypto::SecretKey;
use aex_proto::StateBytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::error::StateError;

/// The format version of the records this aex reads and writes.
pub(super) const FORMAT_VERSION: u32 = 1;

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
    /// Connections removed from the descriptor or re-wired whose revocation is not complete:
    /// keys still to be dropped in endpoint modules, routes still to be removed from nodes.
    /// Their ids are never used again.
    #[serde(default)]
    pub revocations: Vec<Revocation>,
    /// The last root the deployer signed in the application's audit ledger (`audit.rs`): a
    /// ledger file shorter than it, or with another root there, is refused on open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerMark>,
}

/// A signed root of the audit ledger, as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerMark {
    /// Entries it covers.
    pub size: u64,
    /// The Merkle root, hex.
    pub root: String,
}

impl LedgerMark {
    /// The mark of a root over `size` entries.
    pub fn new(size: u64, root: &[u8; 32]) -> Self {
        LedgerMark {
            size,
            root: hex::encode(root),
        }
    }

    /// Its size and root; `None` if the root is not 32 bytes of hex.
    pub fn get(&self) -> Option<(u64, [u8; 32])> {
        let root = hex::decode(&self.root).ok()?.try_into().ok()?;
        Some((self.size, root))
    }
}

/// A connection being revoked: what still holds its key or its routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The connection's name when it was revoked (for messages).
    pub connection: String,
    /// Its wire id.
    pub id: u32,
    /// Module instances that may hold its key and have not confirmed dropping it (module
    /// name → instance id).
    pub holders: BTreeMap<String, u64>,
    /// Nodes that may hold its routes and have not confirmed removing them.
    pub nodes: std::collections::BTreeSet<String>,
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
    /// Kept until the restore is confirmed, so a crash in between loses no state. Saved in
    /// the `snapshots` table, not in the record's JSON (an older aex kept it there in hex,
    /// which is still read).
    #[serde(default, skip_serializing, deserialize_with = "legacy_snapshot")]
    pub pending_state: Option<Snapshot>,
    /// The sealed-state version the instance that gave `pending_state` retired at, if it
    /// persisted: restored with the snapshot, so this instance's versions continue above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_sealed: Option<u64>,
    /// The instance that gave `pending_state`, on this instance's node, when both seal by
    /// signer: the new instance first tries to adopt the state from its sealed blobs
    /// (`Command::Adopt`), and is staged the snapshot only if that fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_predecessor: Option<String>,
    /// Whether the module seals by signer (`#[aex::module(persistent(signer))]`).
    #[serde(default)]
    pub seals_by_signer: bool,
    /// Set (and saved) before this instance is sent `Retire`: from then on it may no longer
    /// take part in the application, so the next deployment replaces it, asking it again
    /// for its snapshot, even if it crashed before recording the outcome.
    #[serde(default)]
    pub retiring: bool,
    /// Set (and saved) before this instance is sent `Disable` (its module left the
    /// descriptor, or `aex reset`): a refusal of a repeated `Disable` then means it already
    /// dropped its keys.
    #[serde(default)]
    pub disabling: bool,
    /// SHA-256 (hex) of the evidence the instance was attested with, as the audit ledger
    /// records it (empty in records of an older aex).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub evidence: String,
    /// The compiler that built the binary (`rustc -V`), as the audit ledger records it;
    /// `None` for a binary built elsewhere, or in records of an older aex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<String>,
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

/// A module's state snapshot, held by the deployer between the old instance's `Retire` and
/// the new instance's `Restore`. Immutable and shared: clones share the bytes, and a save
/// recognises an unchanged snapshot by identity. Zeroized when the last clone drops; `Debug`
/// shows only the length.
#[derive(Clone)]
pub struct Snapshot(Arc<StateBytes>);

impl Snapshot {
    /// A snapshot of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Snapshot(Arc::new(StateBytes(bytes)))
    }

    /// A snapshot of bytes already in a zeroizing buffer.
    pub fn from_state(bytes: StateBytes) -> Self {
        Snapshot(Arc::new(bytes))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0 .0
    }

    /// Whether `self` and `other` are the same snapshot (not merely equal bytes).
    pub(super) fn same(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Snapshot({} bytes, REDACTED)", self.0 .0.len())
    }
}

/// Reads a snapshot an older aex kept inside the module record, in hex.
fn legacy_snapshot<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Snapshot>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let s = Zeroizing::new(s);
    hex::decode(s.as_bytes())
        .map(|b| Some(Snapshot::new(b)))
        .map_err(|_| serde::de::Error::custom("a pending state is hex"))
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

/// A key as stored in the state file (hex). The key is reached only through
/// [`StoredKey::expose_secret`], so every use of it is explicit and can be found; `Debug` never
/// shows its bytes.
pub struct StoredKey(SecretKey);

impl StoredKey {
    /// Keeps `key` in a record.
    pub fn new(key: SecretKey) -> Self {
        StoredKey(key)
    }

    /// The key, to seal or open under it: every call site is a place where the stored secret
    /// is used.
    pub fn expose_secret(&self) -> &SecretKey {
        &self.0
    }
}

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
        Ok(StoredKey::new(SecretKey::from_bytes(*bytes)))
    }
}

/// An error unless `version` is the one this aex reads.
pub(super) fn check_version(version: u32, path: &Path) -> Result<(), StateError> {
    if version == FORMAT_VERSION {
        return Ok(());
    }
    Err(StateError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("format version {version} (this aex reads version {FORMAT_VERSION})"),
    })
}
