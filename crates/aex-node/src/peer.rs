//! Links between nodes: one persistent outgoing link per peer (address and identity). The
//! serving side of incoming ones is `inbound.rs`.
//!
//! Invariant: an outgoing link holds at most `peer_queue` bytes of events, and one namespace
//! at most `peer_queue_per_namespace` of them, taken round robin (`fair.rs`: one tenant's flood
//! drops that tenant's events, not another's). It connects lazily when the first event
//! arrives, reconnects with backoff after a failure, and while it cannot connect for longer
//! than its `stale` limit (see `Timeouts`) it drops (and counts) what is queued rather than
//! replay old events after an outage. Nothing here opens a connection per event.
//!
//! Every link is a Noise XK channel (`aex_link`): the initiator pins the peer's identity from
//! the route and proves its own, so the network can neither read, change nor inject anything,
//! and the receiving node knows which node speaks. Events cross a link as `ToNode::Forward`,
//! carrying the namespace they were routed in; the receiving node routes them in that
//! namespace only if its route names this link's identity as the events' origin (see
//! `router.rs`). The events themselves stay sealed under their connection's key, so even an
//! admitted but compromised peer can only drop, delay or send what modules then reject.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aex_link::tokio_io::{self, LinkRead, LinkWrite};
use aex_link::StaticKey;
use aex_proto::frame::encode;
use aex_proto::{AppId, Event, Hello, NodeKey, ToNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, info, instrument, warn};

use crate::fair::FairQueue;
use crate::frames::write_message;
use crate::limits::Limits;
use crate::sync::{lock, stopped};
use crate::timeouts::{show, Timeouts};

/// The most bytes of events one write batch takes from the queue before it flushes (each
/// batch must be written within the `write` timeout).
const BATCH: usize = 1 << 20;

/// A persistent link to another node.
pub(crate) struct PeerLink {
    address: String,
    identity: NodeKey,
    queue: Mutex<FairQueue>,
    /// Woken when an event is queued.
    queued: Notify,
    connected: AtomicBool,
    forwarded: AtomicU64,
    dropped: Arc<AtomicU64>,
}

impl PeerLink {
    /// Creates the link to the node with `identity` at `address`, as `own`, and its task; it
    /// connects when the first event is pushed, and waits as long as `timeouts` say
    /// (`connect`, `write`, `backoff`, `backoff_max`, `stale`). Its queue holds what `limits`
    /// say (`peer_queue`, `peer_queue_per_namespace`); what it drops is counted in `dropped`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one crate-internal call site, in router.rs, naming each part"
    )]
    pub(crate) fn spawn(
        address: String,
        identity: NodeKey,
        own: Arc<StaticKey>,
        node_name: String,
        dropped: Arc<AtomicU64>,
        shutdown: watch::Receiver<bool>,
        timeouts: Timeouts,
        limits: &Limits,
    ) -> Arc<PeerLink> {
        let link = Arc::new(PeerLink {
            address,
            identity,
            queue: Mutex::new(FairQueue::new(
                Limits::bytes(limits.peer_queue_per_namespace),
                Limits::bytes(limits.peer_queue),
            )),
            queued: Notify::new(),
            connected: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            dropped,
        });
        let task = Link {
            link: link.clone(),
            own,
            node_name,
            shutdown,
            timeouts,
        };
        tokio::spawn(task.run());
        link
    }

    /// Queues `ev` of namespace `app`; false if it was dropped (the caller counts that drop;
    /// events of a larger namespace dropped to make room for it are counted here).
    pub(crate) fn push(&self, app: AppId, ev: Event) -> bool {
        let frame = encode(&ToNode::Forward { app, event: ev });
        let pushed = lock(&self.queue).push(app, frame);
        if pushed.evicted > 0 {
            debug!(peer = %self.address, events = pushed.evicted, "peer queue full; dropped the newest events of the namespace holding the most");
            self.dropped.fetch_add(pushed.evicted, Ordering::Relaxed);
        }
        if pushed.queued {
            self.queued.notify_one();
        }
        pushed.queued
    }

    /// The next queued frame, in round-robin order between namespaces.
    fn pop(&self) -> Option<Vec<u8>> {
        lock(&self.queue).pop()
    }

    /// Whether events are queued.
    fn has_queued(&self) -> bool {
        !lock(&self.queue).is_empty()
    }

    /// What status reports about this link.
    pub(crate) fn status(&self) -> aex_proto::PeerStatus {
        aex_proto::PeerStatus {
            address: self.address.clone(),
            identity: self.identity,
            connected: self.connected.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
        }
    }
}

/// Why forwarding on a connection stopped.
enum Stop {
    Shutdown,
    Lost(String),
}

/// The task behind a [`PeerLink`].
struct Link {
    link: Arc<PeerLink>,
    own: Arc<StaticKey>,
    node_name: String,
    shutdown: watch::Receiver<bool>,
    timeouts: Timeouts,
}

