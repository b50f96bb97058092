//! A TCP listener that accepts connections and never answers: a hung node agent, or a peer
//! that stopped reading (before its link's handshake, or after it). Whatever talks to it must
//! give up on its own.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What a [`DeadEnd`] does with the bytes it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads and discards everything, answers nothing (a hung node agent).
    Swallow,
    /// Never reads: the sender's socket buffers fill and its writes block.
    NeverRead,
    /// A peer node that completes a peer link's handshake with its own identity
    /// ([`DeadEnd::identity`]), admitting anyone, then never reads again.
    PeerNeverReads,
}

/// A running dead end; closes its connections and stops on drop.
pub struct DeadEnd {
    addr: SocketAddr,
    identity: aex_proto::NodeKey,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl DeadEnd {
    /// Listens on a free loopback port.
    pub fn start(mode: Mode) -> DeadEnd {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind dead end");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let key = Arc::new(aex_link::StaticKey::generate());
        let identity = key.public();
        crate::session::pin(addr, identity);
        let acceptor = {
            let (stop, accepted, sockets) = (stop.clone(), accepted.clone(), sockets.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if let Ok(held) = conn.try_clone() {
                        sockets.lock().unwrap_or_else(|e| e.into_inner()).push(held);
                    }
                    match mode {
                        Mode::Swallow => {
                            std::thread::spawn(move || swallow(conn));
                        }
                        Mode::PeerNeverReads => {
                            let key = key.clone();
                            // After the handshake the connection stays open (the dead end
                            // holds a handle of it) and is never read again.
                            std::thread::spawn(move || {
                                let _ = aex_link::blocking::accept(&conn, &conn, &key, |_| true);
                            });
                        }
                        Mode::NeverRead => {}
                    }
                }
            })
        };
        DeadEnd {
            addr,
            identity,
            stop,
            accepted,
            sockets,
            acceptor: Some(acceptor),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its identity key (the key of a [`Mode::PeerNeverReads`] peer; pinned for its address).
    pub fn identity(&self) -> aex_proto::NodeKey {
        self.identity
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for DeadEnd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for s in self
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn swallow(mut conn: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
}
