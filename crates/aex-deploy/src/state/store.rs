//! The state database, `.aex/state.redb`: opening it (locked, private), reading the records
//! from it and saving them back, one durable transaction per save.
//!
//! Layout: four tables keyed by name — `meta` (every top-level field of [`State`] other than
//! the three maps: format version, next connection id, retired instances, pending
//! revocations), `nodes`, `modules` and `connections` (one row per record). Values are the
//! records' serde JSON (keys in hex, as [`StoredKey`](super::StoredKey) serializes them): JSON
//! rather than a positional format so that fields added to the records later
//! (`#[serde(default)]`) read old rows and old versions of aex ignore new ones. A save writes
//! only the rows that changed since the last save, in one transaction.
//!
//! State snapshots waiting to be restored
//! ([`ModuleRecord::pending_state`](super::ModuleRecord::pending_state)) may be large (a
//! module's whole state; tested with 64 MiB), so they are not JSON: each is one raw row of a
//! fifth table, `snapshots` (module name → bytes), written in the same transaction as the
//! rest. A [`Snapshot`] is immutable and shared, so a save tells a changed one by identity
//! and never copies, hex-encodes or compares its bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use super::error::StateError;
use super::legacy::{read_legacy, remove_legacy, LEGACY_FILE};
use super::lock::LockWait;
use super::records::{check_version, Snapshot, State, FORMAT_VERSION};

#[cfg(test)]
mod tests;

/// Directory (beside the descriptor) holding the deployer's state and local node data.
pub const STATE_DIR: &str = ".aex";
/// The state database, in [`STATE_DIR`].
pub const STATE_FILE: &str = "state.redb";
const LOCK_FILE: &str = "state.lock";

/// Top-level fields of [`State`] other than the record maps.
const META: &str = "meta";
/// The record maps of [`State`], each a table of its own (field name = table name).
const MAPS: [&str; 3] = ["nodes", "modules", "connections"];

/// The table of pending state snapshots: module name → raw snapshot bytes.
const SNAPSHOTS: &str = "snapshots";

