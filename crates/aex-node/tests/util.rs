//! Test helpers: a node in a temporary directory, a deployer client speaking the wire protocol,
//! and shell-script "modules" that replay prepared frames.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aex_crypto::SigningIdentity;
use aex_node::{Node, NodeConfig, NodeHandle};
use aex_proto::auth::{sign_request, sign_session};
use aex_proto::frame::{self, LEN_PREFIX};
use aex_proto::{
    DeployerKey, FromModule, FromNode, Hello, Interface, NodeError, NodeRequest, NodeResponse,
    NodeStatus, ToNode,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any one answer.
pub const PATIENCE: Duration = Duration::from_secs(8);

/// The deployer identity every [`TestNode`] admits.
pub fn deployer() -> SigningIdentity {
    SigningIdentity::from_seed(&[0x5a; 32])
}

/// A configuration for a node in `data_dir` admitting [`deployer`].
pub fn config(name: &str, data_dir: PathBuf, allow_remote_shutdown: bool) -> NodeConfig {
    NodeConfig {
        name: name.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        tee: aex_tee::TeeKind::Sgx,
        allow_remote_shutdown,
        vendor_id: aex_tee::DEFAULT_VENDOR_ID,
        admit: vec![DeployerKey::of(&deployer())],
        open: false,
        devices: vec![],
        timeouts: aex_node::Timeouts::default(),
    }
}

/// A running node and its data directory.
pub struct TestNode {
    pub handle: NodeHandle,
    pub data_dir: PathBuf,
    /// Scratch space for script modules' support files.
    pub scratch: PathBuf,
    _dir: TempDir,
}

impl TestNode {
    pub async fn start(name: &str) -> TestNode {
        Self::start_with(name, true).await
    }

    pub async fn start_with(name: &str, allow_remote_shutdown: bool) -> TestNode {
        Self::start_config(name, |c| c.allow_remote_shutdown = allow_remote_shutdown).await
    }

    /// Starts a node whose default [`config`] is first changed by `adjust`.
    pub async fn start_config(name: &str, adjust: impl FnOnce(&mut NodeConfig)) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let mut config = config(name, data_dir.clone(), true);
        adjust(&mut config);
        let handle = Node::start(config).await.unwrap();
        TestNode {
            handle,
            data_dir,
            scratch,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        self.handle.local_addr().to_string()
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.addr()).await
    }
}

/// A deployer session.
pub struct Client {
    pub stream: TcpStream,
    pub next_id: u64,
    /// Who signs requests.
    pub identity: SigningIdentity,
    /// The node's challenge, once received.
    pub challenge: [u8; 32],
    /// The application the session claimed.
    pub app: String,
}

impl Client {
    /// A session of [`deployer`] for application `test-app`, authenticated.
    pub async fn connect(addr: &str) -> Client {
        Client::connect_as(addr, &deployer(), "test-app").await
    }

    /// A session of `identity` for application `app`, authenticated.
    pub async fn connect_as(addr: &str, identity: &SigningIdentity, app: &str) -> Client {
        let mut c = Client::hello(addr, identity, app).await;
        let signature = sign_session(&c.identity, &c.challenge, app);
        c.send(&ToNode::Auth { signature }).await;
        c
    }

    /// A session that said hello as `identity` for `app` and read the challenge, not yet
    /// authenticated.
    pub async fn hello(addr: &str, identity: &SigningIdentity, app: &str) -> Client {
        let mut c = Client::raw(addr).await;
        c.identity = SigningIdentity::from_seed(identity.expose_secret());
        c.app = app.into();
        c.send(&ToNode::Hello(Hello::Deployer {
            client: "aex-node tests".into(),
            key: DeployerKey::of(identity),
            app: app.into(),
        }))
        .await;
        match c.recv().await {
            FromNode::Challenge { nonce } => c.challenge = nonce,
            other => panic!("expected a challenge, got {other:?}"),
        }
        c
    }

