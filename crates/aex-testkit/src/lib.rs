//! The aex test kit: one harness for every test that plays a node, a deployer or the network.
//!
//! Unpublished; a dev-dependency of the crates whose tests need real processes. It holds:
//!
//! * **Waiting** ([`wait`]): [`wait_for`] polls a condition until a deadline and, when the
//!   deadline passes, panics naming what it waited for. No test sleeps for a fixed time.
//! * **Processes** ([`process`], [`cli`], [`node`]): start, wait for, signal and reap OS
//!   processes; run the real `aex` binary with a deadline; run `aex node` agents on free
//!   loopback ports, or a node agent inside the test process on its own runtime.
//! * **Modules** ([`modules`]): every module crate of the workspace built once per test run
//!   through the deployer's own build code, and handed to `aex` as a prebuilt manifest
//!   (`AEX_PREBUILT`), so a deploy in a test measures and uploads binaries without running
//!   cargo again.
//! * **Playing the deployer** ([`session`], [`deployer`]): a deployer session with a node over
//!   a link that pins the node's identity (the kit pins every node it starts), speaking the
//!   management protocol request by request; and the deployer's side of a module
//!   (attestation, sealed commands, connection keys) over any [`deployer::ModuleLink`]: a real
//!   module process ([`deployer::ModuleProcess`]) or a runtime driven in memory.
//! * **Playing the network and compromised nodes** ([`proxy`], [`dead_end`],
//!   [`session::PeerConn`]): a man-in-the-middle proxy that tampers with the links' records (the
//!   network) or, holding a node's keys, with decoded frames (a compromised node agent);
//!   listeners that never answer or answer one byte per second; peer links opened by the
//!   attacker under an identity of its own; and connections from other loopback addresses
//!   (`127.0.0.2`, ...: other machines, as far as a node can tell); and real separate hosts,
//!   in network namespaces joined by a bridge, whose links a test cuts ([`netns`]).
//! * **Applications** ([`cluster`], [`hoard`], [`descriptor`], [`identity`], [`state`],
//!   [`status`]): application directories, descriptors for test-started nodes (ping-pong, and
//!   the kit's `hoard` module with a state of any size), deployer identities outside the home
//!   directory, the deployer's state, and `aex status --json` read into the deployer
//!   library's own status types.
//! * **A consortium** ([`governor`]): the governor module started with a 3-member
//!   constitution, members' verifying clients, and the governed ping-pong's bundle.
#![allow(
    clippy::disallowed_macros,
    reason = "test code: what a test notes goes to stderr, which the test harness shows"
)]

pub mod cli;
pub mod cluster;
pub mod dead_end;
pub mod deployer;
pub mod descriptor;
pub mod governor;
pub mod hoard;
pub mod http;
pub mod https;
pub mod identity;
pub mod modules;
pub mod netns;
pub mod node;
pub mod paths;
pub mod process;
pub mod proxy;
pub mod session;
pub mod state;
pub mod status;
pub mod wait;

pub use wait::{free_addr, wait_for, wait_until, PATIENCE};
