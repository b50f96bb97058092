//! Routing: where each event goes, and the tables that decide it.
//!
//! The router owns the route table (`routes.rs`, keyed by namespace, connection id and
//! direction), the registry of local modules (`registry.rs`, keyed by namespace and name), the
//! persistent links to other nodes and the deployer sessions that receive events on direct
//! connections. It sees only event headers; it cannot open, forge or reorder-detect events,
//! and does not need to: modules do that.
//!
//! Modules reach it through a channel each ([`Router::connect_module`], `to_router.rs`), drained
//! by one task per module; sessions and inbound peer links, which sit above it, call
//! [`Router::route`] directly.
//!
//! Invariant: every table is keyed by an application namespace ([`AppId`]) and every lookup
//! uses the namespace the event or request came with, so nothing routed in one namespace ever
//! reaches a module, route or deployer session of another.
//!
//! Invariant: an event that came over a peer link is routed only if its namespace's route for
//! its (connection, direction) names that link's proven identity as its origin
//! ([`Origin::Peer`]); a node admitted by another namespace's routes, or by the node's
//! configuration, forwards into no namespace that does not name it.
//!
//! Invariant: routing never blocks and never buffers without bound. Every destination has a
//! queue bounded in bytes (a module's `module_queue`; a peer link's `peer_queue`, fair between
//! namespaces: `fair.rs`; a deployer session's, `session.rs`); an event that does not fit, or
//! has no route, or whose destination is gone, is dropped and counted in [`Router::dropped`].
//!
//! Invariant: the device grants of a module (see `aex_tee::devices`) end when the router
//! forgets it ([`Router::remove_module`], [`Router::take_modules`]), synchronously, so the next
//! claim of its devices after an `Unload` succeeds. A module process that exits on its own
//! stays in the table, and keeps its grant, until it is unloaded: the deployer that sees it
//! stopped reloads it, and the reloaded instance must find its devices free of any other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aex_link::StaticKey;
use aex_proto::{
    AppId, ConnId, DeployerKey, Direction, Endpoint, Event, FromNode, NodeError as WireError,
    NodeErrorKind, NodeKey, Origin, PeerStatus,
};
use aex_tee::devices::{DeviceGrants, Holder};
use tokio::sync::watch;
use tracing::{debug, instrument};

use crate::error::refuse;
use crate::limits::Limits;
use crate::module::Module;
use crate::names::{check_address, check_name};
use crate::peer::PeerLink;
use crate::queue;
use crate::registry::Registry;
use crate::routes::{Route, Routes, Target};
use crate::sync::lock;
use crate::timeouts::Timeouts;
use crate::to_router::{RouterCommand, ToRouter};

/// The outbound queue of one deployer session.
#[derive(Clone)]
pub(crate) struct DeployerTx {
    /// Unique per session.
    pub(crate) session: u64,
    /// Frames for the session's writer.
    pub(crate) tx: queue::Sender,
}

