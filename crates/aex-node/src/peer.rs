//! Links between nodes: one persistent outgoing link per peer (address and identity). The
//! serving side of incoming ones is `inbound.rs`.
//!
//! Invariant: an outgoing link holds at most `peer_queue` bytes of events, and one namespace
//! at most `peer_queue_per_namespace` of them, taken round robin (`fair.rs`). Under honoured
//! credit (`aex_proto::flow`) a namespace never has more queued than its receivers granted, so
//! the queue does not fill; what overflows it (a sender that ignores its credit) is dropped,
//! the flood's own events first. It connects lazily when the first event arrives, reconnects
//! with backoff after a failure, and while it cannot connect for longer than its `stale` limit
//! (see `Timeouts`) it drops what is queued rather than replay old events after an outage.
//! Every event it drops (queue eviction, `stale`, a write batch lost with its connection) is
//! counted, and its cost handed back to the router ([`CreditHooks::dropped`]) as credit with
//! `dropped` set, so its sender's window does not leak and its sender learns of the loss.
//! Nothing here opens a connection per event.
//!
//! Every link is a Noise XK channel (`aex_link`): the initiator pins the peer's identity from
//! the route and proves its own, so the network can neither read, change nor inject anything,
//! and the receiving node knows which node speaks. Events cross a link as `ToNode::Forward`,
//! carrying the namespace they were routed in; the receiving node routes them in that
//! namespace only if its route names this link's identity as the events' origin (see
//! `router.rs`). The events themselves stay sealed under their connection's key, so even an
//! admitted but compromised peer can only drop, delay or send what modules then reject.
//!
//! The other way, the peer sends only `FromNode::Credit`, for events this link carried: a task
//! reads it while the link writes, and hands it to the router ([`CreditHooks::granted`]),
//! which relays it only for connections whose route leads to this link's identity. Anything
//! else from the peer, or a bad frame, closes the connection as its end does.
//!
//! The link reaches the router, which sits above it, only through its [`CreditHooks`].

use foldhash::{HashMap, HashMapExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aex_link::tokio_io::{self, LinkRead, LinkWrite};
use aex_link::StaticKey;
use aex_proto::flow::{self, Credit};
use aex_proto::forwarding::{self, EventRef};
use aex_proto::{AppId, ConnId, Direction, FromNode, Hello, NodeKey, ToNode};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, info, instrument, warn};

use crate::fair::{FairQueue, Pushed};
use crate::frames::{write_message, FrameReader};
use crate::limits::Limits;
use crate::sync::{lock, stopped};
use crate::timeouts::{show, Timeouts};

/// The most bytes of events one write batch takes from the queue before it flushes (each
/// batch must be written within the `write` timeout).
const BATCH: usize = 1 << 20;

/// The most tags of a written batch a link keeps room for between batches.
const KEEP_TAGS: usize = 1024;

/// How a link reaches the router, which sits above it (`router.rs` builds these from a weak
/// reference to itself, so a link never keeps the router alive).
pub(crate) struct CreditHooks {
    /// The link dropped events of namespace `app` (already counted): `credit` is their cost
    /// and number, per connection and direction, for the router to give back to their
    /// sender.
    pub(crate) dropped: Box<dyn Fn(AppId, Credit) + Send + Sync>,
    /// The peer granted `credit` for events of namespace `app`: the router relays it toward
    /// their sender if their route leads to this link's identity.
    pub(crate) granted: Box<dyn Fn(AppId, Credit) + Send + Sync>,
}

/// A persistent link to another node.
pub(crate) struct PeerLink {
    address: String,
    identity: NodeKey,
    /// Each frame tagged with its event's credit, should it be dropped.
    queue: Mutex<FairQueue<Credit>>,
    /// Woken when an event is queued.
    queued: Notify,
    connected: AtomicBool,
    forwarded: AtomicU64,
    dropped: Arc<AtomicU64>,
    hooks: CreditHooks,
}

impl PeerLink {
    /// Creates the link to the node with `identity` at `address`, as `own`, and its task; it
    /// connects when the first event is pushed, and waits as long as `timeouts` say
    /// (`connect`, `write`, `body`, `backoff`, `backoff_max`, `stale`). Its queue holds what
    /// `limits` say (`peer_queue`, `peer_queue_per_namespace`); what it drops is counted in
    /// `dropped` and its credit handed to `hooks`, as is the credit the peer grants.
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
        hooks: CreditHooks,
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
            hooks,
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

    /// The address the link connects to.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// The identity the link pins.
    pub(crate) fn identity(&self) -> &NodeKey {
        &self.identity
    }

