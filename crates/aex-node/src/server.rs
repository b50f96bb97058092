//! The listener: accepts TCP connections, reads each one's `Hello`, and hands it to a deployer
//! session or a peer link; on shutdown, stops accepting and kills every module.
//!
//! Also holds [`Shared`], the state every task of a node reaches: configuration (timeouts
//! included), TEE backend, devices, router and the shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aex_proto::{Hello, ToNode};
use aex_tee::devices::DeviceBank;
use aex_tee::Backend;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep, timeout};
use tracing::{debug, info, instrument, warn};

use crate::admission::Admission;
use crate::frames::FrameReader;
use crate::load::Reservations;
use crate::physics::PhysicsServer;
use crate::router::{lock, Router};
use crate::timeouts::{show, Timeouts};

/// Files announcing a running node in its data directory.
pub(crate) const ADDR_FILE: &str = "node.addr";
pub(crate) const PID_FILE: &str = "node.pid";

/// State shared by every task of one node.
pub(crate) struct Shared {
    /// The node's name.
    pub(crate) name: String,
    /// Where modules and the platform key live.
    pub(crate) data_dir: PathBuf,
    /// Whether `Shutdown` requests are honoured.
    pub(crate) allow_remote_shutdown: bool,
    /// Produces attestation evidence.
    pub(crate) backend: Box<dyn Backend>,
    /// The backend's public platform identity.
    pub(crate) platform_key: Vec<u8>,
    /// Routing and module tables.
    pub(crate) router: Arc<Router>,
    /// The node's devices and their grants (the router's, shared).
    pub(crate) devices: Arc<DeviceBank>,
    /// The physical-world socket, closed when the node stops.
    physics: Mutex<Option<PhysicsServer>>,
    /// Module names being uploaded.
    pub(crate) reservations: Arc<Reservations>,
    /// Turns true once when the node stops.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Which deployers may manage applications here.
    pub(crate) admission: Admission,
    /// How long the node waits for deployers, peers and modules (the router's, copied).
    pub(crate) timeouts: Timeouts,
    next_session: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    /// Assembles the state; `shutdown` must be the sender the router's receiver came from.
    #[expect(
        clippy::too_many_arguments,
        reason = "one crate-internal call site, in node.rs, naming each part"
    )]
    pub(crate) fn new(
        name: String,
        data_dir: PathBuf,
        allow_remote_shutdown: bool,
        backend: Box<dyn Backend>,
        platform_key: Vec<u8>,
        router: Arc<Router>,
        shutdown: watch::Sender<bool>,
        admission: Admission,
        physics: Option<PhysicsServer>,
    ) -> Self {
        Shared {
            name,
            data_dir,
            allow_remote_shutdown,
            backend,
            platform_key,
            devices: router.devices().clone(),
            timeouts: *router.timeouts(),
            router,
            physics: Mutex::new(physics),
            reservations: Arc::default(),
            shutdown,
            admission,
            next_session: AtomicU64::new(1),
            refused: AtomicU64::new(0),
        }
    }

    /// Asks every task to stop.
    pub(crate) fn stop(&self) {
        self.shutdown.send_replace(true);
    }

    /// A fresh session id.
    pub(crate) fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts one refused deployer session or request.
    pub(crate) fn count_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Deployer sessions and requests refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Kills every module without waiting (used when the handle is dropped).
    pub(crate) fn kill_modules(&self) {
        for m in self.router.take_modules() {
            m.kill();
        }
    }
}

/// Accepts connections until shutdown, then kills every module and removes the announcement
/// files.
#[instrument(skip_all, fields(node = %shared.name))]
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    tokio::spawn(serve_connection(shared.clone(), stream, remote));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    info!("node stopping");
    let modules = shared.router.take_modules();
    for m in &modules {
        m.kill();
    }
    for m in &modules {
        m.stop(shared.timeouts.stop).await;
    }
    // Closes the device socket and removes its file.
    drop(lock(&shared.physics).take());
    for file in [ADDR_FILE, PID_FILE] {
        let _ = std::fs::remove_file(shared.data_dir.join(file));
    }
    info!("node stopped");
}

/// Resolves once the node is stopping (or its state is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Reads a connection's `Hello` and serves it accordingly.
#[instrument(skip_all, fields(remote = %remote))]
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let (rd, wr) = stream.into_split();
    let mut reader = FrameReader::new(rd, shared.timeouts.body);
    let mut stop = shared.shutdown.subscribe();
    let hello = tokio::select! {
        _ = stopped(&mut stop) => return,
        hello = timeout(shared.timeouts.hello, reader.next::<ToNode>()) => hello,
    };
    match hello {
        Ok(Ok(Some(ToNode::Hello(Hello::Deployer { client, key, app })))) => {
            let hello = crate::session::DeployerHello { client, key, app };
            crate::session::serve(shared, reader, wr, hello).await
        }
        Ok(Ok(Some(ToNode::Hello(Hello::Peer { node })))) => {
            crate::peer::serve_inbound(&shared.router, reader, node, stop).await
        }
        Ok(Ok(Some(_))) => {
            warn!("first frame is not a Hello; closing the connection");
            shared.router.count_drop();
        }
        Ok(Ok(None)) => debug!("connection closed before Hello"),
        Ok(Err(e)) => {
            warn!(error = %e, "bad first frame; closing the connection");
            shared.router.count_drop();
        }
        Err(_) => warn!(
            "no Hello within {}; closing the connection",
            show(shared.timeouts.hello)
        ),
    }
}
