//! Messages on each link.
//!
//! * node agent ↔ module process, over the module's stdin ([`ToModule`]) and stdout
//!   ([`FromModule`]);
//! * deployer or peer node → node agent ([`ToNode`]) and back ([`FromNode`]), inside a Noise
//!   channel over TCP (crate `aex-link`): the network sees only ciphertext records.
//!
//! Everything here is visible to the (untrusted) node agent. Secrets travel only inside
//! [`Sealed`] commands and [`Event`] ciphertexts.

use serde::{Deserialize, Serialize};

use crate::auth::Signature;
use crate::channel::{Direction, Event};
use crate::command::Sealed;
use crate::flow::Credit;
use crate::ids::{AppId, ConnId, DeployerKey, NodeKey};

/// Node agent → module process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ToModule {
    /// Start key agreement: the module answers with [`FromModule::Attested`].
    Attest {
        /// The deployer's fresh challenge.
        challenge: [u8; 32],
        /// The deployer's ephemeral X25519 public key.
        deployer_pk: [u8; 32],
    },
    /// A command from the deployer, sealed under the module key.
    Command(Sealed),
    /// An event for one of the module's connections.
    Event(Event),
    /// Asks for a [`FromModule::Stats`] report.
    Stats,
    /// Asks the module to exit.
    Shutdown,
    // New variants go last: a variant's position is its wire encoding.
    /// Symmetric TEE kinds only, sent once right after the module's `Hello`: the module key
    /// the platform derived for this module, under the provider key of the deployer that
    /// loaded it. On hardware the TEE hands it over inside the enclave; in simulation the
    /// node agent plays the platform (and so knows it; it only authenticates the module's
    /// ephemeral key, so it does not give the command key).
    Provision {
        /// TEE kind name (`trustzone`, `sancus`), bound into the attestation MAC.
        kind: String,
        /// Whether the platform is simulated, bound into the attestation MAC.
        simulated: bool,
        /// The module key.
        key: crate::command::WireKey,
    },
    /// An untrusted periodic trigger: run the module's `#[periodic]` entry `entry` once.
    ///
    /// Not authenticated, so it carries no data: the node may delay, drop or invent ticks, and
    /// the runtime only runs entries the module declares periodic (others are counted in
    /// [`ModuleStats::rejected_ticks`]). A tick never becomes an authentic event by itself.
    Tick {
        /// A name from [`Interface::periodic`].
        entry: String,
    },
    /// The TEE layer's answer to the module's [`FromModule::Device`] with the same `id`: the
    /// value read (or written), or why the access was refused.
    DeviceReply {
        /// The access's id.
        id: u64,
        /// The value, or the refusal.
        result: Result<u32, String>,
    },
    /// More room for the module's events on one of its connections ([`crate::flow`]):
    /// granted by the receiving runtime, relayed unauthenticated by the nodes.
    Credit(Credit),
    /// Persistent modules only (`Interface::persistent`), right after the `Hello` (and the
    /// `Provision` of symmetric kinds): the sealing key the platform derives for this module
    /// (docs/PROTOCOL.md §9). On hardware the TEE hands it over inside the enclave; in
    /// simulation the node agent plays the platform.
    Sealing {
        /// The sealing key.
        key: crate::command::WireKey,
    },
    /// A chunk of the blob the node stored for this module, handed to a restarted process
    /// before anything else: the module resumes from it once the last chunk arrived, and
    /// answers [`FromModule::Resumed`].
    Resume(crate::persist::BlobChunk),
    /// The node stored the blob of this version durably (answers the last chunk of a
    /// [`FromModule::Store`]), or could not, and says why.
    Stored {
        /// The blob's version.
        version: u64,
        /// `Err` when the node could not store it.
        result: Result<(), String>,
    },
    /// The platform's answer to [`FromModule::Counter`] with the same `id`.
    CounterAnswer {
        /// The call's id.
        id: u64,
        /// The authenticated value, or why the platform refused.
        result: Result<crate::persist::CounterValue, String>,
    },
    /// After the chunks of every stored blob ([`ToModule::Resume`]): there is no more. A
    /// process that took none answers [`FromModule::Resumed`] with why.
    ResumeEnd,
    /// A chunk of a stored blob of the predecessor [`FromModule::Adopt`] named, newest blob
    /// first, then [`ToModule::AdoptEnd`].
    Adopted(crate::persist::BlobChunk),
    /// After the chunks of every blob of the predecessor (none if it has none, or the name is
    /// not a module of this namespace): there is no more.
    AdoptEnd,
    /// Asks for the runtime's event trace after entry `after` ([`crate::trace`]); answered at
    /// once, like [`ToModule::Stats`], with [`FromModule::Trace`].
    Trace {
        /// The last entry the asker saw (0: none).
        after: u64,
    },
    /// The TEE layer's answer to [`FromModule::Evidence`] with the same `id`: evidence
    /// envelope bytes (as in `NodeResponse::Evidence`) for this module's measured binary, or
    /// why there is none.
    Evidence {
        /// The request's id.
        id: u64,
        /// The evidence, or the refusal.
        result: Result<Vec<u8>, String>,
    },
}

