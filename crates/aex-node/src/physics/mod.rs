//! The node's stand-in for physics: the simulated world its devices sense and are driven in
//! (`world.rs`, the pins behind the TEE layer's grants), and the local socket where someone on
//! the node's machine plays that world (`socket.rs`).

mod socket;
mod world;

pub(crate) use socket::PhysicsServer;
pub use socket::{physics_socket, PhysicsClient, PhysicsError, MAX_LINE, PHYSICS_SOCKET};
pub use world::DeviceView;
pub(crate) use world::World;
