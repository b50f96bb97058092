//! Helpers shared by the topic modules: free ports, polling with deadlines, the `aex` binary,
//! deployer identities, descriptors, an HTTP client, node processes, clusters of nodes, a
//! man-in-the-middle proxy, and listeners
//! that never answer.

pub mod cli;
pub mod cluster;
pub mod dead_end;
pub mod descriptor;
pub mod http;
pub mod identity;
pub mod modules;
pub mod process;
pub mod proxy;
pub mod state;
pub mod status;
pub mod wire;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a test waits for something that normally takes well under a second.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A loopback address whose port nothing listens on now, never handed out before by this test
/// binary (so parallel tests do not pick the same one).
pub fn free_addr() -> SocketAddr {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        drop(listener);
        if given.insert(addr.port()) {
            return addr;
        }
    }
}

/// Polls `probe` every 50 ms until it returns `Some`; panics naming `what` once `timeout` has
/// passed. Probes that can tell more about a failure panic themselves.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {} s waiting for {what}",
            timeout.as_secs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