/// One access of a driver module to a device the TEE layer granted it (see
/// [`FromModule::Device`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceOp {
    /// Read an input (digital `0`/`1`, or analog `0..=max`), or an output's current level.
    Read,
    /// Drive a digital output: `0` off, `1` on.
    Write(u32),
}

/// Module process → node agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FromModule {
    /// First message after start: the module's declared interface.
    Hello(Interface),
    /// Answer to [`ToModule::Attest`].
    Attested {
        /// The module's ephemeral X25519 public key: quote kinds' evidence binds its hash;
        /// on symmetric kinds the MAC covers it, and the session key comes from it.
        public_key: [u8; 32],
        /// Key confirmation: an empty plaintext sealed under the derived module (session)
        /// key, so the deployer detects a module that was keyed by someone else first.
        confirm: Vec<u8>,
        /// Symmetric kinds: the attestation MAC under the provisioned module key, over the
        /// challenge and both public keys.
        mac: Option<Vec<u8>>,
    },
    /// The module refused an attestation request (it is already keyed).
    AttestRefused,
    /// Answer to a [`ToModule::Command`], sealed under the module key.
    CommandReply(Sealed),
    /// The module refused a command it could not authenticate (forged, replayed, or no
    /// module key yet). Unsealed on purpose: sealing a reply under an attacker-chosen counter
    /// could later reuse a nonce.
    CommandRejected {
        /// The refused command's counter.
        counter: u64,
    },
    /// An event the module emits.
    Event(Event),
    /// Counters, answering [`ToModule::Stats`].
    Stats(ModuleStats),
    // New variants go last: a variant's position is its wire encoding.
    /// An access to a device, for the node's TEE layer, which performs it only if the device
    /// is granted to this module instance and answers with [`ToModule::DeviceReply`].
    Device {
        /// Chosen by the module; echoed in the reply.
        id: u64,
        /// The device's name in the node's configuration.
        device: String,
        /// What to do.
        op: DeviceOp,
    },
    /// The module took in events of one of its connections and grants their sender that much
    /// more room ([`crate::flow`]); the node relays it toward the sender.
    Credit(Credit),
    /// A chunk of a sealed blob to store (persistent modules); the last chunk is answered with
    /// [`ToModule::Stored`].
    Store(crate::persist::BlobChunk),
    /// A call to the platform's monotonic counters, answered with [`ToModule::CounterAnswer`].
    Counter {
        /// Chosen by the module; echoed in the answer.
        id: u64,
        /// What to do.
        call: crate::persist::CounterCall,
        /// Fresh per call, bound into the platform's MAC.
        nonce: [u8; 16],
    },
    /// How resuming from the blob of [`ToModule::Resume`] went.
    Resumed(crate::persist::ResumeOutcome),
    /// Asks for the stored blobs of `predecessor`, an instance of this module in the same
    /// namespace on this node ([`crate::Command::Adopt`]): answered with
    /// [`ToModule::Adopted`] chunks and [`ToModule::AdoptEnd`].
    Adopt {
        /// The predecessor's name on the node (`tally`, `tally.1`, ...).
        predecessor: String,
    },
    /// The answer to [`ToModule::Trace`]: the entries kept after the one asked.
    Trace(crate::TraceReport),
    /// Asks the node's TEE layer for evidence that this module (the binary the node measured
    /// at load, never a measurement the module names) holds `key` and answers `challenge`
    /// (docs/PROTOCOL.md §11, "Attested TLS"): report data `SHA-256(key || challenge) || 0^32`,
    /// as for the deployer's attestation. Answered with [`ToModule::Evidence`].
    Evidence {
        /// Chosen by the module; echoed in the answer.
        id: u64,
        /// What the evidence binds: a labelled hash of the public keys the module attests
        /// (`attested_tls::binding`).
        key: [u8; 32],
        /// What it answers: a constant for certificates, a TLS exporter value for fresh
        /// evidence.
        challenge: [u8; 32],
        /// Symmetric kinds: the module's MAC under its provisioned key over `key` (as the
        /// module public key), `challenge` and the all-zero peer key
        /// (`attested_tls::SYMMETRIC_PEER`); the node wraps it like an attestation's.
        mac: Option<Vec<u8>>,
    },
}

