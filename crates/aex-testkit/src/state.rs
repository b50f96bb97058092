//! The deployer's state (`.aex/state.redb`), read through the deployer library: the real
//! records, and the same as JSON (keys in hex) for comparing keys across deploys.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use aex_deploy::state::{State, StateFile, STATE_DIR, STATE_FILE};
use serde_json::Value;

/// How long to wait for an `aex` process that holds the state to let go of it.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// The state of the application in `app_dir`, or `None` if there is none yet, it cannot be
/// read (said on stderr; no panic, since drop guards call this), or another process holds it
/// for longer than [`LOCK_PATIENCE`].
pub fn read(app_dir: &Path) -> Option<State> {
    if !app_dir.join(STATE_DIR).join(STATE_FILE).exists() {
        return None;
    }
    let dir = app_dir.to_path_buf();
    let (tx, rx) = mpsc::channel();
    // Opening waits for the state lock; a thread keeps a stuck holder from hanging the test.
    std::thread::spawn(move || {
        let _ = tx.send(StateFile::open(&dir).map(|sf| sf.state));
    });
    match rx.recv_timeout(LOCK_PATIENCE) {
        Ok(Ok(state)) => Some(state),
        Ok(Err(e)) => {
            eprintln!("cannot read the deployer state: {e}");
            None
        }
        Err(_) => {
            eprintln!("the deployer state stayed locked for {LOCK_PATIENCE:?}");
            None
        }
    }
}

/// [`read`] as JSON, the shape the records serialize to (keys in hex).
pub fn read_json(app_dir: &Path) -> Option<Value> {
    read(app_dir).map(|s| serde_json::to_value(&s).expect("the deployer state serializes"))
}