/// A table: record name → serde JSON of the record (or, for [`SNAPSHOTS`], raw bytes).
fn table(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

/// Snapshots as saved: module name → the snapshot (shared with the state, compared by
/// identity).
type SavedSnapshots = BTreeMap<String, Snapshot>;

/// Every row of the database: (table, key) → value bytes (which may hold keys in hex).
type Rows = BTreeMap<(&'static str, String), Zeroizing<Vec<u8>>>;

/// A state file bound to its path: the in-memory [`State`] and the database it is saved to.
pub struct StateFile {
    path: PathBuf,
    /// The current state: what the next save writes.
    state: State,
    /// `None` for a state kept in memory ([`StateFile::in_memory`]): saves write nothing.
    db: Option<Database>,
    /// What the database holds, row by row, as of the last save (or the open).
    saved: Mutex<Rows>,
    /// The snapshots the database holds, as of the last save (or the open).
    saved_snapshots: Mutex<SavedSnapshots>,
    /// Held (locked) for as long as this value lives (`None` in memory).
    _lock: Option<fs::File>,
}

impl core::fmt::Debug for StateFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StateFile")
            .field("path", &self.path)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The data directory of local node `node` (one `aex up` starts) of the application whose
/// descriptor is in `descriptor_dir`: `.aex/nodes/<node>/`, absolute.
pub fn node_data_dir(descriptor_dir: &Path, node: &str) -> PathBuf {
    let dir = StateFile::dir_for(descriptor_dir).join("nodes").join(node);
    std::path::absolute(&dir).unwrap_or(dir)
}

impl StateFile {
    /// The state directory for a descriptor directory.
    pub fn dir_for(descriptor_dir: &Path) -> PathBuf {
        descriptor_dir.join(STATE_DIR)
    }

    /// Opens (or starts empty) the state beside a descriptor directory.
    ///
    /// Waits, silently and for as long as it takes, while another process holds this
    /// application's state ([`StateFile::open_waiting`] says who and sets a limit). Imports
    /// (once) the `.aex/state.json` of an older aex.
    pub fn open(descriptor_dir: &Path) -> Result<Self, StateError> {
        Self::open_waiting(descriptor_dir, &LockWait::default())
    }

    /// [`StateFile::open`], waiting for another process that holds the state as `wait` says.
    pub fn open_waiting(descriptor_dir: &Path, wait: &LockWait<'_>) -> Result<Self, StateError> {
        let dir = Self::dir_for(descriptor_dir);
        let path = dir.join(STATE_FILE);
        let lock_path = dir.join(LOCK_FILE);
        let io = |action, path: &Path, source| StateError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(|e| io("create the directory of", &path, e))?;
        // Released when the file is closed, also if the process dies.
        let lock = super::lock::acquire(&lock_path, wait)?;

        let file = open_private(&path)?;
        let db = redb::Builder::new()
            .create_file(file)
            .map_err(|e| open_error(e, &path))?;
        let rows = read_rows(&db, &path)?;
        let mut state = state_from_rows(&rows, &path)?;
        let mut snapshots = read_snapshots(&db, &path)?;
        // A snapshot row whose module has no record is garbage: the next save removes it.
        snapshots.retain(|module, snapshot| match state.modules.get_mut(module) {
            Some(record) => {
                record.pending_state = Some(snapshot.clone());
                true
            }
            None => false,
        });
        let mut sf = StateFile {
            state,
            path,
            db: Some(db),
            saved: Mutex::new(rows),
            saved_snapshots: Mutex::new(snapshots),
            _lock: Some(lock),
        };
        let legacy = dir.join(LEGACY_FILE);
        if sf.saved_rows().is_empty() {
            if let Some(state) = read_legacy(&legacy)? {
                // One transaction: after it the database holds everything the JSON held.
                sf.state = state;
                sf.save()?;
                tracing::info!(
                    "imported deployer state `{}` into `{}`",
                    legacy.display(),
                    sf.path.display()
                );
            }
        }
        // Present only before or after an import; after, it is a stale copy of secrets.
        remove_legacy(&dir, &legacy)?;
        Ok(sf)
    }

    /// A state that lives in memory only, named `path` in messages: what a deployer that keeps
    /// its state elsewhere (the governor seals it in its TEE) works on. Saves write nothing;
    /// the owner takes the state back with [`StateFile::state`] or [`StateFile::into_state`].
    pub fn in_memory(path: PathBuf, state: State) -> Self {
        StateFile {
            path,
            state,
            db: None,
            saved: Mutex::default(),
            saved_snapshots: Mutex::default(),
            _lock: None,
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The current state, to change; [`StateFile::save`] makes the change durable.
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// The current state, letting go of the file (and of its lock).
    pub fn into_state(self) -> State {
        self.state
    }

    fn saved_rows(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Durably saves the current state: one write transaction with every row that changed,
    /// committed (and fsynced) before this returns. A state equal to the saved one writes
    /// nothing.
    pub fn save(&self) -> Result<(), StateError> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let rows = rows_of(&self.state, &self.path)?;
        let snapshots: SavedSnapshots = self
            .state
            .modules
            .iter()
            .filter_map(|(m, r)| Some((m.clone(), r.pending_state.clone()?)))
            .collect();
        let mut saved = self.saved_rows();
        let mut saved_snapshots = self
            .saved_snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let changed: Vec<_> = rows
            .iter()
            .filter(|(k, v)| {
                saved
                    .get(*k)
                    .is_none_or(|old| old.as_slice() != v.as_slice())
            })
            .collect();
        let removed: Vec<_> = saved.keys().filter(|k| !rows.contains_key(*k)).collect();
        let new_snapshots: Vec<_> = snapshots
            .iter()
            .filter(|(m, s)| saved_snapshots.get(*m).is_none_or(|old| !old.same(s)))
            .collect();
        let gone_snapshots: Vec<_> = saved_snapshots
            .keys()
            .filter(|m| !snapshots.contains_key(*m))
            .collect();
        if changed.is_empty()
            && removed.is_empty()
            && new_snapshots.is_empty()
            && gone_snapshots.is_empty()
        {
            return Ok(());
        }
        let store = |action, source: redb::Error| StateError::Store {
            action,
            path: self.path.clone(),
            source: Box::new(source),
        };
        let mut txn = db.begin_write().map_err(|e| store("write", e.into()))?;
        // redb's default, stated: the commit returns once the data is on disk.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| store("write", e.into()))?;
        for name in std::iter::once(META).chain(MAPS) {
            let mut t = txn
                .open_table(table(name))
                .map_err(|e| store("write", e.into()))?;
            for ((_, key), value) in changed.iter().filter(|((t, _), _)| *t == name) {
                t.insert(key.as_str(), value.as_slice())
                    .map_err(|e| store("write", e.into()))?;
            }
            for (_, key) in removed.iter().filter(|(t, _)| *t == name) {
                t.remove(key.as_str())
                    .map_err(|e| store("write", e.into()))?;
            }
        }
        if !new_snapshots.is_empty() || !gone_snapshots.is_empty() {
            let mut t = txn
                .open_table(table(SNAPSHOTS))
                .map_err(|e| store("write", e.into()))?;
            for (module, snapshot) in &new_snapshots {
                t.insert(module.as_str(), snapshot.bytes())
                    .map_err(|e| store("write", e.into()))?;
            }
            for module in &gone_snapshots {
                t.remove(module.as_str())
                    .map_err(|e| store("write", e.into()))?;
            }
        }
        crate::crash::point("commit");
        txn.commit().map_err(|e| store("commit to", e.into()))?;
        *saved = rows;
        *saved_snapshots = snapshots;
        Ok(())
    }
}

/// Opens (creating if needed) the database file, readable and writable by its owner only.
fn open_private(path: &Path) -> Result<fs::File, StateError> {
    let io = |action, source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path).map_err(|e| io("open", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|e| io("inspect", e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "deployer state `{}` was readable or writable by others (mode {mode:o}); \
                 narrowing it to 0600 — treat the keys in it as exposed and redeploy with \
                 `aex reset` and `aex deploy` if others could read it",
                path.display()
            );
        }
        if mode != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| io("restrict the permissions of", e))?;
        }
    }
    Ok(file)
}

/// The error for a database that would not open: a file that is no (intact) redb database is
/// corrupt state; anything else is the store's own error.
fn open_error(e: redb::DatabaseError, path: &Path) -> StateError {
    use redb::{DatabaseError, StorageError};
    match e {
        DatabaseError::Storage(StorageError::Corrupted(reason)) => StateError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StateError::Corrupt {
                path: path.to_path_buf(),
                reason: "not a redb database".into(),
            }
        }
        e => StateError::Store {
            action: "open",
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        },
    }
}

