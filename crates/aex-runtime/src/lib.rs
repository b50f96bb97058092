//! The trusted aex module runtime: the code every module links, and the whole of its trusted
//! computing base besides the module's own code.
//!
//! A module is an OS process started by the node agent (inside the node's TEE backend), with
//! stdin and stdout as its only link. The node is untrusted: it routes ciphertexts and can
//! drop or delay them, never forge them. This crate turns that link into calls of the
//! module's methods, and checks on the way in that every call is authentic.
//!
//! ```text
//!  deployer ──(sealed commands)──┐                        ┌── stderr: logs only
//!  peers ─────(sealed events)────┤ node agent ──stdin──▶ runtime ──▶ module methods
//!                                ├──────────◀──stdout─── runtime ◀── ctx.emit / request,
//!  devices ◀──(TEE layer grant)──┘                                   ctx.read/write_device
//! ```
//!
//! # Design overview
//!
//! * **One process, one key agreement.** The first `Attest` derives the module key with
//!   [`aex_crypto::ModuleKeyAgreement`], bound to the measurement in `AEX_MEASUREMENT`; later
//!   ones are refused. On symmetric TEEs the key the platform provisioned only authenticates
//!   that exchange (a MAC over both public keys), and the command key comes from it. Commands
//!   (connection keys, entry-point calls) open only under that key with a fresh counter.
//! * **Events are checked before module code runs.** Each connection's role fixes which
//!   direction and kind it receives; anything else, and anything stale or forged, is counted
//!   and dropped (see `ModuleStats`).
//! * **Blocking, single-threaded module code.** The main thread reads and decodes frames
//!   itself until it needs a reader thread (to wait with a timeout, or to be woken by a module
//!   thread); module code runs on the main thread, one call at a time. A request blocks until its reply or a
//!   timeout; whatever arrives meanwhile waits its turn. A handler's reply is sealed only
//!   under the key its request arrived under: one whose connection was re-keyed while it
//!   waited is dropped, never sent to the new requester.
//! * **Flow control, not loss** (`flow.rs`). Each connection carries at most a window of
//!   bytes its receiver has not taken in. The runtime grants credit for what it takes out of
//!   its inbox, before module code runs on it (so modules that wait on each other keep
//!   flowing), and stops sending on a connection whose credit is spent: [`Context::emit`]
//!   waits for credit up to a bound and then fails naming the connections it could not reach;
//!   [`Context::try_emit`] does not wait. Credit travels unauthenticated through the nodes: a
//!   node can withhold it (delay) or invent it (make the module send what the node then
//!   drops), as it can delay or drop events anyway.
//! * **Input is bounded in bytes** (`backlog.rs`): the windows the runtime grants fit its
//!   inbox (4 MiB, more only past 64 receiving connections), and the reader stops reading
//!   stdin when the main loop falls that far behind; at most 8 MiB wait behind a blocking
//!   call; events that can never be accepted are refused on arrival instead.
//! * **No module code on placeholder state.** After attestation the module is *armed* by its
//!   first authenticated `Restore`, `SetKey`, `Call` or `Start`; before, no tick, deadline or
//!   entry point runs on its fresh `Default` state, which may be waiting for a snapshot. A
//!   retired instance takes no key, call, start or state.
//! * **Persistent modules outlive their process** (`persist.rs`, docs/PROTOCOL.md §9). A
//!   module declared `#[aex::module(persistent)]` seals its state, keys and counters under
//!   its platform's sealing key into blobs its node stores, binds each to a platform counter,
//!   and releases what module code emitted (events, replies, command replies) only once the
//!   state that made it is committed. A restarted process resumes only from the blob the
//!   counter names: older blobs, another platform's, or a second process's are refused.
//! * **Payloads.** Raw bytes, or JSON for serde types ([`payload`]).
//! * **Periodic entries run on an untrusted trigger.** The node's `Tick` carries no data and
//!   runs only an entry the module declares periodic, once armed; a tick that waited behind a
//!   long call is dropped, not bunched. The node may delay, drop or invent ticks: a periodic
//!   entry must not treat a tick as evidence of anything.
//! * **Deadlines run on the module's own clock.** When an input declared with a [`Deadline`]
//!   accepts no authentic event for a period (measured with the monotonic clock, from when its
//!   connection is first keyed), the runtime calls the module's deadline handler, once per
//!   missed period; whatever it emits is an ordinary authentic event. The node can delay the
//!   call (it schedules the process) but cannot prevent it by sending other traffic.
//! * **Devices only through the TEE layer's grant.** A driver module reads and drives its
//!   devices with [`Context::read_device`] and [`Context::write_device`]: each access goes to
//!   the node's TEE layer, which performs it only for the one module instance it granted the
//!   device to (the grant is covered by the measurement the deployer attests). Module code
//!   runs only once attested and armed (authentic events and commands, ticks, deadlines), so a
//!   driver touches its device only after the deployer attested it; a disabled or retired
//!   instance sends no access at all. In simulation the TEE layer is the node process: the
//!   answer comes through it, unauthenticated. The runtime never logs a device's value.
//!
//! What this crate does *not* do: choose connections or keys (the deployer does), route events
//! (the node does), or give module code access to keys or counters.
//!
//! Module authors use the `aex` crate, whose `#[aex::module]` macro implements [`Module`].
//!
//! # Layout
//!
//! `serve.rs` is the main loop; it calls module code through [`Module`] (`module.rs`) with a
//! [`Context`] (`context.rs`) that borrows the runtime's `Core` (`core.rs`: keys, connections
//! (`conn/`, with their windows from `flow.rs`), the link, the lifecycle and the one
//! blocking wait). `Core`'s methods are split
//! by concept: attestation in `attest.rs`, device accesses in `device.rs`; the snapshots it
//! keeps for a state transfer are [`transfer`]'s types, deadlines `deadline.rs`'s. The
//! stdin/stdout link, read on the main loop or by a reader thread, is `link.rs`, its byte bounds `backlog.rs`;
//! [`Handle`] (`handle.rs`) lets module threads queue calls on it; port handles are
//! `port.rs`. A persistent module's sealing, output commit and resumption are `persist.rs`
//! (more `Core` methods), over the data it holds, `sealing.rs`.
//!
//! The modules import each other without a circle but for one deliberate pair, **`core` ↔
//! `link`**: the `Core` owns the `Link`, and the link carries the calls of module-owned threads
//! (`LocalCall`), which run on the `Core`. (Check with `scripts/use-edges.py
//! crates/aex-runtime`.)
//!
//! # Environment
//!
//! * `AEX_MEASUREMENT`: 64 hex characters, the measurement the node took of this binary. If
//!   missing or invalid, all zeros: a wrong value only makes the module key differ from the
//!   deployer's, which the deployer detects through key confirmation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

