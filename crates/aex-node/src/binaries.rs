//! The module binaries a node holds, per deployer: each binary is written once, measured from
//! the bytes written, and kept under `binaries/<deployer key>/<measurement>`; a module's
//! `modules/<namespace>/<name>/module.bin` is a hard link to it. So a deployer that starts many
//! modules from one binary (a thousand relays) uploads it once per node, and asks for the
//! others with `LoadStored`, naming the measurement.
//!
//! Invariants:
//! * the index holds only binaries this node process wrote and measured itself: the
//!   measurement is SHA-256 of the bytes in memory that were written to the file, the file was
//!   created new (never an existing file opened) and is never opened for writing again, so
//!   a link to it runs exactly the measured bytes. Files an earlier run of the node left are
//!   never indexed; the same binary uploaded again replaces them.
//! * the index is keyed by deployer identity: a `LoadStored` finds only binaries its own
//!   deployer uploaded (in any of its namespaces), so a tenant can neither start another
//!   tenant's binary nor learn whether the node holds it by asking.
//! * a stored binary lives as long as a module directory links it: whenever a binary is
//!   published, every file of that deployer that no module directory links any more (link
//!   count 1) is removed with its index entry. So disk use stays what it was before the store
//!   (at most one `module.bin` per module directory, each at most `MAX_MODULE_SIZE`), and a
//!   shared binary takes its space once.
//! * linking, publishing and pruning run under one lock, so a binary is never pruned between
//!   its lookup and its link.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aex_crypto::Measurement;
use aex_proto::DeployerKey;

use crate::sync::lock;

/// A module's binary inside its directory.
pub(crate) const MODULE_BIN: &str = "module.bin";

/// The binaries of one node, by deployer and measurement.
pub(crate) struct Binaries {
    dir: PathBuf,
    index: Mutex<HashMap<(DeployerKey, Measurement), PathBuf>>,
}

impl Binaries {
    /// The store under `data_dir/binaries`, empty (created on first use).
    pub(crate) fn new(data_dir: &Path) -> Self {
        Binaries {
            dir: data_dir.join("binaries"),
            index: Mutex::default(),
        }
    }

    /// Writes `data` as `module_dir/module.bin` (mode 0700), measures exactly the bytes
    /// written, and keeps the binary for `owner`'s later `LoadStored`. Blocking.
    ///
    /// No fsync: the node never starts a binary from disk after a crash or a restart (its
    /// modules die with it, and this index, in memory, starts empty, so a stored file of an
    /// earlier run is never linked again), and a running node reads its own page cache, which
    /// holds exactly the bytes written and measured. Durability would buy nothing and cost a
    /// disk flush per upload.
    pub(crate) fn store(
        &self,
        owner: &DeployerKey,
        module_dir: &Path,
        data: &[u8],
    ) -> io::Result<Measurement> {
        std::fs::create_dir_all(module_dir)?;
        let path = module_dir.join(MODULE_BIN);
        replace(&path)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)?;
        file.write_all(data)?;
        drop(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        let measurement = Measurement::of(data);
        self.publish(owner, &measurement, &path)?;
        Ok(measurement)
    }

    /// Links the binary `owner` stored with `measurement` as `module_dir/module.bin`;
    /// `false` if the node holds no such binary of `owner`. Blocking.
    pub(crate) fn link(
        &self,
        owner: &DeployerKey,
        measurement: &Measurement,
        module_dir: &Path,
    ) -> io::Result<bool> {
        // Outside the lock: creating a directory is the slow part (a new inode).
        std::fs::create_dir_all(module_dir)?;
        let mut index = lock(&self.index);
        let key = (*owner, *measurement);
        let Some(stored) = index.get(&key) else {
            return Ok(false);
        };
        let path = module_dir.join(MODULE_BIN);
        replace(&path)?;
        match std::fs::hard_link(stored, &path) {
            Ok(()) => Ok(true),
            // Removed behind the node's back: forget it, the deployer uploads it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                index.remove(&key);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps the binary at `path` (written and measured by the caller) for `owner`, unless
    /// the store has it already, and prunes `owner`'s binaries no module links any more.
    fn publish(
        &self,
        owner: &DeployerKey,
        measurement: &Measurement,
        path: &Path,
    ) -> io::Result<()> {
        let mut index = lock(&self.index);
        let dir = self.dir.join(hex::encode(owner.0));
        let key = (*owner, *measurement);
        if !index.get(&key).is_some_and(|p| p.exists()) {
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
            let stored = dir.join(measurement.to_hex());
            // A file of that name is a leftover of an earlier run (not indexed): replaced.
            replace(&stored)?;
            std::fs::hard_link(path, &stored)?;
            index.insert(key, stored);
        }
        // Linked by no module directory any more: not needed.
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.metadata()?.nlink() == 1 {
                std::fs::remove_file(entry.path())?;
                index.retain(|_, p| *p != entry.path());
            }
        }
        Ok(())
    }

    /// How many binaries the store holds for `owner` (tests).
    #[cfg(test)]
    fn held(&self, owner: &DeployerKey) -> usize {
        lock(&self.index).keys().filter(|(o, _)| o == owner).count()
    }
}

/// Unlinks `path` if it exists: a binary may still be running from it, so it is never
/// overwritten in place.
fn replace(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: DeployerKey = DeployerKey([1; 32]);
    const BOB: DeployerKey = DeployerKey([2; 32]);

    fn bin(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(MODULE_BIN)).unwrap()
    }

