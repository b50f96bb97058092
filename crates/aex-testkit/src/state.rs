//! The deployer's state (`.aex/state.redb`), read through the deployer library into its own
//! records, and the bytes of the keys they hold, for comparing keys across deploys.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use aex_deploy::state::{State, StateFile, StoredKey, STATE_DIR, STATE_FILE};

/// How long to wait for an `aex` process that holds the state to let go of it.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// The state of the application in `app_dir`: `Ok(None)` if nothing was saved yet, an error
/// saying why if it cannot be read, or if another process holds it for longer than
/// `LOCK_PATIENCE`.
pub fn try_read(app_dir: &Path) -> Result<Option<State>, String> {
    if !app_dir.join(STATE_DIR).join(STATE_FILE).exists() {
        return Ok(None);
    }
    let dir = app_dir.to_path_buf();
    let (tx, rx) = mpsc::sync_channel(1);
    // Opening waits for the state lock; a thread keeps a stuck holder from hanging the test.
    std::thread::spawn(move || {
        let _ = tx.send(StateFile::open(&dir).map(StateFile::into_state));
    });
    match rx.recv_timeout(LOCK_PATIENCE) {
        Ok(Ok(state)) => Ok(Some(state)),
        Ok(Err(e)) => Err(format!("cannot read the deployer state: {e}")),
        Err(_) => Err(format!(
            "the deployer state stayed locked for {LOCK_PATIENCE:?}"
        )),
    }
}

/// [`try_read`] for drop guards, which must not panic: `None` also when the state cannot be
/// read (said on stderr).
pub fn read(app_dir: &Path) -> Option<State> {
    try_read(app_dir).unwrap_or_else(|e| {
        eprintln!("{e}");
        None
    })
}

/// The bytes of a stored key. The records keep keys out of their `Debug` output and do not
/// compare them; tests compare keys across deploys (kept, or fresh) through these.
pub fn key_bytes(key: &StoredKey) -> [u8; 32] {
    *key.expose_secret().expose_secret()
}