/// Logs a line to stderr, the only place a module's runtime writes text. The node reads it:
/// never pass keys, payloads, device values or module messages.
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log_line(format_args!($($arg)*))
    };
}

#[expect(
    clippy::disallowed_macros,
    reason = "the runtime's log writer: stderr is the module's log, which the node keeps"
)]
fn log_line(line: std::fmt::Arguments<'_>) {
    #[cfg(test)]
    tests::LOGGED.with(|logged| logged.borrow_mut().push(line.to_string()));
    eprintln!("aex-runtime: {line}");
}

mod adopt;
mod attest;
mod backlog;
mod clock;
mod conn;
mod context;
mod core;
mod deadline;
mod device;
mod error;
mod evidence;
mod failure;
mod flow;
mod handle;
mod link;
mod module;
pub mod payload;
mod persist;
mod port;
mod purpose;
mod sealing;
mod serve;
#[cfg(test)]
mod tests;
mod trace;
#[doc(hidden)]
pub mod transfer;

use std::io::{self, Write};

use aex_crypto::Measurement;

pub use aex_proto::Interface;
pub use context::Context;
pub use deadline::Deadline;
pub use error::Error;
pub use handle::Handle;
pub use module::{Module, PortError, PortKind};
pub use port::{Output, Request};

/// The command-line flag that makes a module print its interface and exit.
pub const DESCRIBE_FLAG: &str = "--aex-describe";

