//! A man-in-the-middle TCP proxy that speaks aex framing: the attacker on the network.
//!
//! It listens on a loopback port and forwards every connection to a node. Each frame is
//! decoded (`ToNode` towards the node, `FromNode` back) and handed to a [`Tamper`], which
//! decides what is sent instead: the frame unchanged, nothing, altered or extra frames,
//! frames back to the connecting side, raw bytes, or the end of the connection. Frames that
//! do not decode pass through untouched. The first frame of a connection (its `Hello`) tells
//! the [`Link`] kind.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use aex_proto::frame::{decode, encode, LEN_PREFIX};
use aex_proto::{FromNode, Hello, ToNode, MAX_FRAME_LEN};
use serde::de::DeserializeOwned;

/// Who opened a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not known yet (before the first frame).
    Unknown,
    /// A deployer's management session (`Hello::Deployer`).
    Deployer,
    /// A node's event link (`Hello::Peer`).
    Peer,
}

/// What the proxy sends after seeing a frame.
#[derive(Debug)]
pub enum Out {
    /// A message to the node.
    ToNode(ToNode),
    /// A message to the connecting side.
    ToClient(FromNode),
    /// Bytes to the node, as they are (not necessarily a valid frame).
    RawToNode(Vec<u8>),
    /// Closes the proxied connection (both sides) without sending anything more: the
    /// network fails between the two.
    Close,
}

/// An attack: rewrites the frames of proxied connections. The default forwards everything.
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

/// A running proxy; stops accepting and closes its connections on drop.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` through `tamper`.
    pub fn start(upstream: SocketAddr, tamper: Arc<dyn Tamper>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, sockets) = (stop.clone(), sockets.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(client) = client {
                        let (tamper, sockets) = (tamper.clone(), sockets.clone());
                        std::thread::spawn(move || splice(client, upstream, tamper, sockets));
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

/// Both sockets of one proxied connection, for writing from either direction's thread.
struct Pair {
    client: Mutex<TcpStream>,
    node: Mutex<TcpStream>,
    link: Mutex<Link>,
}

impl Pair {
    fn socket(&self, side: Side) -> MutexGuard<'_, TcpStream> {
        match side {
            Side::Client => lock(&self.client),
            Side::Node => lock(&self.node),
        }
    }

    fn send(&self, outs: Vec<Out>) -> std::io::Result<()> {
        for out in outs {
            match out {
                Out::ToNode(m) => self.socket(Side::Node).write_all(&encode(&m))?,
                Out::ToClient(m) => self.socket(Side::Client).write_all(&encode(&m))?,
                Out::RawToNode(bytes) => self.socket(Side::Node).write_all(&bytes)?,
                Out::Close => {
                    self.close();
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
            }
        }
        Ok(())
    }

    fn close(&self) {
        let _ = self.socket(Side::Client).shutdown(Shutdown::Both);
        let _ = self.socket(Side::Node).shutdown(Shutdown::Both);
    }
}

/// One end of a proxied connection.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// The side that connected to the proxy (deployer or peer node).
    Client,
    /// The node behind the proxy.
    Node,
}

/// Connects to `upstream` and pumps frames both ways until either side closes.
fn splice(
    client: TcpStream,
    upstream: SocketAddr,
    tamper: Arc<dyn Tamper>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
) {
    let Ok(node) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = node.set_nodelay(true);
    let clones = (client.try_clone(), node.try_clone());
    let (Ok(client_rd), Ok(node_rd)) = clones else {
        return;
    };
    {
        let mut s = lock(&sockets);
        s.extend(client.try_clone());
        s.extend(node.try_clone());
    }
    let pair = Arc::new(Pair {
        client: Mutex::new(client),
        node: Mutex::new(node),
        link: Mutex::new(Link::Unknown),
    });
    let back = {
        let (pair, tamper) = (pair.clone(), tamper.clone());
        std::thread::spawn(move || {
            pump::<FromNode>(node_rd, &pair, Side::Client, |link, msg| {
                tamper.downstream(link, msg)
            })
        })
    };
    pump::<ToNode>(client_rd, &pair, Side::Node, |link, msg| {
        let link = match (link, &msg) {
            (Link::Unknown, ToNode::Hello(Hello::Deployer { .. })) => Link::Deployer,
            (Link::Unknown, ToNode::Hello(Hello::Peer { .. })) => Link::Peer,
            (link, _) => link,
        };
        *lock(&pair.link) = link;
        tamper.upstream(link, msg)
    });
    let _ = back.join();
}

/// Reads frames of message type `M` from `rd` and sends what `hook` makes of them (frames that
/// do not decode go to `to` unchanged), until the stream ends or a write fails; then closes
/// both sides.
fn pump<M: DeserializeOwned>(
    mut rd: TcpStream,
    pair: &Pair,
    to: Side,
    mut hook: impl FnMut(Link, M) -> Vec<Out>,
) {
    while let Some(frame) = read_frame(&mut rd) {
        let link = *lock(&pair.link);
        let sent = match decode::<M>(&frame[LEN_PREFIX..]) {
            Ok(msg) => pair.send(hook(link, msg)),
            Err(_) => pair.socket(to).write_all(&frame),
        };
        if sent.is_err() {
            break;
        }
    }
    pair.close();
}

/// One whole frame, length prefix included; `None` at the end of the stream or on a length
/// no aex peer sends.
fn read_frame(rd: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; LEN_PREFIX];
    rd.read_exact(&mut prefix).ok()?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len == 0 || len > MAX_FRAME_LEN {
        return None;
    }
    let mut frame = vec![0u8; LEN_PREFIX + len];
    frame[..LEN_PREFIX].copy_from_slice(&prefix);
    rd.read_exact(&mut frame[LEN_PREFIX..]).ok()?;
    Some(frame)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
