//! The aex module SDK: write small event-driven modules that run in TEEs.
//!
//! A module is an ordinary Rust binary crate. Its state is a plain struct; an `impl` block
//! marked with [`#[aex::module]`](macro@module) declares its ports:
//!
//! * **outputs** emit events (`outputs(..)` in the attribute; `ctx.emit(Self::NAME, ..)`),
//! * **inputs** receive events (`#[input]` methods),
//! * **requests** send a request and wait for the reply (`requests(..)`; `ctx.request(..)`),
//! * **handlers** answer requests (`#[handler]` methods; the return value is the reply),
//! * **entry points** are called by the deployer (`#[entry]` methods; `aex call`),
//! * **periodic entry points** are triggered by the node on a period the descriptor sets
//!   (`#[periodic]` methods; `[[periodic]]` in the descriptor),
//! * **deadline handlers** run when an input stays silent for too long
//!   (`#[deadline(input = .., every = "..")]` methods).
//!
//! The deployer attests each module, gives it one key per connection, and wires outputs to
//! inputs and requests to handlers. Module code never sees a key, a counter or a forged
//! event: the runtime ([`aex_runtime`]) checks every event before calling a method.
//!
//! ```
//! use aex::Context;
//!
//! /// Counts button presses and reports every tenth.
//! #[derive(Default)]
//! struct Counter {
//!     presses: u64,
//! }
//!
//! #[aex::module(outputs(milestone))]
//! impl Counter {
//!     #[input]
//!     fn press(&mut self, ctx: &mut Context, _event: &[u8]) {
//!         self.presses += 1;
//!         if self.presses % 10 == 0 {
//!             // An input has nobody to tell: log what was not sent (stderr is the module's log).
//!             if let Err(e) = ctx.emit_json(Self::MILESTONE, &self.presses) {
//!                 eprintln!("output `milestone`: {e}");
//!             }
//!         }
//!     }
//!
//!     #[handler]
//!     fn presses(&mut self) -> u64 {
//!         self.presses
//!     }
//!
//!     #[entry]
//!     fn reset(&mut self, to: Option<u64>) {
//!         self.presses = to.unwrap_or(0);
//!     }
//! }
//!
//! aex::main!(Counter);
//! # // The doc test only compiles the module; `main` would serve a node on stdin.
//! # use aex::Module as _;
//! # assert_eq!(Counter::interface().inputs, ["press"]);
//! ```
//!
//! # Port methods
//!
//! A port method takes `&mut self`, then optionally `ctx: &mut Context`, then optionally one
//! payload argument, and returns:
//!
//! | shape | argument | result |
//! |---|---|---|
//! | `&[u8]` / `Vec<u8>` | the raw payload bytes | the raw bytes |
//! | nothing or `()` | — | empty bytes |
//! | any other `T` (serde) | decoded from JSON | encoded as JSON |
//! | `Result<T, E: Display>` | — | `T` as above, or a failure with `E`'s message |
//!
//! An empty payload decodes as JSON `null`, then as `{}`: `aex call m entry` with no argument
//! reaches `()`, `Option<T>` (`None`) and structs whose fields all have `#[serde(default)]`.
//! Inputs return nothing (or `Result<(), E>`, whose error is logged without its message, which
//! could quote the payload): an event has no reply.
//! An entry point whose argument does not decode fails with a message naming the expected
//! type. An input or handler whose argument does not decode is logged to stderr (without the
//! details, which could quote the payload: the node reads stderr) and a handler sends no
//! reply, so the requester times out.
//!
//! Outputs and requests become associated constants in SCREAMING_CASE: `outputs(fan_speed)`
//! gives `Self::FAN_SPEED: aex::Output`, `requests(fetch)` gives `Self::FETCH: aex::Request`.
//! All port names of a module are distinct.
//!
//! # Periodic entry points and deadlines
//!
//! ```
//! use aex::Context;
//!
//! #[derive(Default)]
//! struct Watchdog {
//!     beats: u64,
//! }
//!
//! #[aex::module(outputs(beat, alarm))]
//! impl Watchdog {
//!     /// Run by the node every `every` of the descriptor's `[[periodic]]` entry.
//!     #[periodic]
//!     fn tick(&mut self, ctx: &mut Context) {
//!         self.beats += 1;
//!         if let Err(e) = ctx.emit_json(Self::BEAT, &self.beats) {
//!             eprintln!("output `beat`: {e}");
//!         }
//!     }
//!
//!     #[input]
//!     fn heartbeat(&mut self, _beat: u64) {}
//!
//!     /// Run when `heartbeat` accepts no authentic event for 2 s.
//!     #[deadline(input = heartbeat, every = "2s")]
//!     fn silent(&mut self, ctx: &mut Context) {
//!         if let Err(e) = ctx.emit(Self::ALARM, b"no heartbeat for 2 s") {
//!             eprintln!("output `alarm`: {e}");
//!         }
//!     }
//! }
//! # use aex::Module as _;
//! # assert_eq!(Watchdog::interface().periodic, ["tick"]);
//! # assert_eq!(Watchdog::deadlines()[0].input(), "heartbeat");
//! ```
//!
//! Both take `&mut self` and optionally `ctx: &mut Context`, no payload, and return nothing
//! (or `Result<(), E>`, whose error is logged without its message). Durations are a whole
//! number and a unit: `500ms`, `5s`, `1m`, `1h`; at least 10 ms.
//!
//! * A **periodic** entry runs when the node says so (`Tick`). The trigger is *untrusted*: the
//!   node may delay it, drop it or send extra ones, so a tick proves nothing about time or
//!   about the deployer. It is never an authentic event by itself; what the entry emits is.
//!   A tick runs only an entry declared `#[periodic]`, only once the module is attested and
//!   armed (keyed, called, restored or started by the deployer: it never runs on a state about
//!   to be restored), and a tick that waited behind a long call is dropped rather than run
//!   late in a burst.
//! * A **deadline** is measured inside the module, on its own monotonic clock, from when the
//!   input's first connection is keyed; only an authentic, accepted event on that input
//!   restarts it. When it expires the runtime calls the handler, once per missed period (a
//!   module busy for several periods gets one call, not a burst). Events the handler emits
//!   are ordinary authentic events. The node cannot fake freshness, but it schedules the
//!   process, so it can delay an alarm (or stop the module altogether, which its peers'
//!   deadlines then notice).
//!
//! # Semantics
//!
//! * [`Context::emit`] sends one event per connection bound to the output (nothing if none is
//!   bound yet), each once its receiver has room for it: every connection has a window of
//!   bytes in flight, which the receiving runtime grants back as it takes events in (flow
//!   control). While a window is full, `emit` waits, handling nothing else, at most
//!   [`Context::emit_timeout`] (5 s by default), then fails with [`Error::WindowFull`]
//!   naming the connections that got nothing (the others got the event). Until credit comes,
//!   later emits on those connections fail at once. [`Context::try_emit`] never waits: it
//!   fails with [`Error::WouldBlock`] instead. `emit_json` and `try_emit_json` encode a value
//!   as JSON first.
//! * An emit's `Result` must be used. An entry point or a handler can return the error (`?`
//!   in a method returning `Result<_, aex::Error>`): its caller is told. An input, a periodic
//!   entry or a deadline handler has nobody to tell, and the runtime logs its error without
//!   the message: log it yourself (stderr is the module's log, which the node reads;
//!   `WindowFull` and `WouldBlock` name the output and its connections, never the payload) or
//!   count it in the module's state.
//! * [`Context::request`] blocks until the handler's reply (default timeout 5 s, see
//!   [`Context::request_timeout`]). Events and commands arriving meanwhile are handled after
//!   the current method returns. The reply travels on the same connection, authenticated.
//! * [`Context::read_device`] and [`Context::write_device`] block the same way, until the
//!   node's TEE layer answers (see [Devices](#devices-secure-io)).
//! * Methods run one at a time, on one thread; module state needs no locking.
//!
//! # Devices (secure I/O)
//!
//! A node declares its devices (buttons, LEDs, valves, soil probes) and its TEE layer grants
//! each to exactly one *driver* module instance. The driver reaches it with
//! [`Context::read_device`] (a digital input gives `0`/`1`, an analog one `0..=max`) and
//! [`Context::write_device`] (a digital output: `0` off, `1` on); every other module gets
//! [`Error::Device`]. Other modules reach the device only through the driver's authentic
//! events, so nothing else can fake a reading or drive the actuator.
//!
//! ```
//! use aex::{Context, Error};
//!
//! /// Drives the irrigation valve, the node's `valve` device.
//! #[derive(Default)]
//! struct Valve {
//!     open: bool,
//! }
//!
//! #[aex::module]
//! impl Valve {
//!     /// Opens (`true`) or closes (`false`) the valve on an authentic command.
//!     #[input]
//!     fn command(&mut self, ctx: &mut Context, open: bool) -> Result<(), Error> {
//!         // An error is logged by the runtime; the valve keeps its last state.
//!         ctx.write_device("valve", u32::from(open))?;
//!         self.open = open;
//!         Ok(())
//!     }
//!
//!     /// Whether the valve is open, as the device itself says.
//!     #[handler]
//!     fn is_open(&mut self, ctx: &mut Context) -> Result<bool, Error> {
//!         Ok(ctx.read_device("valve")? == 1)
//!     }
//! }
//! # use aex::Module as _;
//! # assert_eq!(Valve::interface().inputs, ["command"]);
//! ```
//!
//! An access blocks like a request: events arriving meanwhile are handled after the method
//! returns, and it waits at most the request timeout (default 5 s). A disabled or retired
//! instance gets [`Error::Disabled`] or [`Error::Retired`] without asking the node.
//!
//! *Trust:* module code runs only once the deployer attested the module, and the grant is part
//! of what it attested, so only the attested driver code touches the device. In simulation the
//! TEE layer is the node process: the device's answer comes through the node, not
//! authenticated, and a compromised node can refuse or falsify it. The runtime never logs a
//! device's value.
//!
//! # State transfer (`aex update`)
//!
//! When a module moves to another node or gets new code, the deployer starts and attests the
//! new instance, asks the old one to *retire* (it snapshots its state and drops every
//! connection key, so no later event can change it), restores the snapshot into the new
//! instance before any connection is keyed there, and re-keys the connections. Both hops are
//! sealed under the module keys of the attested instances.
//!
//! * A state type that is `Serialize + Deserialize` (serde) is transferred automatically, as
//!   JSON: fields added later with `#[serde(default)]` restore from an older snapshot.
//! * Otherwise, a pair of methods does it: `#[save] fn save(&self) -> Vec<u8>` (or
//!   `Result<Vec<u8>, E>`) and `#[restore] fn restore(&mut self, snapshot: &[u8])` (returning
//!   nothing or `Result<(), E>`). They win over the automatic transfer.
//! * With neither, the new instance starts from `Default` and the deployer says so.
//!
//! A retired instance's own threads get [`Error::Closed`] from [`Handle::call`].
//!
//! # The module process
//!
//! [`main!`] expands to `fn main() { aex::run::<Module>() }`. Run with `--aex-describe`, the
//! binary prints its interface as JSON and exits:
//! `{"outputs":[..],"inputs":[..],"requests":[..],"handlers":[..],"entries":[..],"periodic":[..],"persistent":bool}`. Otherwise
//! it serves its node agent on stdin/stdout and logs to stderr. It reads one environment
//! variable, `AEX_MEASUREMENT` (set by the node).
//!
//! # Crate features
//!
//! * `ring` (default): events sealed with `ring`'s AEADs.
//! * `tls`: attested TLS, [`tls`] (the `aex-tls` crate): the module serves TLS 1.3 with a key
//!   made inside it and a certificate carrying its attestation evidence (docs/PROTOCOL.md
//!   §11).
//! * `metering`: functions that outside clients invoke, measured inside the module with signed
//!   receipts (`aex::metering`, the crate `aex-metering`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub use aex_macros::module;
pub use aex_runtime::{
    describe_json, payload, run, Context, Deadline, Error, Handle, Interface, Module, Output,
    PortError, PortKind, Request, DESCRIBE_FLAG, MEASUREMENT_ENV,
};

/// Functions with trusted metering: [`metering::Meter`] runs a module's functions, measures
/// each invocation and signs a receipt (feature `metering`).
#[cfg(feature = "metering")]
pub use aex_metering as metering;
/// Attested TLS (feature `tls`): see the `aex-tls` crate.
#[cfg(feature = "tls")]
pub use aex_tls as tls;

/// Items the code `#[aex::module]` generates refers to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use aex_runtime::transfer::{NotTransferable, Probe, ViaSerde};
    pub use serde::de::DeserializeOwned;
    pub use serde::Serialize;
}

/// Defines the module binary's `main`: `aex::main!(Counter);` serves module `Counter`.
#[macro_export]
macro_rules! main {
    ($module:ty) => {
        fn main() {
            $crate::run::<$module>()
        }
    };
}
