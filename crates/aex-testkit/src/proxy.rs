//! A man-in-the-middle TCP proxy in front of a node: the attacker on the network, or a
//! compromised node agent.
//!
//! It listens on a loopback port and forwards every connection to a node. Links are Noise
//! channels, so what it can do depends on what it holds:
//!
//! * [`Proxy::network`]: only the wire. It splits each direction into the link's messages (the
//!   kind byte, then length-prefixed handshake messages and records) and hands each to a
//!   [`RecordTamper`], which may pass it on, drop it, change its bytes, send others, hold it
//!   back to reorder, or cut the connection. Anything it changes fails to authenticate.
//! * [`Proxy::inside`]: a compromised agent of the node behind it. It holds that node's
//!   identity key (and, to re-originate peer links, the keys of the nodes that link to it), so
//!   it ends every link itself, opens its own to the node, and hands each decoded frame to a
//!   [`Tamper`] (frames that do not decode pass through untouched). A deployer's `Hello` is
//!   signed for its own link only, so the insider signs its upstream `Hello` with the deployer
//!   key it is given; a real compromised agent needs no key for that, as it holds the session
//!   in clear. What it shows is what a node agent, not the network, can do to events,
//!   commands and evidence.
//!
//! Either way the proxy registers the node's pinned identity for its own address
//! ([`crate::session::pin`]), so sessions opened to the proxy pin the node behind it.

mod inside;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use aex_link::LinkKind;
use aex_proto::{FromNode, ToNode};

pub use inside::Insider;

/// Who opened a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A deployer's management session.
    Deployer,
    /// A node's event link.
    Peer,
}

impl From<LinkKind> for Link {
    fn from(kind: LinkKind) -> Link {
        match kind {
            LinkKind::Deployer => Link::Deployer,
            LinkKind::Peer => Link::Peer,
        }
    }
}

/// What an inside proxy sends after seeing a frame.
#[derive(Debug)]
pub enum Out {
    /// A message to the node.
    ToNode(ToNode),
    /// A message to the connecting side.
    ToClient(FromNode),
    /// Bytes to the node inside the link, as they are (not necessarily a valid frame).
    RawToNode(Vec<u8>),
    /// Closes the proxied connection (both sides) without sending anything more.
    Close,
}

/// An inside attack: rewrites the frames of proxied links. The default forwards everything.
pub trait Tamper: Send + Sync + 'static {
    /// A frame from the connecting side on its way to the node.
    fn upstream(&self, _link: Link, msg: ToNode) -> Vec<Out> {
        vec![Out::ToNode(msg)]
    }

    /// A frame from the node on its way back.
    fn downstream(&self, _link: Link, msg: FromNode) -> Vec<Out> {
        vec![Out::ToClient(msg)]
    }
}

/// What a network proxy sends after seeing one message of a link.
#[derive(Debug)]
pub enum Wire {
    /// Bytes to the node.
    ToNode(Vec<u8>),
    /// Bytes to the connecting side.
    ToClient(Vec<u8>),
    /// Closes the proxied connection (both sides).
    Close,
}

/// A network attack on links. A message is the link's kind byte (upstream index 0 of a new
/// connection is that byte alone), or one length-prefixed handshake message or record, prefix
/// included. `index` counts the messages of one direction of one connection from 0. The
/// default forwards everything.
pub trait RecordTamper: Send + Sync + 'static {
    /// A message from the connecting side on its way to the node.
    fn upstream(&self, _link: Link, _index: usize, message: Vec<u8>) -> Vec<Wire> {
        vec![Wire::ToNode(message)]
    }

    /// A message from the node on its way back.
    fn downstream(&self, _link: Link, _index: usize, message: Vec<u8>) -> Vec<Wire> {
        vec![Wire::ToClient(message)]
    }
}

/// A running proxy; stops accepting and closes its connections on drop.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sockets: Sockets,
    acceptor: Option<JoinHandle<()>>,
}

/// Every socket the proxy opened or accepted, to close them when it drops.
type Sockets = Arc<Mutex<Vec<TcpStream>>>;

impl Proxy {
    /// A network attacker in front of `upstream`: sees and tampers with link messages.
    pub fn network(upstream: SocketAddr, tamper: Arc<dyn RecordTamper>) -> Proxy {
        Self::start_with(upstream, move |client, sockets| {
            splice_network(client, upstream, tamper.clone(), sockets)
        })
    }

