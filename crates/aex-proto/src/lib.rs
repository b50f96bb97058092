//! The aex wire format, sans-I/O.
//!
//! Everything that crosses a process or machine boundary in aex is defined here: the framing,
//! the messages on each link, and the per-connection channel state that seals and opens events.
//! The crate does no I/O and owns no sockets: the node agent (async), the module runtime
//! (blocking) and the deployer each drive it with their own I/O. `docs/PROTOCOL.md` is the
//! prose specification of what this crate implements.
//!
//! # Design overview
//!
//! * **Frames** ([`frame`]): `u32` big-endian body length, then the body: one version byte
//!   ([`WIRE_VERSION`]) and a postcard-encoded message. A body over [`MAX_FRAME_LEN`] is refused
//!   from its length prefix alone, before anything is allocated. Decoding never panics; every
//!   failure is a [`DecodeError`].
//! * **Links** ([`message`]): node ↔ module over the module's stdin/stdout ([`ToModule`],
//!   [`FromModule`]); deployer or peer node → node over TCP ([`ToNode`], [`FromNode`]), inside
//!   a Noise channel that crate `aex-link` provides (outside the module's trusted base).
//! * **Events** ([`channel`]): an [`Event`] carries a connection id, direction, kind, 64-bit
//!   counter and ciphertext. [`SendChannel`] and [`RecvChannel`] own the counters: a sender never
//!   reuses one, a receiver accepts only counters above the last accepted and counts gaps.
//! * **Deployer authentication** ([`auth`]): a deployer session claims an Ed25519 key and an
//!   application and proves the key by signing its link's handshake hash and the node's
//!   identity ([`NodeKey`]); requests carry strictly increasing ids. Key and application name
//!   one namespace ([`AppId`]) that the session's requests and events act in.
//! * **Commands** ([`command`]): what the deployer tells a module (connection keys, entry-point
//!   calls) travels sealed under the module key with a strictly increasing counter.
//!
//! The node agent sees every field of these messages except the plaintexts: it routes on
//! connection id and direction, and can drop or delay, never forge.
//!
//! # Layout
//!
//! The modules import each other in layers, without a cycle (check with
//! `scripts/use-edges.py crates/aex-proto`): at the bottom, the identifiers every link names
//! ([`ids`]: [`ConnId`], [`DeployerKey`], [`NodeKey`], [`AppId`]) and the framing ([`frame`]);
//! above them the three protections, [`auth`], [`channel`] and [`command`]; on top, the
//! messages ([`message`]) that carry their proofs, events and sealed commands, and beside them
//! [`forwarding`], the event messages as a node agent reads and writes them in place (its tests
//! hold it to [`message`]'s bytes); [`flow`] (credit)
//! sits beside [`channel`], whose events it counts. A test that
//! needs a message lives with the messages (`message/tests.rs`), not in the module below it
//! that it exercises. [`reply`] stands alone: a reply plaintext is inside an event's ciphertext.
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod attested_tls;
pub mod auth;
pub mod channel;
pub mod command;
pub mod flow;
pub mod forwarding;
pub mod frame;
pub mod ids;
pub mod message;
pub mod persist;
pub mod reply;
pub mod trace;

pub use auth::Signature;
pub use channel::{
    CounterExhausted, Direction, Event, EventKind, RecvChannel, RecvError, SendChannel,
};
pub use command::{
    Command, CommandChannel, CommandError, CommandReply, Retired, Role, Sealed, SnapshotInfo,
    StateBytes, WireAlgorithm, WireKey, STATE_CHUNK,
};
pub use flow::Credit;
pub use frame::{DecodeError, FrameDecoder, MAX_FRAME_LEN, WIRE_VERSION};
pub use ids::{AppId, ConnId, DeployerKey, NodeKey, ParseKeyError, ParseNodeKeyError};
pub use message::{
    ConnStats, DeadlineAlarms, DeviceOp, Endpoint, FromModule, FromNode, Hello, Interface,
    ModuleStats, ModuleStatus, NodeError, NodeErrorKind, NodeRequest, NodeResponse, NodeStatus,
    Origin, PeerStatus, PersistenceStatus, PortFailures, ToModule, ToNode, Trigger, LOG_TAIL_LINE,
    LOG_TAIL_LINES,
};
pub use persist::{BlobChunk, CounterCall, CounterValue, ResumeOutcome, BLOB_CHUNK, MAX_BLOB};
pub use trace::{TraceEntry, TraceOutcome, TraceReport, TRACE_CAPACITY};
