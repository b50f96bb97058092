//! Node agents for tests: real `aex node` processes on free loopback ports, and node agents
//! running inside the test process on their own runtime (for tests of the node crate).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use aex_node::{Node, NodeConfig, NodeHandle};
use aex_proto::DeployerKey;

use crate::process::{signal, terminate, Signal};
use crate::{cli, identity};

/// How long a node gets to start accepting connections.
const START_PATIENCE: Duration = Duration::from_secs(15);

/// How to start an `aex node` process.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    name: String,
    data_dir: PathBuf,
    tee: String,
    admit: Vec<String>,
    extra: Vec<String>,
    netns: Option<String>,
}

impl NodeOptions {
    /// A `sgx` node named `name` with its data in `data_dir`, admitting the default test
    /// deployer, accepting remote `Shutdown`.
    pub fn new(name: &str, data_dir: PathBuf) -> Self {
        NodeOptions {
            name: name.into(),
            data_dir,
            tee: "sgx".into(),
            admit: vec![identity::deployer().hex()],
            extra: vec![],
            netns: None,
        }
    }

    /// The node's TEE kind (`sgx`, `trustzone`, `sancus`, `native`).
    pub fn tee(mut self, tee: &str) -> Self {
        self.tee = tee.into();
        self
    }

    /// Admits these deployer keys (hex) instead of the default test deployer.
    pub fn admit(mut self, keys: &[String]) -> Self {
        self.admit = keys.to_vec();
        self
    }

    /// Adds command-line arguments (`--device`, `--timeout`, ...).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Runs the node inside network namespace `netns` (see [`crate::netns::Hosts`]).
    pub fn netns(mut self, netns: &str) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// Starts the node.
    #[track_caller]
    pub fn start(self) -> NodeProcess {
        NodeProcess::start_with(self)
    }

