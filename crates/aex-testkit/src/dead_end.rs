//! A TCP listener that accepts connections and never answers: a hung node agent, or a peer
//! that stopped reading (before its link's handshake, or after it); or one that answers one
//! byte per second. Whatever talks to it must give up on its own.

use std::io::{Read, Write};
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
    /// A node agent with its own identity that completes a deployer's handshake at once,
    /// reads its first request, and answers it one byte per second ([`TRICKLE_PACE`]): each
    /// byte comes well within any read timeout, the answer never within a useful time.
    Trickle,
}

/// How fast a [`Mode::Trickle`] node sends its answer: one byte per this.
pub const TRICKLE_PACE: std::time::Duration = std::time::Duration::from_secs(1);

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
                        Mode::Trickle => {
                            let (key, stop) = (key.clone(), stop.clone());
                            std::thread::spawn(move || trickle(conn, &key, &stop));
                        }
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

/// A writer that sends everything at once until `slow`, then one byte per [`TRICKLE_PACE`]
/// (until the dead end stops).
struct Paced {
    stream: TcpStream,
    slow: bool,
    stop: Arc<AtomicBool>,
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.slow || buf.is_empty() {
            return self.stream.write(buf);
        }
        let step = std::time::Duration::from_millis(50);
        let mut waited = std::time::Duration::ZERO;
        while waited < TRICKLE_PACE {
            if self.stop.load(Ordering::SeqCst) {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            std::thread::sleep(step);
            waited += step;
        }
        self.stream.write(&buf[..1])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// Serves one connection of a [`Mode::Trickle`] node: the handshake at once, then the answer
/// to the first request one byte at a time, until the client goes away.
fn trickle(conn: TcpStream, key: &aex_link::StaticKey, stop: &Arc<AtomicBool>) {
    let Ok(stream) = conn.try_clone() else {
        return;
    };
    let paced = Paced {
        stream,
        slow: false,
        stop: stop.clone(),
    };
    let Ok((_, mut link)) = aex_link::blocking::accept(&conn, paced, key, |_| true) else {
        return;
    };
    link.reader.set_limit(aex_link::MAX_RECORD);
    let id = loop {
        match aex_proto::frame::read_message::<_, aex_proto::ToNode>(&mut link.reader) {
            Ok(Some(aex_proto::ToNode::Request { id, .. })) => break id,
            Ok(Some(_)) => continue,
            _ => return,
        }
    };
    link.writer.get_mut().slow = true;
    let answer = aex_proto::FromNode::Response {
        id,
        result: Ok(aex_proto::NodeResponse::Done),
    };
    // Ends when a write fails: the client closed the connection, or the dead end stopped.
    let _ = aex_proto::frame::write_message(&mut link.writer, &answer);
    let _ = link.writer.flush();
}

fn swallow(mut conn: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
}