/// The environment variable holding the module's measurement (64 hex characters).
pub const MEASUREMENT_ENV: &str = "AEX_MEASUREMENT";

/// Runs module `M` as this process; called from the module's `main`. Never returns.
///
/// With [`DESCRIBE_FLAG`] as first argument, prints `M`'s interface as JSON and exits 0.
/// Otherwise serves the node on stdin/stdout and exits 0 when stdin ends or the node asks.
pub fn run<M: Module>() -> ! {
    run_after::<M>(|| {})
}

/// [`run`], calling `before_serve` once the link holds its own duplicates of stdin and stdout
/// and before any module code runs (not for [`DESCRIBE_FLAG`]). The C ABI layer (`aex-c`)
/// points descriptor 1 at stderr there, so that a C module's `printf` cannot corrupt the link.
#[doc(hidden)]
#[expect(
    clippy::disallowed_methods,
    reason = "the module process's entry: its exit code is how the node learns how it ended"
)]
pub fn run_after<M: Module>(before_serve: fn()) -> ! {
    let code = if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == DESCRIBE_FLAG)
    {
        describe::<M>(&mut io::stdout().lock())
    } else {
        failure::install_panic_hook();
        let (input, output) = raw_stdio();
        before_serve();
        let out = Box::new(io::BufWriter::new(output));
        let link = link::Link::direct(input, clock::Clock::default(), out);
        serve::Runtime::<M>::new(link, measurement_from_env()).serve()
    };
    std::process::exit(code)
}

/// The process's stdin and stdout as plain files (duplicates of descriptors 0 and 1), for the
/// link's own buffers.
///
/// `std::io::Stdout` is line-buffered: a buffer handed to it that holds a `\n` byte is
/// written up to the last one, and the rest only at the next flush, so a binary frame with a
/// `\n` in it (one 64-byte event in six, nearly every 16 KiB one) cost two `write(2)`s, and
/// the node agent woke for a partial frame. `Stdin` adds a lock and a second buffer behind
/// the link's own. Falls back to them if a descriptor cannot be duplicated.
fn raw_stdio() -> (Box<dyn io::Read + Send>, Box<dyn Write>) {
    use std::os::fd::AsFd;
    let input: Box<dyn io::Read + Send> = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::stdin()),
    };
    let output: Box<dyn Write> = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::stdout()),
    };
    (input, output)
}

/// `M`'s interface as the JSON [`run`] prints for [`DESCRIBE_FLAG`]:
/// `{"outputs":[..],"inputs":[..],"requests":[..],"handlers":[..],"entries":[..],"periodic":[..],"persistent":bool}`.
pub fn describe_json<M: Module>() -> String {
    // Invariant: a struct of string lists always serializes.
    serde_json::to_string(&M::interface()).unwrap_or_default()
}

fn describe<M: Module>(out: &mut impl Write) -> i32 {
    let json = describe_json::<M>();
    match writeln!(out, "{json}").and_then(|()| out.flush()) {
        Ok(()) => 0,
        // A closed pipe is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            log!("cannot print the interface: {e}");
            1
        }
    }
}

fn measurement_from_env() -> Measurement {
    match std::env::var(MEASUREMENT_ENV) {
        Ok(hex) => Measurement::from_hex(&hex).unwrap_or_else(|e| {
            log!("{MEASUREMENT_ENV} is invalid ({e}); using zeros");
            Measurement([0; 32])
        }),
        Err(_) => {
            log!("{MEASUREMENT_ENV} is not set; using zeros");
            Measurement([0; 32])
        }
    }
}
