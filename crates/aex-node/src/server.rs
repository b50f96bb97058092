//! The listener: accepts TCP connections, runs each one's link handshake (`aex_link`: the
//! node proves its identity; a peer node proves its own and must be admitted), reads its
//! `Hello`, and hands it to a deployer session or a peer link; on shutdown, stops accepting and
//! kills every module.
//!
//! Invariant: a connection is served only with a slot of the node's connection caps
//! (`conns.rs`: `max_connections`, `max_connections_per_address`), taken as it is accepted;
//! over a cap it is closed at once and counted in `refused`. Before a connection has said
//! `Hello`, everything it may make the node hold is bounded: a handshake message is at most
//! `aex_link::handshake::MAX_HANDSHAKE_MESSAGE` bytes, the first record and the `Hello` frame
//! at most about 1 KiB, each refused from its length prefix, and buffers grow only with what
//! arrives; and the handshake and `Hello` together must arrive within the `hello` timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aex_link::{LinkError, LinkKind, MAX_HELLO_LEN, MAX_RECORD};
use aex_proto::{Hello, NodeKey, ToNode};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout_at, Instant};
use tracing::{debug, info, instrument, warn};

use crate::conns::{throttled_warn, Slot};
use crate::frames::{FrameReader, ReadError};
use crate::limits::raise;
use crate::shared::Shared;
use crate::sync::{lock, stopped};
use crate::timeouts::show;

/// Files announcing a running node in its data directory.
pub(crate) const ADDR_FILE: &str = "node.addr";
pub(crate) const PID_FILE: &str = "node.pid";
/// Where the metrics endpoint listens, when the node serves one (`metrics.rs`).
pub(crate) const METRICS_ADDR_FILE: &str = "metrics.addr";

/// Accepts connections until shutdown, then kills every module and removes the announcement
/// files.
#[instrument(skip_all, fields(node = %shared.name))]
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => match shared.connections.admit(remote.ip()) {
                    Ok(slot) => {
                        tokio::spawn(serve_connection(shared.clone(), stream, remote, slot));
                    }
                    Err(over) => {
                        // Closed at once: nothing of it is read.
                        drop(stream);
                        shared.count_refusal();
                        throttled_warn!(
                            shared.connections.refusals,
                            %remote,
                            "connections refused since the last such warning: over `{}` ({}); {}",
                            over.setting(),
                            over.limit(),
                            raise(over.setting())
                        );
                    }
                },
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    info!("node stopping");
    let modules = shared.router.take_modules();
    for m in &modules {
        m.kill();
    }
    for m in &modules {
        m.stop(shared.timeouts.stop).await;
    }
    // Closes the device socket and removes its file.
    drop(lock(&shared.physics).take());
    for file in [ADDR_FILE, PID_FILE, METRICS_ADDR_FILE] {
        let _ = std::fs::remove_file(shared.data_dir.join(file));
    }
    info!("node stopped");
}

/// What went wrong before a connection said `Hello`.
enum Opening {
    Link(LinkError),
    Frame(ReadError),
}

/// Runs a connection's handshake, reads its `Hello` and serves it accordingly; its `slot` of
/// the connection caps is given back when it ends.
#[instrument(skip_all, fields(remote = %remote))]
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr, slot: Slot) {
    let _slot = slot;
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    // One deadline for the handshake, the Hello and (for a refused deployer) the session.
    let deadline = Instant::now() + shared.timeouts.hello;
    let (rd, wr) = stream.into_split();
    let mut stop = shared.shutdown.subscribe();
    let opening = async {
        let admit = |peer: &NodeKey| shared.admits_peer(peer);
        let (kind, link) = aex_link::tokio_io::accept(rd, wr, &shared.identity, admit)
            .await
            .map_err(Opening::Link)?;
        let mut reader = FrameReader::link(link.reader, shared.timeouts.body);
        let hello = reader
            .next_limited::<ToNode>(MAX_HELLO_LEN)
            .await
            .map_err(Opening::Frame)?;
        reader.get_mut().set_limit(MAX_RECORD);
        Ok((kind, reader, link.writer, link.hash, link.remote, hello))
    };
    let opened = tokio::select! {
        _ = stopped(&mut stop) => return,
        opened = timeout_at(deadline, opening) => opened,
    };
    let (kind, reader, writer, hash, peer, hello) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(Opening::Link(LinkError::NotAdmitted(key)))) => {
            throttled_warn!(
                shared.connections.failures,
                peer = %key,
                "peer link refused: no route names node identity {key} as a source and the configuration does not admit it (`peers` in node.toml, `aex node --peer {key}`)"
            );
            shared.count_refusal();
            return;
        }
        Ok(Err(Opening::Link(LinkError::PinnedOther(own)))) => {
            throttled_warn!(
                shared.connections.failures,
                "a client pinned another identity for this node (this node is {own}); it was told this node's identity and the link was closed"
            );
            shared.count_refusal();
            return;
        }
        Ok(Err(Opening::Link(LinkError::Closed))) => {
            debug!("connection closed during the handshake");
            return;
        }
        Ok(Err(Opening::Link(e))) => {
            throttled_warn!(
                shared.connections.failures,
                error = %e,
                "link handshake failed; closing the connection"
            );
            shared.router.count_drop();
            return;
        }
        Ok(Err(Opening::Frame(e))) => {
            throttled_warn!(
                shared.connections.failures,
                error = %e,
                "bad first frame; closing the connection"
            );
            shared.router.count_drop();
            return;
        }
        Err(_) => {
            throttled_warn!(
                shared.connections.failures,
                "no handshake and Hello within {}; closing the connection",
                show(shared.timeouts.hello)
            );
            return;
        }
    };
    match (kind, hello, peer) {
        (
            LinkKind::Deployer,
            Some(ToNode::Hello(Hello::Deployer {
                client,
                key,
                app,
                signature,
            })),
            _,
        ) => {
            let hello = crate::auth::DeployerHello {
                client,
                key,
                app,
                signature,
            };
            crate::session::serve(shared, reader, writer, hello, hash, deadline).await
        }
        (LinkKind::Peer, Some(ToNode::Hello(Hello::Peer { node })), Some(identity)) => {
            crate::inbound::serve_inbound(&shared.router, reader, writer, node, identity, stop)
                .await
        }
        (_, Some(_), _) => {
            throttled_warn!(
                shared.connections.failures,
                "first frame is not the Hello of this link's kind; closing the connection"
            );
            shared.router.count_drop();
        }
        (_, None, _) => debug!("connection closed before Hello"),
    }
}
