//! Playing a deployer or a peer node towards a node agent: the management protocol spoken
//! request by request over a blocking TCP connection.
//!
//! A [`Session`] can do everything `aex` does and what `aex` never would: skip the proof,
//! claim another key, sign with the wrong one, send raw bytes or frames out of order. With the
//! application's own identity it stands for a compromised node agent, which can hand the
//! application's modules anything.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_proto::auth::{sign_request, sign_session};
use aex_proto::frame::{self, read_message, write_message};
use aex_proto::{
    AppId, DeployerKey, Event, FromNode, Hello, NodeError, NodeRequest, NodeResponse, NodeStatus,
    ToNode,
};

/// How long a session waits for any one frame from the node.
pub const READ_PATIENCE: Duration = Duration::from_secs(10);

/// Upload chunk size of [`Session::load`] (small, so uploads take several chunks).
const CHUNK: usize = 64 * 1024;

/// A connection to a node agent, authenticated as a deployer or not.
pub struct Session {
    addr: SocketAddr,
    stream: TcpStream,
    next_id: u64,
    identity: SigningIdentity,
    challenge: [u8; 32],
    app: String,
}

impl Session {
    /// A session of `identity` for application `app`, authenticated.
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
        let mut s = Self::hello_claiming(addr, claimed, signer, app);
        let signature = sign_session(&s.identity, &s.challenge, app);
        s.send(&ToNode::Auth { signature });
        s
    }

    /// A session that said hello as `identity` for `app` and read the challenge, not yet
    /// authenticated.
    #[track_caller]
    pub fn hello(addr: SocketAddr, identity: &SigningIdentity, app: &str) -> Session {
        Self::hello_claiming(addr, DeployerKey::of(identity), identity, app)
    }

    #[track_caller]
    fn hello_claiming(
        addr: SocketAddr,
        claimed: DeployerKey,
        signer: &SigningIdentity,
        app: &str,
    ) -> Session {
        let mut s = Self::raw(addr);
        s.identity = SigningIdentity::from_seed(signer.expose_secret());
        s.app = app.into();
        s.send(&ToNode::Hello(Hello::Deployer {
            client: "aex-testkit".into(),
            key: claimed,
            app: app.into(),
        }));
        match s.recv() {
            FromNode::Challenge { nonce } => s.challenge = nonce,
            other => panic!("node at {addr} answered Hello with {other:?}"),
        }
        s
    }

    /// A TCP connection to the node that has not said hello.
    #[track_caller]
    pub fn raw(addr: SocketAddr) -> Session {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to the node at {addr}: {e}"));
        stream
            .set_read_timeout(Some(READ_PATIENCE))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(READ_PATIENCE))
            .expect("set write timeout");
        stream.set_nodelay(true).expect("set nodelay");
        Session {
            addr,
            stream,
            next_id: 1,
            identity: SigningIdentity::from_seed(&[0; 32]),
            challenge: [0; 32],
            app: String::new(),
        }
    }

    /// The session's namespace.
    pub fn app(&self) -> AppId {
        AppId::of(&DeployerKey::of(&self.identity), &self.app)
    }

    /// The node's challenge of this session.
    pub fn challenge(&self) -> [u8; 32] {
        self.challenge
    }

    /// `body` as request `id`, signed by this session's identity.
    pub fn signed(&self, id: u64, body: NodeRequest) -> ToNode {
        let signature = sign_request(&self.identity, &self.challenge, id, &body);
        ToNode::Request {
            id,
            body,
            signature,
        }
    }

    /// Sends one message.
    #[track_caller]
    pub fn send(&mut self, msg: &ToNode) {
        write_message(&mut self.stream, msg)
            .unwrap_or_else(|e| panic!("send to the node at {}: {e}", self.addr));
    }

    /// Sends bytes as they are (not necessarily a frame). False if the node closed the
    /// connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The next frame from the node; panics if none comes within [`READ_PATIENCE`].
    #[track_caller]
    pub fn recv(&mut self) -> FromNode {
        match read_message::<_, FromNode>(&mut self.stream) {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("the node at {} closed the connection", self.addr),
            Err(e) => panic!("no frame from the node at {} in time: {e}", self.addr),
        }
    }

    /// Whether the node closes this connection within `within` (reads until EOF or an error,
    /// discarding what comes).
    pub fn closed_by_node(&mut self, within: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(within));
        let mut buf = [0u8; 4096];
        let closed = loop {
            match self.stream.read(&mut buf) {
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
        let _ = self.stream.set_read_timeout(Some(READ_PATIENCE));
        closed
    }

    /// Closes the connection.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Sends `body` as the next request and waits for its answer (events and other frames
    /// arriving first are skipped).
    #[track_caller]
    pub fn request(&mut self, body: NodeRequest) -> Result<NodeResponse, NodeError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = self.signed(id, body);
        self.send(&msg);
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

/// The node's status as `identity` managing `app` sees it, over a fresh session.
#[track_caller]
pub fn status_as(addr: SocketAddr, identity: &SigningIdentity, app: &str) -> NodeStatus {
    Session::open(addr, identity, app).status()
}

/// Opens a peer link to the node at `addr` (peer links are unauthenticated) and forwards
/// `events` into namespace `app`; returns the link, still open.
#[track_caller]
pub fn forward_as_peer(addr: SocketAddr, app: AppId, events: &[Event]) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to the node at {addr}: {e}"));
    let hello = ToNode::Hello(Hello::Peer {
        node: "impostor".into(),
    });
    write_message(&mut stream, &hello).expect("send a peer Hello");
    for event in events {
        let forward = ToNode::Forward {
            app,
            event: event.clone(),
        };
        write_message(&mut stream, &forward).expect("forward an event");
    }
    stream
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
