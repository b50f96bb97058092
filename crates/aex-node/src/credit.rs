//! The router's flow-control tables (`aex_proto::flow`): who sends each connection's events
//! here, the windows the node keeps on behalf of deployers, and the queues back to the peers
//! whose links bring events.
//!
//! Credit travels against the events: the receiving runtime grants it, and every node on the
//! way hands it one hop back toward the sender. A node relays credit for a (namespace,
//! connection, direction) along what its route says the events came from (`Origin`); these
//! tables say who that is when the route alone does not:
//!
//! * **Sources.** A route with `Origin::Local` does not name the module that sends on it: the
//!   router records it here when it first routes that module's event on the route, and forgets
//!   a module's entries when the module is unloaded.
//! * **Deployer windows.** A deployer session is short-lived and cannot wait for credit, so
//!   the node keeps the window of each `Origin::Deployer` route itself, from the moment the
//!   route is installed (the deployer re-keys the connection when it routes it, and a sender
//!   starts every key with [`INITIAL_WINDOW`]) until it is removed. A session asks for it
//!   (`NodeRequest::Window`) before it sends; an event sent past it is dropped.
//! * **Peers.** Credit for events a peer forwarded goes back over the link that peer opened
//!   (its outgoing link is our inbound one): the inbound link registers its writer's queue
//!   here under the identity its handshake proved, and credit takes the newest link of that
//!   identity that is still open (a peer may hold more than one, to different addresses of
//!   this node; any of them reaches it).
//!
//! Invariant: every entry is keyed by the namespace ([`AppId`]) the events were routed in, or
//! by a peer's proven identity; nothing is looked up across namespaces. Sources hold one entry
//! per (namespace, connection, direction) that had a local route and an event on it, and go
//! with their module; windows hold one entry per installed `Origin::Deployer` route; peers one
//! entry per connected inbound link. Credit is unauthenticated (`aex_proto::flow` says why that
//! is harmless): these tables only decide where it goes, never whether an event is genuine.

use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use aex_proto::flow::INITIAL_WINDOW;
use aex_proto::{AppId, ConnId, Direction, NodeKey};

use crate::queue;
use crate::sync::lock;

/// One (namespace, connection, direction): what a window or a source belongs to.
pub(crate) type Key = (AppId, ConnId, Direction);

/// The window of a deployer's events on one direct connection, kept by the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Bytes the deployer may still send; below zero by less than one event at most.
    pub(crate) credit: i64,
    /// Bytes sent and neither taken in by the receiver nor dropped.
    pub(crate) in_flight: u64,
}

impl Window {
    /// What a deployer holds when its route is installed.
    fn fresh() -> Window {
        Window {
            credit: i64::from(INITIAL_WINDOW),
            in_flight: 0,
        }
    }
}

/// What [`Credits::debit`] did with a deployer's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Debit {
    /// No window for it (its route does not take deployer events): nothing to debit.
    NoWindow,
    /// Its cost was taken from the window.
    Debited,
    /// The window was used up before it: the deployer ignored its window.
    Refused,
}

/// The queue of an inbound link's writer, with the token that tells its registration apart
/// from a later link of the same peer.
struct Inbound {
    token: u64,
    tx: queue::Sender,
}

/// Sources, deployer windows and inbound peer queues; see the file's documentation.
#[derive(Default)]
pub(crate) struct Credits {
    sources: Mutex<HashMap<Key, String>>,
    windows: Mutex<HashMap<Key, Window>>,
    /// Per peer, its open inbound links, oldest first (as many as the connection caps allow).
    inbound: Mutex<HashMap<NodeKey, Vec<Inbound>>>,
    next_token: AtomicU64,
}

impl Credits {
    /// Records local module `module` as the sender of `key`'s events.
    pub(crate) fn record_source(&self, key: Key, module: &str) {
        let mut sources = lock(&self.sources);
        match sources.get_mut(&key) {
            Some(name) if name == module => {}
            Some(name) => module.clone_into(name),
            None => {
                sources.insert(key, module.to_string());
            }
        }
    }

    /// The local module that sends `key`'s events, if one did.
    pub(crate) fn source(&self, key: Key) -> Option<String> {
        lock(&self.sources).get(&key).cloned()
    }

    /// Forgets that module `name` of namespace `app` sends anything.
    pub(crate) fn forget_module(&self, app: AppId, name: &str) {
        lock(&self.sources).retain(|(a, _, _), n| !(*a == app && n == name));
    }

    /// Forgets every source (every module is gone).
    pub(crate) fn forget_sources(&self) {
        lock(&self.sources).clear();
    }

    /// Starts `key`'s window afresh (its `Origin::Deployer` route was installed).
    pub(crate) fn reset_window(&self, key: Key) {
        lock(&self.windows).insert(key, Window::fresh());
    }

    /// Forgets `key`'s window (its route was removed, or no longer takes deployer events).
    pub(crate) fn remove_window(&self, key: Key) {
        lock(&self.windows).remove(&key);
    }

