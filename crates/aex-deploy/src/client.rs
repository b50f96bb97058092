//! A blocking management client for one node agent.
//!
//! The deployer speaks to each node over one persistent link: a Noise NK channel over TCP
//! ([`aex_link`]) that only the node holding the pinned identity key can complete, so every
//! answer is the node's, unchanged, in order. It sends `ToNode::Request`s (pipelined when it
//! has many) and reads `FromNode::Response`s, while events for its direct connections may
//! arrive in between and are queued.
//!
//! A hostile node can neither hang the deployer (which may hold the application's state lock
//! meanwhile) nor make it buffer without bound:
//!
//! * every operation has a deadline, not just every read: each read and write of the socket
//!   waits at most until the deadline of the operation in progress (connecting, one answer,
//!   one flush: the client's timeout; waiting for an event: the wait asked for), so a node that
//!   trickles one byte a second fails the operation at its deadline like a silent one;
//! * a frame's buffer grows as its bytes arrive (at most 1 MiB, the frame limit), and a read
//!   cut short by a deadline keeps what arrived, so the stream stays usable after
//!   [`NodeClient::next_event`] times out;
//! * events that arrive while the client waits for an answer are kept up to
//!   [`MAX_PENDING_EVENTS`] events and [`MAX_PENDING_EVENT_BYTES`] bytes; more are dropped
//!   and counted ([`NodeClient::dropped_events`]): a direct connection sees them as a gap;
//! * a node that is still at work on a request says so (`FromNode::Working`, when a module it
//!   waits for stores sealed state), which restarts the wait for the answer, up to
//!   [`MAX_STRETCH`] timeouts in all: the timeout bounds a node's silence, not the size of
//!   the work, and a node that claims to work forever is given up on all the same;
//! * frames a deployer has no use for are skipped wherever frames are read: answers to
//!   requests nobody waits for, and `FromNode::Credit`, which nodes send on peer links (a
//!   deployer's window lives on the node, and it asks for it: `NodeRequest::Window`).
//!
//! A session belongs to one deployer identity and one application: the client names both in
//! its `Hello` and signs this link's handshake hash and the node's identity with its key (see
//! [`aex_proto::auth`]), so the node acts for it only in that application's namespace, and a
//! `Hello` is worth nothing on any other link or node.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aex_link::blocking::{LinkReader, LinkWriter};
use aex_link::{KeyMismatch, LinkError};
use aex_proto::auth::sign_session;
use aex_proto::frame::{self, LEN_PREFIX};
use aex_proto::{Event, FromNode, Hello, NodeError, NodeKey, NodeRequest, NodeResponse, ToNode};

use crate::duration::show_duration;
use crate::identity::Identity;

/// Why talking to a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}")]
    Connect {
        /// Node address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// Reading or writing failed (including a timeout or a malformed frame).
    #[error("connection to {addr} failed")]
    Io {
        /// Node address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The node closed the connection.
    #[error("{addr} closed the connection")]
    Closed {
        /// Node address.
        addr: SocketAddr,
    },
    /// The node at the address claimed (failing the handshake) another identity than the
    /// pinned one.
    #[error(
        "the node at {addr} has identity key {}, but {} is pinned for it",
        keys.actual,
        keys.pinned
    )]
    WrongIdentity {
        /// Node address.
        addr: SocketAddr,
        /// The pinned key and the node's.
        keys: Box<KeyMismatch>,
    },
    /// The link failed: its handshake did not complete, or a record did not authenticate
    /// (something changed, dropped, replayed or injected bytes on the way).
    #[error("the link with {addr} failed")]
    Link {
        /// Node address.
        addr: SocketAddr,
        /// What failed.
        source: Box<LinkError>,
    },
    /// The node answered with an error.
    #[error("{0}")]
    Node(NodeError),
    /// The node answered with a response of the wrong type.
    #[error("{addr} sent an unexpected answer to {request}")]
    Unexpected {
        /// Node address.
        addr: SocketAddr,
        /// Which request.
        request: &'static str,
    },
}

/// Default timeout for one management answer (`aex --timeout` or `AEX_TIMEOUT` changes it:
/// see `App::set_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// How far `FromNode::Working` may stretch the wait for one answer, in multiples of the
/// timeout: a node that says it works forever is still given up on (after 10 minutes at the
/// default timeout; a node gives up on its module after 30 times its own `reply` limit).
pub const MAX_STRETCH: u32 = 40;

/// Events kept while the client waits for something else; more are dropped.
pub const MAX_PENDING_EVENTS: usize = 1024;
/// Bytes of events (their ciphertexts) kept while the client waits for something else.
pub const MAX_PENDING_EVENT_BYTES: usize = 8 << 20;
/// The most frame buffer kept between frames.
const KEEP: usize = 64 * 1024;