/// The names a module declares; the deployer checks the descriptor against them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Outputs (emit events).
    pub outputs: Vec<String>,
    /// Inputs (receive events).
    pub inputs: Vec<String>,
    /// Requests (send and wait for a reply).
    pub requests: Vec<String>,
    /// Handlers (answer requests).
    pub handlers: Vec<String>,
    /// Entry points (called by the deployer).
    pub entries: Vec<String>,
    /// Periodic entry points (`#[periodic]`, no payload): the only entries the node may
    /// trigger, with [`ToModule::Tick`]. Appended last: see docs/PROTOCOL.md §3 for the wire
    /// encoding of `Hello`.
    #[serde(default)]
    pub periodic: Vec<String>,
    /// Whether the module keeps its state across restarts (`#[aex::module(persistent)]`): it
    /// seals state, keys and counters into blobs its node stores, and its node restarts it
    /// when its process ends (docs/PROTOCOL.md §9). Appended last, like `periodic`.
    #[serde(default)]
    pub persistent: bool,
    /// Whether a persistent module seals by signer (`#[aex::module(persistent(signer))]`):
    /// its sealing key is the stakeholder's and the module name's on the platform, not its
    /// code's, so an update opens what its predecessor sealed (docs/PROTOCOL.md §9).
    /// Appended last, like `persistent`.
    #[serde(default)]
    pub seal_by_signer: bool,
}

/// Per-connection counters kept by a module's runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnStats {
    /// The connection.
    pub conn: ConnId,
    /// Events sealed and sent.
    pub sent: u64,
    /// Events opened, accepted and handled: the module code they reached succeeded (or, for
    /// the reply to a request, the requester took it). Events whose input or handler failed
    /// are counted in `failed` instead.
    pub received: u64,
    /// Events refused: bad tag, replayed or stale counter, wrong direction or kind.
    pub rejected: u64,
    /// Counter values skipped between accepted events (dropped events).
    pub gaps: u64,
    // Appended last: a variant's or field's position is its wire encoding.
    /// Events this module sent that a node reported dropping (a dead or unreachable peer, no
    /// route), learned from the credit the node returned for them ([`crate::flow`]).
    pub dropped: u64,
    /// Emits and requests that found this connection's window full: waited past their bound,
    /// or would have blocked (`try_emit`).
    pub blocked: u64,
    /// Authentic events accepted whose input or handler failed: the payload did not decode as
    /// its argument, it returned an error, or it panicked ([`ModuleStats::failures`] says
    /// which port and why). Not in `received`; the last accepted counter is `received +
    /// failed + gaps`. Appended last.
    #[serde(default)]
    pub failed: u64,
}

