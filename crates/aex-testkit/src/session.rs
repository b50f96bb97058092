//! Playing a deployer or a peer node towards a node agent: the management protocol spoken
//! request by request over a blocking link.
//!
//! A [`Session`] runs the link's Noise handshake with the node's pinned identity, then can do
//! everything `aex` does and what `aex` never would: claim another key, sign its `Hello` for
//! another link or node, send no `Hello`, send garbage inside the channel, or raw bytes on the
//! socket before any handshake. With the application's own identity it stands for a
//! compromised node agent, which can hand the application's modules anything.
//!
//! The kit pins every node it starts: [`pin`] records an address's identity key when a
//! [`crate::node::NodeProcess`] or [`crate::node::TestNode`] starts (and a proxy takes its
//! upstream's), and [`Session::open`] looks it up. [`Session::open_pinned`] pins another key
//! (an impostor test). [`PeerConn`] plays a peer node's link, with an identity of its own.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_link::blocking::{Link, LinkReader, LinkWriter};
use aex_link::{LinkError, StaticKey};
use aex_proto::auth::sign_session;
use aex_proto::frame::{self, read_message, write_message};
use aex_proto::{
    AppId, ConnId, DeployerKey, Direction, Event, FromNode, Hello, NodeError, NodeKey, NodeRequest,
    NodeResponse, NodeStatus, Signature, ToNode,
};

/// How long a session waits for any one frame from the node.
pub const READ_PATIENCE: Duration = Duration::from_secs(10);

/// Upload chunk size of [`Session::load`] (small, so uploads take several chunks).
const CHUNK: usize = 64 * 1024;

fn pins() -> &'static Mutex<HashMap<SocketAddr, NodeKey>> {
    static PINS: OnceLock<Mutex<HashMap<SocketAddr, NodeKey>>> = OnceLock::new();
    PINS.get_or_init(Mutex::default)
}

/// Records that the node at `addr` has identity `key` (done by the kit for every node and
/// proxy it starts).
pub fn pin(addr: SocketAddr, key: NodeKey) {
    pins()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr, key);
}

/// The identity key the kit pinned for `addr`.
#[track_caller]
pub fn pinned(addr: SocketAddr) -> NodeKey {
    pins()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&addr)
        .copied()
        .unwrap_or_else(|| {
            panic!(
                "no identity pinned for {addr}: the kit pins the nodes it starts; for another \
                 node use `Session::open_pinned` or `session::pin`"
            )
        })
}

/// A TCP connection to a node, with or without a link.
pub struct Session {
    addr: SocketAddr,
    stream: TcpStream,
    link: Option<(LinkReader<TcpStream>, LinkWriter<TcpStream>)>,
    hash: [u8; 32],
    node: NodeKey,
    next_id: u64,
    identity: SigningIdentity,
    app: String,
}

impl Session {
    /// A session of `identity` for application `app`, with the node's pinned identity.
    #[track_caller]
    pub fn open(addr: SocketAddr, identity: &SigningIdentity, app: &str) -> Session {
        Self::open_claiming(addr, DeployerKey::of(identity), identity, app)
    }

    /// A session that claims deployer key `claimed` but signs with `signer` (an impostor
    /// unless they match).
    #[track_caller]
    pub fn open_claiming(
        addr: SocketAddr,
        claimed: DeployerKey,
        signer: &SigningIdentity,
        app: &str,
    ) -> Session {
        let mut s = Self::linked(addr);
        s.identity = SigningIdentity::from_seed(signer.expose_secret());
        s.app = app.into();
        let signature = sign_session(&s.identity, &s.hash, &s.node, app);
        s.send_hello(claimed, app, signature);
        s
    }