/// The deadline of the operation in progress, shared by both halves of a session's socket.
type Deadline = Arc<Mutex<Instant>>;

/// One half of a session's socket: every read or write waits at most until the deadline.
struct Timed {
    stream: TcpStream,
    deadline: Deadline,
}

impl Timed {
    /// What is left until the deadline; a timeout error once it has passed.
    fn left(&self) -> io::Result<Duration> {
        let deadline = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A management session with one node.
pub struct NodeClient {
    addr: SocketAddr,
    reader: LinkReader<BufReader<Timed>>,
    writer: LinkWriter<Timed>,
    deadline: Deadline,
    /// The frame being read: as much of it as arrived.
    frame: Vec<u8>,
    next_id: u64,
    events: VecDeque<Event>,
    event_bytes: usize,
    dropped_events: u64,
    timeout: Duration,
}

impl NodeClient {
    /// Connects to the node whose identity is `node`, runs the link's handshake (refused with
    /// [`ClientError::WrongIdentity`] if the node at `addr` has another identity) and says
    /// hello as `identity` managing application `app`. Every wait is limited by `timeout`, so
    /// a node that accepts the connection and never answers fails in that time.
    pub fn connect(
        addr: SocketAddr,
        node: NodeKey,
        timeout: Duration,
        identity: Arc<Identity>,
        app: &str,
    ) -> Result<Self, ClientError> {
        let started = Instant::now();
        let stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))
            .map_err(|source| ClientError::Connect { addr, source })?;
        let io = |source| ClientError::Io { addr, source };
        stream.set_nodelay(true).map_err(io)?;
        // The handshake and the Hello must be done within the timeout, however the node
        // paces its bytes.
        let deadline = Arc::new(Mutex::new(started + timeout));
        let timed = |stream| Timed {
            stream,
            deadline: deadline.clone(),
        };
        let reader = BufReader::new(timed(stream.try_clone().map_err(io)?));
        let link = aex_link::blocking::connect_deployer(reader, timed(stream), &node)
            .map_err(|e| link_error(addr, timeout, e))?;
        let signature = sign_session(identity.signing(), &link.hash, &node, app);
        let mut client = NodeClient {
            addr,
            reader: link.reader,
            writer: link.writer,
            deadline,
            frame: Vec::new(),
            next_id: 1,
            events: VecDeque::new(),
            event_bytes: 0,
            dropped_events: 0,
            timeout,
        };
        // The Hello goes alone in the link's first record (the node limits that record).
        client.send(&ToNode::Hello(Hello::Deployer {
            client: format!("aex {}", env!("CARGO_PKG_VERSION")),
            key: identity.public(),
            app: app.into(),
            signature,
        }))?;
        client.flush_by(started + timeout)?;
        Ok(client)
    }

