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

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; Linux's is 100).
fn ticks_per_s() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `(ppid, utime + stime, cutime + cstime)` of process `pid`, in ticks.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields are counted after it.
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // fields[0] is the state (field 3 of stat(5)), so field n is fields[n - 3].
    let ppid = u32::try_from(num(1)?).ok()?;
    Some((ppid, num(11)? + num(12)?, num(13)? + num(14)?))
}

/// The CPU seconds (user and system) `roots` and every process below them (a node agent and
/// its modules) have used so far, from `/proc`.
///
/// Steadier than a rate on a shared machine: a stream's events per second move with what
/// other tenants take, the CPU time its processes spend per event much less.
pub fn tree_cpu(roots: &[u32]) -> f64 {
    let mut all: Vec<(u32, (u32, u64, u64))> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(st) = stat(pid) {
                all.push((pid, st));
            }
        }
    }
    let mut inside: Vec<u32> = roots.to_vec();
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, (ppid, _, _)) in &all {
            if inside.contains(ppid) && !inside.contains(pid) {
                inside.push(*pid);
                grew = true;
            }
        }
    }
    let ticks: u64 = all
        .iter()
        .filter(|(pid, _)| inside.contains(pid))
        .map(|(_, (_, own, _))| own)
        .sum();
    ticks as f64 / ticks_per_s()
}

/// The CPU time of this process's children that ended and were waited for (with theirs).
pub fn reaped_children_cpu() -> f64 {
    stat(std::process::id()).map_or(0.0, |(_, _, children)| children as f64 / ticks_per_s())
}