    /// A session whose link pins `node` for the node at `addr` (refused if it is not that
    /// node's identity: the error names both keys).
    pub fn open_pinned(
        addr: SocketAddr,
        node: NodeKey,
        identity: &SigningIdentity,
        app: &str,
    ) -> Result<Session, LinkError> {
        let mut s = Self::try_linked(addr, node)?;
        s.identity = SigningIdentity::from_seed(identity.expose_secret());
        s.app = app.into();
        let signature = sign_session(&s.identity, &s.hash, &s.node, app);
        s.send_hello(DeployerKey::of(identity), app, signature);
        Ok(s)
    }

    /// A link to the node (handshake done, with its pinned identity) that has not said
    /// `Hello`.
    #[track_caller]
    pub fn linked(addr: SocketAddr) -> Session {
        let node = pinned(addr);
        Self::try_linked(addr, node).unwrap_or_else(|e| panic!("link to the node at {addr}: {e}"))
    }

    fn try_linked(addr: SocketAddr, node: NodeKey) -> Result<Session, LinkError> {
        let mut s = Self::raw(addr);
        let rd = s.stream.try_clone()?;
        let wr = s.stream.try_clone()?;
        let link = aex_link::blocking::connect_deployer(rd, wr, &node)?;
        s.hash = link.hash;
        s.node = node;
        s.link = Some((link.reader, link.writer));
        Ok(s)
    }

    /// Sends `Hello::Deployer` claiming `key` for `app`, with `signature` as its proof.
    #[track_caller]
    pub fn send_hello(&mut self, key: DeployerKey, app: &str, signature: Signature) {
        self.send(&ToNode::Hello(Hello::Deployer {
            client: "aex-testkit".into(),
            key,
            app: app.into(),
            signature,
        }));
    }

    /// A TCP connection to the node without a link: bytes sent are what the network sees.
    #[track_caller]
    pub fn raw(addr: SocketAddr) -> Session {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to the node at {addr}: {e}"));
        Self::over(addr, stream)
    }

    /// [`Session::raw`] from source address `from` (another loopback address, e.g.
    /// `127.0.0.2`, plays another machine).
    #[track_caller]
    pub fn raw_from(addr: SocketAddr, from: IpAddr) -> Session {
        let stream = connect_from(from, addr)
            .unwrap_or_else(|e| panic!("connect to {addr} from {from}: {e}"));
        Self::over(addr, stream)
    }

    /// [`Session::linked`] from source address `from`; the error if the link could not be
    /// set up (the node closed a connection over its caps).
    pub fn linked_from(addr: SocketAddr, from: IpAddr) -> Result<Session, LinkError> {
        let mut s = Self::over(addr, connect_from(from, addr)?);
        let node = pinned(addr);
        let link = aex_link::blocking::connect_deployer(
            s.stream.try_clone()?,
            s.stream.try_clone()?,
            &node,
        )?;
        s.hash = link.hash;
        s.node = node;
        s.link = Some((link.reader, link.writer));
        Ok(s)
    }