/// Everything a module's runtime counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleStats {
    /// One entry per connection the module holds a key for.
    pub conns: Vec<ConnStats>,
    /// Events for connections the module holds no key for.
    pub rejected_unknown: u64,
    /// Commands refused: bad tag or replayed counter.
    pub rejected_commands: u64,
    /// Commands accepted.
    pub commands: u64,
    /// [`ToModule::Tick`]s refused: not a declared periodic entry, or the module is not armed
    /// (not attested yet, or attested but not yet armed by its first authenticated command),
    /// disabled or retired.
    #[serde(default)]
    pub rejected_ticks: u64,
    // Appended last (docs/PROTOCOL.md §5): an older module's `Stats` does not decode.
    /// Authentic commands the module refused because of where it is in its life: `SetKey`,
    /// `Call`, `Start` or `Restore` sent to a retired instance.
    #[serde(default)]
    pub refused_commands: u64,
    /// Handler replies dropped unsent because the request's connection was re-keyed or
    /// revoked while the handler ran: sealed under the new key, a late reply could answer a
    /// new request with the same counter.
    #[serde(default)]
    pub dropped_replies: u64,
    /// Whether module code may run: after attestation a module runs no tick, deadline handler
    /// or entry point until its first authenticated `Restore`, `SetKey`, `Call` or `Start`.
    #[serde(default)]
    pub armed: bool,
    /// Whether the instance retired (its state moved to a new instance, `Command::Retire`): it
    /// takes no key, call or state any more. Appended last.
    #[serde(default)]
    pub retired: bool,
    /// Device writes a persistent module held for a commit (docs/PROTOCOL.md §9) that the TEE
    /// layer refused when they were sent: module code was told the write succeeded, so the
    /// owner must learn otherwise. Appended last.
    #[serde(default)]
    pub refused_writes: u64,
    /// The ports whose module code failed on an authentic event or a tick, one entry per
    /// port, in the order of their first failure. Appended last.
    #[serde(default)]
    pub failures: Vec<PortFailures>,
    /// Deadline alarms: per input with a declared deadline that went silent past it at least
    /// once, how many alarms fired, in the order of their first. Appended last.
    #[serde(default)]
    pub alarms: Vec<DeadlineAlarms>,
}

/// The failures of one port of a module: how many, and the last one.
///
/// What a module reports here travels in clear through its node, so `reason` never quotes a
/// payload or a module's message (either may hold what the module keeps secret): it names the
/// kind of failure and, for a panic, where in the module's code it happened. The sender of a
/// request learns the message itself, in the sealed reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFailures {
    /// The port, as `input reading`, `handler stats`, `periodic sample` or `deadline
    /// temperature`.
    pub port: String,
    /// How many times its code failed.
    pub failed: u64,
    /// Why it failed the last time, e.g. "the payload does not decode as its argument".
    pub reason: String,
    /// The connection of the last failed event (none for a tick or a deadline).
    pub conn: Option<ConnId>,
    /// That event's counter (0 without a connection).
    pub counter: u64,
}

/// The alarms of one input's deadline ([`ModuleStats::alarms`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineAlarms {
    /// The input whose silence raised them.
    pub input: String,
    /// How many fired (one per missed period).
    pub fired: u64,
    /// When the last fired, in milliseconds since the Unix epoch, by the module's clock.
    pub last_ms: u64,
}

/// Deployer or peer node → node agent, inside the link's Noise channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ToNode {
    /// First message on every link, right after the handshake: who is speaking.
    Hello(Hello),
    /// A management request; answered by [`FromNode::Response`] with the same id. Not signed:
    /// the channel authenticates and orders it.
    Request {
        /// Chosen by the sender, strictly increasing within a session, echoed in the response.
        id: u64,
        /// What is asked.
        body: NodeRequest,
    },
    /// An event on one of the deployer's direct connections (deployer sessions only; it is
    /// routed in the session's namespace).
    Event(Event),
    /// An event forwarded by a peer node, in the namespace it was routed in (peer links only;
    /// accepted only if that namespace routes the event's connection and direction from this
    /// peer's identity).
    Forward {
        /// The application namespace.
        app: AppId,
        /// The event.
        event: Event,
    },
    // New variants go last: a variant's position is its wire encoding.
}

/// Who opened a link to a node. The link's handshake already proved the peer node's identity
/// (peer links) or the node's identity to the deployer (deployer links).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Hello {
    /// A deployer's management session.
    Deployer {
        /// Informational client version string.
        client: String,
        /// The deployer's public identity.
        key: DeployerKey,
        /// The application the session manages: with `key`, it names the session's namespace
        /// ([`AppId::of`]).
        app: String,
        /// The session proof: `key`'s signature over [`crate::auth::session_message`] (this
        /// link's handshake hash, the node's identity, `app`).
        signature: Signature,
    },
    /// Another node agent forwarding events.
    Peer {
        /// The forwarding node's name (informational: its identity key is what counts).
        node: String,
    },
}

