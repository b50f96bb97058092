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

use foldhash::HashMap;
use std::sync::{Arc, RwLock};

use aex_proto::{AppId, ConnId, Direction, NodeKey, Origin};

use crate::peer::PeerLink;
use crate::sync::{read, write};

/// Where a route leads, resolved when the route is installed.
pub(crate) enum Target {
    Module(String),
    Node(Arc<PeerLink>),
    Deployer,
}

/// An installed route: where its events go, and where they may come from.
pub(crate) struct Route {
    pub(crate) to: Target,
    pub(crate) from: Origin,
}

/// The route table of a node, keyed by namespace, connection id and direction.
#[derive(Default)]
pub(crate) struct Routes(RwLock<HashMap<(AppId, ConnId, Direction), Route>>);

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
        f(read(&self.0).get(&(app, conn, dir)))
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
            .values()
            .any(|r| r.from == Origin::Peer(*peer))
    }

    /// Removes the routes of namespace `app` that lead to its module `name`; returns their
    /// keys (for the tables kept per route).
    pub(crate) fn forget_module(&self, app: AppId, name: &str) -> Vec<(AppId, ConnId, Direction)> {
        let mut routes = write(&self.0);
        let gone: Vec<_> = routes
            .iter()
            .filter(|((a, _, _), r)| *a == app && matches!(&r.to, Target::Module(n) if n == name))
            .map(|(key, _)| *key)
            .collect();
        for key in &gone {
            routes.remove(key);
        }
        gone
    }
}