    fn over(addr: SocketAddr, stream: TcpStream) -> Session {
        stream
            .set_read_timeout(Some(READ_PATIENCE))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(READ_PATIENCE))
            .expect("set write timeout");
        // A connection the node closed at once (over its caps) may refuse options.
        let _ = stream.set_nodelay(true);
        Session {
            addr,
            stream,
            link: None,
            hash: [0; 32],
            node: NodeKey::default(),
            next_id: 1,
            identity: SigningIdentity::from_seed(&[0; 32]),
            app: String::new(),
        }
    }

    /// The session's namespace.
    pub fn app(&self) -> AppId {
        AppId::of(&DeployerKey::of(&self.identity), &self.app)
    }

    /// The link's handshake hash (what a `Hello` signs).
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The node's identity this session's link pinned.
    pub fn node_key(&self) -> NodeKey {
        self.node
    }

    /// Sends one message, in the link if there is one (flushed: one record), else as a plain
    /// frame on the socket.
    #[track_caller]
    pub fn send(&mut self, msg: &ToNode) {
        self.send_plain(&frame::encode(msg));
    }

    /// Sends `bytes` inside the link (sealed, flushed as one record): frames that are not
    /// valid, from a client whose link is fine. False if the node closed the connection.
    /// Without a link, the same as [`Session::send_bytes`].
    pub fn send_plain(&mut self, bytes: &[u8]) -> bool {
        match &mut self.link {
            Some((_, writer)) => writer
                .write_all(bytes)
                .and_then(|()| writer.flush())
                .is_ok(),
            None => self.stream.write_all(bytes).is_ok(),
        }
    }

    /// Sends bytes on the socket as they are, outside any link (what a network attacker can
    /// send). False if the node closed the connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The next frame from the node; panics if none comes within [`READ_PATIENCE`].
    #[track_caller]
    pub fn recv(&mut self) -> FromNode {
        let got = match &mut self.link {
            Some((reader, _)) => read_message::<_, FromNode>(reader),
            None => read_message::<_, FromNode>(&mut self.stream),
        };
        match got {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("the node at {} closed the connection", self.addr),
            Err(e) => panic!("no frame from the node at {} in time: {e}", self.addr),
        }
    }

    /// Whether the node closes this connection within `within` (reads the socket until EOF or
    /// an error, discarding what comes).
    pub fn closed_by_node(&mut self, within: Duration) -> bool {
        closed_within(&mut self.stream, within)
    }

    /// The connection's socket, for a test that watches it alone.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Closes the connection.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Sends `body` as request `id` without waiting for its answer.
    #[track_caller]
    pub fn send_request(&mut self, id: u64, body: NodeRequest) {
        self.send(&ToNode::Request { id, body });
    }

    /// Sends `body` as the next request and waits for its answer (events and other frames
    /// arriving first are skipped).
    #[track_caller]
    pub fn request(&mut self, body: NodeRequest) -> Result<NodeResponse, NodeError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_request(id, body);
        loop {
            match self.recv() {
                FromNode::Response { id: got, result } if got == id => return result,
                FromNode::Response { id: got, .. } => {
                    panic!("the node answered request {got} while {id} was awaited")
                }
                _ => continue,
            }
        }
    }

    /// The window this session's namespace holds for its own events on direct connection
    /// `conn`, direction `dir` ([`NodeRequest::Window`]), as `(credit, in_flight)`: what a
    /// deployer asks before it sends. Panics if the node answers something else.
    #[track_caller]
    pub fn window(&mut self, conn: ConnId, dir: Direction) -> Result<(i64, u64), NodeError> {
        match self.request(NodeRequest::Window { conn, dir })? {
            NodeResponse::Window { credit, in_flight } => Ok((credit, in_flight)),
            other => panic!("the node answered a window request with {other:?}"),
        }
    }

    /// The node's status as this session sees it.
    #[track_caller]
    pub fn status(&mut self) -> NodeStatus {
        match self.request(NodeRequest::Status) {
            Ok(NodeResponse::Status(s)) => s,
            other => panic!("status failed: {other:?}"),
        }
    }

    /// Uploads `binary` as `module` in chunks and starts it.
    pub fn load(&mut self, module: &str, binary: &[u8]) -> Result<NodeResponse, NodeError> {
        let end = NodeRequest::LoadEnd {
            module: module.into(),
        };
        self.upload(module, binary, end)
    }

    /// Uploads `binary` as driver `module`, claiming `devices`.
    pub fn load_driver(
        &mut self,
        module: &str,
        binary: &[u8],
        devices: &[&str],
    ) -> Result<NodeResponse, NodeError> {
        let end = NodeRequest::LoadDriver {
            module: module.into(),
            devices: devices.iter().map(|d| d.to_string()).collect(),
        };
        self.upload(module, binary, end)
    }

    /// Uploads `binary` as `module` in chunks, then sends `end`.
    fn upload(
        &mut self,
        module: &str,
        binary: &[u8],
        end: NodeRequest,
    ) -> Result<NodeResponse, NodeError> {
        self.request(NodeRequest::LoadBegin {
            module: module.into(),
            size: binary.len() as u64,
        })?;
        for chunk in binary.chunks(CHUNK) {
            self.request(NodeRequest::LoadChunk {
                module: module.into(),
                data: chunk.to_vec(),
            })?;
        }
        self.request(end)
    }

    /// Sends an event as a deployer's direct connection would.
    #[track_caller]
    pub fn send_event(&mut self, event: Event) {
        self.send(&ToNode::Event(event));
    }
}

