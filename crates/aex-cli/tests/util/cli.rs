//! Running the real `aex` binary with a deadline and inspecting its exit code and output.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any one `aex` invocation may take (a deploy may build the module crates).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The `aex` binary under test, with the environment every test uses: dev-profile module
/// builds (the child cargo inherits `CARGO_TARGET_DIR`), no colours, default logging, and the
/// default test deployer identity (never the real home directory's).
pub fn aex() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aex"));
    cmd.env("AEX_IDENTITY", &super::identity::deployer().path)
        .env("AEX_BUILD_PROFILE", "dev")
        .env("NO_COLOR", "1")
        .env_remove("AEX_LOG")
        .stdin(Stdio::null());
    cmd
}

/// A finished `aex` invocation.
#[derive(Debug)]
pub struct Run {
    /// What was run, for messages.
    pub what: String,
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
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

/// Runs `aex args...` in `dir` (if given) and waits for it, killing it after `timeout`.
pub fn run(dir: Option<&Path>, args: &[&str], timeout: Duration) -> Run {
    let mut cmd = aex();
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let what = format!("aex {}", args.join(" "));
    run_command(cmd, what, timeout)
}

/// Runs `aex args...` as the deployer whose identity file is `identity`.
pub fn run_as(identity: &Path, args: &[&str], timeout: Duration) -> Run {
    let mut cmd = aex();
    cmd.env("AEX_IDENTITY", identity).args(args);
    run_command(cmd, format!("aex {}", args.join(" ")), timeout)
}

/// Runs `cmd` (made with [`aex`], then adjusted) and waits for it, killing it after `timeout`.
pub fn run_command(cmd: Command, what: String, timeout: Duration) -> Run {
    let mut child = Captured::spawn(cmd, &what);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.child.try_wait().expect("wait for aex") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.child.kill();
            let _ = child.child.wait();
            let (stdout, stderr) = child.output();
            panic!(
                "`{what}` did not finish within {} s\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = child.output();
    Run {
        what,
        code: status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        stdout,
        stderr,
    }
}

/// A running `aex` process whose stdout and stderr are collected by threads as they arrive.
pub struct Captured {
    pub child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Captured {
    /// Spawns `cmd` with piped output.
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
            stdout,
            stderr,
            readers,
        }
    }

    /// Stdout so far.
    pub fn stdout_so_far(&self) -> String {
        text(&self.stdout)
    }

    /// Stderr so far.
    pub fn stderr_so_far(&self) -> String {
        text(&self.stderr)
    }

    /// Everything written, once the process has exited. A grandchild that inherited the pipes
    /// could keep them open; the readers get two seconds, then what they have is returned.
    pub fn output(&mut self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
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