    /// Sets the deadline of the operation starting now.
    fn arm(&self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    /// Events dropped because too many were waiting (see [`MAX_PENDING_EVENTS`]).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and waits for its answer.
    pub fn request(&mut self, body: NodeRequest) -> Result<NodeResponse, ClientError> {
        let id = self.send_request(body)?;
        self.flush()?;
        self.response(id)
    }

    /// Queues a request without waiting; returns its id. Call [`NodeClient::flush`] and then
    /// [`NodeClient::response`] for each id, in order.
    pub fn send_request(&mut self, body: NodeRequest) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ToNode::Request { id, body })?;
        Ok(id)
    }

    /// Sends an event on a direct connection.
    pub fn send_event(&mut self, event: Event) -> Result<(), ClientError> {
        self.send(&ToNode::Event(event))?;
        self.flush()
    }

    /// Flushes queued requests (the node must take them within the client's timeout).
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.flush_by(Instant::now() + self.timeout)
    }

    fn flush_by(&mut self, deadline: Instant) -> Result<(), ClientError> {
        self.arm(deadline);
        let (addr, limit) = (self.addr, self.timeout);
        self.writer
            .flush()
            .map_err(|source| io_error(addr, limit, source, "take the request"))
    }

    /// Waits for the answer to request `id` (at most the client's timeout, however the node
    /// paces its bytes), keeping events that arrive first.
    pub fn response(&mut self, id: u64) -> Result<NodeResponse, ClientError> {
        let started = Instant::now();
        let cap = started + self.timeout * MAX_STRETCH;
        self.arm(started + self.timeout);
        loop {
            match self.read()? {
                FromNode::Response { id: got, result } if got == id => {
                    return result.map_err(ClientError::Node);
                }
                FromNode::Response { .. } => continue,
                // The node is still at work on this request or one before it (answers come
                // in order): the timeout bounds its silence, so it starts again.
                FromNode::Working { .. } => self.arm((Instant::now() + self.timeout).min(cap)),
                FromNode::Event(ev) => self.keep(ev),
                // `Credit`, and what later nodes may add.
                _ => continue,
            }
        }
    }

    /// Keeps an event for [`NodeClient::next_event`], or drops it if too many wait.
    fn keep(&mut self, ev: Event) {
        let bytes = ev.ciphertext.len();
        if self.events.len() >= MAX_PENDING_EVENTS
            || self.event_bytes + bytes > MAX_PENDING_EVENT_BYTES
        {
            self.dropped_events += 1;
            return;
        }
        self.event_bytes += bytes;
        self.events.push_back(ev);
    }

    /// The next event routed to this session, waiting at most `wait` (however the node paces
    /// its bytes; a frame cut short by the wait is kept for the next call).
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, ClientError> {
        if let Some(ev) = self.events.pop_front() {
            self.event_bytes -= ev.ciphertext.len();
            return Ok(Some(ev));
        }
        self.arm(Instant::now() + wait);
        loop {
            match self.read() {
                Ok(FromNode::Event(ev)) => return Ok(Some(ev)),
                // Answers nobody waits for, `Credit`, and what later nodes may add.
                Ok(_) => continue,
                Err(ClientError::Io { source, .. })
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `msg` into the link's buffer; when a record fills, it goes out, and the node
    /// must take it within the client's timeout.
    fn send(&mut self, msg: &ToNode) -> Result<(), ClientError> {
        self.arm(Instant::now() + self.timeout);
        let (addr, limit) = (self.addr, self.timeout);
        frame::write_message(&mut self.writer, msg)
            .map_err(|source| io_error(addr, limit, source, "take the request"))
    }

    /// The next message, by the deadline armed. The frame's buffer grows as its bytes arrive
    /// and keeps them across a deadline.
    fn read(&mut self) -> Result<FromNode, ClientError> {
        let (addr, limit) = (self.addr, self.timeout);
        let invalid = |e: frame::DecodeError| ClientError::Io {
            addr,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        };
        loop {
            let need = if self.frame.len() < LEN_PREFIX {
                LEN_PREFIX - self.frame.len()
            } else {
                let mut prefix = [0u8; LEN_PREFIX];
                prefix.copy_from_slice(&self.frame[..LEN_PREFIX]);
                let len = frame::body_len(prefix).map_err(invalid)?;
                let need = LEN_PREFIX + len - self.frame.len();
                if need == 0 {
                    let msg = frame::decode::<FromNode>(&self.frame[LEN_PREFIX..]);
                    self.frame.clear();
                    if self.frame.capacity() > KEEP {
                        self.frame = Vec::new();
                    }
                    return msg.map_err(invalid);
                }
                need
            };
            let mut chunk = [0u8; 16 * 1024];
            let want = need.min(chunk.len());
            match self.reader.read(&mut chunk[..want]) {
                Ok(0) if self.frame.is_empty() => return Err(ClientError::Closed { addr }),
                Ok(0) => {
                    let source = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the node closed the connection inside a frame",
                    );
                    return Err(ClientError::Io { addr, source });
                }
                Ok(n) => self.frame.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(io_error(addr, limit, source, "answer")),
            }
        }
    }
}

/// A failure of the link's handshake: a wrong identity is named as such, a timeout in words.
fn link_error(addr: SocketAddr, limit: Duration, e: LinkError) -> ClientError {
    match e {
        LinkError::WrongIdentity(keys) => ClientError::WrongIdentity { addr, keys },
        LinkError::Io(source) => io_error(addr, limit, source, "answer the link's handshake"),
        source => ClientError::Link {
            addr,
            source: Box::new(source),
        },
    }
}

/// An I/O failure on the session. A socket timeout, which the OS reports as "resource
/// temporarily unavailable", is said in words: the node did not `doing` within `limit`; a
/// record that did not authenticate is a [`ClientError::Link`] failure.
fn io_error(addr: SocketAddr, limit: Duration, source: std::io::Error, doing: &str) -> ClientError {
    use std::io::ErrorKind;
    if source.get_ref().is_some_and(|e| e.is::<LinkError>()) {
        return match source.into_inner().map(|e| e.downcast::<LinkError>()) {
            Some(Ok(link)) => ClientError::Link { addr, source: link },
            _ => ClientError::Io {
                addr,
                source: std::io::Error::other("the link failed"),
            },
        };
    }
    let source = match source.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => std::io::Error::new(
            ErrorKind::TimedOut,
            format!("the node did not {doing} within {}", show_duration(limit)),
        ),
        _ => source,
    };
    ClientError::Io { addr, source }
}

#[cfg(test)]
mod tests;
