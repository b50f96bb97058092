//! Benchmark module `source`: emits `count` events of `size` bytes on its `data` output as
//! fast as the runtime lets it.
//!
//! The `start` entry point records the run and returns; a thread of the module then has it
//! emit the events with `ctx.emit`, [`BURST`] per call into the module, until the run is over.
//! There is no application-level pacing: the runtime's per-connection credit (`aex-proto`'s
//! `flow`) makes `ctx.emit` wait while the connection's window is full, so the source goes
//! exactly as fast as its receiver takes events in, and nothing is dropped on the way. Emitting
//! from a thread rather than in `start` itself keeps the `start` call short (a long stream
//! would outlast the deployer's wait for its answer) and lets the module answer commands
//! between bursts.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use aex::{Context, Handle};
use serde::{Deserialize, Serialize};

/// Events emitted by one call into the module, before it serves anything else.
const BURST: u64 = 1024;

/// Parameters of a run; missing fields take their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StartArgs {
    /// Events to emit in total.
    count: u64,
    /// Bytes per event.
    size: usize,
}

/// The current run.
#[derive(Default)]
struct Source {
    /// Events of the run not emitted yet.
    remaining: u64,
    /// Events of the run emitted so far.
    sent: u64,
    payload: Vec<u8>,
    /// Whether the emitting thread runs (it outlives a run only to start the next).
    pumping: bool,
    /// Why the run stopped early, if it did.
    error: Option<String>,
}

/// What `aex status` shows.
#[derive(Serialize)]
struct Status<'a> {
    sent: u64,
    remaining: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[aex::module(outputs(data))]
impl Source {
    /// Starts a run (replacing the current one, if any); the events follow from the module's
    /// emitting thread.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<(), String> {
        *self = Source {
            remaining: args.count,
            payload: vec![0xa5; args.size],
            pumping: self.pumping,
            ..Source::default()
        };
        if self.pumping || self.remaining == 0 {
            return Ok(());
        }
        let handle = ctx.handle::<Source>();
        std::thread::Builder::new()
            .name("source-emit".into())
            .spawn(move || pump(&handle))
            .map_err(|e| format!("cannot start the emitting thread: {e}"))?;
        self.pumping = true;
        Ok(())
    }

    /// Events sent and left in the current run, and why it stopped early if it did.
    #[entry]
    fn status(&mut self) -> Status<'_> {
        Status {
            sent: self.sent,
            remaining: self.remaining,
            error: self.error.as_deref(),
        }
    }
}

/// The emitting thread: bursts until the run is over, or the module stops serving calls
/// (retired or shutting down).
fn pump(handle: &Handle<Source>) {
    while let Ok(true) = handle.call(|source: &mut Source, ctx| source.burst(ctx)) {}
}

impl Source {
    /// Emits up to [`BURST`] events of the run; whether events remain. `false` ends the
    /// emitting thread.
    fn burst(&mut self, ctx: &mut Context) -> bool {
        for _ in 0..self.remaining.min(BURST) {
            match ctx.emit(Self::DATA, &self.payload) {
                Ok(()) => {
                    self.remaining -= 1;
                    self.sent += 1;
                }
                // Too much arrived while the emit waited: the runtime handles it once this
                // call returns, and the next burst sends this event again.
                Err(aex::Error::Overloaded) => break,
                Err(e) => {
                    // Typically the window stayed full for the whole emit timeout (its
                    // receiver takes nothing in); until credit comes, later emits fail at
                    // once. Stop the run, and say so, rather than fail at every event left.
                    eprintln!(
                        "source: output `data`: {e}; run stopped with {} of {} events sent",
                        self.sent,
                        self.sent + self.remaining
                    );
                    self.error = Some(e.to_string());
                    self.remaining = 0;
                    break;
                }
            }
        }
        self.pumping = self.remaining > 0;
        self.pumping
    }
}

aex::main!(Source);
