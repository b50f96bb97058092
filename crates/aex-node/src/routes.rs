//! The route table: where the events of each (namespace, connection, direction) go, and where
//! they may come from.
//!
//! Routes are installed by deployers (`Route`, `Unroute`) and read by the router for every
//! event. A route names its module by name, resolved when an event arrives, so a module can
//! be loaded, unloaded and reloaded under a route that stays.

use std::sync::Arc;

use aex_proto::Origin;

use crate::peer::PeerLink;

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
