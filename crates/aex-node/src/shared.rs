//! [`Shared`], the state every task of a node reaches: configuration (timeouts and limits
//! included), identity, TEE backend, devices, router, connection caps, deployer quotas, upload
//! reservations, stored module binaries and the shutdown signal.
//!
//! It has its own file, above the router and below everything that serves a connection
//! (loading, requests, sessions, the listener), so that those reach the node's state without
//! importing the listener that accepts their connections.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use aex_link::StaticKey;
use aex_proto::NodeKey;
use aex_tee::devices::DeviceGrants;
use aex_tee::{Backend, SealingPlatform};
use tokio::sync::{mpsc, watch};

use crate::admission::Admission;
use crate::binaries::Binaries;
use crate::conns::Connections;
use crate::journal::Journal;
use crate::limits::Limits;
use crate::module::Module;
use crate::names::Reservations;
use crate::physics::PhysicsServer;
use crate::quota::Quotas;
use crate::router::Router;
use crate::timeouts::Timeouts;

/// Module exits waiting for the supervisor; more at once are not restarted (logged).
const MAX_PENDING_EXITS: usize = 4096;

/// State shared by every task of one node.
pub(crate) struct Shared {
    /// The node's name.
    pub(crate) name: String,
    /// Where modules and the platform key live.
    pub(crate) data_dir: PathBuf,
    /// The node's identity: its links' handshakes prove it.
    pub(crate) identity: Arc<StaticKey>,
    /// Peer nodes admitted by the configuration (routes admit the ones they name).
    pub(crate) peers: BTreeSet<NodeKey>,
    /// Whether `Shutdown` requests are honoured.
    pub(crate) allow_remote_shutdown: bool,
    /// Produces attestation evidence (shared with the module readers, which answer a
    /// module's own evidence requests: `module/evidence.rs`).
    pub(crate) backend: Arc<dyn Backend>,
    /// The backend's public platform identity.
    pub(crate) platform_key: Vec<u8>,
    /// Routing and module tables.
    pub(crate) router: Arc<Router>,
    /// The node's devices and their grants (the router's, shared).
    pub(crate) devices: Arc<dyn DeviceGrants>,
    /// The physical-world socket, closed when the node stops.
    pub(crate) physics: Mutex<Option<PhysicsServer>>,
    /// Module names being uploaded.
    pub(crate) reservations: Arc<Reservations>,
    /// The module binaries the node holds, per deployer.
    pub(crate) binaries: Arc<Binaries>,
    /// Turns true once when the node stops.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Which deployers may manage applications here.
    pub(crate) admission: Admission,
    /// The modules and routes the node brings back when it restarts (`journal.rs`).
    pub(crate) journal: Journal,
    /// The platform's sealing root and monotonic counters (persistent modules).
    pub(crate) sealing: Arc<SealingPlatform>,
    /// Where module processes that ended on their own are reported (`supervise.rs`).
    pub(crate) exits: mpsc::Sender<Weak<Module>>,
    /// The other end, until the node starts its supervisor.
    pub(crate) exits_rx: Mutex<Option<mpsc::Receiver<Weak<Module>>>>,
    /// How long the node waits for deployers, peers and modules (the router's, copied).
    pub(crate) timeouts: Timeouts,
    /// The connections open now, against their caps.
    pub(crate) connections: Arc<Connections>,
    /// What each admitted deployer takes.
    pub(crate) quotas: Arc<Quotas>,
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
        identity: Arc<StaticKey>,
        peers: BTreeSet<NodeKey>,
        allow_remote_shutdown: bool,
        (backend, sealing): (Box<dyn Backend>, Arc<SealingPlatform>),
        platform_key: Vec<u8>,
        router: Arc<Router>,
        shutdown: watch::Sender<bool>,
        admission: Admission,
        physics: Option<PhysicsServer>,
        limits: Limits,
    ) -> Self {
        let (exits, exits_rx) = mpsc::channel(MAX_PENDING_EXITS);
        Shared {
            journal: Journal::new(&data_dir),
            sealing,
            exits,
            exits_rx: Mutex::new(Some(exits_rx)),
            connections: Connections::new(
                limits.max_connections,
                limits.max_connections_per_address,
            ),
            quotas: Quotas::new(&name, &limits),
            binaries: Arc::new(Binaries::new(&data_dir)),
            name,
            data_dir,
            identity,
            peers,
            allow_remote_shutdown,
            backend: Arc::from(backend),
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

    /// Whether a peer node with identity `peer` may open a link to this node.
    pub(crate) fn admits_peer(&self, peer: &NodeKey) -> bool {
        self.peers.contains(peer) || self.router.names_peer(peer)
    }

    /// Counts one refused deployer session or request, or peer link.
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
