//! The serving side of a link another node opened: its `Forward`ed events are routed, in the
//! namespace each names, where that namespace's route names the link's proven identity as
//! the events' origin (`router.rs` checks that); and the credit granted for them goes back
//! over the same link, as `FromNode::Credit`, the only thing a node sends on a link another
//! node opened.
//!
//! The link's writer drains a queue of [`CREDIT_QUEUE_BYTES`] (a credit frame is a few dozen
//! bytes), registered with the router under the peer's proven identity while the link lives
//! (credit takes the newest open link of a peer); credit that finds it full is dropped and
//! counted, as events are. The writer lives as long as the link: writing never waits for
//! reading, nor reading for writing.
//!
//! It is apart from `peer.rs` (the outgoing links) because it hands events to the router,
//! while the router holds the outgoing links: together they would import each other.

use aex_proto::frame::{self, MAX_FRAME_LEN};
use aex_proto::{forwarding, NodeKey, ToNode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tracing::{debug, instrument, warn};

use crate::frames::{pump, FrameReader};
use crate::queue;
use crate::router::{Router, Source};
use crate::sync::stopped;

/// Bytes of credit frames queued for one inbound link's writer.
pub(crate) const CREDIT_QUEUE_BYTES: usize = 256 << 10;

/// Serves an incoming link from the node whose handshake proved `identity`: routes its
/// events (where routes name it) until it closes, and writes the credit granted for them to
/// `writer`, each write within the router's `write` timeout.
#[instrument(skip_all, fields(peer = %node, identity = %identity.short()))]
pub(crate) async fn serve_inbound<R, W>(
    router: &Router,
    mut reader: FrameReader<R>,
    writer: W,
    node: String,
    identity: NodeKey,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    debug!("peer link accepted");
    // An admitted peer's link carries events: read whole records at once.
    reader.streams();
    let (credit, mut credit_rx) = queue::channel(CREDIT_QUEUE_BYTES);
    let write_limit = router.timeouts().write;
    tokio::spawn(async move {
        if let Err(e) = pump(&mut credit_rx, writer, Some(write_limit)).await {
            debug!(error = %e, "writing credit to peer failed");
        }
    });
    let token = router.register_inbound(identity, credit.clone());
    loop {
        let next = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            // A forwarded event is routed where it lies in the read buffer (one copy, into
            // the next hop's frame); anything else is decoded, and refused.
            next = reader.next_with(MAX_FRAME_LEN, |body| match forwarding::forwarded(body) {
                Some((app, event)) => {
                    router.route(app, event, Source::Peer(&identity));
                    Ok(None)
                }
                None => frame::decode::<ToNode>(body).map(Some),
            }) => next,
        };
        match next {
            Ok(Some(None)) => {}
            Ok(Some(Some(ToNode::Forward { app, event }))) => {
                router.route(app, event.view(), Source::Peer(&identity))
            }
            Ok(Some(Some(_))) => {
                warn!("peer sent something other than a forwarded event; closing its link");
                router.count_drop();
                break;
            }
            Ok(None) => {
                debug!("peer link closed");
                break;
            }
            Err(e) => {
                warn!(error = %e, "bad frame on peer link; closing it");
                router.count_drop();
                break;
            }
        }
    }
    // The writer ends once every copy of its queue is gone, after writing what is queued.
    router.unregister_inbound(&identity, token);
    drop(credit);
}
