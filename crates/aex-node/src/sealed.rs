//! Sealed blobs of persistent modules, on the node's (untrusted) storage, and the module's way
//! to its platform's counters.
//!
//! A persistent module's runtime sends its blob in chunks (`FromModule::Store`); the node
//! writes them to `sealed/<version>.part` in the module's directory and, once the last chunk
//! is in, syncs the file, renames it to `sealed/<version>.blob`, syncs the directory, and only
//! then answers `ToModule::Stored`, so a blob the module counts as stored survives a crash of
//! the node. The node keeps the two newest blobs: the module moves its platform counter to a
//! blob's version only after the blob is stored, so after a crash between the two the
//! committed blob is the older one (docs/PROTOCOL.md §9). Storage per module is therefore at
//! most two blobs of at most [`MAX_BLOB`] bytes, plus one part being written.
//!
//! The node cannot read or change a blob (it is sealed), only keep, drop or swap it, and the
//! module refuses any blob but the one its counter names. Counter calls go to the platform
//! (`aex_tee::SealingPlatform`), which in simulation lives in this process with its own files
//! (`platform/`), apart from the blobs.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aex_crypto::SecretKey;
use aex_proto::{
    BlobChunk, CounterCall, CounterValue, PersistenceStatus, ResumeOutcome, BLOB_CHUNK, MAX_BLOB,
};
use aex_tee::{CounterRequest, SealingPlatform};

use crate::sync::lock;

/// Blobs kept per module: the newest and the one before (see the file's documentation).
const KEPT: usize = 2;

/// What the node holds for one persistent module: where its blobs go, its platform's
/// counters, and what status reports.
pub(crate) struct Persistent {
    /// The module's directory: `sealed/` holds its blobs, `counters` the ids of the platform
    /// counters its processes created (to remove them when it is unloaded).
    dir: PathBuf,
    store: BlobStore,
    platform: Arc<SealingPlatform>,
    /// The module's sealing key: the platform's answers carry a MAC under a key derived from
    /// it. (In simulation the node plays the platform, so it holds the key; on hardware the
    /// platform would answer the module directly.)
    sealing: SecretKey,
    status: Mutex<PersistenceStatus>,
}

impl Persistent {
    /// The persistence of the module in `dir`, whose sealing key is `sealing`; `restarts`
    /// and `resume` carried over from its earlier processes.
    pub(crate) fn new(
        dir: &Path,
        platform: Arc<SealingPlatform>,
        sealing: SecretKey,
        status: PersistenceStatus,
    ) -> Self {
        let store = BlobStore::new(dir);
        let stored = store.versions().first().copied().unwrap_or(0);
        Persistent {
            dir: dir.to_path_buf(),
            store,
            platform,
            sealing,
            status: Mutex::new(PersistenceStatus { stored, ..status }),
        }
    }

    /// A chunk the module sent; the answer for `ToModule::Stored` once its blob is complete.
    pub(crate) fn store(&self, chunk: &BlobChunk) -> Option<Result<(), String>> {
        match self.store.write(chunk) {
            Ok(false) => None,
            Ok(true) => {
                let mut status = lock(&self.status);
                status.stored = chunk.version;
                status.store_error = None;
                Some(Ok(()))
            }
            Err(e) => {
                tracing::warn!(version = chunk.version, error = %e, "cannot store a sealed blob");
                lock(&self.status).store_error = Some(e.clone());
                Some(Err(e))
            }
        }
    }

    /// Performs a counter call for the module.
    pub(crate) fn counter(
        &self,
        call: CounterCall,
        nonce: &[u8; 16],
    ) -> Result<CounterValue, String> {
        let request = match call {
            CounterCall::Create => CounterRequest::Create,
            CounterCall::Read(id) => CounterRequest::Read(id),
            CounterCall::Advance(id, from, digest) => CounterRequest::Advance(id, from, digest),
        };
        let (op, answer) = self
            .platform
            .counter(&self.sealing, request, nonce)
            .map_err(|e| e.to_string())?;
        if op == aex_crypto::seal::CounterOp::Create {
            self.remember_counter(&answer.id)?;
        }
        Ok(CounterValue {
            id: answer.id,
            value: answer.value,
            digest: answer.digest,
            advanced: op == aex_crypto::seal::CounterOp::Increment,
            mac: answer.mac,
        })
    }

