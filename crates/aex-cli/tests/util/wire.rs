//! Speaking the node protocol directly: to look at what `aex status` does not show, and to
//! play an attacker who opens its own deployer session (nodes accept any deployer).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aex_proto::frame::{read_message, write_message};
use aex_proto::{Event, FromNode, Hello, NodeError, NodeRequest, NodeResponse, NodeStatus, ToNode};

/// A deployer session with one node, opened by the test.
pub struct Session {
    addr: SocketAddr,
    stream: TcpStream,
    next_id: u64,
}

impl Session {
    /// Connects to the node at `addr` and says `Hello::Deployer`.
    pub fn open(addr: SocketAddr) -> Session {
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
            }),
        )
        .unwrap();
        Session {
            addr,
            stream,
            next_id: 1,
        }
    }

    /// Sends `body` and waits for its answer (events arriving first are skipped).
    pub fn request(&mut self, body: NodeRequest) -> Result<NodeResponse, NodeError> {
        let id = self.next_id;
        self.next_id += 1;
        write_message(&mut self.stream, &ToNode::Request { id, body }).expect("send request");
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

/// Asks the node at `addr` for its status over a fresh deployer session.
pub fn node_status(addr: SocketAddr) -> NodeStatus {
    match Session::open(addr).request(NodeRequest::Status) {
        Ok(NodeResponse::Status(status)) => status,
        other => panic!("node answered {other:?}"),
    }
}