/// Management requests a deployer sends to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NodeRequest {
    /// Starts uploading a module binary of `size` bytes under `module`.
    LoadBegin {
        /// Module name, unique on the node.
        module: String,
        /// Total binary size in bytes.
        size: u64,
    },
    /// The next piece of the binary.
    LoadChunk {
        /// Module name given in `LoadBegin`.
        module: String,
        /// Up to 256 KiB of the binary.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Completes the upload: the node measures and starts the module.
    LoadEnd {
        /// Module name given in `LoadBegin`.
        module: String,
    },
    /// Attest a loaded module and start key agreement.
    Attest {
        /// Module name.
        module: String,
        /// Fresh challenge.
        challenge: [u8; 32],
        /// The deployer's ephemeral X25519 public key.
        deployer_pk: [u8; 32],
    },
    /// Forward a sealed command to a module and return its sealed reply.
    Command {
        /// Module name.
        module: String,
        /// The sealed command.
        sealed: Sealed,
    },
    /// Install a route: events with this connection and direction go to `to`, and, when
    /// they come over a peer link, are accepted only from the peer `from` names.
    Route {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Direction,
        /// Destination.
        to: Endpoint,
        /// Where these events come from.
        from: Origin,
    },
    /// Report node, module and connection status.
    Status,
    /// Stop a module process and forget it.
    Unload {
        /// Module name.
        module: String,
    },
    /// Stop the node agent (only honoured by nodes started for local development).
    Shutdown,
    // New variants go last: a variant's position is its wire encoding.
    /// Sets the complete list of periodic triggers of a module, replacing the previous list
    /// (an empty list removes them all). Idempotent: a trigger that is already installed with
    /// the same period keeps its phase. Triggers are removed with the module.
    Periodic {
        /// Module name.
        module: String,
        /// The triggers, at most one per entry.
        triggers: Vec<Trigger>,
    },
    /// `LoadEnd` for a driver module: the node's TEE layer grants `devices` exclusively to
    /// the module before it starts, and its measurement covers them
    /// (`Measurement::with_devices`). Refused if a device is unknown or held by another
    /// module (a later instance of the same module in the same namespace takes it over).
    LoadDriver {
        /// Module name given in `LoadBegin`.
        module: String,
        /// Names of devices in the node's configuration.
        devices: Vec<String>,
    },
    /// Removes the route for `(conn, dir)` in the session's namespace (the connection was
    /// revoked). Idempotent: removing a route that is not there is `Done` too.
    Unroute {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Direction,
    },
    /// The credit the session's namespace holds for its own events on a direct connection
    /// (`Origin::Deployer` routes): a deployer asks before it sends, so that a full window is
    /// reported instead of the event dropped ([`crate::flow`]). Answered by
    /// [`NodeResponse::Window`]. Sessions come and go; the node keeps the window per
    /// namespace, connection and direction.
    Window {
        /// Connection.
        conn: ConnId,
        /// Direction of the deployer's events.
        dir: Direction,
    },
    /// Loads `module` from a binary the node already holds for this session's deployer (it
    /// was uploaded before, in any of the deployer's namespaces, and a module directory on
    /// the node still holds it): the node starts it as `LoadEnd` would, answering [`NodeResponse::Loaded`]
    /// with the measurement it took when it stored those bytes. Answered
    /// [`NodeErrorKind::NotStored`] when it holds no binary of that measurement for this
    /// deployer; the deployer then uploads it (`LoadBegin`, `LoadChunk`, `LoadEnd`). For
    /// plain modules only: a driver is loaded with `LoadDriver`.
    LoadStored {
        /// Module name, unique on the node.
        module: String,
        /// SHA-256 of the binary.
        measurement: [u8; 32],
    },
    /// Reads module `module`'s log (its stderr, as the node keeps it: `module.log`, rotated at
    /// 1 MiB) from byte `from`, answered [`NodeResponse::Logs`] with at most
    /// [`NodeRequest::LOG_CHUNK`] bytes. Also for a module that crashed or was unloaded: its
    /// log stays. Only the asking session's namespace is read.
    Logs {
        /// Module name on the node.
        module: String,
        /// Where to start in the current log file.
        from: u64,
    },
    /// Relays [`ToModule::Trace`] to module `module` (of the session's namespace), answered
    /// [`NodeResponse::Trace`].
    Trace {
        /// Module name on the node.
        module: String,
        /// The last entry the asker saw (0: none).
        after: u64,
    },
    /// How `module` of the session's namespace runs, as [`NodeRequest::Status`] reports it
    /// (its exit status and log tail once its process ended) but without asking the module
    /// for its counters (`stats` is `None`), so it is answered at once even while the module
    /// is busy: a deployer waiting for a reply asks it to learn that the module died.
    /// Answered [`NodeResponse::Module`], or [`NodeErrorKind::UnknownModule`].
    Module {
        /// Module name.
        module: String,
    },
}

