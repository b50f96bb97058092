//! The route table: where the events of each (namespace, connection, direction) go, and where
//! they may come from.
//!
//! Routes are installed by deployers (`Route`, `Unroute`) and read by the router for every
//! event. They are apart from the registry of loaded modules (`registry.rs`): a route names
//! its module by name, resolved when an event arrives, so a module can be loaded, unloaded and
//! reloaded under a route that stays, and neither table needs the other's lock to change.
//!
//! Invariant: every entry is keyed by its namespace ([`AppId`]); nothing here looks across
//! namespaces except [`Routes::names_peer`], which only admits a peer link (what that link may
//! forward into is checked per namespace by the router).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aex_proto::{AppId, ConnId, DeployerKey, Direction, NodeError as WireError, NodeErrorKind};
use aex_proto::{NodeKey, Origin};
use foldhash::HashMap;

use crate::error::refuse;
use crate::limits::raise;
use crate::peer::PeerLink;
use crate::sync::{read, write};

/// Where a route leads, resolved when the route is installed.
pub(crate) enum Target {
    Module(String),
    Node(Arc<PeerLink>),
    Deployer,
}

/// An installed route: where its events go, where they may come from, and the deployer
/// identity whose namespace it is in (what it is counted against).
pub(crate) struct Route {
    pub(crate) to: Target,
    pub(crate) from: Origin,
    pub(crate) owner: DeployerKey,
    /// What went along it (the metrics endpoint's per-connection counters). A route replaced
    /// under the same key carries them on, so that they only grow while the key is routed.
    pub(crate) counted: Counted,
}

/// Events a route handed on and dropped, counted as the router decides (relaxed atomics: read
/// only by the metrics endpoint, which needs no ordering with anything else).
#[derive(Default)]
pub(crate) struct Counted {
    routed: AtomicU64,
    dropped: AtomicU64,
}

