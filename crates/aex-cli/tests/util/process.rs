//! OS processes: liveness, signals, and `aex node` agents the tests start themselves.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{cli, free_addr, identity};

/// How long a node gets to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

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

/// Sends `signal` (`"INT"`, `"TERM"`, `"KILL"`) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
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
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// SIGTERM, then SIGKILL if `pid` outlives the grace period.
fn terminate(pid: u32) {
    signal(pid, "TERM");
    if !wait_gone(pid, STOP_GRACE) {
        signal(pid, "KILL");
        wait_gone(pid, STOP_GRACE);
    }
}

/// Whether `pid` is an `aex node` process (guards against pid reuse before signalling).
fn is_aex_node(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"aex")) && args.get(1) == Some(&&b"node"[..])
    })
}

/// Stops every node agent `aex up` started for the application in `app_dir` that is still
/// running: the pids in the deployer state and in the nodes' `node.pid` files.
pub fn stop_up_nodes(app_dir: &Path) {
    for pid in up_node_pids(app_dir) {
        if is_aex_node(pid) {
            terminate(pid);
        }
    }
}

/// Node pids `aex up` recorded for the application in `app_dir`, and those the nodes announce.
pub fn up_node_pids(app_dir: &Path) -> Vec<u32> {
    let aex_dir = app_dir.join(".aex");
    let mut pids = vec![];
    if let Some(state) = super::state::read(app_dir) {
        if let Some(nodes) = state["nodes"].as_object() {
            pids.extend(
                nodes
                    .values()
                    .filter_map(|n| n["pid"].as_u64())
                    .filter_map(|p| u32::try_from(p).ok()),
            );
        }
    }
    if let Ok(dirs) = fs::read_dir(aex_dir.join("nodes")) {
        for d in dirs.flatten() {
            if let Ok(text) = fs::read_to_string(d.path().join("node.pid")) {
                pids.extend(text.trim().parse::<u32>().ok());
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// An `aex node` process started by a test on a free loopback port; stopped on drop.
pub struct NodeProcess {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    name: String,
    /// Deployer keys (hex) the node admits.
    admit: Vec<String>,
    child: Child,
}

impl NodeProcess {
    /// Starts `aex node --name name --listen <free port> --data-dir data_dir --tee sgx
    /// --allow-remote-shutdown --admit <default test deployer>` and waits until it accepts
    /// connections.
    pub fn start(name: &str, data_dir: PathBuf) -> NodeProcess {
        Self::start_admitting(name, data_dir, &[identity::deployer().hex()])
    }

    /// Like [`NodeProcess::start`], admitting the deployer keys `admit` (hex) instead.
    pub fn start_admitting(name: &str, data_dir: PathBuf, admit: &[String]) -> NodeProcess {
        fs::create_dir_all(&data_dir).expect("create node data directory");
        // Another process may take the free port between our probe and the node's bind;
        // then the node exits at once and we try another port.
        for _ in 0..5 {
            if let Some(node) = Self::try_start(name, &data_dir, free_addr(), admit) {
                return node;
            }
        }
        panic!(
            "node `{name}` failed to start; log:\n{}",
            fs::read_to_string(data_dir.join("node.log")).unwrap_or_default()
        );
    }

    /// Starts the node on `addr`; `None` if it exits before accepting connections (the port
    /// is taken).
    fn try_start(
        name: &str,
        data_dir: &Path,
        addr: SocketAddr,
        admit: &[String],
    ) -> Option<NodeProcess> {
        let log_path = data_dir.join("node.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open node log");
        let mut cmd = cli::aex();
        cmd.args(["node", "--name", name, "--listen", &addr.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--tee", "sgx", "--allow-remote-shutdown"])
            .args(admit.iter().flat_map(|key| ["--admit", key]))
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn aex node");
        let mut node = NodeProcess {
            addr,
            data_dir: data_dir.to_path_buf(),
            name: name.to_string(),
            admit: admit.to_vec(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                && data_dir.join("platform.pub").is_file()
            {
                return Some(node);
            }
            if let Ok(Some(_)) = node.child.try_wait() {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "node `{name}` did not accept connections on {addr}; log:\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The node agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the node agent with SIGKILL (no chance to stop its modules itself) and reaps it.
    pub fn kill(&mut self) {
        signal(self.child.id(), "KILL");
        let _ = self.child.wait();
    }

    /// Starts the node again, after [`NodeProcess::kill`], on the same address with the same
    /// data directory (so the same platform key). Retries for a few seconds while the port is
    /// not free again yet.
    pub fn restart(&mut self) {
        assert!(!self.running(), "restart of a running node `{}`", self.name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(node) = Self::try_start(&self.name, &self.data_dir, self.addr, &self.admit)
            {
                // The old child is reaped; the new one takes its place (and its drop guard).
                *self = node;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node `{}` did not start again on {}; log:\n{}",
                self.name,
                self.addr,
                fs::read_to_string(self.data_dir.join("node.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the node process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The file holding the node's public platform key (hex), written when it starts.
    pub fn platform_pub_file(&self) -> PathBuf {
        self.data_dir.join("platform.pub")
    }

    /// The node's public platform key in hex.
    pub fn platform_pub_hex(&self) -> String {
        fs::read_to_string(self.platform_pub_file())
            .expect("read platform.pub")
            .trim()
            .to_string()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(self.child.id());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
