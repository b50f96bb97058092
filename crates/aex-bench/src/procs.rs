//! Child processes the benchmark starts, and what it reads about processes.
//!
//! Invariant: every process the benchmark starts is owned by a [`Guard`], which terminates
//! it (SIGTERM, then SIGKILL after a grace period) and reaps it when dropped, so an error or
//! a panic anywhere in a run leaves no process behind. aex module processes are the node
//! agent's children; they exit when their node does (their stdin closes).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Grace period between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A started process, terminated and reaped on drop.
pub struct Guard {
    what: String,
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Guard {
    /// Starts `cmd`; `what` names it in errors.
    pub fn spawn(what: impl Into<String>, cmd: &mut Command) -> Result<Guard> {
        let what = what.into();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stdout = child.stdout.take().map(BufReader::new);
        Ok(Guard {
            what,
            child,
            stdout,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads one line from the process's piped stdout (e.g. the address it listens on).
    pub fn read_line(&mut self) -> Result<String> {
        let what = &self.what;
        let out = self
            .stdout
            .as_mut()
            .with_context(|| format!("{what} has no piped stdout"))?;
        let mut line = String::new();
        out.read_line(&mut line)
            .with_context(|| format!("cannot read from {what}"))?;
        if line.is_empty() {
            bail!("{what} exited before announcing itself");
        }
        Ok(line.trim().to_string())
    }

    /// Waits at most `limit` for the process to exit on its own.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} did not finish within {} s", self.what, limit.as_secs());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.running() {
            return;
        }
        // SIGTERM first: an `aex node` then stops its modules itself.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        if self.wait(GRACE).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident set size of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Proportional set size of process `pid` in KiB (`Pss` in `/proc/<pid>/smaps_rollup`): its
/// resident memory with every page shared by n processes counted 1/n, so that the PSS of a
/// group of processes adds up to the memory they take together (RSS counts the shared code of
/// a thousand copies of one binary a thousand times).
pub fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
