//! Hostile or broken input on the listener: refused per connection, never fatal to the node.

use aex_proto::frame::{self, MAX_FRAME_LEN};
use aex_proto::{NodeRequest, NodeResponse, ToNode};

use crate::util::{Client, TestNode};

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_frames_are_refused_without_crashing() {
    let node = TestNode::start("frames").await;
    let addr = node.addr();

    // An oversized length prefix as the very first bytes.
    let mut c = Client::raw(&addr).await;
    c.send_bytes(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes())
        .await;
    assert!(c.closed_by_node().await);

    // u32::MAX after a valid hello.
    let mut c = Client::connect(&addr).await;
    c.send_bytes(&u32::MAX.to_be_bytes()).await;
    assert!(c.closed_by_node().await);

    // A body that is not a message, after a valid hello.
    let mut c = Client::connect(&addr).await;
    c.send_bytes(&[0, 0, 0, 3, 1, 0xff, 0xff]).await;
    assert!(c.closed_by_node().await);

    // Another wire version.
    let mut c = Client::raw(&addr).await;
    let mut hello = frame::encode(&ToNode::Hello(aex_proto::Hello::Deployer {
        client: "x".into(),
        key: aex_proto::DeployerKey([1; 32]),
        app: "x".into(),
    }));
    hello[4] = 99;
    c.send_bytes(&hello).await;
    assert!(c.closed_by_node().await);

    // An empty frame.
    let mut c = Client::raw(&addr).await;
    c.send_bytes(&[0, 0, 0, 0]).await;
    assert!(c.closed_by_node().await);

    // A request before any hello.
    let mut c = Client::raw(&addr).await;
    c.send(&c.signed(1, NodeRequest::Status)).await;
    assert!(c.closed_by_node().await);

    // A frame cut short: the node waits for the rest, then the client goes away.
    let mut c = Client::connect(&addr).await;
    c.send_bytes(&[0, 0, 0, 100, 1, 2, 3]).await;
    drop(c);

    // The node still answers, and counted what it refused.
    let mut c = Client::connect(&addr).await;
    let status = c.status().await;
    assert_eq!(status.name, "frames");
    assert_eq!(status.tee, "sgx");
    assert_eq!(status.platform_key, node.handle.platform_key().to_vec());
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(status.dropped >= 6, "dropped {}", status.dropped);
}

#[tokio::test(flavor = "multi_thread")]
async fn announcement_files_and_remote_shutdown() {
    let node = TestNode::start_with("strict", false).await;
    let addr = std::fs::read_to_string(node.data_dir.join("node.addr")).unwrap();
    assert_eq!(addr.trim(), node.addr());
    let pid = std::fs::read_to_string(node.data_dir.join("node.pid")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    assert!(node.data_dir.join("platform.pub").exists());

    let mut c = node.client().await;
    let e = c.request(NodeRequest::Shutdown).await.unwrap_err();
    assert_eq!(e.kind, aex_proto::NodeErrorKind::Refused);
    assert!(e.message.contains("allow_remote_shutdown"), "{e}");

    let mut node = TestNode::start("lenient").await;
    let mut c = node.client().await;
    assert_eq!(
        c.request(NodeRequest::Shutdown).await,
        Ok(NodeResponse::Done)
    );
    tokio::time::timeout(crate::util::PATIENCE, node.handle.wait())
        .await
        .expect("node stops after an accepted Shutdown");
    assert!(!node.data_dir.join("node.addr").exists());
    assert!(std::net::TcpStream::connect(node.addr()).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn run_blocking_serves_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = crate::util::config("foreground", data_dir.clone(), true);
    let node = std::thread::spawn(move || aex_node::run_blocking(config));
    let addr_file = data_dir.join("node.addr");
    assert!(crate::util::eventually(|| addr_file.exists()).await);
    let addr = std::fs::read_to_string(&addr_file).unwrap();
    let mut c = Client::connect(addr.trim()).await;
    assert_eq!(c.status().await.name, "foreground");
    assert_eq!(
        c.request(NodeRequest::Shutdown).await,
        Ok(NodeResponse::Done)
    );
    let joined = tokio::task::spawn_blocking(move || node.join())
        .await
        .unwrap()
        .unwrap();
    assert!(joined.is_ok(), "{joined:?}");
}