    /// Takes `cost` from `key`'s window, if it has one and credit is left.
    pub(crate) fn debit(&self, key: Key, cost: u32) -> Debit {
        let mut windows = lock(&self.windows);
        let Some(w) = windows.get_mut(&key) else {
            return Debit::NoWindow;
        };
        if w.credit <= 0 {
            return Debit::Refused;
        }
        w.credit -= i64::from(cost);
        w.in_flight = w.in_flight.saturating_add(u64::from(cost));
        Debit::Debited
    }

    /// Gives `bytes` back to `key`'s window (taken in, or dropped); false if it has none.
    pub(crate) fn credit_window(&self, key: Key, bytes: u32) -> bool {
        let mut windows = lock(&self.windows);
        let Some(w) = windows.get_mut(&key) else {
            return false;
        };
        w.credit = w.credit.saturating_add(i64::from(bytes));
        w.in_flight = w.in_flight.saturating_sub(u64::from(bytes));
        true
    }

    /// `key`'s window, if its route takes deployer events.
    pub(crate) fn window(&self, key: Key) -> Option<Window> {
        lock(&self.windows).get(&key).copied()
    }

    /// Registers `tx`, the writer's queue of an inbound link from `peer`, as the way back to
    /// it ahead of any older link's; returns the token to unregister it with.
    pub(crate) fn register_inbound(&self, peer: NodeKey, tx: queue::Sender) -> u64 {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        lock(&self.inbound)
            .entry(peer)
            .or_default()
            .push(Inbound { token, tx });
        token
    }

    /// Unregisters the inbound link of `peer` registered with `token` (a newer one stays).
    pub(crate) fn unregister_inbound(&self, peer: &NodeKey, token: u64) {
        let mut inbound = lock(&self.inbound);
        if let Some(links) = inbound.get_mut(peer) {
            links.retain(|i| i.token != token);
            if links.is_empty() {
                inbound.remove(peer);
            }
        }
    }

    /// The writer's queue of the newest inbound link `peer` has open, if it has one.
    pub(crate) fn to_peer(&self, peer: &NodeKey) -> Option<queue::Sender> {
        lock(&self.inbound)
            .get(peer)
            .and_then(|links| links.iter().rev().find(|i| !i.tx.is_closed()))
            .map(|i| i.tx.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(conn: u32) -> Key {
        (AppId([1; 16]), ConnId(conn), Direction::Forward)
    }

    #[test]
    fn a_window_debits_refuses_once_used_up_credits_back_and_resets() {
        let c = Credits::default();
        assert_eq!(c.debit(key(1), 100), Debit::NoWindow);
        assert!(!c.credit_window(key(1), 100));
        c.reset_window(key(1));
        // An event larger than what is left still passes once; then nothing does.
        assert_eq!(c.debit(key(1), INITIAL_WINDOW - 10), Debit::Debited);
        assert_eq!(c.debit(key(1), 100), Debit::Debited);
        assert_eq!(
            c.window(key(1)),
            Some(Window {
                credit: -90,
                in_flight: u64::from(INITIAL_WINDOW) + 90
            })
        );
        assert_eq!(c.debit(key(1), 1), Debit::Refused);
        assert!(c.credit_window(key(1), 190));
        assert_eq!(
            c.window(key(1)),
            Some(Window {
                credit: 100,
                in_flight: u64::from(INITIAL_WINDOW) - 100
            })
        );
        c.reset_window(key(1));
        assert_eq!(c.window(key(1)), Some(Window::fresh()));
        c.remove_window(key(1));
        assert_eq!(c.window(key(1)), None);
    }

    #[test]
    fn sources_are_per_key_and_go_with_their_module() {
        let c = Credits::default();
        c.record_source(key(1), "a");
        c.record_source(key(2), "b");
        c.record_source(key(2), "a");
        assert_eq!(c.source(key(2)).as_deref(), Some("a"));
        c.forget_module(AppId([2; 16]), "a");
        assert_eq!(c.source(key(1)).as_deref(), Some("a"));
        c.forget_module(AppId([1; 16]), "a");
        assert_eq!((c.source(key(1)), c.source(key(2))), (None, None));
    }

    #[test]
    fn credit_takes_a_peer_s_newest_open_inbound_link() {
        let c = Credits::default();
        let peer = NodeKey([7; 32]);
        let (old, mut old_rx) = queue::channel::<Vec<u8>>(1024);
        let (new, new_rx) = queue::channel::<Vec<u8>>(1024);
        let first = c.register_inbound(peer, old);
        let second = c.register_inbound(peer, new);
        let send = |c: &Credits, byte| c.to_peer(&peer).unwrap().try_send(vec![byte]).unwrap();
        send(&c, 1);
        assert!(old_rx.try_recv().is_none());
        // The newest link's writer is gone (its connection failed): the older one serves.
        drop(new_rx);
        send(&c, 2);
        assert_eq!(old_rx.try_recv(), Some(vec![2]));
        c.unregister_inbound(&peer, second);
        send(&c, 3);
        assert_eq!(old_rx.try_recv(), Some(vec![3]));
        c.unregister_inbound(&peer, first);
        assert!(c.to_peer(&peer).is_none());
    }
}
