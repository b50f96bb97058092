//! Starting and stopping a node agent: the public entry points.
//!
//! [`Node::start`] runs a node inside the caller's tokio runtime (tests, `aex up`'s embedded
//! nodes) and returns a [`NodeHandle`]; [`run_blocking`] runs one in its own runtime until a
//! signal or an accepted `Shutdown` request (the `aex node` command). Either way, a stopped
//! node leaves no module process behind.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use aex_tee::BackendOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admission::Admission;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::physics::{physics_socket, PhysicsServer, World};
use crate::router::Router;
use crate::server::{self, ADDR_FILE, METRICS_ADDR_FILE, PID_FILE};
use crate::shared::Shared;
use crate::sync::lock;

/// The node agent. See [`Node::start`] and [`run_blocking`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Node;

impl Node {
    /// Starts a node in the current tokio runtime.
    ///
    /// Creates `data_dir` if needed, loads or creates the platform key and the node's identity
    /// key (`node-identity.key`, public half in `node-identity.pub`) there, binds the
    /// listener (port 0 picks a free port), then writes `data_dir/node.addr` (the bound
    /// address) and `data_dir/node.pid`. Refuses to start if the configuration admits no
    /// deployer (no `admit` key and not `open`), declares a device twice, or has limits that
    /// contradict each other. Opens the
    /// physical-world socket `data_dir/devices.sock` (a node without devices runs on if it
    /// cannot). The node runs until [`NodeHandle::shutdown`], an
    /// accepted `Shutdown` request, or the handle is dropped.
    pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        let admission =
            Admission::new(&config.admit, config.open).ok_or_else(|| NodeError::NoDeployers {
                node: config.name.clone(),
            })?;
        config.limits.check().map_err(|source| NodeError::Limits {
            node: config.name.clone(),
            source,
        })?;
        let data_dir = config.data_dir;
        std::fs::create_dir_all(&data_dir).map_err(|source| NodeError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        // Module processes run in their own directories, so every path handed to them
        // must be absolute.
        let data_dir = std::path::absolute(&data_dir).map_err(|source| NodeError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let backend = aex_tee::open_with(config.tee, &data_dir, &BackendOptions::default())?;
        let sealing = Arc::new(aex_tee::SealingPlatform::load_or_create(&data_dir)?);
        let (identity, _) =
            aex_link::keys::load_or_create(&data_dir).map_err(|source| NodeError::Identity {
                node: config.name.clone(),
                source,
            })?;
        let identity = Arc::new(identity);
        let platform_key = backend.platform_identity();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| NodeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
        // The metrics endpoint is bound and announced before the node is (`node.addr`), so
        // that whoever waits for the node finds it too.
        let metrics = match config.metrics {
            Some(at) => {
                let bind = |source| NodeError::Bind { addr: at, source };
                let listener = TcpListener::bind(at).await.map_err(bind)?;
                let bound = listener.local_addr().map_err(bind)?;
                write_aside(&data_dir, METRICS_ADDR_FILE, &bound.to_string())?;
                Some((listener, bound))
            }
            None => None,
        };
        for (file, text) in [
            (ADDR_FILE, addr.to_string()),
            (PID_FILE, std::process::id().to_string()),
        ] {
            write_aside(&data_dir, file, &text)?;
        }

        // The world stands behind the devices; the backend grants them to drivers.
        let invalid = |source| NodeError::Devices {
            node: config.name.clone(),
            source,
        };
        let world = Arc::new(World::new(&config.devices).map_err(invalid)?);
        let devices = backend
            .device_grants(&config.devices, world.clone())
            .map_err(invalid)?;
        let socket = physics_socket(&data_dir);
        let physics = match PhysicsServer::start(socket.clone(), world, devices.clone()) {
            Ok(server) => Some(server),
            Err(source) if !config.devices.is_empty() => {
                return Err(NodeError::DeviceSocket {
                    path: socket,
                    source,
                })
            }
            Err(e) => {
                warn!(path = %socket.display(), error = %e, "no device socket (the node has no devices)");
                None
            }
        };

        let (shutdown, shutdown_rx) = watch::channel(false);
        let router = Router::new(
            config.name.clone(),
            identity.clone(),
            shutdown_rx,
            devices,
            config.timeouts,
            config.limits,
        );
        let public = identity.public();
        let shared = Arc::new(Shared::new(
            config.name,
            data_dir,
            identity,
            config.peers.iter().copied().collect(),
            config.allow_remote_shutdown,
            (backend, sealing),
            platform_key.clone(),
            router,
            shutdown,
            admission,
            physics,
            config.limits,
        ));
        info!(
            node = %shared.name,
            %addr,
            tee = config.tee.name(),
            identity = %public,
            platform_key = %hex::encode(&platform_key),
            "node listening"
        );
        if !shared.peers.is_empty() {
            info!(node = %shared.name, peers = shared.peers.len(), "peer nodes admitted by the configuration");
        }
        match &shared.admission {
            Admission::Open => warn!(
                node = %shared.name,
                "OPEN MODE: this node admits ANY deployer that connects (local development only; \
                 use --admit KEY or --admit-file FILE elsewhere)"
            ),
            Admission::Keys(keys) => {
                info!(node = %shared.name, deployers = keys.len(), "deployers admitted")
            }
        }
        if !config.devices.is_empty() {
            let declared: Vec<String> = config
                .devices
                .iter()
                .map(|d| format!("{} ({})", d.name, d.kind))
                .collect();
            info!(
                node = %shared.name,
                devices = %declared.join(", "),
                socket = %socket.display(),
                "devices declared"
            );
        }
        // What the node ran before it stopped: routes, then the persistent modules, resumed.
        crate::supervise::recover(&shared).await;
        if let Some(exits) = lock(&shared.exits_rx).take() {
            tokio::spawn(crate::supervise::supervise(shared.clone(), exits));
        }
        let metrics_addr = metrics.map(|(listener, bound)| {
            info!(node = %shared.name, addr = %bound, "serving metrics at http://{bound}/metrics");
            tokio::spawn(crate::metrics::serve(
                listener,
                shared.clone(),
                shared.shutdown.subscribe(),
            ));
            bound
        });
        let task = tokio::spawn(server::serve(shared.clone(), listener));
        Ok(NodeHandle {
            addr,
            metrics_addr,
            identity: public,
            platform_key,
            shared,
            task: Some(task),
        })
    }
}

/// Writes `text` to `file` in `dir` aside and renames it, so a reader never sees a partial file.
fn write_aside(dir: &Path, file: &str, text: &str) -> Result<(), NodeError> {
    let path = dir.join(file);
    let partial = dir.join(format!("{file}.partial"));
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|source| NodeError::Write { path, source })
}

