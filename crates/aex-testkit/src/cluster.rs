//! An application directory, and a cluster of two test-started nodes running ping-pong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::cli::{self, COMMAND_TIMEOUT};
use crate::descriptor::{IdentityPin, PingPong, PlatformKey};
use crate::node::{stop_up_nodes, NodeOptions, NodeProcess};
use crate::process::Run;
use crate::proxy::{Insider, Proxy, RecordTamper, Tamper};
use crate::state;
use crate::status::{AppStatus, StatusExt};
use crate::{identity, wait_until, PATIENCE};

/// Timeout of `aex` commands that do not build or deploy.
const QUICK: Duration = Duration::from_secs(30);

/// A temporary directory holding an application descriptor. On drop it stops any node agent
/// `aex up` left running for the application, then deletes the directory.
pub struct AppDir {
    dir: TempDir,
    /// The deployer identity file every `aex` of this application runs with.
    pub identity: PathBuf,
}

impl AppDir {
    /// An application of the default test deployer.
    pub fn new() -> AppDir {
        Self::deployed_by(&identity::deployer().path)
    }

    /// An application of the deployer whose identity file is `identity`.
    pub fn deployed_by(identity: &Path) -> AppDir {
        AppDir {
            dir: tempfile::Builder::new()
                .prefix("aex-cli-test-")
                .tempdir()
                .expect("create temporary directory"),
            identity: identity.to_path_buf(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` as `aex.toml`.
    pub fn write_descriptor(&self, text: &str) -> PathBuf {
        let path = self.path().join("aex.toml");
        std::fs::write(&path, text).expect("write descriptor");
        path
    }

    /// Runs `aex args... -C <dir>`.
    pub fn aex(&self, args: &[&str]) -> Run {
        self.aex_timeout(args, QUICK)
    }

    /// Runs `aex args... -C <dir>` with a timeout.
    pub fn aex_timeout(&self, args: &[&str], timeout: Duration) -> Run {
        let dir = self.path().display().to_string();
        let mut all = args.to_vec();
        all.extend(["-C", &dir]);
        cli::run_as(&self.identity, &all, timeout)
    }

    /// `aex deploy <dir>` (of the prebuilt modules).
    pub fn deploy(&self) -> Run {
        self.deploy_with(&[])
    }

    /// `aex deploy <dir> args...` (of the prebuilt modules), e.g. `--discard-state pong`.
    pub fn deploy_with(&self, args: &[&str]) -> Run {
        let dir = self.path().display().to_string();
        let mut all = vec!["deploy", dir.as_str()];
        all.extend(args);
        cli::run_as(&self.identity, &all, COMMAND_TIMEOUT)
    }

    /// `aex status --json`, parsed.
    pub fn status(&self) -> AppStatus {
        AppStatus::parse(self.aex(&["status", "--json"]).ok().json())
    }

    /// `aex call module entry [payload]`, which must succeed; its stdout as JSON.
    pub fn call(&self, module: &str, entry: &str, payload: Option<&str>) -> Value {
        let mut args = vec!["call", module, entry];
        args.extend(payload);
        self.aex(&args).ok().json()
    }

    /// Starts a ping run of `count` pings with `aex call ping start`.
    pub fn start_pings(&self, count: u32) {
        let payload = format!("{{\"count\":{count},\"size\":64}}");
        self.aex(&["call", "ping", "start", &payload]).ok();
    }

    /// `aex call ping stats`.
    pub fn ping_stats(&self) -> Value {
        self.call("ping", "stats", None)
    }

    /// Waits until ping reports its run of `count` done, and returns the stats.
    pub fn wait_pings_done(&self, count: u32) -> Value {
        let mut last = Value::Null;
        wait_until(
            &format!("a ping run of {count} to complete"),
            PATIENCE,
            || {
                last = self.ping_stats();
                let s = &last;
                if s["done"] == true && s["count"] == count && s["completed"] == count {
                    Ok(())
                } else {
                    Err(format!("ping stats {s}"))
                }
            },
        );
        last
    }

    /// The deployer's state (`.aex/state.redb`), which must exist.
    #[track_caller]
    pub fn state(&self) -> aex_deploy::state::State {
        self.saved_state()
            .expect("a deployer state in .aex/state.redb (nothing was saved yet)")
    }

    /// The deployer's state, or `None` if nothing was saved yet; panics if it cannot be read.
    #[track_caller]
    pub fn saved_state(&self) -> Option<aex_deploy::state::State> {
        state::try_read(self.path()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The wire id of connection `name`, from the deployer's state file.
    #[track_caller]
    pub fn conn_id(&self, name: &str) -> u32 {
        let state = self.state();
        state
            .connections
            .get(name)
            .map(|c| c.id)
            .unwrap_or_else(|| panic!("no connection `{name}` in the deployer state"))
    }
}

impl Default for AppDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AppDir {
    fn drop(&mut self) {
        stop_up_nodes(self.path());
    }
}

/// How node2's trusted platform key appears in a cluster's descriptor.
pub enum Node2Key {
    /// Its own `platform.pub`, as `platform_key_file`.
    Own,
    /// Node1's key, inline: the descriptor trusts the wrong platform for node2.
    Node1sInline,
}

/// Options of a [`Cluster`].
pub struct Options {
    /// Put a compromised agent of node2 between the world and node2 (deployer sessions and
    /// node1's link cross it): it holds node2's identity key, node1's (to re-originate its
    /// link) and the test deployer's, and rewrites decoded frames.
    pub tamper: Option<Arc<dyn Tamper>>,
    /// Put a network attacker between the world and node2: it sees and rewrites the links'
    /// ciphertext records only. Not with `tamper`.
    pub network: Option<Arc<dyn RecordTamper>>,
    /// Add the direct connection `poke` (deployer → pong.ping).
    pub poke: bool,
    /// How the descriptor names node2's platform key.
    pub node2_key: Node2Key,
    /// More arguments to both `aex node` processes (`--timeout`, `--limit`, ...).
    pub node_args: Vec<String>,
    /// Deploy the C pong (examples/ping-pong-c) instead of the Rust one.
    pub c_pong: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tamper: None,
            network: None,
            poke: false,
            node2_key: Node2Key::Own,
            node_args: vec![],
            c_pong: false,
        }
    }
}

/// Two `aex node` processes started by the test (node1 runs ping, node2 pong), optionally with
/// an attacking proxy in front of node2, and a descriptor for them (pinning both nodes'
/// identities). Not deployed yet.
///
/// With a proxy, the descriptor gives node2's address as the proxy's, so the deployer's
/// sessions with node2 and node1's event link to node2 both cross it.
pub struct Cluster {
    // Fields drop in order: nodes first (they live in the app directory), the app last.
    /// The node running ping.
    pub node1: NodeProcess,
    /// The node running pong.
    pub node2: NodeProcess,
    _proxy: Option<Proxy>,
    /// The application directory.
    pub app: AppDir,
    /// The descriptor as first written (`aex.toml`), for tests that deploy variants of it.
    pub descriptor: String,
}

impl Cluster {
    /// Starts both nodes (and the proxy) and writes the descriptor.
    pub fn start(opts: Options) -> Cluster {
        let app = AppDir::new();
        let args: Vec<&str> = opts.node_args.iter().map(String::as_str).collect();
        let node1 = NodeOptions::new("node1", app.path().join("node1"))
            .args(&args)
            .start();
        let node2 = NodeOptions::new("node2", app.path().join("node2"))
            .args(&args)
            .start();
        let proxy = match (opts.tamper, opts.network) {
            (Some(t), _) => {
                let insider = Insider::of(
                    &node2.data_dir,
                    &[&node1.data_dir],
                    identity::deployer().identity.signing(),
                );
                Some(Proxy::inside(node2.addr, insider, t))
            }
            (None, Some(t)) => Some(Proxy::network(node2.addr, t)),
            (None, None) => None,
        };
        let node2_addr: SocketAddr = proxy.as_ref().map_or(node2.addr, Proxy::addr);
        let node2_key = match opts.node2_key {
            Node2Key::Own => PlatformKey::File(node2.platform_pub_file()),
            Node2Key::Node1sInline => PlatformKey::Inline(node1.platform_pub_hex()),
        };
        let desc = PingPong {
            nodes: [
                (node1.addr, PlatformKey::File(node1.platform_pub_file())),
                (node2_addr, node2_key),
            ],
            identities: [
                Some(IdentityPin::File(node1.identity_pub_file())),
                Some(IdentityPin::File(node2.identity_pub_file())),
            ],
            c_pong: opts.c_pong,
            poke: opts.poke,
        };
        let descriptor = desc.render();
        app.write_descriptor(&descriptor);
        Cluster {
            node1,
            node2,
            _proxy: proxy,
            app,
            descriptor,
        }
    }

    /// Deploys, expecting success, and checks that both modules run attested.
    pub fn deploy_ok(&self) {
        self.deploy_ok_with(&[]);
    }

    /// [`Cluster::deploy_ok`] with more arguments to `aex deploy`.
    pub fn deploy_ok_with(&self, args: &[&str]) {
        self.app.deploy_with(args).ok();
        self.app.status().assert_healthy();
    }

    /// Asserts that both node processes still run.
    #[track_caller]
    pub fn assert_nodes_running(&mut self) {
        assert!(self.node1.running(), "node1 exited");
        assert!(self.node2.running(), "node2 exited");
    }
}
