//! The deployer's state (`.aex/state.redb`), read through the deployer library as JSON.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use aex_deploy::state::{StateFile, STATE_DIR, STATE_FILE};
use serde_json::Value;

/// How long to wait for an `aex` process that holds the state to let go of it.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// The state of the application in `app_dir` as JSON (the shape `state.json` had), or `None`
/// if there is none yet, it cannot be read (said on stderr; no panic, since drop guards call
/// this), or another process holds it for longer than [`LOCK_PATIENCE`].
pub fn read(app_dir: &Path) -> Option<Value> {
    if !app_dir.join(STATE_DIR).join(STATE_FILE).exists() {
        return None;
    }
    let dir = app_dir.to_path_buf();
    let (tx, rx) = mpsc::channel();
    // Opening waits for the state lock; a thread keeps a stuck holder from hanging the test.
    std::thread::spawn(move || {
        let state = StateFile::open(&dir)
            .map(|sf| serde_json::to_value(&sf.state).expect("state serializes"));
        let _ = tx.send(state);
    });
    match rx.recv_timeout(LOCK_PATIENCE) {
        Ok(Ok(state)) => Some(state),
        Ok(Err(e)) => {
            eprintln!("cannot read the deployer state: {e}");
            None
        }
        Err(_) => None,
    }
}