    /// Notes a counter the module created, before the module learns of it (so that no
    /// counter of an unloaded module outlives it unnoticed).
    fn remember_counter(&self, id: &[u8; 16]) -> Result<(), String> {
        let path = self.dir.join("counters");
        let mut ids = fs::read_to_string(&path).unwrap_or_default();
        ids.push_str(&hex::encode(id));
        ids.push('\n');
        aex_tee::replace_durably(&path, ids.as_bytes())
            .map_err(|e| format!("cannot note a new counter in `{}`: {e}", path.display()))
    }

    /// Its instance is gone for good (unloaded): removes its platform counters, so that no
    /// copy of its blobs can resume anything, then its blobs. What cannot be removed is
    /// logged.
    pub(crate) fn destroy(&self) {
        let path = self.dir.join("counters");
        for line in fs::read_to_string(&path).unwrap_or_default().lines() {
            let Some(id) = hex::decode(line.trim())
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
            else {
                continue;
            };
            if let Err(e) = self.platform.remove(&self.sealing, &id) {
                tracing::warn!(counter = line, error = %e, "cannot remove the counter of an unloaded module");
            }
        }
        for gone in [path, self.store.dir.clone()] {
            let removed = if gone.is_dir() {
                fs::remove_dir_all(&gone)
            } else {
                fs::remove_file(&gone)
            };
            if let Err(e) = removed {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %gone.display(), error = %e, "cannot remove the sealed state of an unloaded module");
                }
            }
        }
    }

    /// The stored blobs, newest first, as the chunks a restarted process is handed.
    pub(crate) fn blobs(&self) -> Vec<PathBuf> {
        self.store
            .blob_files()
            .into_iter()
            .map(|(_, path)| path)
            .collect()
    }

    /// Whether any blob is stored (a module that never committed has nothing to resume).
    pub(crate) fn has_blobs(&self) -> bool {
        !self.store.versions().is_empty()
    }

    /// Records how a restart went.
    pub(crate) fn restarted(&self, outcome: ResumeOutcome) {
        let mut status = lock(&self.status);
        status.restarts += 1;
        status.resume = Some(outcome);
    }

    /// What status reports.
    pub(crate) fn status(&self) -> PersistenceStatus {
        lock(&self.status).clone()
    }
}