    /// Starts the node on `listen` (an address another node just left: retried while the
    /// port is not free again).
    #[track_caller]
    pub fn start_on(self, listen: SocketAddr) -> NodeProcess {
        fs::create_dir_all(&self.data_dir).expect("create node data directory");
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            match NodeProcess::spawn(self.clone(), listen) {
                Ok(node) => return node,
                Err(why) => assert!(
                    Instant::now() < deadline,
                    "node `{}` did not start on {listen}: {why}",
                    self.name
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An `aex node` process started by a test; stopped (SIGTERM, then SIGKILL) on drop.
pub struct NodeProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    options: NodeOptions,
    child: Child,
}

impl NodeProcess {
    /// Starts [`NodeOptions::new`]`(name, data_dir)`.
    #[track_caller]
    pub fn start(name: &str, data_dir: PathBuf) -> NodeProcess {
        NodeOptions::new(name, data_dir).start()
    }

    /// Starts a node as `options` say, on a port the node picks itself (it writes the address
    /// it bound to `node.addr`), and waits until it accepts connections.
    #[track_caller]
    pub fn start_with(options: NodeOptions) -> NodeProcess {
        fs::create_dir_all(&options.data_dir).expect("create node data directory");
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        match Self::spawn(options.clone(), listen) {
            Ok(node) => node,
            Err(why) => panic!("node `{}` did not start: {why}", options.name),
        }
    }

    /// Starts the node on `listen` and waits for its `node.addr`; the error says why not.
    fn spawn(options: NodeOptions, listen: SocketAddr) -> Result<NodeProcess, String> {
        let addr_file = options.data_dir.join("node.addr");
        let _ = fs::remove_file(&addr_file);
        let log_path = options.data_dir.join("node.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open node log");
        let mut cmd = match &options.netns {
            Some(netns) => cli::aex_in_netns(netns),
            None => cli::aex(),
        };
        cmd.args(["node", "--name", &options.name])
            .args(["--listen", &listen.to_string()])
            .arg("--data-dir")
            .arg(&options.data_dir)
            .args(["--tee", &options.tee, "--allow-remote-shutdown"])
            .args(options.admit.iter().flat_map(|key| ["--admit", key]))
            .args(&options.extra)
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn aex node");
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(addr) = fs::read_to_string(&addr_file)
                .ok()
                .and_then(|a| a.trim().parse().ok())
            {
                // The node wrote its identity before it announced its address.
                let pub_file = options.data_dir.join(aex_link::keys::IDENTITY_PUB_FILE);
                let key = match aex_link::keys::read_public(&pub_file) {
                    Ok(key) => key,
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!("it announced {addr} without an identity: {e}"));
                    }
                };
                crate::session::pin(addr, key);
                return Ok(NodeProcess {
                    addr,
                    data_dir: options.data_dir.clone(),
                    options,
                    child,
                });
            }
            let log = || fs::read_to_string(&log_path).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("it exited ({status}); log:\n{}", log()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it wrote no node.addr within {START_PATIENCE:?}; log:\n{}",
                    log()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The node agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the node agent with SIGKILL (no chance to stop its modules itself) and reaps it.
    pub fn kill(&mut self) {
        signal(self.child.id(), Signal::Kill);
        let _ = self.child.wait();
    }

    /// Starts the node again, after [`NodeProcess::kill`], on the same address with the same
    /// data directory (so the same platform key). Retries while the port is not free again.
    #[track_caller]
    pub fn restart(&mut self) {
        assert!(
            !self.running(),
            "restart of a running node `{}`",
            self.options.name
        );
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            match Self::spawn(self.options.clone(), self.addr) {
                // The old child is reaped; the new one takes its place (and its drop guard).
                Ok(node) => {
                    *self = node;
                    return;
                }
                Err(why) => assert!(
                    Instant::now() < deadline,
                    "node `{}` did not start again on {}: {why}",
                    self.options.name,
                    self.addr
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the node process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.data_dir.join("node.log")).unwrap_or_default()
    }

    /// The file holding the node's identity key (hex), written when it first starts.
    pub fn identity_pub_file(&self) -> PathBuf {
        self.data_dir.join(aex_link::keys::IDENTITY_PUB_FILE)
    }

    /// The node's identity key.
    pub fn identity(&self) -> aex_proto::NodeKey {
        aex_link::keys::read_public(&self.identity_pub_file()).expect("read node-identity.pub")
    }

    /// The node's identity key pair, read from its data directory (what a compromised agent,
    /// or its operator, holds).
    pub fn identity_key(&self) -> aex_link::StaticKey {
        aex_link::keys::load_or_create(&self.data_dir)
            .expect("read node-identity.key")
            .0
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

/// Whether `pid` is an `aex node` process (guards against pid reuse before signalling).
pub fn is_aex_node(pid: u32) -> bool {
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
    let mut pids = vec![];
    if let Some(state) = crate::state::read(app_dir) {
        pids.extend(state.nodes.values().filter_map(|n| n.pid));
    }
    if let Ok(dirs) = fs::read_dir(app_dir.join(".aex").join("nodes")) {
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

/// The deployer identity every [`TestNode`] admits by default (a fixed seed, so tests can
/// sign as it without files).
pub fn test_deployer() -> aex_crypto::SigningIdentity {
    aex_crypto::SigningIdentity::from_seed(&[0x5a; 32])
}

/// A node agent running inside the test process on a runtime of its own, with its data in a
/// temporary directory; stopped (its modules killed) on drop. For tests of the node crate
/// that also want to look inside the data directory or start many nodes cheaply.
pub struct TestNode {
    handle: Option<NodeHandle>,
    runtime: tokio::runtime::Runtime,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Scratch space beside it (for script modules' support files).
    pub scratch: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// A configuration for a node in `data_dir` admitting [`test_deployer`], on a free port,
    /// `sgx`, accepting remote `Shutdown`.
    pub fn config(name: &str, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            data_dir,
            tee: aex_tee::TeeKind::Sgx,
            allow_remote_shutdown: true,
            admit: vec![DeployerKey::of(&test_deployer())],
            open: false,
            peers: vec![],
            devices: vec![],
            timeouts: aex_node::Timeouts::default(),
            limits: aex_node::Limits::default(),
            metrics: None,
        }
    }

    /// Starts a node with [`TestNode::config`].
    #[track_caller]
    pub fn start(name: &str) -> TestNode {
        Self::start_with(name, |_| {})
    }

    /// Starts a node whose default configuration is first changed by `adjust`.
    #[track_caller]
    pub fn start_with(name: &str, adjust: impl FnOnce(&mut NodeConfig)) -> TestNode {
        Self::try_start_with(name, adjust)
            .unwrap_or_else(|e| panic!("node `{name}` did not start: {e}"))
    }

    /// Like [`TestNode::start_with`], for a configuration the node may refuse: the error is
    /// the node's own.
    pub fn try_start_with(
        name: &str,
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> Result<TestNode, aex_node::NodeError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data_dir = dir.path().join("data");
        let scratch = dir.path().join("scratch");
        fs::create_dir_all(&scratch).expect("create scratch directory");
        let mut config = Self::config(name, data_dir.clone());
        adjust(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("node runtime");
        let handle = runtime.block_on(Node::start(config))?;
        crate::session::pin(handle.local_addr(), handle.identity());
        Ok(TestNode {
            handle: Some(handle),
            runtime,
            data_dir,
            scratch,
            _dir: dir,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle().local_addr()
    }

    /// The node's identity key.
    pub fn identity(&self) -> aex_proto::NodeKey {
        self.handle().identity()
    }

    /// The node's identity key pair, read from its data directory.
    pub fn identity_key(&self) -> aex_link::StaticKey {
        aex_link::keys::load_or_create(&self.data_dir)
            .expect("read node-identity.key")
            .0
    }

    /// The node's handle.
    pub fn handle(&self) -> &NodeHandle {
        self.handle.as_ref().expect("the node runs")
    }

    /// Waits until the node has stopped by itself (after an accepted `Shutdown`), at most
    /// `timeout`; false if it still runs.
    pub fn wait_stopped(&mut self, timeout: Duration) -> bool {
        let Some(mut handle) = self.handle.take() else {
            return true;
        };
        let stopped = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, handle.wait()).await.is_ok() });
        if !stopped {
            self.handle = Some(handle);
        }
        stopped
    }

    /// Stops the node now (its modules killed, its announcement files and sockets removed),
    /// as a clean stop of the agent would; its directories stay until the `TestNode` drops.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }

    /// A signed deployer session of [`test_deployer`] for application `test-app`.
    pub fn session(&self) -> crate::session::Session {
        crate::session::Session::open(self.addr(), &test_deployer(), "test-app")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop();
    }
}