/// A TCP connection to `to` from source address `from` (any `127.x.y.z` on Linux loopback:
/// another machine, as far as the node can tell).
pub fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = runtime.block_on(async {
        let socket = match from {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        stream.into_std()
    })?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Whether the other end closes `stream` within `within` (reads until EOF or an error,
/// discarding what comes).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(within));
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) => {
                break !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    };
    let _ = stream.set_read_timeout(Some(READ_PATIENCE));
    closed
}

/// The node's status as `identity` managing `app` sees it, over a fresh session.
#[track_caller]
pub fn status_as(addr: SocketAddr, identity: &SigningIdentity, app: &str) -> NodeStatus {
    Session::open(addr, identity, app).status()
}

/// A peer node's link to a node, played by the test with an identity of its own.
pub struct PeerConn {
    stream: TcpStream,
    link: Link<TcpStream, TcpStream>,
}

impl PeerConn {
    /// Opens a peer link as `own` to the node at `addr` (its pinned identity) and says
    /// `Hello::Peer`; the node's refusal is [`LinkError::Refused`].
    pub fn open(addr: SocketAddr, own: &StaticKey) -> Result<PeerConn, LinkError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(READ_PATIENCE))?;
        stream.set_nodelay(true)?;
        let link = aex_link::blocking::connect_peer(
            stream.try_clone()?,
            stream.try_clone()?,
            own,
            &pinned(addr),
        )?;
        let mut conn = PeerConn { stream, link };
        conn.send(&ToNode::Hello(Hello::Peer {
            node: "testkit-peer".into(),
        }))?;
        Ok(conn)
    }

    /// Sends one message (one record).
    pub fn send(&mut self, msg: &ToNode) -> std::io::Result<()> {
        write_message(&mut self.link.writer, msg)?;
        self.link.writer.flush()
    }

    /// Forwards `event` into namespace `app`.
    pub fn forward(&mut self, app: AppId, event: &Event) -> std::io::Result<()> {
        self.send(&ToNode::Forward {
            app,
            event: event.clone(),
        })
    }

    /// Whether the node closes the link within `within`.
    pub fn closed_by_node(&mut self, within: Duration) -> bool {
        closed_within(&mut self.stream, within)
    }
}

/// Opens a peer link as `own` to the node at `addr` and forwards `events` into namespace
/// `app`; returns the link, still open, or the node's refusal.
pub fn forward_as_peer(
    addr: SocketAddr,
    own: &StaticKey,
    app: AppId,
    events: &[Event],
) -> Result<PeerConn, LinkError> {
    let mut conn = PeerConn::open(addr, own)?;
    for event in events {
        conn.forward(app, event)?;
    }
    Ok(conn)
}

/// `msg` as a frame, for scripts that replay prepared frames.
pub fn frame_bytes<M: serde::Serialize>(msg: &M) -> Vec<u8> {
    frame::encode(msg)
}

/// A session of the default test deployer for the test clusters' application
/// ([`crate::descriptor::APP`]): it acts in that application's namespace.
#[track_caller]
pub fn app_session(addr: SocketAddr) -> Session {
    Session::open(
        addr,
        crate::identity::deployer().identity.signing(),
        crate::descriptor::APP,
    )
}

/// The node's status as the default test deployer sees it for [`crate::descriptor::APP`].
#[track_caller]
pub fn node_status(addr: SocketAddr) -> NodeStatus {
    app_session(addr).status()
}