    /// A TCP connection that has not said hello.
    pub async fn raw(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_id: 1,
            identity: deployer(),
            challenge: [0; 32],
            app: String::new(),
        }
    }

    /// The session's namespace.
    pub fn app(&self) -> aex_proto::AppId {
        aex_proto::AppId::of(&DeployerKey::of(&self.identity), &self.app)
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

    pub async fn send(&mut self, msg: &ToNode) {
        self.stream.write_all(&frame::encode(msg)).await.unwrap();
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame from the node.
    pub async fn recv(&mut self) -> FromNode {
        tokio::time::timeout(PATIENCE, async {
            let mut prefix = [0u8; LEN_PREFIX];
            self.stream.read_exact(&mut prefix).await.unwrap();
            let mut body = vec![0u8; frame::body_len(prefix).unwrap()];
            self.stream.read_exact(&mut body).await.unwrap();
            frame::decode(&body).unwrap()
        })
        .await
        .expect("no frame from the node in time")
    }

    /// Whether the node has closed this connection (reads until EOF or error).
    pub async fn closed_by_node(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(PATIENCE, self.stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub async fn request(&mut self, body: NodeRequest) -> Result<NodeResponse, NodeError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = self.signed(id, body);
        self.send(&msg).await;
        loop {
            match self.recv().await {
                FromNode::Response { id: got, result } => {
                    assert_eq!(got, id, "responses come in order");
                    return result;
                }
                _ => continue,
            }
        }
    }

    pub async fn status(&mut self) -> NodeStatus {
        match self.request(NodeRequest::Status).await {
            Ok(NodeResponse::Status(s)) => s,
            other => panic!("status failed: {other:?}"),
        }
    }

    /// Uploads `binary` as `module` in small chunks.
    pub async fn load(&mut self, module: &str, binary: &[u8]) -> Result<NodeResponse, NodeError> {
        let end = NodeRequest::LoadEnd {
            module: module.into(),
        };
        self.upload(module, binary, end).await
    }

    /// Uploads `binary` as driver `module`, claiming `devices`.
    pub async fn load_driver(
        &mut self,
        module: &str,
        binary: &[u8],
        devices: &[&str],
    ) -> Result<NodeResponse, NodeError> {
        let end = NodeRequest::LoadDriver {
            module: module.into(),
            devices: devices.iter().map(|d| d.to_string()).collect(),
        };
        self.upload(module, binary, end).await
    }

    /// Uploads `binary` as `module` in small chunks, then sends `end`.
    async fn upload(
        &mut self,
        module: &str,
        binary: &[u8],
        end: NodeRequest,
    ) -> Result<NodeResponse, NodeError> {
        self.request(NodeRequest::LoadBegin {
            module: module.into(),
            size: binary.len() as u64,
        })
        .await?;
        for chunk in binary.chunks(100) {
            self.request(NodeRequest::LoadChunk {
                module: module.into(),
                data: chunk.to_vec(),
            })
            .await?;
        }
        self.request(end).await
    }
}

/// The `Hello` every fake module sends first.
pub fn hello() -> FromModule {
    FromModule::Hello(Interface {
        inputs: vec!["input".into()],
        ..Interface::default()
    })
}

/// Writes `msg` as a frame to `dir/file` and returns the path, for scripts to `cat`.
pub fn frame_file<M: serde::Serialize>(dir: &Path, file: &str, msg: &M) -> String {
    let path = dir.join(file);
    std::fs::write(&path, frame::encode(msg)).unwrap();
    path.display().to_string()
}

/// A shell-script module: says hello, then runs `body`.
pub fn script(dir: &Path, body: &str) -> Vec<u8> {
    let hello = frame_file(dir, "hello.bin", &hello());
    format!("#!/bin/sh\ncat '{hello}'\n{body}\n").into_bytes()
}

/// Polls `check` until it holds or [`PATIENCE`] runs out.
pub async fn eventually<F: FnMut() -> bool>(mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
