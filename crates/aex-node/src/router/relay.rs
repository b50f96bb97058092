//! The router's credit relaying (`aex_proto::flow`): where the credit a module or a peer
//! grants goes, and where the credit of events a peer link dropped goes back to. Credit goes
//! only back the way events came (the router's invariants say how); the tables it consults
//! are `credit.rs`'s.

use aex_proto::flow::Credit;
use aex_proto::{AppId, ConnId, Direction, FromNode, NodeKey, Origin};
use tracing::debug;

use super::Router;
use crate::credit::Window;
use crate::queue;
use crate::routes::Target;

impl Router {
    /// Relays `credit` that module `name` of namespace `app` granted, if the connection and
    /// direction it is for are routed to that module; else counts and ignores it.
    pub(super) fn credit_from_module(&self, app: AppId, name: &str, credit: Credit) {
        let origin = self.routes.with(app, credit.conn, credit.dir, |route| {
            route
                .filter(|r| matches!(&r.to, Target::Module(n) if n == name))
                .map(|r| r.from)
        });
        match origin {
            Some(origin) => self.credit_origin(app, origin, credit),
            None => {
                debug!(conn = %credit.conn, dir = ?credit.dir, module = %name, "credit for events not routed to the module; ignored");
                self.count_drop();
            }
        }
    }

    /// Relays `credit` that the peer with identity `peer` granted over the link this node
    /// opened to it, if the connection and direction it is for are routed to that identity;
    /// else counts and ignores it.
    pub(super) fn credit_from_peer(&self, peer: &NodeKey, app: AppId, credit: Credit) {
        let origin = self.routes.with(app, credit.conn, credit.dir, |route| {
            route
                .filter(|r| matches!(&r.to, Target::Node(link) if link.identity() == peer))
                .map(|r| r.from)
        });
        match origin {
            Some(origin) => self.credit_origin(app, origin, credit),
            None => {
                debug!(conn = %credit.conn, dir = ?credit.dir, peer = %peer.short(), "credit for events not routed to the peer; ignored");
                self.count_drop();
            }
        }
    }

    /// Gives the credit of events of namespace `app` that a peer link dropped back to where
    /// their route says they came from.
    pub(super) fn return_credit(&self, app: AppId, credit: Credit) {
        match self
            .routes
            .with(app, credit.conn, credit.dir, |route| route.map(|r| r.from))
        {
            Some(origin) => self.credit_origin(app, origin, credit),
            None => {
                debug!(conn = %credit.conn, dir = ?credit.dir, "credit for events whose route is gone; dropped");
                self.count_drop();
            }
        }
    }

    /// Hands `credit` for events of namespace `app` to their `origin`: the local module that
    /// sends them, the peer whose link brings them, or the deployer's window.
    fn credit_origin(&self, app: AppId, origin: Origin, credit: Credit) {
        match origin {
            Origin::Local => match self.credits.source((app, credit.conn, credit.dir)) {
                Some(name) => self.credit_module(app, &name, credit),
                None => {
                    debug!(conn = %credit.conn, dir = ?credit.dir, "credit for a connection no local module sent on; dropped");
                    self.count_drop();
                }
            },
            Origin::Peer(peer) => self.credit_peer(&peer, app, credit),
            Origin::Deployer => self.credit_window(app, credit),
            _ => self.count_drop(),
        }
    }

    /// Queues `credit` on the input of module `name` of namespace `app`; counts it if the
    /// module is gone or its queue full.
    pub(super) fn credit_module(&self, app: AppId, name: &str, credit: Credit) {
        let delivered = self
            .modules
            .get(app, name)
            .is_some_and(|m| m.deliver_credit(credit));
        if !delivered {
            debug!(conn = %credit.conn, dir = ?credit.dir, module = %name, "credit for a module that is gone or full; dropped");
            self.count_drop();
        }
    }

    /// Sends `credit` for events of namespace `app` back over the link `peer` opened to this
    /// node; counts it if there is none or its queue is full.
    pub(super) fn credit_peer(&self, peer: &NodeKey, app: AppId, credit: Credit) {
        let sent = self.credits.to_peer(peer).is_some_and(|tx| {
            tx.try_send(aex_proto::frame::encode(&FromNode::Credit { app, credit }))
                .is_ok()
        });
        if !sent {
            debug!(conn = %credit.conn, dir = ?credit.dir, peer = %peer.short(), "no link back to the peer for credit; dropped");
            self.count_drop();
        }
    }

    /// Gives `credit` back to the window the node keeps for the deployer's events of
    /// namespace `app`, if there still is one.
    pub(super) fn credit_window(&self, app: AppId, credit: Credit) {
        if !self
            .credits
            .credit_window((app, credit.conn, credit.dir), credit.bytes)
        {
            debug!(conn = %credit.conn, dir = ?credit.dir, "credit for a deployer window that is gone; dropped");
        }
    }

    /// The window the node keeps for the deployer's events on `(conn, dir)` in namespace
    /// `app`, if their route takes deployer events.
    pub(crate) fn window(&self, app: AppId, conn: ConnId, dir: Direction) -> Option<Window> {
        self.credits.window((app, conn, dir))
    }

    /// Registers `tx`, the queue of the writer of an inbound link from `peer`, as the way
    /// back to it for credit (ahead of an older link's); returns the token that unregisters
    /// it.
    pub(crate) fn register_inbound(&self, peer: NodeKey, tx: queue::Sender) -> u64 {
        self.credits.register_inbound(peer, tx)
    }

    /// Unregisters the inbound link of `peer` registered with `token`.
    pub(crate) fn unregister_inbound(&self, peer: &NodeKey, token: u64) {
        self.credits.unregister_inbound(peer, token)
    }
}