impl NodeRequest {
    /// The most bytes of a module's log one [`NodeResponse::Logs`] carries.
    pub const LOG_CHUNK: usize = 64 << 10;
}

/// One periodic trigger: the node sends [`ToModule::Tick`] for `entry` every `period_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// A periodic entry the module declares ([`Interface::periodic`]).
    pub entry: String,
    /// The period in milliseconds (the node refuses less than [`Trigger::MIN_PERIOD_MS`] and
    /// more than [`Trigger::MAX_PERIOD_MS`]).
    pub period_ms: u64,
}

impl Trigger {
    /// The shortest period a node accepts, in milliseconds.
    pub const MIN_PERIOD_MS: u64 = 10;
    /// The longest period a node accepts, in milliseconds: 365 days (a timer's deadline
    /// must stay representable, whatever a deployer asks).
    pub const MAX_PERIOD_MS: u64 = 365 * 24 * 3600 * 1000;
}

/// Where a node forwards an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Endpoint {
    /// A module on this node.
    Module(String),
    /// Another node, by address, over a peer link that pins its identity.
    Node {
        /// `host:port`.
        address: String,
        /// The node's identity key: the link's handshake must prove it.
        identity: NodeKey,
    },
    /// The deployer session that last sent an event on this connection.
    Deployer,
}

/// Where the events of a route come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Origin {
    /// A module on this node.
    Local,
    /// A peer node with this identity: `Forward`s of this route are accepted only on a link
    /// whose handshake proved it, and a route naming it admits that node's links.
    Peer(NodeKey),
    /// A deployer session of the namespace (a direct connection).
    Deployer,
}

/// Successful answers to [`NodeRequest`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NodeResponse {
    /// Done, nothing to report.
    Done,
    /// A module was stored, measured and started.
    Loaded {
        /// SHA-256 of the exact bytes the node runs.
        measurement: [u8; 32],
    },
    /// Attestation evidence for a module, with its key-agreement public key.
    Evidence {
        /// The module's ephemeral X25519 public key.
        public_key: [u8; 32],
        /// Key confirmation (see [`FromModule::Attested`]).
        confirm: Vec<u8>,
        /// TEE kind that produced the evidence (`"sgx"`, ...).
        tee: String,
        /// Backend-specific evidence, appraised by `aex-tee`.
        #[serde(with = "serde_bytes")]
        evidence: Vec<u8>,
    },
    /// A module's sealed answer to a command.
    CommandReply(Sealed),
    /// Node status.
    Status(NodeStatus),
    /// The answer to [`NodeRequest::Window`].
    Window {
        /// Bytes the deployer may still send (it may send one event while this is above
        /// zero; it is below zero after an event larger than what was left).
        credit: i64,
        /// Bytes in flight: sent, and not yet taken in by the module.
        in_flight: u64,
    },
    /// The answer to [`NodeRequest::Logs`].
    Logs {
        /// Where `bytes` start in the log file: the asked `from`, or 0 if the file is now
        /// shorter than that (it was rotated: what the asker missed is in `module.log.1`).
        from: u64,
        /// The log's bytes from there, at most [`NodeRequest::LOG_CHUNK`] (module output:
        /// not necessarily UTF-8, and not to be trusted as terminal input).
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// The file's length when it was read.
        size: u64,
    },
    /// The answer to [`NodeRequest::Trace`], as the module gave it.
    Trace(crate::TraceReport),
    /// The answer to [`NodeRequest::Module`] (boxed: it is large beside the other answers;
    /// the box does not show on the wire).
    Module(Box<ModuleStatus>),
}

/// Node agent → deployer or peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FromNode {
    /// Answer to [`ToNode::Request`] with the same id.
    Response {
        /// The request's id.
        id: u64,
        /// The outcome.
        result: Result<NodeResponse, NodeError>,
    },
    /// An event for the deployer (a reply on a direct connection).
    Event(Event),
    // New variants go last: a variant's position is its wire encoding.
    /// Credit for events of namespace `app` ([`crate::flow`]): on a peer link, sent back by
    /// the node the events were forwarded to; the only thing a node sends on a link another
    /// node opened.
    Credit {
        /// The namespace the events were routed in.
        app: AppId,
        /// The credit.
        credit: Credit,
    },
    /// The node is still working on request `id`: a module it waits for is making progress
    /// (storing its sealed state, calling its platform counter). A deployer restarts its
    /// timeout on it, so that a limit bounds a node's silence, not the size of the work (a
    /// persistent module restoring a 64 MiB state seals and stores all of it before it
    /// answers). Sent at most a few times per timeout, never instead of the answer.
    Working {
        /// The request in progress.
        id: u64,
    },
}

