//! Speaking the node protocol directly, to look at what `aex status` does not show.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aex_proto::frame::{read_message, write_message};
use aex_proto::{FromNode, Hello, NodeRequest, NodeResponse, NodeStatus, ToNode};

/// Asks the node at `addr` for its status over a fresh deployer session.
pub fn node_status(addr: SocketAddr) -> NodeStatus {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write_message(
        &mut stream,
        &ToNode::Hello(Hello::Deployer {
            client: "aex-cli tests".into(),
        }),
    )
    .unwrap();
    write_message(
        &mut stream,
        &ToNode::Request {
            id: 1,
            body: NodeRequest::Status,
        },
    )
    .unwrap();
    loop {
        match read_message::<_, FromNode>(&mut stream).expect("read from node") {
            Some(FromNode::Response {
                id: 1,
                result: Ok(NodeResponse::Status(status)),
            }) => return status,
            Some(FromNode::Response { result, .. }) => panic!("node answered {result:?}"),
            Some(_) => continue,
            None => panic!("node at {addr} closed the session"),
        }
    }
}
