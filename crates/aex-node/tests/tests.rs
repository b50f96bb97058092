//! Integration tests of the node agent: real nodes on loopback in temporary directories,
//! spoken to over TCP with the wire protocol, running shell-script stand-ins for modules.

mod config_timeouts;
mod module_attest;
mod module_devices;
mod module_load;
mod module_periodic;
mod routing_namespaces;
mod routing_peers;
mod session_auth;
mod session_frames;
mod util;
