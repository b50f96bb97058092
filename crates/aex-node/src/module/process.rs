//! A module's OS process: starting it, and waiting for it to end.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use aex_crypto::Measurement;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
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
    // The log is opened here so that a directory it cannot be written to fails the start.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut attempt = 0u32;
    loop {
        let spawned = Command::new(dir.join("module.bin"))
            .current_dir(dir)
            .env("AEX_MEASUREMENT", measurement.to_hex())
            .env("AEX_MODULE", name)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
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

/// Bytes `module.log` holds before it is rotated to `module.log.1` (replacing the one before):
/// a module that logs without end takes at most twice this of its node's disk.
pub(crate) const LOG_BYTES: u64 = 1 << 20;

/// Copies the module's stderr into `log` until the module closes it, rotating at
/// [`LOG_BYTES`]. It never stops reading, so a module is never blocked on its log: what
/// cannot be written (a full disk) is dropped, and said once in the node's log. An idle
/// module costs it a 2 KiB buffer and no open file: the log is opened per write.
pub(super) async fn copy_log(mut stderr: ChildStderr, log: PathBuf) {
    let mut warned = false;
    let mut buf = [0u8; 2048];
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Err(e) = append(&log, &buf[..n]).await {
            if !std::mem::replace(&mut warned, true) {
                warn!(log = %log.display(), error = %e, "cannot write a module's log; its lines are dropped");
            }
        }
    }
}

/// Appends `bytes` to `log`, first moving it to `log.1` if they would take it past
/// [`LOG_BYTES`].
async fn append(log: &Path, bytes: &[u8]) -> io::Result<()> {
    let size = tokio::fs::metadata(log).await.map_or(0, |m| m.len());
    if size + bytes.len() as u64 > LOG_BYTES {
        tokio::fs::rename(log, log.with_extension("log.1")).await?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .await?;
    file.write_all(bytes).await?;
    file.flush().await
}

/// What the task that waits for a module's process needs to record its end.
pub(super) struct Ending {
    pub(super) name: String,
    pub(super) exit: watch::Sender<Option<String>>,
    pub(super) alive: Arc<AtomicBool>,
    /// The module, to report it when its process ended on its own.
    pub(super) module: Weak<Module>,
    pub(super) exits: mpsc::Sender<Weak<Module>>,
    /// The copy of its stderr to its log, waited for (briefly) before its end is recorded, so
    /// that whoever reads the log after seeing the exit finds its last lines.
    pub(super) log: Option<JoinHandle<()>>,
}

/// Waits for the process to end (or kills it when asked or when its module is dropped),
/// records how it ended, and reports a process that ended on its own (`supervise.rs`
/// restarts persistent modules).
pub(super) async fn wait_exit(mut child: Child, kill: oneshot::Receiver<()>, mut ending: Ending) {
    let (status, on_its_own) = tokio::select! {
        status = child.wait() => (status, true),
        _ = kill => {
            let _ = child.start_kill();
            (child.wait().await, false)
        }
    };
    logged(ending.log.take()).await;
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

/// Waits a moment for a log copy to finish (a process's descendants may hold its stderr open:
/// not for ever).
pub(super) async fn logged(copy: Option<JoinHandle<()>>) {
    if let Some(copy) = copy {
        let _ = tokio::time::timeout(Duration::from_millis(500), copy).await;
    }
}

/// The last lines of the log at `log` ([`aex_proto::LOG_TAIL_LINES`] at most, each cut at
/// [`aex_proto::LOG_TAIL_LINE`] bytes), read from its last few KiB; none if it cannot be read.
/// For a module whose process ended: its owner reads why without the node's disk.
pub(super) fn log_tail(log: &Path) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 4096;
    let Ok(mut file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(WINDOW);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(WINDOW).read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The window began inside a line.
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(aex_proto::LOG_TAIL_LINES);
    lines[from..].iter().map(|line| cut(line)).collect()
}

/// `line`, at most [`aex_proto::LOG_TAIL_LINE`] bytes, cut at a character boundary.
fn cut(line: &str) -> String {
    let mut end = line.len().min(aex_proto::LOG_TAIL_LINE);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::log_tail;

    #[test]
    fn a_log_tail_is_the_last_whole_lines_each_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("module.log");
        assert!(log_tail(&log).is_empty(), "no log yet");
        let mut text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        text.push_str(&"é".repeat(400));
        text.push('\n');
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log);
        assert_eq!(tail.len(), aex_proto::LOG_TAIL_LINES);
        assert_eq!(tail[0], "line 1991");
        assert_eq!(tail[8], "line 1999");
        // 800 bytes of two-byte characters, cut to 240.
        assert_eq!(tail[9], "é".repeat(120));
    }
}