impl Counted {
    /// Counts one event handed on (`true`) or dropped.
    pub(crate) fn count(&self, delivered: bool) {
        let counter = if delivered {
            &self.routed
        } else {
            &self.dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn take_over(&self, old: &Counted) {
        for (new, old) in [(&self.routed, &old.routed), (&self.dropped, &old.dropped)] {
            new.fetch_add(old.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// One route as the metrics endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteSample {
    pub(crate) owner: DeployerKey,
    pub(crate) app: AppId,
    pub(crate) conn: ConnId,
    pub(crate) dir: Direction,
    pub(crate) routed: u64,
    pub(crate) dropped: u64,
}

/// A peer node a route leads to: its address and identity.
pub(crate) type Peer = (String, NodeKey);

/// How much of the table one deployer identity holds, over all its namespaces.
#[derive(Default)]
struct Held {
    routes: u64,
    /// Routes per peer node they lead to.
    peers: HashMap<Peer, u64>,
}

#[derive(Default)]
struct Table {
    routes: HashMap<(AppId, ConnId, Direction), Route>,
    held: HashMap<DeployerKey, Held>,
}

impl Table {
    fn insert(&mut self, key: (AppId, ConnId, Direction), route: Route) {
        self.count(&route, true);
        if let Some(old) = self.routes.remove(&key) {
            route.counted.take_over(&old.counted);
            self.count(&old, false);
        }
        self.routes.insert(key, route);
    }

    fn remove(&mut self, key: &(AppId, ConnId, Direction)) {
        if let Some(old) = self.routes.remove(key) {
            self.count(&old, false);
        }
    }

    /// Counts `route` for its owner (`add`), or stops counting it.
    fn count(&mut self, route: &Route, add: bool) {
        let held = self.held.entry(route.owner).or_default();
        let step = |n: &mut u64| *n = if add { *n + 1 } else { n.saturating_sub(1) };
        step(&mut held.routes);
        if let Target::Node(link) = &route.to {
            let peer = (link.address().to_string(), *link.identity());
            let n = held.peers.entry(peer.clone()).or_default();
            step(n);
            if *n == 0 {
                held.peers.remove(&peer);
            }
        }
        if held.routes == 0 {
            // An identity without routes keeps no entry.
            self.held.remove(&route.owner);
        }
    }
}

/// The most routes, and the most distinct peer nodes their routes lead to, that one deployer
/// identity may have on the node (`deployer_routes`, `deployer_peers`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteQuota {
    pub(crate) routes: u64,
    pub(crate) peers: u64,
}

/// The route table of a node, keyed by namespace, connection id and direction.
#[derive(Default)]
pub(crate) struct Routes(RwLock<Table>);

impl Routes {
    /// Runs `f` on the route for `(conn, dir)` in namespace `app`, if there is one, under the
    /// table's read lock: the event is handed on along the route as it is while it is read,
    /// never along one replaced in between.
    pub(crate) fn with<R>(
        &self,
        app: AppId,
        conn: ConnId,
        dir: Direction,
        f: impl FnOnce(Option<&Route>) -> R,
    ) -> R {
        f(read(&self.0).routes.get(&(app, conn, dir)))
    }

    /// Whether `owner` may have a route for `(conn, dir)` in its namespace `app` (leading to
    /// `peer`, if it leads to a peer node) within `quota`: a route that replaces one of the
    /// same key takes no more room; a new one needs room under `deployer_routes`, and a new
    /// peer room under `deployer_peers`. The refusal names the limit and how to raise it.
    pub(crate) fn admit(
        &self,
        owner: &DeployerKey,
        key: (AppId, ConnId, Direction),
        peer: Option<&Peer>,
        quota: RouteQuota,
    ) -> Result<(), WireError> {
        let table = read(&self.0);
        let held = table.held.get(owner);
        let routes = held.map_or(0, |h| h.routes);
        if !table.routes.contains_key(&key) && routes >= quota.routes {
            return Err(refuse(
                NodeErrorKind::Refused,
                format!(
                    "this deployer identity has {routes} routes on the node, its limit \
                     (`deployer_routes`); {}",
                    raise("deployer_routes")
                ),
            ));
        }
        let peers = held.map_or(0, |h| h.peers.len() as u64);
        let known = peer.is_none_or(|p| held.is_some_and(|h| h.peers.contains_key(p)));
        if !known && peers >= quota.peers {
            return Err(refuse(
                NodeErrorKind::Refused,
                format!(
                    "this deployer identity's routes lead to {peers} peer nodes, its limit \
                     (`deployer_peers`); {}",
                    raise("deployer_peers")
                ),
            ));
        }
        Ok(())
    }

    /// Installs or replaces the route for `(conn, dir)` in namespace `app`.
    pub(crate) fn install(&self, app: AppId, conn: ConnId, dir: Direction, route: Route) {
        write(&self.0).insert((app, conn, dir), route);
    }

    /// Removes the route for `(conn, dir)` in namespace `app`, if there is one.
    pub(crate) fn remove(&self, app: AppId, conn: ConnId, dir: Direction) {
        write(&self.0).remove(&(app, conn, dir));
    }

    /// Whether some namespace's routes name `peer` as the origin of their events.
    pub(crate) fn names_peer(&self, peer: &NodeKey) -> bool {
        read(&self.0)
            .routes
            .values()
            .any(|r| r.from == Origin::Peer(*peer))
    }

    /// Removes the routes of namespace `app` that lead to its module `name`; returns their
    /// keys (for the tables kept per route).
    pub(crate) fn forget_module(&self, app: AppId, name: &str) -> Vec<(AppId, ConnId, Direction)> {
        let mut table = write(&self.0);
        let gone: Vec<_> = table
            .routes
            .iter()
            .filter(|((a, _, _), r)| *a == app && matches!(&r.to, Target::Module(n) if n == name))
            .map(|(key, _)| *key)
            .collect();
        for key in &gone {
            table.remove(key);
        }
        gone
    }

    /// Every route with its counters, ordered by namespace, connection and direction.
    pub(crate) fn samples(&self) -> Vec<RouteSample> {
        let mut all: Vec<RouteSample> = read(&self.0)
            .routes
            .iter()
            .map(|(&(app, conn, dir), route)| RouteSample {
                owner: route.owner,
                app,
                conn,
                dir,
                routed: route.counted.routed.load(Ordering::Relaxed),
                dropped: route.counted.dropped.load(Ordering::Relaxed),
            })
            .collect();
        all.sort_by_key(|s| (s.app, s.conn, s.dir));
        all
    }

    /// Routes and peer nodes `owner` holds (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self, owner: &DeployerKey) -> (u64, usize) {
        read(&self.0)
            .held
            .get(owner)
            .map_or((0, 0), |h| (h.routes, h.peers.len()))
    }
}