/// A running node. Dropping it stops the node and kills its modules.
pub struct NodeHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    identity: aex_proto::NodeKey,
    platform_key: Vec<u8>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl NodeHandle {
    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the Prometheus endpoint listens on, if the node serves one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The node's identity key, which deployers pin and its links prove.
    pub fn identity(&self) -> aex_proto::NodeKey {
        self.identity
    }

    /// The public platform identity deployers trust (simulated TEE backend).
    pub fn platform_key(&self) -> &[u8] {
        &self.platform_key
    }

    /// Waits until the node has stopped (after an accepted `Shutdown` request or
    /// [`NodeHandle::shutdown`]) and its modules are gone.
    pub async fn wait(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }

    /// Stops the node: closes the listener and every connection, kills every module and waits
    /// for them to end.
    pub async fn shutdown(mut self) {
        self.shared.stop();
        self.wait().await;
    }
}

impl core::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("name", &self.shared.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shared.stop();
        self.shared.kill_modules();
    }
}

/// Runs a node in its own runtime until SIGINT, SIGTERM or an accepted `Shutdown` request, then
/// kills its modules and returns.
pub fn run_blocking(config: NodeConfig) -> Result<(), NodeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| NodeError::Runtime {
            what: "async runtime",
            source,
        })?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        )
        .map_err(|source| NodeError::Runtime {
            what: "signal handler",
            source,
        })?;
        let mut node = Node::start(config).await?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("interrupted; stopping"),
            _ = terminate.recv() => info!("terminated; stopping"),
            _ = node.wait() => {}
        }
        node.shutdown().await;
        Ok(())
    })
}