/// Who handed the router an event.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A local module's output.
    Module,
    /// A peer node's link, whose handshake proved this identity.
    Peer(&'a NodeKey),
    /// A deployer session's direct connection; it becomes the `Endpoint::Deployer` target for
    /// that connection id.
    Deployer(&'a DeployerTx),
}

/// Route table, module registry, peer links and deployer targets.
pub(crate) struct Router {
    node_name: String,
    identity: Arc<StaticKey>,
    routes: Routes,
    modules: Registry,
    deployers: Mutex<HashMap<(AppId, ConnId), DeployerTx>>,
    peers: Mutex<HashMap<(String, NodeKey), Arc<PeerLink>>>,
    dropped: Arc<AtomicU64>,
    shutdown: watch::Receiver<bool>,
    devices: Arc<dyn DeviceGrants>,
    timeouts: Timeouts,
    limits: Limits,
}

impl Router {
    /// An empty router for the node `node_name`, whose links to peers prove `identity`; peer
    /// links stop when `shutdown` turns true and wait as long as `timeouts` say; queues hold
    /// what `limits` say. Modules it forgets give their grants in `devices` back.
    pub(crate) fn new(
        node_name: String,
        identity: Arc<StaticKey>,
        shutdown: watch::Receiver<bool>,
        devices: Arc<dyn DeviceGrants>,
        timeouts: Timeouts,
        limits: Limits,
    ) -> Self {
        Router {
            node_name,
            identity,
            routes: Routes::default(),
            modules: Registry::default(),
            deployers: Mutex::default(),
            peers: Mutex::default(),
            dropped: Arc::default(),
            shutdown,
            devices,
            timeouts,
            limits,
        }
    }

    /// Bytes a module's input queue holds.
    pub(crate) fn module_queue(&self) -> usize {
        Limits::bytes(self.limits.module_queue)
    }

    /// How long the node waits for peers and modules.
    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Connects module `name` of namespace `app` to the router: the channel its output reader
    /// hands events to (see `to_router.rs`), with the node's device grants for its accesses
    /// as the holder (`app`, `name`), and the task that routes the events in `app`. The task
    /// ends once the module's reader has ended and the queue is drained.
    pub(crate) fn connect_module(self: &Arc<Self>, app: AppId, name: &str) -> ToRouter {
        let holder = Holder::new(app.to_string(), name);
        let (to_router, commands) =
            ToRouter::channel(self.dropped.clone(), self.devices.clone(), holder);
        tokio::spawn(self.clone().serve_module(app, name.to_string(), commands));
        to_router
    }

    /// Routes a module's events in the order it wrote them, never waiting on anything but
    /// the next one. Each event's room goes back to the queue only once it is routed, so the
    /// module's device accesses wait for the events before them (`ToRouter::device`).
    #[instrument(skip_all, fields(module = %name))]
    async fn serve_module(
        self: Arc<Self>,
        app: AppId,
        name: String,
        mut commands: queue::Receiver<RouterCommand>,
    ) {
        while let Some((command, _routing)) = commands.recv_held().await {
            match command {
                RouterCommand::Event(ev) => self.route(app, ev, Source::Module),
            }
        }
    }

    /// Forwards `ev` along its route in namespace `app`, or drops and counts it.
    pub(crate) fn route(&self, app: AppId, ev: Event, from: Source<'_>) {
        if let Source::Deployer(session) = from {
            let mut deployers = lock(&self.deployers);
            match deployers.get(&(app, ev.conn)) {
                Some(current) if current.session == session.session => {}
                _ => {
                    deployers.insert((app, ev.conn), session.clone());
                }
            }
        }
        let (conn, dir) = (ev.conn, ev.dir);
        // `None`: refused and counted already.
        let delivered = self.routes.with(app, conn, dir, |route| {
            if let (Source::Peer(peer), Some(route)) = (&from, route) {
                if route.from != Origin::Peer(**peer) {
                    debug!(%conn, ?dir, peer = %peer.short(), "forward from a peer this route does not name; dropped");
                    self.count_drop();
                    return None;
                }
            }
            Some(match route.map(|r| &r.to) {
                None => {
                    debug!(%conn, ?dir, "no route for event");
                    false
                }
                Some(Target::Module(name)) => match self.modules.deliver(app, name, ev) {
                    Some(delivered) => delivered,
                    None => {
                        debug!(%conn, ?dir, module = %name, "event for a module that is not loaded");
                        false
                    }
                },
                Some(Target::Node(link)) => link.push(app, ev),
                Some(Target::Deployer) => match lock(&self.deployers).get(&(app, conn)) {
                    Some(session) => session
                        .tx
                        .try_send(aex_proto::frame::encode(&FromNode::Event(ev)))
                        .is_ok(),
                    None => {
                        debug!(%conn, ?dir, "no deployer session for event");
                        false
                    }
                },
            })
        });
        if delivered == Some(false) {
            debug!(%conn, ?dir, "event dropped");
            self.count_drop();
        }
    }

    /// Installs or replaces the route for `(conn, dir)` in namespace `app`.
    pub(crate) fn install(
        &self,
        app: AppId,
        conn: ConnId,
        dir: Direction,
        to: Endpoint,
        from: Origin,
    ) -> Result<(), WireError> {
        let target = match to {
            Endpoint::Module(name) => {
                check_name(&name)?;
                Target::Module(name)
            }
            Endpoint::Node { address, identity } => {
                check_address(&address)?;
                Target::Node(self.link(address, identity))
            }
            Endpoint::Deployer => Target::Deployer,
            other => {
                return Err(refuse(
                    NodeErrorKind::BadRequest,
                    format!("unsupported route destination {other:?}"),
                ))
            }
        };
        self.routes
            .install(app, conn, dir, Route { to: target, from });
        Ok(())
    }

    /// Whether some namespace's routes name `peer` as the origin of their events (so its
    /// links are admitted).
    pub(crate) fn names_peer(&self, peer: &NodeKey) -> bool {
        self.routes.names_peer(peer)
    }

    /// Removes the route for `(conn, dir)` in namespace `app`, if there is one (a revoked
    /// connection); other namespaces' routes for the same ids are untouched.
    pub(crate) fn uninstall(&self, app: AppId, conn: ConnId, dir: Direction) {
        self.routes.remove(app, conn, dir);
        if dir == Direction::Backward {
            lock(&self.deployers).remove(&(app, conn));
        }
    }

    /// Forgets a deployer session's direct connections.
    pub(crate) fn forget_session(&self, session: u64) {
        lock(&self.deployers).retain(|_, d| d.session != session);
    }

    /// A loaded module of namespace `app`.
    pub(crate) fn module(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        self.modules.get(app, name)
    }

    /// Whether namespace `app` has a module of that name.
    pub(crate) fn has_module(&self, app: AppId, name: &str) -> bool {
        self.modules.contains(app, name)
    }

    /// Every loaded module of namespace `app`, by name.
    pub(crate) fn modules(&self, app: AppId) -> Vec<Arc<Module>> {
        self.modules.in_namespace(app)
    }

    /// How many modules deployer `owner` has loaded, in all its namespaces.
    pub(crate) fn count_modules(&self, owner: &DeployerKey) -> u64 {
        self.modules.count_owned(owner)
    }

    /// Adds a started module to its namespace; refuses a duplicate name there.
    pub(crate) fn insert_module(&self, module: Arc<Module>) -> Result<(), WireError> {
        self.modules.insert(module)
    }

    /// Forgets a module of namespace `app` and the routes that lead to it.
    pub(crate) fn remove_module(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        let module = self.modules.remove(app, name)?;
        self.routes.forget_module(app, name);
        self.devices.release(&module.holder());
        Some(module)
    }

    /// Forgets every module (shutdown), releasing their devices.
    pub(crate) fn take_modules(&self) -> Vec<Arc<Module>> {
        let modules = self.modules.drain();
        for m in &modules {
            self.devices.release(&m.holder());
        }
        modules
    }

    /// The node's devices and their grants.
    pub(crate) fn devices(&self) -> &Arc<dyn DeviceGrants> {
        &self.devices
    }

    /// The persistent links to other nodes, by address.
    pub(crate) fn peers(&self) -> Vec<PeerStatus> {
        let mut all: Vec<_> = lock(&self.peers).values().map(|l| l.status()).collect();
        all.sort_by(|a, b| (&a.address, a.identity).cmp(&(&b.address, b.identity)));
        all
    }

    /// Counts one frame or event the node could not decode or deliver.
    pub(crate) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames and events dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The link to the node with `identity` at `address`, created on first use.
    fn link(&self, address: String, identity: NodeKey) -> Arc<PeerLink> {
        lock(&self.peers)
            .entry((address, identity))
            .or_insert_with_key(|(address, identity)| {
                PeerLink::spawn(
                    address.clone(),
                    *identity,
                    self.identity.clone(),
                    self.node_name.clone(),
                    self.dropped.clone(),
                    self.shutdown.clone(),
                    self.timeouts,
                    &self.limits,
                )
            })
            .clone()
    }
}