    /// Queues `ev` of namespace `app`. If it was dropped (`queued` false), the caller counts
    /// the drop and gives its credit back; events of a larger namespace dropped to make room
    /// for it are counted here and returned as credit (`evicted`), for the caller to give
    /// back once it holds no lock.
    pub(crate) fn push(&self, app: AppId, ev: &EventRef<'_>) -> Pushed<Credit> {
        let tag = Credit {
            conn: ev.conn,
            dir: ev.dir,
            bytes: flow::cost_of(ev.ciphertext.len()),
            dropped: 1,
        };
        let frame = forwarding::forward(app, ev);
        let pushed = lock(&self.queue).push(app, frame, tag);
        if !pushed.evicted.is_empty() {
            debug!(peer = %self.address, events = pushed.evicted.len(), "peer queue full; dropped the newest events of the namespace holding the most");
            self.dropped
                .fetch_add(pushed.evicted.len() as u64, Ordering::Relaxed);
        }
        if pushed.queued {
            self.queued.notify_one();
        }
        pushed
    }

    /// The next queued frame, with its namespace and tag, in round-robin order between
    /// namespaces.
    fn pop(&self) -> Option<(AppId, Vec<u8>, Credit)> {
        lock(&self.queue).pop()
    }

    /// Whether events are queued.
    fn has_queued(&self) -> bool {
        !lock(&self.queue).is_empty()
    }

    /// Hands the credit of dropped events (already counted) to the router, summed per
    /// namespace, connection and direction.
    fn give_back(&self, dropped: Vec<(AppId, Credit)>) {
        for (app, credit) in aggregate(dropped) {
            (self.hooks.dropped)(app, credit);
        }
    }

    /// Frames queued for the peer now, and their bytes (frame costs, as the queue's bounds
    /// count them).
    pub(crate) fn queued(&self) -> (usize, usize) {
        let queue = lock(&self.queue);
        (queue.len(), queue.held())
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

/// Sums credits of the same namespace, connection and direction, in the order each first
/// appears (a sum that would overflow starts another credit).
fn aggregate(credits: Vec<(AppId, Credit)>) -> Vec<(AppId, Credit)> {
    let mut out: Vec<(AppId, Credit)> = Vec::new();
    let mut at: HashMap<(AppId, ConnId, Direction), usize> = HashMap::new();
    for (app, credit) in credits {
        let key = (app, credit.conn, credit.dir);
        if let Some(sum) = at.get(&key).and_then(|i| out.get_mut(*i)) {
            let bytes = sum.1.bytes.checked_add(credit.bytes);
            let dropped = sum.1.dropped.checked_add(credit.dropped);
            if let (Some(bytes), Some(dropped)) = (bytes, dropped) {
                sum.1.bytes = bytes;
                sum.1.dropped = dropped;
                continue;
            }
        }
        at.insert(key, out.len());
        out.push((app, credit));
    }
    out
}

/// Why forwarding on a connection stopped.
enum Stop {
    Shutdown,
    Lost(String),
}

/// The task reading a connection's credit; aborted with the connection.
struct Reading(JoinHandle<String>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.abort();
    }
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
    /// stops, while a task of its own reads the credit the peer sends back (reading never
    /// waits for writing, nor writing for reading). Events taken for a batch that fails are
    /// lost (counted, and their credit given back).
    async fn forward(
        &mut self,
        (rd, wr): (LinkRead<OwnedReadHalf>, LinkWrite<OwnedWriteHalf>),
    ) -> Stop {
        let mut reading = Reading(tokio::spawn(read_credit(
            self.link.clone(),
            FrameReader::link(rd, self.timeouts.body),
        )));
        // No `BufWriter`: the link's writer gathers what is written into records of up to
        // 64 KiB itself, so a buffer in front would only copy every event once more.
        let mut out = wr;
        // The tags of the batch being written: its events' credit, should it fail.
        let mut taken: Vec<(AppId, Credit)> = Vec::new();
        loop {
            let link = &self.link;
            let batch = async {
                let mut bytes = 0;
                while bytes < BATCH {
                    let Some((app, frame, tag)) = link.pop() else {
                        break;
                    };
                    taken.push((app, tag));
                    bytes += frame.len();
                    out.write_all(&frame).await?;
                }
                out.flush().await
            };
            let lost = match timeout(self.timeouts.write, batch).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("write timed out".to_string()),
            };
            if let Some(why) = lost {
                let n = taken.len() as u64;
                self.link.dropped.fetch_add(n.max(1), Ordering::Relaxed);
                self.link.give_back(taken);
                return Stop::Lost(why);
            }
            self.link
                .forwarded
                .fetch_add(taken.len() as u64, Ordering::Relaxed);
            taken.clear();
            if taken.capacity() > KEEP_TAGS {
                taken = Vec::new();
            }
            if self.link.has_queued() {
                continue;
            }
            tokio::select! {
                _ = stopped(&mut self.shutdown) => return Stop::Shutdown,
                _ = self.link.queued.notified() => {}
                closed = &mut reading.0 => {
                    return Stop::Lost(closed.unwrap_or_else(|e| e.to_string()))
                }
            }
        }
    }