/// A node refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeError {
    /// Classification.
    pub kind: NodeErrorKind,
    /// Human-readable detail (never contains secrets: the node holds none).
    pub message: String,
}

impl core::fmt::Display for NodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

/// Classes of node errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NodeErrorKind {
    /// No module of that name on this node.
    UnknownModule,
    /// A module of that name already exists.
    AlreadyExists,
    /// The request is malformed or out of order.
    BadRequest,
    /// The module process is not running or did not answer in time.
    ModuleUnavailable,
    /// Storing or starting a module failed on the node.
    Io,
    /// The node refuses this request.
    Refused,
    /// The session's deployer key is not admitted on this node (its proof was valid): every
    /// request of the session gets this, and the message says how the operator admits it.
    /// Its own kind so that a deployer can tell the user what to do without reading the
    /// message.
    NotAdmitted,
    /// `LoadStored` named a binary the node does not hold for this deployer: upload it.
    NotStored,
}

/// What a node reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's name (from its configuration).
    pub name: String,
    /// TEE kind of its backend.
    pub tee: String,
    /// Public platform identity of the (simulated) attestation key.
    pub platform_key: Vec<u8>,
    /// aex version of the node agent.
    pub version: String,
    /// Modules loaded on the node, in the asking session's namespace only.
    pub modules: Vec<ModuleStatus>,
    /// Persistent links to other nodes.
    pub peers: Vec<PeerStatus>,
    /// Frames or events the node could not route or decode.
    pub dropped: u64,
    /// Deployer sessions and requests the node refused: unadmitted keys, bad proofs or
    /// signatures, replayed request ids.
    pub refused: u64,
}

/// One module on a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleStatus {
    /// Module name.
    pub name: String,
    /// Measurement the node took when loading it.
    pub measurement: [u8; 32],
    /// OS process id, if started.
    pub pid: Option<u32>,
    /// Whether the process is alive.
    pub running: bool,
    /// How the process ended, if it did.
    pub exit: Option<String>,
    /// The module runtime's own counters (reported by the module; a lying node can alter them).
    pub stats: Option<ModuleStats>,
    /// Persistent modules: restarts and the state they run on (reported by the node, which
    /// may lie; what it cannot do is make a module run on an old state).
    #[serde(default)]
    pub persistence: Option<PersistenceStatus>,
    /// Once the process ended: the last lines of its log (at most [`LOG_TAIL_LINES`] lines of
    /// at most [`LOG_TAIL_LINE`] bytes each), so that its owner reads why it ended without
    /// access to the node's disk. Empty while it runs. Appended last.
    #[serde(default)]
    pub log_tail: Vec<String>,
}

/// How many lines of a module's log a node reports once its process ended.
pub const LOG_TAIL_LINES: usize = 10;

/// The longest line of a module's log a node reports (longer ones are cut).
pub const LOG_TAIL_LINE: usize = 240;

/// What a node says of a persistent module's sealed state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistenceStatus {
    /// How many times the node restarted the module's process on its own.
    pub restarts: u32,
    /// The version of the newest blob the node stored (0: none yet).
    pub stored: u64,
    /// How the last restart went: resumed from a version, or refused (with the runtime's
    /// reason, e.g. "rollback detected"). `None` before the first restart.
    pub resume: Option<crate::persist::ResumeOutcome>,
    /// Why the node could not store the module's last blob (a full disk, ...), until it
    /// stores one again: meanwhile the module holds its outputs and tries again.
    #[serde(default)]
    pub store_error: Option<String>,
}

/// One persistent link to another node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// `host:port` of the peer.
    pub address: String,
    /// The identity the link pins.
    pub identity: NodeKey,
    /// Whether the TCP connection is currently up.
    pub connected: bool,
    /// Events forwarded to it.
    pub forwarded: u64,
}

#[cfg(test)]
mod tests;
