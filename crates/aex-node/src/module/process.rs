//! A module's OS process: starting it, and waiting for it to end.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use aex_crypto::Measurement;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::sleep;
use tracing::{info, warn};

use super::Module;

/// Starts the process, retrying while the freshly written binary is still open for writing in
/// a concurrently forked child (`ETXTBSY`).
pub(super) async fn spawn(
    name: &str,
    dir: &Path,
    measurement: &Measurement,
    log: &Path,
) -> io::Result<Child> {
    let mut attempt = 0u32;
    loop {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let spawned = Command::new(dir.join("module.bin"))
            .current_dir(dir)
            .env("AEX_MEASUREMENT", measurement.to_hex())
            .env("AEX_MODULE", name)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempt < 20 => {
                attempt += 1;
                sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

/// What the task that waits for a module's process needs to record its end.
pub(super) struct Ending {
    pub(super) name: String,
    pub(super) exit: watch::Sender<Option<String>>,
    pub(super) alive: Arc<AtomicBool>,
    /// The module, to report it when its process ended on its own.
    pub(super) module: Weak<Module>,
    pub(super) exits: mpsc::Sender<Weak<Module>>,
}

/// Waits for the process to end (or kills it when asked or when its module is dropped),
/// records how it ended, and reports a process that ended on its own (`supervise.rs`
/// restarts persistent modules).
pub(super) async fn wait_exit(mut child: Child, kill: oneshot::Receiver<()>, ending: Ending) {
    let (status, on_its_own) = tokio::select! {
        status = child.wait() => (status, true),
        _ = kill => {
            let _ = child.start_kill();
            (child.wait().await, false)
        }
    };
    let status = match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("unknown exit ({e})"),
    };
    ending.alive.store(false, Ordering::Relaxed);
    info!(module = %ending.name, exit = %status, "module process ended");
    ending.exit.send_replace(Some(status));
    if on_its_own && ending.exits.try_send(ending.module).is_err() {
        warn!(module = %ending.name, "too many module exits at once; not restarted");
    }
}
