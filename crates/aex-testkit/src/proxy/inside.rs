//! The inside proxy: a compromised node agent that ends every link with the node's own
//! identity key and re-originates it to the node, so it sees and rewrites decoded frames.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use aex_crypto::SigningIdentity;
use aex_link::blocking::{LinkReader, LinkWriter};
use aex_link::{LinkError, LinkKind, StaticKey, MAX_RECORD};
use aex_proto::auth::sign_session;
use aex_proto::frame::{decode, encode, read_body, LEN_PREFIX};
use aex_proto::{FromNode, Hello, ToNode};
use serde::de::DeserializeOwned;

use super::{lock, Link, Out, Sockets, Tamper};

/// The keys a compromised node agent holds, or uses to stand in for one.
pub struct Insider {
    /// The identity key of the node behind the proxy.
    pub node: StaticKey,
    /// Identity keys of the nodes that open peer links to it: the insider opens its own link
    /// to the node under the same identity.
    pub peers: Vec<StaticKey>,
    /// The deployer whose sessions it passes on: it signs the `Hello` of its own link to the
    /// node with this key.
    pub deployer: SigningIdentity,
}

impl Insider {
    /// The insider of the node whose data directory is `node_dir`, re-originating the links of
    /// the nodes in `peer_dirs` and the sessions of `deployer`.
    pub fn of(
        node_dir: &std::path::Path,
        peer_dirs: &[&std::path::Path],
        deployer: &SigningIdentity,
    ) -> Insider {
        let key = |dir: &std::path::Path| {
            aex_link::keys::load_or_create(dir)
                .unwrap_or_else(|e| panic!("node identity in {}: {e}", dir.display()))
                .0
        };
        Insider {
            node: key(node_dir),
            peers: peer_dirs.iter().map(|d| key(d)).collect(),
            deployer: SigningIdentity::from_seed(deployer.expose_secret()),
        }
    }
}

type Writer = Mutex<LinkWriter<TcpStream>>;

/// Both ends of one inside-proxied link.
struct Ends {
    client: Writer,
    node: Writer,
    sockets: [TcpStream; 2],
}

impl Ends {
    fn write(writer: &Writer, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = lock(writer);
        w.write_all(bytes)?;
        w.flush()
    }

    fn send(&self, outs: Vec<Out>) -> std::io::Result<()> {
        for out in outs {
            match out {
                Out::ToNode(m) => Self::write(&self.node, &encode(&m))?,
                Out::ToClient(m) => Self::write(&self.client, &encode(&m))?,
                Out::RawToNode(bytes) => Self::write(&self.node, &bytes)?,
                Out::Close => {
                    self.close();
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
            }
        }
        Ok(())
    }

    fn close(&self) {
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Ends the client's link as the node, opens the insider's own to `upstream`, and pumps frames
/// both ways through `tamper` until either side closes.
pub(super) fn splice(
    client: TcpStream,
    upstream: SocketAddr,
    insider: Arc<Insider>,
    tamper: Arc<dyn Tamper>,
    sockets: Sockets,
) {
    let _ = client.set_nodelay(true);
    let Ok((kind, mut from_client)) = clone2(&client)
        .and_then(|(rd, wr)| aex_link::blocking::accept(rd, wr, &insider.node, |_| true))
    else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let Ok(Some(hello)) = read_frame(&mut from_client.reader) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    from_client.reader.set_limit(MAX_RECORD);
    let Ok(node) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = node.set_nodelay(true);
    lock(&sockets).extend(node.try_clone());
    let to_node = clone2(&node).and_then(|(rd, wr)| match kind {
        LinkKind::Deployer => aex_link::blocking::connect_deployer(rd, wr, &insider.node.public()),
        LinkKind::Peer => {
            let remote = from_client.remote.unwrap_or_default();
            let own = insider
                .peers
                .iter()
                .find(|k| k.public() == remote)
                .ok_or_else(|| LinkError::Handshake("a peer the insider holds no key of".into()))?;
            aex_link::blocking::connect_peer(rd, wr, own, &insider.node.public())
        }
    });
    let Ok(to_node) = to_node else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = node.shutdown(Shutdown::Both);
        return;
    };
    // A deployer's Hello is signed for the client's link: sign it for the insider's own.
    let hello = match decode::<ToNode>(&hello[LEN_PREFIX..]) {
        Ok(ToNode::Hello(Hello::Deployer {
            client, key, app, ..
        })) => {
            let signature = sign_session(
                &insider.deployer,
                &to_node.hash,
                &insider.node.public(),
                &app,
            );
            encode(&ToNode::Hello(Hello::Deployer {
                client,
                key,
                app,
                signature,
            }))
        }
        _ => hello,
    };
    let link = Link::from(kind);
    let ends = Arc::new(Ends {
        client: Mutex::new(from_client.writer),
        node: Mutex::new(to_node.writer),
        sockets: [client, node],
    });
    // The Hello goes through the tamper like every frame.
    let sent = match decode::<ToNode>(&hello[LEN_PREFIX..]) {
        Ok(msg) => ends.send(tamper.upstream(link, msg)),
        Err(_) => Ends::write(&ends.node, &hello),
    };
    if sent.is_err() {
        ends.close();
        return;
    }
    let back = {
        let (ends, tamper) = (ends.clone(), tamper.clone());
        let reader = to_node.reader;
        std::thread::spawn(move || {
            pump::<FromNode>(reader, &ends, Side::Client, |msg| {
                tamper.downstream(link, msg)
            })
        })
    };
    pump::<ToNode>(from_client.reader, &ends, Side::Node, |msg| {
        tamper.upstream(link, msg)
    });
    let _ = back.join();
}

/// Which end a pump writes undecodable frames to.
#[derive(Clone, Copy)]
enum Side {
    Client,
    Node,
}

fn clone2(s: &TcpStream) -> Result<(TcpStream, TcpStream), LinkError> {
    Ok((s.try_clone()?, s.try_clone()?))
}

/// One whole frame (length prefix included); `None` at the end of the stream.
fn read_frame<R: Read>(rd: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    Ok(read_body(rd)?.map(|body| {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    }))
}

/// Reads frames of type `M` and sends what `hook` makes of them (frames that do not decode go
/// to `to` unchanged) until the link ends or a write fails; then closes both sides.
fn pump<M: DeserializeOwned>(
    mut rd: LinkReader<TcpStream>,
    ends: &Ends,
    to: Side,
    mut hook: impl FnMut(M) -> Vec<Out>,
) {
    while let Ok(Some(frame)) = read_frame(&mut rd) {
        let sent = match decode::<M>(&frame[LEN_PREFIX..]) {
            Ok(msg) => ends.send(hook(msg)),
            Err(_) => match to {
                Side::Client => Ends::write(&ends.client, &frame),
                Side::Node => Ends::write(&ends.node, &frame),
            },
        };
        if sent.is_err() {
            break;
        }
    }
    ends.close();
}
