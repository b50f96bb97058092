//! The state file of aex versions before the database, `.aex/state.json`: imported once into
//! the database, in one transaction, and then removed (a copy left behind would be a stale
//! copy of secrets).

use std::fs;
use std::path::Path;

use zeroize::Zeroizing;

use super::error::StateError;
use super::records::{check_version, State};

/// The state file of aex versions before the database, imported once and removed.
pub(super) const LEGACY_FILE: &str = "state.json";

/// The state in an older aex's `state.json`, if there is one.
pub(super) fn read_legacy(path: &Path) -> Result<Option<State>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let state: State = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    check_version(state.version, path)?;
    Ok(Some(state))
}

/// Removes an older aex's state file (and its temporary file), once imported.
pub(super) fn remove_legacy(dir: &Path, legacy: &Path) -> Result<(), StateError> {
    let mut removed = false;
    for p in [legacy.to_path_buf(), legacy.with_extension("json.tmp")] {
        match fs::remove_file(&p) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateError::Io {
                    action: "remove the imported",
                    path: p,
                    source,
                })
            }
        }
    }
    if removed {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::fixtures::{connection, module};
    use super::super::{StateFile, STATE_DIR};
    use super::*;
    use crate::state::records::FORMAT_VERSION;

    #[test]
    fn an_older_state_json_is_imported_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let aex = dir.path().join(STATE_DIR);
        fs::create_dir_all(&aex).unwrap();
        let legacy = State {
            version: FORMAT_VERSION,
            next_conn_id: 5,
            modules: BTreeMap::from([("m".into(), module(0xee, 12))]),
            connections: BTreeMap::from([("c".into(), connection(0x11))]),
            ..State::default()
        };
        fs::write(aex.join(LEGACY_FILE), serde_json::to_vec(&legacy).unwrap()).unwrap();
        fs::write(aex.join("state.json.tmp"), b"half-written").unwrap();
        let sf = StateFile::open(dir.path()).unwrap();
        assert_eq!(sf.state().next_conn_id, 5);
        assert_eq!(sf.state().modules["m"].last_command, 12);
        assert_eq!(
            sf.state().connections["c"]
                .key
                .expose_secret()
                .expose_secret(),
            &[0x11; 32]
        );
        assert!(
            !aex.join(LEGACY_FILE).exists(),
            "the JSON copy of the keys is gone"
        );
        assert!(!aex.join("state.json.tmp").exists());
        drop(sf);
        // Imported into the database, not just into memory.
        let again = StateFile::open(dir.path()).unwrap();
        assert_eq!(
            again.state().modules["m"]
                .key
                .expose_secret()
                .expose_secret(),
            &[0xee; 32]
        );
    }

    #[test]
    fn a_json_file_beside_an_imported_database_is_only_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut sf = StateFile::open(dir.path()).unwrap();
        sf.state_mut().next_conn_id = 3;
        sf.save().unwrap();
        drop(sf);
        // As if a crash struck between the import's commit and the removal.
        let stale = State {
            version: FORMAT_VERSION,
            next_conn_id: 99,
            ..State::default()
        };
        let legacy = dir.path().join(STATE_DIR).join(LEGACY_FILE);
        fs::write(&legacy, serde_json::to_vec(&stale).unwrap()).unwrap();
        let sf = StateFile::open(dir.path()).unwrap();
        assert_eq!(sf.state().next_conn_id, 3);
        assert!(!legacy.exists());
    }
}
