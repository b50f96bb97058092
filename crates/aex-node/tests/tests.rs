//! Integration tests of the node agent: real nodes on loopback in temporary directories
//! (`aex_testkit::node::TestNode`, each on its own runtime), spoken to over TCP with the wire
//! protocol by the kit's blocking deployer sessions, running shell-script stand-ins for
//! modules ([`scripts`]). Every wait has a deadline (`aex_testkit::wait`).

mod config_example;
mod config_timeouts;
mod metrics;
mod module_attest;
mod module_devices;
mod module_load;
mod module_periodic;
mod node_lifecycle;
mod routing_fairness;
mod routing_namespaces;
mod routing_peers;
mod scripts;
mod session_auth;
mod session_frames;
mod session_limits;
