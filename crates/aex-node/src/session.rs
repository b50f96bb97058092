//! Deployer sessions: one link that opened with `Hello::Deployer`.
//!
//! The `Hello` carries the deployer's proof of its key over this link's handshake hash and the
//! node's identity ([`crate::auth`]). A session reads frames and splits them: management
//! requests are checked (admitted key, increasing id) and go, in order, to the session's
//! request task ([`crate::requests::serve`]), refused ones with their refusal; events on the
//! deployer's direct connections are routed at once in the session's namespace, and make this
//! session the `Endpoint::Deployer` destination for their connection id (only once the session
//! is admitted, so no one can divert another deployer's events). A session's events are held
//! to the window the node keeps for their route (`credit.rs`; the session reads it with a
//! `Window` request), and events the node sends it are credited to their sender as soon as
//! they are queued here: a session grants on nothing, the node does for it. Everything the
//! node sends back (responses and events) goes through one queue of [`OUT_QUEUE_BYTES`]
//! drained by one writer task; requests read ahead wait in a queue of [`REQUEST_QUEUE_BYTES`] (when it is
//! full the session stops reading its link).
//!
//! An admitted deployer is held to its identity's quotas (`quota.rs`): a request over its rate
//! is answered `Refused`, naming the limit.
//!
//! A refused session (a key the node does not admit, or a bad proof) is answered `Refused` for
//! each request until the authentication deadline (the `hello` timeout from the connection's
//! start) passes, then closed: nothing unauthenticated holds a connection longer. Its frames
//! are limited to [`REFUSED_FRAME`] bytes (a longer one closes it at once), so it cannot make
//! the node hold a megabyte frame until then.

use std::sync::Arc;

use aex_proto::frame::MAX_FRAME_LEN;
use aex_proto::{AppId, ToNode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, instrument, warn};

use crate::auth::{DeployerHello, SessionAuth};
use crate::conns::throttled_warn;
use crate::frames::{pump, FrameReader};
use crate::queue;
use crate::router::{DeployerTx, Source};
use crate::shared::Shared;
use crate::sync::stopped;

/// Bytes of frames queued for the deployer (responses wait for room; events are dropped when
/// it is full).
pub(crate) const OUT_QUEUE_BYTES: usize = 4 << 20;
/// Bytes of requests read ahead of the one being answered.
pub(crate) const REQUEST_QUEUE_BYTES: usize = 2 << 20;
/// The longest frame a refused session may send (its requests are only answered `Refused`).
pub(crate) const REFUSED_FRAME: usize = 16 << 10;

/// Serves one deployer session until it closes, misbehaves, or the node stops; `hash` is the
/// link's handshake hash, and a refused session ends at `deadline`.
#[instrument(skip_all, fields(session, client = %hello.client, key = %hello.key.short()))]
pub(crate) async fn serve<R, W>(
    shared: Arc<Shared>,
    mut reader: FrameReader<R>,
    writer: W,
    hello: DeployerHello,
    hash: [u8; 32],
    deadline: Instant,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let session = shared.session_id();
    tracing::Span::current().record("session", session);
    debug!("deployer session opened");
    if shared.admission.is_open() {
        warn!("OPEN MODE: this node admits any deployer (started with --open; local development only)");
    }

    let (out, mut out_rx) = queue::channel(OUT_QUEUE_BYTES);
    let write_limit = shared.timeouts.write;
    tokio::spawn(async move {
        if let Err(e) = pump(&mut out_rx, writer, Some(write_limit)).await {
            debug!(error = %e, "writing to deployer failed");
        }
    });
    let app = AppId::of(&hello.key, &hello.app);
    let key = hello.key;
    let mut auth = SessionAuth::new(
        &shared.admission,
        &shared.name,
        hello,
        &hash,
        &shared.identity.public(),
    );
    if let SessionAuth::Refused(_, why) = &auth {
        // Anyone who completes a handshake can cause this: throttled.
        throttled_warn!(shared.connections.failures, reason = %why, "deployer session refused");
        shared.count_refusal();
    }
    let mut warned = !auth.admitted();
    // Holds the identity's quotas while the session lives.
    let _quota = auth.admitted().then(|| shared.quotas.open_session(key));
    let (requests, requests_rx) = queue::channel(REQUEST_QUEUE_BYTES);
    tokio::spawn(crate::requests::serve(
        shared.clone(),
        session,
        app,
        key,
        requests_rx,
        out.clone(),
    ));
    let me = DeployerTx { session, tx: out };

    let mut stop = shared.shutdown.subscribe();
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = sleep_until(deadline), if !auth.admitted() => {
                debug!("refused session closed at its authentication deadline");
                break;
            }
            next = reader.next_limited::<ToNode>(if auth.admitted() { MAX_FRAME_LEN } else { REFUSED_FRAME }) => next,
        };
        match next {
            Ok(Some(ToNode::Request { id, body })) => {
                let mut checked = auth.check_request(id).map(|()| body);
                if let Err(e) = &checked {
                    shared.count_refusal();
                    if !std::mem::replace(&mut warned, true) {
                        warn!(id, reason = %e, "deployer request refused");
                    } else {
                        debug!(id, reason = %e, "deployer request refused");
                    }
                } else if let Err(e) = shared.quotas.take_request(&key) {
                    shared.count_refusal();
                    throttled_warn!(shared.quotas.refusals, reason = %e, "deployer request refused: over its rate");
                    checked = Err(e);
                }
                if !requests.send_sized((id, checked), reader.last_len()).await {
                    break;
                }
            }
            Ok(Some(ToNode::Event(ev))) if auth.admitted() => {
                shared.router.route(app, ev.view(), Source::Deployer(&me))
            }
            Ok(Some(ToNode::Event(_))) => {
                debug!("event from a session that is not admitted; dropped");
                shared.router.count_drop();
            }
            Ok(Some(_)) => {
                if auth.admitted() {
                    warn!("deployer sent a second Hello or a peer's message; closing the session");
                } else {
                    throttled_warn!(
                        shared.connections.failures,
                        "refused deployer sent a second Hello or a peer's message; closing the session"
                    );
                }
                shared.router.count_drop();
                break;
            }
            Ok(None) => {
                debug!("deployer session closed");
                break;
            }
            Err(e) => {
                if auth.admitted() {
                    warn!(error = %e, "bad frame from deployer; closing the session");
                } else {
                    throttled_warn!(
                        shared.connections.failures,
                        error = %e,
                        "bad frame from a refused deployer; closing the session"
                    );
                }
                shared.router.count_drop();
                break;
            }
        }
    }
    shared.router.forget_session(session);
}
