//! Test helpers: a node in a temporary directory, a deployer client speaking the wire protocol,
//! and shell-script "modules" that replay prepared frames.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aex_node::{Node, NodeConfig, NodeHandle};
use aex_proto::frame::{self, LEN_PREFIX};
use aex_proto::{
    FromModule, FromNode, Hello, Interface, NodeError, NodeRequest, NodeResponse, NodeStatus,
    ToNode,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any one answer.
pub const PATIENCE: Duration = Duration::from_secs(8);

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
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let handle = Node::start(NodeConfig {
            name: name.into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            tee: aex_tee::TeeKind::Sgx,
            allow_remote_shutdown,
            vendor_id: aex_tee::DEFAULT_VENDOR_ID,
        })
        .await
        .unwrap();
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
    next_id: u64,
}

impl Client {
    pub async fn connect(addr: &str) -> Client {
        let mut c = Client::raw(addr).await;
        c.send(&ToNode::Hello(Hello::Deployer {
            client: "aex-node tests".into(),
        }))
        .await;
        c
    }

    /// A TCP connection that has not said hello.
    pub async fn raw(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, next_id: 1 }
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
        self.send(&ToNode::Request { id, body }).await;
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
        self.request(NodeRequest::LoadEnd {
            module: module.into(),
        })
        .await
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
