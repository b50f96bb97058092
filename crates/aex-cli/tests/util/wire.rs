//! Speaking the node protocol directly: to look at what `aex status` does not show, and to
//! play an attacker who opens deployer sessions or peer links of its own.
//!
//! A session of the default test deployer for the cluster's application (`ping-pong-test`)
//! acts in that application's namespace: it stands for a compromised node agent, which can
//! hand the application's modules anything.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aex_deploy::Identity;
use aex_proto::auth::{sign_request, sign_session};
use aex_proto::frame::{read_message, write_message};
use aex_proto::{
    AppId, DeployerKey, Event, FromNode, Hello, NodeError, NodeRequest, NodeResponse, NodeStatus,
    ToNode,
};

use super::identity;

/// The application name of the test clusters' descriptors.
pub const APP: &str = "ping-pong-test";

/// A deployer session with one node, opened by the test.
pub struct Session<'a> {
    addr: SocketAddr,
    stream: TcpStream,
    next_id: u64,
    signer: &'a Identity,
    challenge: [u8; 32],
}

impl Session<'static> {
    /// A session of the default test deployer for [`APP`] with the node at `addr`.
    pub fn open(addr: SocketAddr) -> Session<'static> {
        Session::open_as(addr, &identity::deployer().identity, APP)
    }
}

impl<'a> Session<'a> {
    /// A session of `identity` for application `app`.
    pub fn open_as(addr: SocketAddr, identity: &'a Identity, app: &str) -> Session<'a> {
        Session::open_claiming(addr, identity.public(), identity, app)
    }

    /// A session that claims deployer key `claimed` but signs with `signer` (an impostor
    /// unless they match).
    pub fn open_claiming(
        addr: SocketAddr,
        claimed: DeployerKey,
        signer: &'a Identity,
        app: &str,
    ) -> Session<'a> {
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        write_message(
            &mut stream,
            &ToNode::Hello(Hello::Deployer {
                client: "aex-cli tests".into(),
                key: claimed,
                app: app.into(),
            }),
        )
        .unwrap();
        let challenge = match read_message::<_, FromNode>(&mut stream).expect("read challenge") {
            Some(FromNode::Challenge { nonce }) => nonce,
            other => panic!("node at {addr} answered Hello with {other:?}"),
        };
        let signature = sign_session(signer.signing(), &challenge, app);
        write_message(&mut stream, &ToNode::Auth { signature }).unwrap();
        Session {
            addr,
            stream,
            next_id: 1,
            signer,
            challenge,
        }
    }

    /// Sends `body` and waits for its answer (events arriving first are skipped).
    pub fn request(&mut self, body: NodeRequest) -> Result<NodeResponse, NodeError> {
        let id = self.next_id;
        self.next_id += 1;
        let signature = sign_request(self.signer.signing(), &self.challenge, id, &body);
        let request = ToNode::Request {
            id,
            body,
            signature,
        };
        write_message(&mut self.stream, &request).expect("send request");
        loop {
            match read_message::<_, FromNode>(&mut self.stream).expect("read from node") {
                Some(FromNode::Response { id: got, result }) if got == id => return result,
                Some(_) => continue,
                None => panic!("node at {} closed the session", self.addr),
            }
        }
    }

    /// Sends an event as a deployer's direct connection would.
    pub fn send_event(&mut self, event: Event) {
        write_message(&mut self.stream, &ToNode::Event(event)).expect("send event");
    }
}

/// Asks the node at `addr` for its status (modules of the default deployer's [`APP`]) over a
/// fresh deployer session.
pub fn node_status(addr: SocketAddr) -> NodeStatus {
    status_as(addr, &identity::deployer().identity, APP)
}

/// The node's status as `identity` managing `app` sees it.
pub fn status_as(addr: SocketAddr, identity: &Identity, app: &str) -> NodeStatus {
    match Session::open_as(addr, identity, app).request(NodeRequest::Status) {
        Ok(NodeResponse::Status(status)) => status,
        other => panic!("node answered {other:?}"),
    }
}

/// A peer link to the node at `addr` (peer links are unauthenticated), forwarding `events`
/// into namespace `app`.
pub fn forward_as_peer(addr: SocketAddr, app: AppId, events: &[Event]) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    let hello = ToNode::Hello(Hello::Peer {
        node: "impostor".into(),
    });
    write_message(&mut stream, &hello).unwrap();
    for event in events {
        let forward = ToNode::Forward {
            app,
            event: event.clone(),
        };
        write_message(&mut stream, &forward).unwrap();
    }
}