/// Every row of the database.
fn read_rows(db: &Database, path: &Path) -> Result<Rows, StateError> {
    let store = |source: redb::Error| StateError::Store {
        action: "read",
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let txn = db.begin_read().map_err(|e| store(e.into()))?;
    let mut rows = Rows::new();
    for name in std::iter::once(META).chain(MAPS) {
        let t = match txn.open_table(table(name)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(store(e.into())),
        };
        for row in t.iter().map_err(|e| store(e.into()))? {
            let (k, v) = row.map_err(|e| store(e.into()))?;
            rows.insert(
                (name, k.value().to_string()),
                Zeroizing::new(v.value().to_vec()),
            );
        }
    }
    Ok(rows)
}

/// Every pending snapshot in the database, by module.
fn read_snapshots(db: &Database, path: &Path) -> Result<SavedSnapshots, StateError> {
    let store = |source: redb::Error| StateError::Store {
        action: "read",
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let txn = db.begin_read().map_err(|e| store(e.into()))?;
    let t = match txn.open_table(table(SNAPSHOTS)) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(SavedSnapshots::new()),
        Err(e) => return Err(store(e.into())),
    };
    let mut snapshots = SavedSnapshots::new();
    for row in t.iter().map_err(|e| store(e.into()))? {
        let (k, v) = row.map_err(|e| store(e.into()))?;
        snapshots.insert(k.value().to_string(), Snapshot::new(v.value().to_vec()));
    }
    Ok(snapshots)
}

/// The state the rows describe (a fresh state if there are none).
fn state_from_rows(rows: &Rows, path: &Path) -> Result<State, StateError> {
    let corrupt = |what: String, e: serde_json::Error| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    if rows.is_empty() {
        return Ok(State {
            version: FORMAT_VERSION,
            next_conn_id: 1,
            ..State::default()
        });
    }
    let mut top = serde_json::Map::new();
    for ((_, key), value) in rows.iter().filter(|((t, _), _)| *t == META) {
        let v = serde_json::from_slice(value).map_err(|e| corrupt(format!("`{key}`"), e))?;
        top.insert(key.clone(), v);
    }
    for name in MAPS {
        top.insert(name.into(), Value::Object(serde_json::Map::new()));
    }
    let mut state: State =
        serde_json::from_value(Value::Object(top)).map_err(|e| corrupt("metadata".into(), e))?;
    check_version(state.version, path)?;
    for ((t, key), value) in rows {
        let what = || format!("{} `{key}`", t.trim_end_matches('s'));
        match *t {
            "nodes" => {
                let r = serde_json::from_slice(value).map_err(|e| corrupt(what(), e))?;
                state.nodes.insert(key.clone(), r);
            }
            "modules" => {
                let r = serde_json::from_slice(value).map_err(|e| corrupt(what(), e))?;
                state.modules.insert(key.clone(), r);
            }
            "connections" => {
                let r = serde_json::from_slice(value).map_err(|e| corrupt(what(), e))?;
                state.connections.insert(key.clone(), r);
            }
            _ => {}
        }
    }
    Ok(state)
}

/// The rows a state is saved as.
fn rows_of(state: &State, path: &Path) -> Result<Rows, StateError> {
    let corrupt = |e: serde_json::Error| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot serialize the state: {e}"),
    };
    let mut value = serde_json::to_value(state).map_err(corrupt)?;
    let mut rows = Rows::new();
    let result = (|| {
        let Value::Object(top) = &value else {
            return Ok(());
        };
        for (field, v) in top {
            match (MAPS.iter().find(|m| *m == field), v) {
                (Some(name), Value::Object(records)) => {
                    for (key, record) in records {
                        let bytes = Zeroizing::new(serde_json::to_vec(record)?);
                        rows.insert((*name, key.clone()), bytes);
                    }
                }
                _ => {
                    rows.insert(
                        (META, field.clone()),
                        Zeroizing::new(serde_json::to_vec(v)?),
                    );
                }
            }
        }
        Ok(())
    })();
    wipe(&mut value);
    result.map_err(corrupt)?;
    Ok(rows)
}

/// Zeroes every string of a JSON value (stored keys are hex strings) before it is dropped.
fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}
