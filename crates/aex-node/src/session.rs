//! Deployer sessions: one TCP connection that opened with `Hello::Deployer`.
//!
//! A session reads frames and splits them: management requests go, in order, to the session's
//! request task ([`crate::requests::serve`]); events on the deployer's direct connections are
//! routed at once, and make this session the `Endpoint::Deployer` destination for their
//! connection id. Everything the node sends back (responses and events) goes through one
//! bounded queue drained by one writer task.

use std::sync::Arc;
use std::time::Duration;

use aex_proto::{FromNode, ToNode};
use tokio::io::AsyncRead;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tracing::{debug, instrument, warn};

use crate::frames::{pump, FrameReader};
use crate::router::{DeployerTx, Source};
use crate::server::stopped;
use crate::server::Shared;

/// Frames queued for the deployer (responses wait for room; events are dropped when full).
const OUT_QUEUE: usize = 1024;
/// Requests read ahead of the one being answered.
const REQUEST_QUEUE: usize = 16;
/// Limit on writing one batch of frames to the deployer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one deployer session until it closes, misbehaves, or the node stops.
#[instrument(skip_all, fields(session, client = %client))]
pub(crate) async fn serve<R>(
    shared: Arc<Shared>,
    mut reader: FrameReader<R>,
    writer: OwnedWriteHalf,
    client: String,
) where
    R: AsyncRead + Unpin,
{
    let session = shared.session_id();
    tracing::Span::current().record("session", session);
    debug!("deployer session opened");

    let (out, mut out_rx) = mpsc::channel::<FromNode>(OUT_QUEUE);
    tokio::spawn(async move {
        if let Err(e) = pump(&mut out_rx, writer, Some(WRITE_TIMEOUT)).await {
            debug!(error = %e, "writing to deployer failed");
        }
    });
    let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    tokio::spawn(crate::requests::serve(
        shared.clone(),
        session,
        requests_rx,
        out.clone(),
    ));
    let me = DeployerTx { session, tx: out };

    let mut stop = shared.shutdown.subscribe();
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stop) => break,
            next = reader.next::<ToNode>() => next,
        };
        match next {
            Ok(Some(ToNode::Request { id, body })) => {
                if requests.send((id, body)).await.is_err() {
                    break;
                }
            }
            Ok(Some(ToNode::Event(ev))) => shared.router.route(ev, Source::Deployer(&me)),
            Ok(Some(_)) => {
                warn!("deployer sent a second Hello; closing the session");
                shared.router.count_drop();
                break;
            }
            Ok(None) => {
                debug!("deployer session closed");
                break;
            }
            Err(e) => {
                warn!(error = %e, "bad frame from deployer; closing the session");
                shared.router.count_drop();
                break;
            }
        }
    }
    shared.router.forget_session(session);
}
