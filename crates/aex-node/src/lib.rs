//! The aex node agent: the untrusted daemon that runs on every machine of an application.
//!
//! A node agent receives module binaries from deployers, stores and starts them as processes
//! of its TEE backend, asks the backend for attestation evidence, and routes event ciphertexts
//! between local modules, other nodes and deployers. It is **untrusted**: it holds no key that
//! matters. Module keys are agreed between each module and its deployer, connection keys travel
//! sealed under module keys, and events are sealed under connection keys, so a compromised node
//! agent can stop, delay or drop events, never forge, read or replay them undetected. (The
//! simulated backend's platform key does live in the node's data directory: see `aex-tee`.)
//!
//! # Design overview
//!
//! * **One listener, three kinds of traffic, every link encrypted.** Every TCP connection is
//!   an `aex_link` Noise channel that proves the node's identity key (`node-identity.key` in
//!   its data directory), then opens with [`aex_proto::Hello`]: a deployer's management
//!   session ([`aex_proto::NodeRequest`]s and direct-connection events, Noise NK) or a peer
//!   node's persistent link (events only, Noise XK: the peer proves its identity too). Module
//!   processes speak [`aex_proto::ToModule`] / [`aex_proto::FromModule`] frames on stdin /
//!   stdout.
//! * **Admitted deployers only, each in its own namespaces.** A deployer session claims an
//!   Ed25519 key and an application and proves the key by signing its link's handshake and the
//!   node's identity; the node acts only for keys its configuration admits (or any key in the
//!   explicit, loudly logged open mode). Modules, routes and return paths live in the namespace
//!   of (key, application): one deployer can never load into, command, unload, list or route
//!   into another's.
//! * **Admitted peers only, each into the namespaces that name it.** A peer link is accepted
//!   only from a node identity that some route names as the origin of its events, or that the
//!   configuration admits (`peers`), before any event is read; and a forwarded event is routed
//!   only if its namespace's route names that identity.
//! * **Routing by header only.** Events are forwarded by `(namespace, connection id,
//!   direction)` through a table the deployer installs with `Route`. Unroutable events are
//!   dropped and counted.
//! * **Senders are slowed, not events dropped.** Flow control is end to end
//!   ([`aex_proto::flow`]): the receiving module's runtime grants credit, in bytes, per
//!   connection and direction as it takes events in, and the node relays it back the way the
//!   events came (to the local module that sent them, back over the link of the peer that
//!   forwarded them, or to a window the node keeps for the deployer's own events, which a
//!   session asks for with `Window`); the sending runtime stops when its credit is used up.
//!   Credit is relayed only for events routed to whoever grants it. An event the node drops
//!   gives its cost back to its sender as credit marked `dropped`, so no window leaks and no
//!   loss is silent.
//! * **Bounded everything, in bytes.** Frames are size-checked from their length prefix and
//!   their buffers grow only as bytes arrive; every queue is bounded in bytes and drops
//!   (counting) rather than block. Under honoured credit a queue holds at most what its
//!   receivers granted and never fills; what overflows one (a sender that ignores its credit,
//!   a peer dead for longer than `stale`) is dropped, counted, and its credit returned with
//!   `dropped` set so its sender learns. A peer link's queue is fair between namespaces, so one
//!   tenant's flood drops its own events only; connections are capped in total and per source
//!   address; an admitted deployer is held to a request rate, an amount of upload in progress
//!   and a number of modules; every network wait has a timeout. Limits and timeouts are
//!   configuration ([`Limits`], [`Timeouts`]), with documented defaults. Malformed input closes
//!   the offending connection and never stops the node. What the node holds per connection,
//!   peer link, module and deployer is tabled in docs/SECURITY.md ("Memory ceilings").
//! * **Persistent links.** One TCP connection per peer node, created lazily, reconnected with
//!   backoff; events queued while a peer is unreachable for longer than the `stale` timeout
//!   (1 s by default) are dropped (counted, their credit returned to their senders), not
//!   replayed later. Events flow one way on a link; the credit granted for them flows back on
//!   the same connection.
//! * **Periodic triggers.** The deployer installs, per module, a list of `(entry, period)`
//!   triggers (`Periodic`); a timer per trigger sends the module an unauthenticated `Tick`,
//!   skipped (never queued) while the module is busy. Module runtimes accept ticks only for
//!   entries they declare periodic; a tick is never an authentic event.
//! * **Devices through the TEE layer only.** The configuration declares the node's devices;
//!   `LoadDriver` grants some exclusively to one module instance before it starts, and its
//!   measurement covers them, so attestation proves which code holds which device. A module's
//!   `Device` access is performed for the (namespace, name) the node loaded it under; unloading
//!   it releases its devices. The physical world (soil, buttons) is played on a local Unix
//!   socket ([`PhysicsClient`], `aex device`) that carries no authority and drives no output.
//! * **What it does not do.** It never decrypts, checks or reorders events (they are sealed, so
//!   a forged one is rejected by its module).
//!
//! ```text
//!  deployer ──TCP── session ──requests──▶ load / attest / command / route / status
//!                      │ events                     │ stdin            ▲ stdout
//!                      ▼                            ▼                  │
//!                   router ◀───events, credit───── module process ─────┘
//!                      │ ▲
//!            peer link │ │ inbound peer link
//!                      ▼ │
//!                  other nodes
//! ```
//!
//! (Credit for events travels each arrow the other way: into a module on its stdin, back
//! over the peer link or inbound link the events came on, and to the window the node keeps
//! for a deployer session's events.)
//!
//! # Layout
//!
//! Layered, with no import circle (check with `scripts/use-edges.py crates/aex-node`); each
//! file imports only files of the layers below it, or of its own layer listed before it:
//!
//! 1. foundations: `limits.rs` ([`Limits`]), `timeouts.rs` ([`Timeouts`]), `queue.rs` (queues
//!    bounded in bytes), `sync.rs` (lock guards, the shutdown wait), `physics/` (the simulated
//!    world and its socket), `error.rs` ([`NodeError`], [`ConfigError`], refusals), `fair.rs`
//!    (a peer link's fair queue), `frames.rs` (frame reading and writing), `to_router.rs` (a
//!    module's handle into the router, and the trait the router implements for it),
//!    `journal.rs` (what the node remembers across its own restarts);
//! 2. checks and policies: `names.rs` (module names, peer addresses, upload reservations),
//!    `admission.rs` (which deployers), `config.rs` ([`NodeConfig`]), `auth.rs` (a deployer
//!    session's proof), `conns.rs` (connection caps), `quota.rs` (deployer quotas);
//! 3. destinations: `periodic.rs` (a module's triggers), `sealed.rs` (a persistent module's
//!    blobs and platform counter calls), `module/` (a module process, `process.rs`, and its
//!    output reader, `output.rs`, which reaches the router only through its `to_router.rs`
//!    handle), `peer.rs` (an outgoing link to another node);
//! 4. tables: `registry.rs` (the loaded modules by namespace and name), `routes.rs` (the route
//!    table: where each connection's events go), `credit.rs` (flow control: who sends each
//!    connection's events, the deployers' windows, the ways back to peers);
//! 5. `router.rs`: routes events over the tables, the peer links and the deployer return
//!    paths, for sessions, inbound links and modules' readers, and (`router/relay.rs`) relays credit back the way
//!    events came;
//! 6. `shared.rs`: the state every connection's task reaches (the router included);
//! 7. serving connections: `load.rs` (uploads and starts), `requests.rs` (management requests),
//!    `session.rs` (a deployer session), `inbound.rs` (a link another node opened, and the
//!    credit that goes back over it); `supervise.rs` (restarting persistent modules, and
//!    restoring them when the node starts);
//! 8. `server.rs`: the listener, which hands each connection to a session or an inbound link;
//! 9. `node.rs`: the public entry points ([`Node::start`], [`run_blocking`]).
//!
//! The router owns the modules (through the registry); a module does not know the router's
//! type but routes its events through a handle to it (`to_router.rs` says why that keeps
//! routing's order, fairness, drops and counters).
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), aex_node::NodeError> {
//! use aex_node::{Node, NodeConfig};
//!
//! let config = NodeConfig {
//!     name: "edge-1".into(),
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     data_dir: "/tmp/aex-edge-1".into(),
//!     tee: aex_tee::TeeKind::Sgx,
//!     allow_remote_shutdown: false,
//!     // A deployer's key, as printed by `aex identity`.
//!     admit: vec!["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".parse().unwrap()],
//!     open: false,
//!     peers: vec![],
//!     devices: vec![aex_tee::devices::DeviceSpec::parse("valve=digital_out").unwrap()],
//!     timeouts: aex_node::Timeouts::default(),
//!     limits: aex_node::Limits::default(),
//!     // Prometheus metrics on loopback (`GET /metrics`); `None` serves none.
//!     metrics: Some("127.0.0.1:9464".parse().unwrap()),
//! };
//! let node = Node::start(config).await?;
//! println!("listening on {}", node.local_addr());
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! None.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]
#![deny(rustdoc::broken_intra_doc_links)]

mod admission;
mod auth;
mod binaries;
mod config;
mod conns;
mod credit;
mod error;
mod fair;
mod frames;
mod inbound;
mod journal;
mod limits;
mod load;
mod metrics;
mod module;
mod names;
mod node;
mod peer;
mod periodic;
mod physics;
mod queue;
mod quota;
mod registry;
mod requests;
mod router;
mod routes;
mod sealed;
mod server;
mod session;
mod shared;
mod supervise;
mod sync;
mod timeouts;
mod to_router;

pub use admission::read_admit_file;
pub use config::NodeConfig;
pub use error::{ConfigError, NodeError};
pub use limits::{LimitError, Limits, MIN_QUEUE_BYTES};
pub use node::{run_blocking, Node, NodeHandle};
pub use physics::{
    physics_socket, DeviceView, PhysicsClient, PhysicsError, MAX_LINE, PHYSICS_SOCKET,
};
pub use timeouts::{TimeoutError, Timeouts};
