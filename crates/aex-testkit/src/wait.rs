//! Waiting on conditions with deadlines, and loopback ports: free ones, and ones that refuse.
//!
//! Tests never sleep for a fixed time: they poll what they wait for, and a deadline turns a
//! hang into a failure that says what never happened.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a test waits for something that normally takes well under a second.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How often [`wait_for`] polls.
const POLL: Duration = Duration::from_millis(20);

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

/// A loopback address that refuses every connection for as long as it lives (a node that is
/// down). Unlike a [`free_addr`], whose port any later `bind` may take (a node of the same
/// test binary on port 0, another test run), its port stays held: by the local end of a
/// connection this value keeps open, on which nothing listens.
pub struct RefusingAddr {
    addr: SocketAddr,
    _held: (TcpListener, TcpStream, TcpStream),
}

impl RefusingAddr {
    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A new [`RefusingAddr`].
pub fn refusing_addr() -> RefusingAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let client = TcpStream::connect(listener.local_addr().expect("local address"))
        .expect("connect to a listener of this process");
    let (server, _) = listener
        .accept()
        .expect("accept a connection of this process");
    RefusingAddr {
        addr: client.local_addr().expect("local address of a connection"),
        _held: (listener, client, server),
    }
}

/// Polls `probe` until it returns `Some`, and returns that; panics naming `what` once `timeout`
/// has passed. Probes that can tell more about a failure panic themselves.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {:?} waiting for {what}",
            timeout
        );
        std::thread::sleep(POLL);
    }
}

/// Like [`wait_for`], for a condition: panics with `what` and the last state `describe` gives.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut holds: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match holds() {
            Ok(()) => return,
            Err(state) => state,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {:?} waiting for {what}; last seen: {last}",
            timeout
        );
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_returns_the_first_value() {
        let mut n = 0;
        let got = wait_for("n to reach 3", PATIENCE, || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(got, 3);
    }

    #[test]
    fn a_timeout_names_what_was_awaited_and_the_last_state() {
        let err = std::panic::catch_unwind(|| {
            wait_until("the impossible", Duration::from_millis(30), || {
                Err("still nothing".into())
            })
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("waiting for the impossible"), "{msg}");
        assert!(msg.contains("last seen: still nothing"), "{msg}");
    }

    #[test]
    fn a_refusing_address_refuses_and_cannot_be_taken() {
        let refusing = refusing_addr();
        let err = TcpStream::connect(refusing.addr()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(TcpListener::bind(refusing.addr()).is_err());
    }

    #[test]
    fn free_addresses_are_not_handed_out_twice() {
        let a = free_addr();
        let b = free_addr();
        assert_ne!(a.port(), b.port());
    }
}