    /// A compromised agent of the node at `upstream`, holding `insider`'s keys: sees and
    /// tampers with decoded frames.
    pub fn inside(upstream: SocketAddr, insider: Insider, tamper: Arc<dyn Tamper>) -> Proxy {
        let insider = Arc::new(insider);
        Self::start_with(upstream, move |client, sockets| {
            inside::splice(client, upstream, insider.clone(), tamper.clone(), sockets)
        })
    }

    fn start_with(
        upstream: SocketAddr,
        serve: impl Fn(TcpStream, Sockets) + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        crate::session::pin(addr, crate::session::pinned(upstream));
        let stop = Arc::new(AtomicBool::new(false));
        let sockets: Sockets = Arc::default();
        let serve = Arc::new(serve);
        let acceptor = {
            let (stop, sockets) = (stop.clone(), sockets.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(client) = client {
                        let (serve, sockets) = (serve.clone(), sockets.clone());
                        lock(&sockets).extend(client.try_clone());
                        std::thread::spawn(move || serve(client, sockets));
                    }
                }
            })
        };
        Proxy {
            addr,
            stop,
            sockets,
            acceptor: Some(acceptor),
        }
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor.
        let _ = TcpStream::connect(self.addr);
        for s in lock(&self.sockets).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Both sockets of one network-proxied connection, for writing from either direction.
struct Pair {
    client: Mutex<TcpStream>,
    node: Mutex<TcpStream>,
}

impl Pair {
    fn send(&self, outs: Vec<Wire>) -> std::io::Result<()> {
        for out in outs {
            match out {
                Wire::ToNode(bytes) => lock(&self.node).write_all(&bytes)?,
                Wire::ToClient(bytes) => lock(&self.client).write_all(&bytes)?,
                Wire::Close => {
                    self.close();
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
            }
        }
        Ok(())
    }

    fn close(&self) {
        let _ = lock(&self.client).shutdown(Shutdown::Both);
        let _ = lock(&self.node).shutdown(Shutdown::Both);
    }
}

/// Connects to `upstream` and pumps link messages both ways until either side closes.
fn splice_network(
    client: TcpStream,
    upstream: SocketAddr,
    tamper: Arc<dyn RecordTamper>,
    sockets: Sockets,
) {
    let Ok(node) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = node.set_nodelay(true);
    let (Ok(mut client_rd), Ok(node_rd)) = (client.try_clone(), node.try_clone()) else {
        return;
    };
    lock(&sockets).extend(node.try_clone());
    // The kind byte says which link this is.
    let mut kind = [0u8; 1];
    if client_rd.read_exact(&mut kind).is_err() {
        return;
    }
    let link = LinkKind::from_byte(kind[0]).map_or(Link::Deployer, Link::from);
    let pair = Arc::new(Pair {
        client: Mutex::new(client),
        node: Mutex::new(node),
    });
    if pair.send(tamper.upstream(link, 0, kind.to_vec())).is_err() {
        return;
    }
    let back = {
        let (pair, tamper) = (pair.clone(), tamper.clone());
        std::thread::spawn(move || {
            pump(node_rd, &pair, 0, |i, m| tamper.downstream(link, i, m));
        })
    };
    pump(client_rd, &pair, 1, |i, m| tamper.upstream(link, i, m));
    let _ = back.join();
}

/// Reads length-prefixed messages from `rd`, numbering them from `first`, and sends what
/// `hook` makes of them until the stream ends or a write fails; then closes both sides.
fn pump(
    mut rd: TcpStream,
    pair: &Pair,
    first: usize,
    mut hook: impl FnMut(usize, Vec<u8>) -> Vec<Wire>,
) {
    let mut index = first;
    loop {
        let mut prefix = [0u8; 2];
        if rd.read_exact(&mut prefix).is_err() {
            break;
        }
        let len = usize::from(u16::from_be_bytes(prefix));
        let mut message = vec![0u8; 2 + len];
        message[..2].copy_from_slice(&prefix);
        if rd.read_exact(&mut message[2..]).is_err() {
            break;
        }
        if pair.send(hook(index, message)).is_err() {
            break;
        }
        index += 1;
    }
    pair.close();
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
