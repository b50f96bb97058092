//! OS processes: liveness, signals, reaping, resident memory, and children whose output is collected as it
//! arrives and which are killed when dropped.

use std::fs;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::wait::wait_for;

/// How long a process gets to stop on SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Whether process `pid` exists and is not a zombie (an exited process nobody reaped yet
/// counts as gone).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A signal [`signal`] can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT, as Ctrl-C sends.
    Int,
    /// SIGTERM, a polite stop.
    Term,
    /// SIGKILL: no chance to clean up.
    Kill,
    /// SIGSTOP: the process stops running (a receiver that takes nothing in) until
    /// [`Signal::Cont`].
    Stop,
    /// SIGCONT: a stopped process runs again.
    Cont,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// Sends `signal` to `pid` (with `kill(1)`, so the test kit needs no unsafe code).
pub fn signal(pid: u32, signal: Signal) {
    let _ = Command::new("kill")
        .arg(format!("-{}", signal.name()))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits until `pid` is gone; false if it still runs after `timeout`.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Waits until `pid` is gone, panicking after `timeout` with `what`.
#[track_caller]
pub fn assert_gone(pid: u32, what: &str, timeout: Duration) {
    wait_for(what, timeout, || (!alive(pid)).then_some(()));
}

/// SIGTERM, then SIGKILL if `pid` outlives [`STOP_GRACE`].
pub fn terminate(pid: u32) {
    signal(pid, Signal::Term);
    if !wait_gone(pid, STOP_GRACE) {
        signal(pid, Signal::Kill);
        wait_gone(pid, STOP_GRACE);
    }
}

/// The process ids of the children of `pid` (from `/proc`), for finding the module
/// processes a node agent started. Every thread's children: a child belongs to the thread
/// that started it, which in a node agent is any of its runtime's workers.
pub fn children(pid: u32) -> Vec<u32> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_else(|_| Vec::new());
    let mut all: Vec<u32> = tasks
        .iter()
        .flat_map(|task| {
            fs::read_to_string(task.join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// A finished process: its exit and what it wrote.
#[derive(Debug)]
pub struct Run {
    /// What was run, for messages.
    pub what: String,
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.code(0)
    }

    /// Asserts exit code `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "`{}` exited with {} (expected {code})\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stderr contains every one of `needles`.
    #[track_caller]
    pub fn stderr_has(&self, needles: &[&str]) -> &Self {
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr of `{}` lacks {n:?}:\n{}",
                self.what,
                self.stderr
            );
        }
        self
    }

    /// Asserts that stdout contains every one of `needles`.
    #[track_caller]
    pub fn stdout_has(&self, needles: &[&str]) -> &Self {
        for n in needles {
            assert!(
                self.stdout.contains(n),
                "stdout of `{}` lacks {n:?}:\n{}",
                self.what,
                self.stdout
            );
        }
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of `{}` is not JSON ({e}):\n{}\n--- stderr:\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// A running process whose stdout and stderr are collected by threads as they arrive. It is
/// killed and reaped when dropped.
pub struct Captured {
    /// The child.
    pub child: Child,
    what: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Captured {
    /// Spawns `cmd` with piped output; `what` names it in messages.
    pub fn spawn(mut cmd: Command, what: &str) -> Captured {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{what}`: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Captured {
            child,
            what: what.to_string(),
            stdout,
            stderr,
            readers,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stdout so far.
    pub fn stdout_so_far(&self) -> String {
        text(&self.stdout)
    }

    /// Stderr so far.
    pub fn stderr_so_far(&self) -> String {
        text(&self.stderr)
    }

    /// Waits until stderr contains `needle`, panicking after `timeout` with what it wrote.
    #[track_caller]
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let err = self.stderr_so_far();
            if err.contains(needle) {
                return err;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            assert!(
                !exited && Instant::now() < deadline,
                "`{}` {} before writing {needle:?}\n--- stdout:\n{}\n--- stderr:\n{err}",
                self.what,
                if exited { "exited" } else { "timed out" },
                self.stdout_so_far()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit (killing it after `timeout`, which fails the test) and
    /// returns what it did.
    #[track_caller]
    pub fn finish(mut self, timeout: Duration) -> Run {
        let deadline = Instant::now() + timeout;
        let status: ExitStatus = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let (stdout, stderr) = self.output();
                panic!(
                    "`{}` did not finish within {timeout:?}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let (stdout, stderr) = self.output();
        Run {
            what: self.what.clone(),
            code: status.code().unwrap_or(-1),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout,
            stderr,
        }
    }

    /// Everything written, once the process has exited. A grandchild that inherited the pipes
    /// could keep them open; the readers get two seconds, then what they have is returned.
    pub fn output(&mut self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for r in std::mem::take(&mut self.readers) {
            if r.is_finished() {
                let _ = r.join();
            }
        }
        (text(&self.stdout), text(&self.stderr))
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn text(bytes: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&bytes.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`), if it runs.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_child_is_gone_and_reports_its_signal() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started >&2; exec sleep 30"]);
        let mut child = Captured::spawn(cmd, "sleeper");
        child.wait_stderr("started", Duration::from_secs(5));
        let pid = child.pid();
        assert!(alive(pid));
        signal(pid, Signal::Kill);
        let run = child.finish(Duration::from_secs(5));
        assert_eq!(run.signal, Some(9));
        assert!(!alive(pid));
    }

    #[test]
    fn output_and_exit_code_are_collected() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let run = Captured::spawn(cmd, "sh").finish(Duration::from_secs(5));
        assert_eq!((run.code, run.stdout.as_str()), (3, "out\n"));
        run.stderr_has(&["err"]);
    }
}
