//! The node's stand-in for physics: the local socket where someone on the node's machine plays
//! the physical world of the node's simulated devices (`socket.rs`).

mod socket;

pub(crate) use socket::PhysicsServer;
pub use socket::{physics_socket, PhysicsClient, PhysicsError, MAX_LINE, PHYSICS_SOCKET};