/// The `sealed/` directory of one module.
pub(crate) struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// The blobs of the module whose directory is `module_dir`.
    pub(crate) fn new(module_dir: &Path) -> Self {
        BlobStore {
            dir: module_dir.join("sealed"),
        }
    }

    /// The complete blobs, newest first: version and file.
    pub(crate) fn blob_files(&self) -> Vec<(u64, PathBuf)> {
        self.versions()
            .into_iter()
            .map(|v| (v, self.blob(v)))
            .collect()
    }

    fn blob(&self, version: u64) -> PathBuf {
        self.dir.join(format!("{version}.blob"))
    }

    fn part(&self, version: u64) -> PathBuf {
        self.dir.join(format!("{version}.part"))
    }

    /// The versions of the complete blobs, newest first.
    pub(crate) fn versions(&self) -> Vec<u64> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut versions: Vec<u64> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".blob")?.parse().ok()
            })
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
    }

    /// Writes `chunk`; `true` once its blob is complete and durable. Errors name what failed
    /// (the module reports them, and retries its commit).
    pub(crate) fn write(&self, chunk: &BlobChunk) -> Result<bool, String> {
        if chunk.total > MAX_BLOB || chunk.data.len() > BLOB_CHUNK {
            return Err(format!(
                "a sealed blob holds at most {MAX_BLOB} bytes, in chunks of at most {BLOB_CHUNK}"
            ));
        }
        let end = chunk.offset.saturating_add(chunk.data.len() as u64);
        if end > chunk.total {
            return Err("a chunk reaches past the blob's length".into());
        }
        let io = |what: &str, path: &Path| {
            let what = what.to_owned();
            let path = path.display().to_string();
            move |e: io::Error| format!("cannot {what} `{path}`: {e}")
        };
        fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let part = self.part(chunk.version);
        let mut file = if chunk.offset == 0 {
            fs::File::create(&part).map_err(io("create", &part))?
        } else {
            let file = fs::OpenOptions::new()
                .append(true)
                .open(&part)
                .map_err(io("open", &part))?;
            let len = file.metadata().map_err(io("inspect", &part))?.len();
            if len != chunk.offset {
                return Err(format!(
                    "a chunk at offset {} of version {}, but {len} bytes are written",
                    chunk.offset, chunk.version
                ));
            }
            file
        };
        file.write_all(&chunk.data).map_err(io("write", &part))?;
        if end < chunk.total {
            return Ok(false);
        }
        file.sync_all().map_err(io("sync", &part))?;
        let blob = self.blob(chunk.version);
        fs::rename(&part, &blob).map_err(io("rename", &part))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", &self.dir))?;
        self.prune(chunk.version);
        Ok(true)
    }

    /// Removes blobs beyond the [`KEPT`] newest and parts older than `newest`.
    fn prune(&self, newest: u64) {
        for old in self.versions().into_iter().skip(KEPT) {
            let _ = fs::remove_file(self.blob(old));
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let stale = name
                .to_str()
                .and_then(|n| n.strip_suffix(".part"))
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v < newest);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Reads a stored blob as the chunks a restarted process is handed.
pub(crate) fn read_chunks(path: &Path, version: u64) -> io::Result<Vec<BlobChunk>> {
    let mut file = fs::File::open(path)?;
    let total = file.metadata()?.len();
    if total > MAX_BLOB {
        return Err(io::Error::other("a stored blob is over the size limit"));
    }
    let mut chunks = Vec::new();
    let mut offset = 0;
    loop {
        let mut data = vec![0; BLOB_CHUNK];
        let n = read_full(&mut file, &mut data)?;
        data.truncate(n);
        chunks.push(BlobChunk {
            version,
            total,
            offset,
            data,
        });
        offset += n as u64;
        if n < BLOB_CHUNK || offset >= total {
            return Ok(chunks);
        }
    }
}

fn read_full(file: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The version a blob path names.
pub(crate) fn version_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_suffix(".blob")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_become_durable_at_their_last_chunk_and_two_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        for version in 1..=4u64 {
            let blob = vec![version as u8; BLOB_CHUNK + 10];
            let chunks = BlobChunk::split(version, &blob);
            assert!(!store.write(&chunks[0]).unwrap());
            assert!(store.versions().first() != Some(&version));
            assert!(store.write(&chunks[1]).unwrap());
            let read = read_chunks(&store.blob(version), version).unwrap();
            let joined: Vec<u8> = read.iter().flat_map(|c| c.data.clone()).collect();
            assert_eq!(joined, blob);
        }
        assert_eq!(store.versions(), vec![4, 3]);
    }

    #[test]
    fn chunks_out_of_order_or_oversized_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let chunks = BlobChunk::split(1, &vec![0; BLOB_CHUNK * 2]);
        assert!(store.write(&chunks[1]).is_err());
        let huge = BlobChunk {
            version: 2,
            total: MAX_BLOB + 1,
            offset: 0,
            data: vec![],
        };
        assert!(store.write(&huge).unwrap_err().contains("at most"));
        let past = BlobChunk {
            version: 3,
            total: 2,
            offset: 0,
            data: vec![0; 3],
        };
        assert!(store.write(&past).is_err());
        assert!(store.versions().is_empty());
    }
}