    /// Drops every queued event, counted and its credit given back.
    fn drop_queue(&mut self) {
        let dropped = lock(&self.link.queue).clear();
        if !dropped.is_empty() {
            debug!(
                events = dropped.len(),
                "peer unreachable; dropped queued events"
            );
            self.link
                .dropped
                .fetch_add(dropped.len() as u64, Ordering::Relaxed);
            self.link.give_back(dropped);
        }
    }
}

/// Reads what the peer sends on the link, which is only credit for the events the link
/// carried, and hands it to the router; returns why the connection ended: the peer closed
/// it, or sent a bad frame or something else (counted).
async fn read_credit(
    link: Arc<PeerLink>,
    mut reader: FrameReader<LinkRead<OwnedReadHalf>>,
) -> String {
    loop {
        match reader.next::<FromNode>().await {
            Ok(Some(FromNode::Credit { app, credit })) => (link.hooks.granted)(app, credit),
            Ok(Some(_)) => {
                link.dropped.fetch_add(1, Ordering::Relaxed);
                return "peer sent something other than credit".into();
            }
            Ok(None) => return "peer closed the connection".into(),
            Err(e) => {
                link.dropped.fetch_add(1, Ordering::Relaxed);
                return format!("bad frame from peer: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aex_proto::{Event, EventKind};

    use super::*;

    fn event(conn: u32, counter: u64) -> Event {
        Event {
            conn: ConnId(conn),
            dir: Direction::Forward,
            kind: EventKind::Event,
            counter,
            ciphertext: vec![0; 100],
        }
    }

    fn credit(conn: u32, bytes: u32, dropped: u32) -> Credit {
        Credit {
            conn: ConnId(conn),
            dir: Direction::Forward,
            bytes,
            dropped,
        }
    }

    #[test]
    fn credits_are_summed_per_namespace_connection_and_direction() {
        let (a, b) = (AppId([1; 16]), AppId([2; 16]));
        let summed = aggregate(vec![
            (a, credit(1, 10, 1)),
            (b, credit(1, 20, 1)),
            (a, credit(2, 30, 1)),
            (a, credit(1, 40, 1)),
            (a, credit(1, u32::MAX, 1)),
        ]);
        assert_eq!(
            summed,
            [
                (a, credit(1, 50, 2)),
                (b, credit(1, 20, 1)),
                (a, credit(2, 30, 1)),
                (a, credit(1, u32::MAX, 1)),
            ]
        );
    }

    #[tokio::test]
    async fn events_dropped_as_stale_give_their_credit_back() {
        // A port nothing listens on (any more): every connection attempt is refused.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let hooks = CreditHooks {
            dropped: Box::new(move |app, credit| {
                let _ = tx.try_send((app, credit));
            }),
            granted: Box::new(|_, _| panic!("no peer to grant anything")),
        };
        let mut timeouts = Timeouts::default();
        timeouts.set("stale", Duration::from_millis(50)).unwrap();
        timeouts.set("backoff", Duration::from_millis(10)).unwrap();
        timeouts
            .set("backoff_max", Duration::from_millis(20))
            .unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let dropped = Arc::new(AtomicU64::new(0));
        let link = PeerLink::spawn(
            address,
            NodeKey([1; 32]),
            Arc::new(StaticKey::generate()),
            "test".into(),
            dropped.clone(),
            shutdown,
            timeouts,
            &Limits::default(),
            hooks,
        );
        let app = AppId([3; 16]);
        for i in 1..=3 {
            assert!(link.push(app, &event(5, i).view()).queued);
        }
        assert!(link.push(app, &event(6, 1).view()).queued);
        let mut got = vec![];
        while got.len() < 2 {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            got.push(next.expect("credit within 10 s").expect("hook alive"));
        }
        got.sort_by_key(|(_, c)| c.conn);
        let cost = flow::cost(&event(5, 1));
        assert_eq!(
            got,
            [(app, credit(5, 3 * cost, 3)), (app, credit(6, cost, 1))]
        );
        assert_eq!(dropped.load(Ordering::Relaxed), 4);
        assert!(!link.has_queued());
    }
}
