//! The serving side of a link another node opened: its `Forward`ed events are routed, in the
//! namespace each names, where that namespace's route names the link's proven identity as
//! the events' origin (`router.rs` checks that).
//!
//! It is apart from `peer.rs` (the outgoing links) because it hands events to the router,
//! while the router holds the outgoing links: together they would import each other.

use aex_proto::{NodeKey, ToNode};
use tokio::sync::watch;
use tracing::{debug, instrument, warn};

use crate::frames::FrameReader;
use crate::router::{Router, Source};
use crate::sync::stopped;

/// Serves an incoming link from the node whose handshake proved `identity`: routes its
/// events (where routes name it) until it closes.
#[instrument(skip_all, fields(peer = %node, identity = %identity.short()))]
pub(crate) async fn serve_inbound<R>(
    router: &Router,
    mut reader: FrameReader<R>,
    node: String,
    identity: NodeKey,
    mut shutdown: watch::Receiver<bool>,
) where
    R: tokio::io::AsyncRead + Unpin,
{
    debug!("peer link accepted");
    loop {
        let next = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            next = reader.next::<ToNode>() => next,
        };
        match next {
            Ok(Some(ToNode::Forward { app, event })) => {
                router.route(app, event, Source::Peer(&identity))
            }
            Ok(Some(_)) => {
                warn!("peer sent something other than a forwarded event; closing its link");
                router.count_drop();
                return;
            }
            Ok(None) => {
                debug!("peer link closed");
                return;
            }
            Err(e) => {
                warn!(error = %e, "bad frame on peer link; closing it");
                router.count_drop();
                return;
            }
        }
    }
}
