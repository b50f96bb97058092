//! Deployer sessions: one TCP connection that opened with `Hello::Deployer`.
//!
//! The node answers the `Hello` with a fresh challenge and waits for the deployer's proof of
//! its key ([`crate::auth`]). A session reads frames and splits them: management requests are
//! checked (admitted key, signature, increasing id) and go, in order, to the session's request
//! task ([`crate::requests::serve`]), refused ones with their refusal; events on the deployer's
//! direct connections are routed at once in the session's namespace, and make this session the
//! `Endpoint::Deployer` destination for their connection id (only once the session is
//! admitted, so no one can divert another deployer's events). Everything the node sends back
//! (challenge, responses and events) goes through one bounded queue drained by one writer task.

use std::sync::Arc;

use aex_proto::{AppId, DeployerKey, FromNode, ToNode};
use tokio::io::AsyncRead;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tracing::{debug, instrument, warn};

use crate::auth::SessionAuth;
use crate::frames::{pump, FrameReader};
use crate::router::{DeployerTx, Source};
use crate::server::stopped;
use crate::server::Shared;

/// Frames queued for the deployer (responses wait for room; events are dropped when full).
const OUT_QUEUE: usize = 1024;
/// Requests read ahead of the one being answered.
const REQUEST_QUEUE: usize = 16;

/// What a deployer said in its `Hello`.
pub(crate) struct DeployerHello {
    /// Informational client version.
    pub(crate) client: String,
    /// The key it claims (proven later, by `Auth`).
    pub(crate) key: DeployerKey,
    /// The application it manages.
    pub(crate) app: String,
}

/// Serves one deployer session until it closes, misbehaves, or the node stops.
#[instrument(skip_all, fields(session, client = %hello.client, key = %hello.key.short()))]
pub(crate) async fn serve<R>(
    shared: Arc<Shared>,
    mut reader: FrameReader<R>,
    writer: OwnedWriteHalf,
    hello: DeployerHello,
) where
    R: AsyncRead + Unpin,
{
    let session = shared.session_id();
    tracing::Span::current().record("session", session);
    debug!("deployer session opened");
    if shared.admission.is_open() {
        warn!("OPEN MODE: this node admits any deployer (started with --open; local development only)");
    }

    let (out, mut out_rx) = mpsc::channel::<FromNode>(OUT_QUEUE);
    let write_limit = shared.timeouts.write;
    tokio::spawn(async move {
        if let Err(e) = pump(&mut out_rx, writer, Some(write_limit)).await {
            debug!(error = %e, "writing to deployer failed");
        }
    });
    let nonce = aex_crypto::random_bytes();
    if out.send(FromNode::Challenge { nonce }).await.is_err() {
        return;
    }
    let app = AppId::of(&hello.key, &hello.app);
    let mut auth = SessionAuth::new(hello.key, hello.app, nonce);
    if let SessionAuth::Refused(why) = &auth {
        warn!(reason = %why, "deployer session refused");
        shared.count_refusal();
    }
    let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    tokio::spawn(crate::requests::serve(
        shared.clone(),
        session,
        app,
        hello.key,
        requests_rx,
        out.clone(),
    ));
    let me = DeployerTx { session, tx: out };
    let mut warned = false;

    let mut stop = shared.shutdown.subscribe();
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stop) => break,
            next = reader.next::<ToNode>() => next,
        };
        match next {
            Ok(Some(ToNode::Auth { signature })) => {
                let (next, refused) = auth.on_auth(&shared.admission, &shared.name, &signature);
                auth = next;
                if let Some(why) = refused {
                    warn!(reason = %why, "deployer session refused");
                    shared.count_refusal();
                    warned = true;
                } else if auth.admitted() {
                    debug!(%app, "deployer authenticated");
                }
            }
            Ok(Some(ToNode::Request {
                id,
                body,
                signature,
            })) => {
                let checked = auth.check_request(id, &body, &signature).map(|()| body);
                if let Err(e) = &checked {
                    shared.count_refusal();
                    if !std::mem::replace(&mut warned, true) {
                        warn!(id, reason = %e, "deployer request refused");
                    } else {
                        debug!(id, reason = %e, "deployer request refused");
                    }
                }
                if requests.send((id, checked)).await.is_err() {
                    break;
                }
            }
            Ok(Some(ToNode::Event(ev))) if auth.admitted() => {
                shared.router.route(app, ev, Source::Deployer(&me))
            }
            Ok(Some(ToNode::Event(_))) => {
                debug!("event from a session that is not admitted; dropped");
                shared.router.count_drop();
            }
            Ok(Some(_)) => {
                warn!("deployer sent a second Hello or a peer's message; closing the session");
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
