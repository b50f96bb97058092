//! Routing: where each event goes, and the tables that decide it.
//!
//! The router owns the route table (`routes.rs`, keyed by namespace, connection id and
//! direction), the registry of local modules (`registry.rs`, keyed by namespace and name), the
//! persistent links to other nodes, the deployer sessions that receive events on direct
//! connections, and the tables that say where credit goes back to (`credit.rs`). It sees only
//! event headers; it cannot open, forge or reorder-detect events, and does not need to:
//! modules do that.
//!
//! Each module's output reader routes the module's events itself, through the handle the router
//! connected it with ([`Router::connect_module`], `to_router.rs`); sessions and inbound peer
//! links, which sit above it, call [`Router::route`] directly.
//!
//! Invariant: every table is keyed by an application namespace ([`AppId`]) and every lookup
//! uses the namespace the event or request came with, so nothing routed in one namespace ever
//! reaches a module, route or deployer session of another.
//!
//! Invariant: an event that came over a peer link is routed only if its namespace's route for
//! its (connection, direction) names that link's proven identity as its origin
//! ([`Origin::Peer`]), and one from a deployer session only if the route takes the deployer's
//! events ([`Origin::Deployer`], the routes that keep a window for them); a node admitted by another namespace's routes, or by the node's
//! configuration, forwards into no namespace that does not name it.
//!
//! Invariant: routing never blocks and never buffers without bound. Every destination has a
//! queue bounded in bytes (a module's `module_queue`; a peer link's `peer_queue`, fair between
//! namespaces: `fair.rs`; a deployer session's, `session.rs`). Under honoured credit
//! (`aex_proto::flow`) these queues hold at most what receivers granted and never fill; an
//! event that does not fit (its sender ignored its credit), has no route, or whose destination
//! is gone, is dropped and counted in [`Router::dropped`], and its cost goes back to its
//! sender as credit with `dropped` set, so the sender's window does not leak and the sender
//! learns of the loss.
//!
//! Invariant: credit goes only back the way events came. A module's credit is relayed only
//! for a (connection, direction) routed to that module, a peer's only for one routed to that
//! peer's identity, and both only to what the route names as the events' origin: the local
//! module that sends on it (`credit.rs`), the peer whose link may bring them, or the window
//! the node keeps for the deployer. Anything else is counted in [`Router::dropped`] and
//! ignored.
//!
//! Invariant: the device grants of a module (see `aex_tee::devices`) end when the router
//! forgets it ([`Router::remove_module`], [`Router::take_modules`]), synchronously, so the next
//! claim of its devices after an `Unload` succeeds. A module process that exits on its own
//! stays in the table, and keeps its grant, until it is unloaded: the deployer that sees it
//! stopped reloads it, and the reloaded instance must find its devices free of any other.

use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use aex_link::StaticKey;
use aex_proto::flow::{self, Credit};
use aex_proto::forwarding::{self, EventRef};
use aex_proto::{
    AppId, ConnId, DeployerKey, Direction, Endpoint, NodeError as WireError, NodeErrorKind,
    NodeKey, Origin, PeerStatus,
};
use aex_tee::devices::DeviceGrants;
use tokio::sync::watch;
use tracing::debug;

use crate::credit::{Credits, Debit};
use crate::error::refuse;
use crate::limits::Limits;
use crate::module::Module;
use crate::names::{check_address, check_name};
use crate::peer::{CreditHooks, PeerLink};
use crate::queue;
use crate::registry::Registry;
use crate::routes::{Counted, Route, RouteQuota, RouteSample, Routes, Target};
use crate::sync::lock;
use crate::timeouts::Timeouts;
use crate::to_router::{ModuleTraffic, ToRouter};

/// The outbound queue of one deployer session.
#[derive(Clone)]
pub(crate) struct DeployerTx {
    /// Unique per session.
    pub(crate) session: u64,
    /// Frames for the session's writer.
    pub(crate) tx: queue::Sender,
}