    #[test]
    fn store_writes_executable_and_measures() {
        let data = tempfile::tempdir().unwrap();
        let store = Binaries::new(data.path());
        let dir = data.path().join("m");
        let m = store.store(&ALICE, &dir, b"#!/bin/sh\n").unwrap();
        assert_eq!(m, Measurement::of(b"#!/bin/sh\n"));
        let meta = std::fs::metadata(dir.join(MODULE_BIN)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        // Storing again replaces the file (a new inode: a running process keeps the old one).
        let m2 = store.store(&ALICE, &dir, b"other").unwrap();
        assert_eq!(m2, Measurement::of(b"other"));
        assert_eq!(bin(&dir), b"other");
        assert_ne!(
            std::fs::metadata(dir.join(MODULE_BIN)).unwrap().ino(),
            meta.ino()
        );
    }

    #[test]
    fn a_stored_binary_is_linked_for_its_deployer_only() {
        let data = tempfile::tempdir().unwrap();
        let store = Binaries::new(data.path());
        let m = store
            .store(&ALICE, &data.path().join("a"), b"relay")
            .unwrap();
        let b = data.path().join("b");
        assert!(store.link(&ALICE, &m, &b).unwrap());
        assert_eq!(bin(&b), b"relay");
        let meta = std::fs::metadata(b.join(MODULE_BIN)).unwrap();
        // `a`'s, `b`'s and the store's link: one file on disk.
        assert_eq!(meta.nlink(), 3);
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        // Another deployer cannot use it (nor tell it is there), nor another measurement.
        assert!(!store.link(&BOB, &m, &data.path().join("c")).unwrap());
        assert!(!data.path().join("c").join(MODULE_BIN).exists());
        let other = Measurement::of(b"other");
        assert!(!store.link(&ALICE, &other, &data.path().join("d")).unwrap());
    }

    #[test]
    fn binaries_no_module_links_are_pruned() {
        let data = tempfile::tempdir().unwrap();
        let store = Binaries::new(data.path());
        let a = data.path().join("a");
        let old = store.store(&ALICE, &a, b"v1").unwrap();
        // `a` is reloaded with another binary: v1 is linked by nothing but the store.
        let new = store.store(&ALICE, &a, b"v2").unwrap();
        assert_eq!(store.held(&ALICE), 1);
        assert!(!store.link(&ALICE, &old, &data.path().join("b")).unwrap());
        assert!(store.link(&ALICE, &new, &data.path().join("b")).unwrap());
        let files = std::fs::read_dir(data.path().join("binaries").join(hex::encode(ALICE.0)));
        assert_eq!(files.unwrap().count(), 1);
    }

    #[test]
    fn a_binary_removed_behind_the_nodes_back_is_forgotten() {
        let data = tempfile::tempdir().unwrap();
        let store = Binaries::new(data.path());
        let m = store.store(&ALICE, &data.path().join("a"), b"x").unwrap();
        let stored = data
            .path()
            .join("binaries")
            .join(hex::encode(ALICE.0))
            .join(m.to_hex());
        std::fs::remove_file(stored).unwrap();
        assert!(!store.link(&ALICE, &m, &data.path().join("b")).unwrap());
        assert_eq!(store.held(&ALICE), 0);
        // Uploaded again, it is stored again.
        store.store(&ALICE, &data.path().join("c"), b"x").unwrap();
        assert!(store.link(&ALICE, &m, &data.path().join("b")).unwrap());
    }

    #[test]
    fn a_leftover_of_an_earlier_run_is_never_linked_but_replaced() {
        let data = tempfile::tempdir().unwrap();
        let m = Measurement::of(b"good");
        let dir = data.path().join("binaries").join(hex::encode(ALICE.0));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(m.to_hex()), b"tampered").unwrap();
        let store = Binaries::new(data.path());
        assert!(!store.link(&ALICE, &m, &data.path().join("a")).unwrap());
        store
            .store(&ALICE, &data.path().join("b"), b"good")
            .unwrap();
        assert!(store.link(&ALICE, &m, &data.path().join("a")).unwrap());
        assert_eq!(bin(&data.path().join("a")), b"good");
    }
}
