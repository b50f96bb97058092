//! A blocking management client for one node agent.
//!
//! The deployer speaks to each node over one persistent link: a Noise NK channel over TCP
//! ([`aex_link`]) that only the node holding the pinned identity key can complete, so every
//! answer is the node's, unchanged, in order. It sends `ToNode::Request`s (pipelined when it
//! has many) and reads `FromNode::Response`s, while events for its direct connections may
//! arrive in between and are queued. Every read has a timeout, so a silent or malicious node
//! cannot hang the deployer.
//!
//! A session belongs to one deployer identity and one application: the client names both in
//! its `Hello` and signs this link's handshake hash and the node's identity with its key (see
//! [`aex_proto::auth`]), so the node acts for it only in that application's namespace, and a
//! `Hello` is worth nothing on any other link or node.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aex_link::blocking::{LinkReader, LinkWriter};
use aex_link::{KeyMismatch, LinkError};
use aex_proto::auth::sign_session;
use aex_proto::frame;
use aex_proto::{Event, FromNode, Hello, NodeError, NodeKey, NodeRequest, NodeResponse, ToNode};

use crate::error::show_duration;
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

/// A management session with one node.
pub struct NodeClient {
    addr: SocketAddr,
    reader: LinkReader<BufReader<TcpStream>>,
    writer: LinkWriter<TcpStream>,
    next_id: u64,
    events: VecDeque<Event>,
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
        let stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))
            .map_err(|source| ClientError::Connect { addr, source })?;
        let io = |source| ClientError::Io { addr, source };
        stream.set_nodelay(true).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let reader = BufReader::new(stream.try_clone().map_err(io)?);
        let link = aex_link::blocking::connect_deployer(reader, stream, &node)
            .map_err(|e| link_error(addr, timeout, e))?;
        let signature = sign_session(identity.signing(), &link.hash, &node, app);
        let mut client = NodeClient {
            addr,
            reader: link.reader,
            writer: link.writer,
            next_id: 1,
            events: VecDeque::new(),
            timeout,
        };
        // The Hello goes alone in the link's first record (the node limits that record).
        client.send(&ToNode::Hello(Hello::Deployer {
            client: format!("aex {}", env!("CARGO_PKG_VERSION")),
            key: identity.public(),
            app: app.into(),
            signature,
        }))?;
        client.flush()?;
        Ok(client)
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

    /// Flushes queued requests.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        let (addr, limit) = (self.addr, self.timeout);
        self.writer
            .flush()
            .map_err(|source| io_error(addr, limit, source, "take the request"))
    }

    /// Waits for the answer to request `id`, queueing events that arrive first.
    pub fn response(&mut self, id: u64) -> Result<NodeResponse, ClientError> {
        loop {
            match self.read()? {
                FromNode::Response { id: got, result } if got == id => {
                    return result.map_err(ClientError::Node);
                }
                FromNode::Response { .. } => continue,
                FromNode::Event(ev) => self.events.push_back(ev),
                _ => continue,
            }
        }
    }

    /// The next event routed to this session, waiting at most `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, ClientError> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        let deadline = Instant::now() + wait;
        let addr = self.addr;
        let io = |source| ClientError::Io { addr, source };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.reader
                .get_ref()
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(io)?;
            let got = self.read();
            self.reader
                .get_ref()
                .get_ref()
                .set_read_timeout(Some(self.timeout))
                .map_err(io)?;
            match got {
                Ok(FromNode::Event(ev)) => return Ok(Some(ev)),
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

    fn send(&mut self, msg: &ToNode) -> Result<(), ClientError> {
        let (addr, limit) = (self.addr, self.timeout);
        frame::write_message(&mut self.writer, msg)
            .map_err(|source| io_error(addr, limit, source, "take the request"))
    }

    fn read(&mut self) -> Result<FromNode, ClientError> {
        let (addr, limit) = (self.addr, self.timeout);
        match frame::read_message::<_, FromNode>(&mut self.reader) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(ClientError::Closed { addr }),
            Err(source) => Err(io_error(addr, limit, source, "answer")),
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
mod tests {
    use super::*;

    /// A "node" that accepts connections and never answers; returns its address.
    fn silent_node() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            // Holds every connection open, reading nothing, until the test process ends.
            let mut held = Vec::new();
            for conn in listener.incoming() {
                held.push(conn);
            }
        });
        addr
    }

    #[test]
    fn a_silent_node_fails_the_connection_after_the_client_s_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, _) = Identity::load_or_create(&dir.path().join("identity")).unwrap();
        let limit = Duration::from_millis(250);
        let started = Instant::now();
        let node = aex_link::StaticKey::generate().public();
        let e = NodeClient::connect(silent_node(), node, limit, Arc::new(identity), "app")
            .err()
            .unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed >= limit, "failed after {elapsed:?}");
        let ClientError::Io { source, .. } = &e else {
            panic!("not an I/O failure: {e}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(
            source.to_string(),
            "the node did not answer the link's handshake within 250 ms"
        );
    }
}
