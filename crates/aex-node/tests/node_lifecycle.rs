//! A node agent's life: the files it announces itself with while it runs, a remote
//! `Shutdown` only where the configuration allows it, and the foreground entry point serving
//! until it is told to stop.

use aex_proto::{NodeErrorKind, NodeRequest, NodeResponse};
use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_for, PATIENCE};

#[test]
fn announcement_files_and_remote_shutdown() {
    let node = TestNode::start_with("strict", |c| c.allow_remote_shutdown = false);
    let addr = std::fs::read_to_string(node.data_dir.join("node.addr")).unwrap();
    assert_eq!(addr.trim(), node.addr().to_string());
    let pid = std::fs::read_to_string(node.data_dir.join("node.pid")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    assert!(node.data_dir.join("platform.pub").exists());

    let mut c = node.session();
    let e = c.request(NodeRequest::Shutdown).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(e.message.contains("allow_remote_shutdown"), "{e}");

    let mut node = TestNode::start("lenient");
    let addr = node.addr();
    let mut c = node.session();
    assert_eq!(c.request(NodeRequest::Shutdown), Ok(NodeResponse::Done));
    assert!(
        node.wait_stopped(PATIENCE),
        "the node still runs {PATIENCE:?} after an accepted Shutdown"
    );
    assert!(!node.data_dir.join("node.addr").exists());
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn run_blocking_serves_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = TestNode::config("foreground", data_dir.clone());
    let node = std::thread::spawn(move || aex_node::run_blocking(config));
    let addr_file = data_dir.join("node.addr");
    let addr = wait_for("the node to announce its address", PATIENCE, || {
        std::fs::read_to_string(&addr_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    // It created its identity before it announced its address.
    let identity = aex_link::keys::read_public(&data_dir.join(aex_link::keys::IDENTITY_PUB_FILE))
        .expect("the node's identity");
    aex_testkit::session::pin(addr, identity);
    let mut c = Session::open(addr, &test_deployer(), "test-app");
    assert_eq!(c.status().name, "foreground");
    assert_eq!(c.request(NodeRequest::Shutdown), Ok(NodeResponse::Done));
    wait_for("run_blocking to return after Shutdown", PATIENCE, || {
        node.is_finished().then_some(())
    });
    let served = node.join().expect("the node thread did not panic");
    assert!(served.is_ok(), "{served:?}");
}