impl Link {
    #[instrument(skip_all, fields(peer = %self.link.address))]
    async fn run(mut self) {
        let first = self.timeouts.backoff;
        let mut backoff = first;
        let mut down_since: Option<Instant> = None;
        loop {
            if !self.wait_for_events().await {
                return;
            }
            match self.connect().await {
                Ok(stream) => {
                    if down_since.take().is_some() {
                        info!("link to peer restored");
                    } else {
                        debug!("link to peer established");
                    }
                    backoff = first;
                    self.link.connected.store(true, Ordering::Relaxed);
                    let stop = self.forward(stream).await;
                    self.link.connected.store(false, Ordering::Relaxed);
                    match stop {
                        Stop::Shutdown => return,
                        Stop::Lost(why) => {
                            warn!(error = %why, "link to peer lost; reconnecting");
                            down_since = Some(Instant::now());
                        }
                    }
                }
                Err(why) => {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if backoff == first {
                        warn!(error = %why, "cannot connect to peer; retrying");
                    } else {
                        debug!(error = %why, "cannot connect to peer");
                    }
                    if since.elapsed() >= self.timeouts.stale {
                        self.drop_queue();
                    }
                    tokio::select! {
                        _ = stopped(&mut self.shutdown) => return,
                        _ = sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.timeouts.backoff_max);
                }
            }
        }
    }

    /// Waits until events are queued; false if the node stops first.
    async fn wait_for_events(&mut self) -> bool {
        while !self.link.has_queued() {
            tokio::select! {
                _ = stopped(&mut self.shutdown) => return false,
                _ = self.link.queued.notified() => {}
            }
        }
        true
    }

    /// Opens the TCP connection, runs the handshake (the peer must prove the pinned identity
    /// and admit ours) and says hello.
    async fn connect(
        &self,
    ) -> Result<(LinkRead<OwnedReadHalf>, LinkWrite<OwnedWriteHalf>), String> {
        let hello = ToNode::Hello(Hello::Peer {
            node: self.node_name.clone(),
        });
        let attempt = async {
            let stream = TcpStream::connect(self.link.address.as_str())
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (rd, wr) = stream.into_split();
            let link = tokio_io::connect_peer(rd, wr, &self.own, &self.link.identity)
                .await
                .map_err(|e| e.to_string())?;
            let mut out = BufWriter::new(link.writer);
            write_message(&mut out, &hello)
                .await
                .map_err(|e| e.to_string())?;
            out.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((link.reader, out.into_inner()))
        };
        match timeout(self.timeouts.connect, attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!("no link within {}", show(self.timeouts.connect))),
        }
    }

    /// Writes queued events, a batch at a time, until the connection fails or the node
    /// stops. Events taken for a batch that fails are lost (and counted).
    async fn forward(
        &mut self,
        (mut rd, wr): (LinkRead<OwnedReadHalf>, LinkWrite<OwnedWriteHalf>),
    ) -> Stop {
        let mut out = BufWriter::with_capacity(64 * 1024, wr);
        loop {
            let mut taken = 0u64;
            let link = &self.link;
            let batch = async {
                let mut bytes = 0;
                while bytes < BATCH {
                    let Some(frame) = link.pop() else { break };
                    taken += 1;
                    bytes += frame.len();
                    out.write_all(&frame).await?;
                }
                out.flush().await
            };
            let written = timeout(self.timeouts.write, batch).await;
            match written {
                Ok(Ok(())) => {
                    self.link.forwarded.fetch_add(taken, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    self.link.dropped.fetch_add(taken.max(1), Ordering::Relaxed);
                    return Stop::Lost(e.to_string());
                }
                Err(_) => {
                    self.link.dropped.fetch_add(taken.max(1), Ordering::Relaxed);
                    return Stop::Lost("write timed out".into());
                }
            }
            if self.link.has_queued() {
                continue;
            }
            tokio::select! {
                _ = stopped(&mut self.shutdown) => return Stop::Shutdown,
                _ = self.link.queued.notified() => {}
                closed = closed(&mut rd) => return Stop::Lost(closed),
            }
        }
    }

    /// Drops and counts every queued event.
    fn drop_queue(&mut self) {
        let n = lock(&self.link.queue).clear();
        if n > 0 {
            debug!(events = n, "peer unreachable; dropped queued events");
            self.link.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Resolves when the peer closes its side (peers send nothing on an outgoing link after
/// admitting it).
async fn closed(rd: &mut LinkRead<OwnedReadHalf>) -> String {
    let mut scratch = [0u8; 256];
    loop {
        match rd.read(&mut scratch).await {
            Ok(0) => return "peer closed the connection".into(),
            Ok(_) => continue,
            Err(e) => return e.to_string(),
        }
    }
}