/// Who handed the router an event: where its credit goes back to if it is dropped.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// The output of the local module of this name (in the event's namespace).
    Module(&'a str),
    /// A peer node's link, whose handshake proved this identity.
    Peer(&'a NodeKey),
    /// A deployer session's direct connection; it becomes the `Endpoint::Deployer` target for
    /// that connection id.
    Deployer(&'a DeployerTx),
}

/// What became of an event along its route.
enum Outcome {
    /// Queued for its destination, which grants credit when it takes it in.
    Delivered,
    /// A deployer's event past its window: dropped and counted, nothing to give back.
    Refused,
    /// Its cost goes back to its sender at once: `dropped` is 1 if it was dropped (counted),
    /// 0 if a deployer session took it (the node grants for the deployer). `debited`: a
    /// deployer's window paid for it.
    Back { dropped: u32, debited: bool },
}

/// Route table, module registry, peer links, deployer targets and credit tables.
pub(crate) struct Router {
    node_name: String,
    identity: Arc<StaticKey>,
    /// The router itself, for the credit hooks of its peer links.
    me: Weak<Router>,
    routes: Routes,
    modules: Registry,
    credits: Credits,
    deployers: Mutex<HashMap<(AppId, ConnId), DeployerTx>>,
    peers: Mutex<HashMap<(String, NodeKey), Arc<PeerLink>>>,
    /// Held while a route is admitted and installed.
    installing: Mutex<()>,
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
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Router {
            node_name,
            identity,
            me: me.clone(),
            routes: Routes::default(),
            modules: Registry::default(),
            credits: Credits::default(),
            deployers: Mutex::default(),
            peers: Mutex::default(),
            installing: Mutex::default(),
            dropped: Arc::default(),
            shutdown,
            devices,
            timeouts,
            limits,
        })
    }

    /// Bytes a module's input queue holds.
    pub(crate) fn module_queue(&self) -> usize {
        Limits::bytes(self.limits.module_queue)
    }

    /// How long the node waits for peers and modules.
    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Connects module `name` of namespace `app` to the router: the handle its output reader
    /// routes its events through (see `to_router.rs`), with the node's device grants for its
    /// accesses as the holder (`app`, `name`).
    pub(crate) fn connect_module(self: &Arc<Self>, app: AppId, name: &str) -> ToRouter {
        ToRouter::new(
            self.clone(),
            app,
            name,
            self.dropped.clone(),
            self.devices.clone(),
        )
    }

    /// Forwards `ev` along its route in namespace `app`, or drops and counts it; either way
    /// gives its credit back to its sender when that is due (see the file's invariants).
    pub(crate) fn route(&self, app: AppId, ev: EventRef<'_>, from: Source<'_>) {
        if let Source::Deployer(session) = from {
            let mut deployers = lock(&self.deployers);
            match deployers.get(&(app, ev.conn)) {
                Some(current) if current.session == session.session => {}
                _ => {
                    deployers.insert((app, ev.conn), session.clone());
                }
            }
        }
        let (conn, dir, cost) = (ev.conn, ev.dir, flow::cost_of(ev.ciphertext.len()));
        let mut evicted = Vec::new();
        let outcome = self.routes.with(app, conn, dir, |route| {
            let outcome = self.decide(app, &ev, from, route, &mut evicted);
            if let Some(route) = route {
                route.counted.count(matches!(
                    outcome,
                    Outcome::Back { dropped: 0, .. } | Outcome::Delivered
                ));
            }
            outcome
        });
        // Given back once the route table's lock is released: the credit's way back reads it.
        for (app, credit) in evicted {
            self.return_credit(app, credit);
        }
        match outcome {
            Outcome::Delivered => {}
            Outcome::Refused => self.count_drop(),
            Outcome::Back { dropped, debited } => {
                if dropped > 0 {
                    debug!(%conn, ?dir, "event dropped");
                    self.count_drop();
                }
                let credit = Credit {
                    conn,
                    dir,
                    bytes: cost,
                    dropped,
                };
                match from {
                    Source::Module(name) => self.credit_module(app, name, credit),
                    Source::Peer(peer) => self.credit_peer(peer, app, credit),
                    Source::Deployer(_) if debited => self.credit_window(app, credit),
                    Source::Deployer(_) => {}
                }
            }
        }
    }

    /// Where `ev` of namespace `app`, handed over by `from`, goes along `route` (if any): handed
    /// on, or back to its sender (dropped, or taken by a deployer session). Peer links that
    /// make room for it by dropping events of a larger namespace leave those in `evicted`.
    fn decide(
        &self,
        app: AppId,
        ev: &EventRef<'_>,
        from: Source<'_>,
        route: Option<&Route>,
        evicted: &mut Vec<(AppId, Credit)>,
    ) -> Outcome {
        let (conn, dir, cost) = (ev.conn, ev.dir, flow::cost_of(ev.ciphertext.len()));
        let dropped = Outcome::Back {
            dropped: 1,
            debited: false,
        };
        let Some(route) = route else {
            debug!(%conn, ?dir, "no route for event");
            return dropped;
        };
        match from {
            Source::Peer(peer) if route.from != Origin::Peer(*peer) => {
                debug!(%conn, ?dir, peer = %peer.short(), "forward from a peer this route does not name; dropped");
                return dropped;
            }
            // Only a route that takes the deployer's events keeps a window for them: on
            // any other, they would pass outside flow control.
            Source::Deployer(_) if route.from != Origin::Deployer => {
                debug!(%conn, ?dir, "deployer event on a route that does not take them; dropped");
                return dropped;
            }
            _ => {}
        }
        let debited = match from {
            Source::Deployer(_) if route.from == Origin::Deployer => {
                match self.credits.debit((app, conn, dir), cost) {
                    Debit::Refused => {
                        debug!(%conn, ?dir, "deployer event past its window; dropped");
                        return Outcome::Refused;
                    }
                    Debit::Debited => true,
                    Debit::NoWindow => false,
                }
            }
            _ => false,
        };
        let delivered = match &route.to {
            Target::Module(name) => match self.modules.deliver(app, name, ev) {
                Some(delivered) => delivered,
                None => {
                    debug!(%conn, ?dir, module = %name, "event for a module that is not loaded");
                    false
                }
            },
            Target::Node(link) => {
                let pushed = link.push(app, ev);
                *evicted = pushed.evicted;
                pushed.queued
            }
            Target::Deployer => match lock(&self.deployers).get(&(app, conn)) {
                Some(session) => {
                    let frame = forwarding::from_node(ev);
                    if session.tx.try_send(frame).is_ok() {
                        // The node grants on the deployer's behalf.
                        return Outcome::Back {
                            dropped: 0,
                            debited,
                        };
                    }
                    false
                }
                None => {
                    debug!(%conn, ?dir, "no deployer session for event");
                    false
                }
            },
        };
        match delivered {
            true => Outcome::Delivered,
            false => Outcome::Back {
                dropped: 1,
                debited,
            },
        }
    }

    /// Installs or replaces the route for `(conn, dir)` in namespace `app`, which belongs to
    /// deployer identity `owner`, if that identity's routes stay within `deployer_routes` and
    /// `deployer_peers`; a route taking deployer events starts their window afresh (the
    /// deployer re-keyed the connection).
    pub(crate) fn install(
        &self,
        owner: &DeployerKey,
        app: AppId,
        conn: ConnId,
        dir: Direction,
        to: Endpoint,
        from: Origin,
    ) -> Result<(), WireError> {
        // One install at a time, so that two sessions of one identity cannot both pass the
        // quota for the last room; and the quota is checked before a peer link is created
        // (a refused route must not make the node connect anywhere).
        let _installing = lock(&self.installing);
        let quota = RouteQuota {
            routes: self.limits.deployer_routes,
            peers: self.limits.deployer_peers,
        };
        let peer = match &to {
            Endpoint::Module(name) => {
                check_name(name)?;
                None
            }
            Endpoint::Node { address, identity } => {
                check_address(address)?;
                Some((address.clone(), *identity))
            }
            _ => None,
        };
        self.routes
            .admit(owner, (app, conn, dir), peer.as_ref(), quota)?;
        let target = match to {
            Endpoint::Module(name) => Target::Module(name),
            Endpoint::Node { address, identity } => Target::Node(self.link(address, identity)),
            Endpoint::Deployer => Target::Deployer,
            other => {
                return Err(refuse(
                    NodeErrorKind::BadRequest,
                    format!("unsupported route destination {other:?}"),
                ))
            }
        };
        let route = Route {
            to: target,
            from,
            owner: *owner,
            counted: Counted::default(),
        };
        self.routes.install(app, conn, dir, route);
        match from {
            Origin::Deployer => self.credits.reset_window((app, conn, dir)),
            _ => self.credits.remove_window((app, conn, dir)),
        }
        Ok(())
    }

    /// Whether some namespace's routes name `peer` as the origin of their events (so its
    /// links are admitted).
    pub(crate) fn names_peer(&self, peer: &NodeKey) -> bool {
        self.routes.names_peer(peer)
    }

    /// Removes the route for `(conn, dir)` in namespace `app`, if there is one (a revoked
    /// connection), and its deployer window; other namespaces' routes for the same ids are
    /// untouched.
    pub(crate) fn uninstall(&self, app: AppId, conn: ConnId, dir: Direction) {
        self.routes.remove(app, conn, dir);
        self.credits.remove_window((app, conn, dir));
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

    /// Puts `new` in the place of `old` (a restarted process of the same module: routes,
    /// credit and devices stay); false if `old` is no longer the registered module.
    pub(crate) fn replace_module(&self, old: &Arc<Module>, new: Arc<Module>) -> bool {
        self.modules.replace(old, new)
    }

    /// Forgets a module of namespace `app`, the routes that lead to it (and their deployer
    /// windows), and what it sent.
    pub(crate) fn remove_module(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        let module = self.modules.remove(app, name)?;
        for key in self.routes.forget_module(app, name) {
            self.credits.remove_window(key);
        }
        self.credits.forget_module(app, name);
        self.devices.release(&module.holder());
        Some(module)
    }

    /// Forgets every module (shutdown), releasing their devices.
    pub(crate) fn take_modules(&self) -> Vec<Arc<Module>> {
        let modules = self.modules.drain();
        self.credits.forget_sources();
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

    /// Every route with what went along it (the metrics endpoint).
    pub(crate) fn route_samples(&self) -> Vec<RouteSample> {
        self.routes.samples()
    }

    /// Every loaded module, of every namespace (the metrics endpoint).
    pub(crate) fn all_modules(&self) -> Vec<Arc<Module>> {
        self.modules.all()
    }

    /// The links to other nodes, with the frames and bytes each has queued.
    pub(crate) fn peer_samples(&self) -> Vec<(PeerStatus, (usize, usize))> {
        let mut all: Vec<_> = lock(&self.peers)
            .values()
            .map(|l| (l.status(), l.queued()))
            .collect();
        all.sort_by(|(a, ..), (b, ..)| (&a.address, a.identity).cmp(&(&b.address, b.identity)));
        all
    }

    /// Counts one frame, event or credit the node could not decode or deliver.
    pub(crate) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames, events and credits dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The link to the node with `identity` at `address`, created on first use. Its hooks
    /// reach this router through a weak reference: a link outliving the router (its task
    /// ends at shutdown) hands credit to no one.
    fn link(&self, address: String, identity: NodeKey) -> Arc<PeerLink> {
        lock(&self.peers)
            .entry((address, identity))
            .or_insert_with_key(|(address, identity)| {
                let (me, peer) = (self.me.clone(), *identity);
                let granted = move |app, credit| {
                    if let Some(router) = me.upgrade() {
                        router.credit_from_peer(&peer, app, credit)
                    }
                };
                let me = self.me.clone();
                let dropped = move |app, credit| {
                    if let Some(router) = me.upgrade() {
                        router.return_credit(app, credit)
                    }
                };
                PeerLink::spawn(
                    address.clone(),
                    *identity,
                    self.identity.clone(),
                    self.node_name.clone(),
                    self.dropped.clone(),
                    self.shutdown.clone(),
                    self.timeouts,
                    &self.limits,
                    CreditHooks {
                        dropped: Box::new(dropped),
                        granted: Box::new(granted),
                    },
                )
            })
            .clone()
    }
}

/// A module's traffic, as its output reader hands it over (`to_router.rs`).
impl ModuleTraffic for Router {
    fn note_source(&self, app: AppId, (conn, dir): (ConnId, Direction), name: &str) -> bool {
        let local = self.routes.with(app, conn, dir, |route| {
            route.is_some_and(|r| r.from == Origin::Local)
        });
        if local {
            self.credits.record_source((app, conn, dir), name);
        }
        local
    }

    fn route_from_module(&self, app: AppId, name: &str, ev: EventRef<'_>) {
        self.route(app, ev, Source::Module(name));
    }

    fn credit_from_module(&self, app: AppId, name: &str, credit: Credit) {
        Router::credit_from_module(self, app, name, credit);
    }
}

mod relay;
#[cfg(test)]
mod tests;
