//! Test module `pace`: a source, a relay and an order-checking sink in one, for the
//! flow-control tests (`crates/aex-cli/tests/flow_*.rs`).
//!
//! An event's payload is `origin` (u32 BE), `seq` (u64 BE), `hops` (u32 BE), then padding.
//! * **Source**: `start {count, size}` has a thread of the module emit `count` events of this
//!   module's `origin`, numbered from 0, on `out`, as fast as the runtime lets it.
//! * **Relay**: an event on `inp` that has made fewer than `hops` hops (see `configure`) goes
//!   on to `out` with one hop more; with `hops = 0` nothing is relayed.
//! * **Sink**: every event on `inp` is checked against the last one of the same origin and
//!   hop count: it must be the next number (every event, in order, once). Events that are not
//!   relayed are *consumed*. `delay_us` makes the module sleep that long per event (a slow
//!   receiver).
//!
//! An emit that fails is counted in `emit_errors` (with the last error's text), never retried:
//! under honest nodes and live receivers, flow control never makes one fail. A source whose
//! emit found a window full for good (`WindowFull`: sent on the output's other connections)
//! goes on with its run; any other error ends it.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use aex::{Context, Handle};
use serde::{Deserialize, Serialize};

/// Events one call of the emitting thread sends before the module serves anything else.
const BURST: u64 = 256;

/// The header of every event: origin, seq, hops.
const HEADER: usize = 4 + 8 + 4;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Configure {
    /// Sleep this long per event taken in.
    delay_us: u64,
    /// Relay events that made fewer hops than this.
    hops: u32,
    /// This module's origin number, for the events it starts.
    origin: u32,
    /// How long an emit waits for credit (0: the runtime's default).
    emit_timeout_ms: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Start {
    count: u64,
    size: usize,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Report {
    sent: u64,
    remaining: u64,
    received: u64,
    consumed: u64,
    relayed: u64,
    /// Events that were not the next of their stream (missing, repeated or reordered).
    disorder: u64,
    /// Events shorter than the header.
    malformed: u64,
    emit_errors: u64,
    last_error: Option<String>,
    /// Per origin and hop count: the next number expected.
    next: Vec<(u32, u32, u64)>,
}

#[derive(Default)]
struct Pace {
    delay: Duration,
    hops: u32,
    origin: u32,
    remaining: u64,
    next_seq: u64,
    size: usize,
    pumping: bool,
    expect: BTreeMap<(u32, u32), u64>,
    report: Report,
}

#[aex::module(outputs(out))]
impl Pace {
    /// Sets the delay per event, the hops to relay, and this module's origin number.
    #[entry]
    fn configure(&mut self, ctx: &mut Context, args: Configure) {
        if args.emit_timeout_ms > 0 {
            ctx.emit_timeout(Duration::from_millis(args.emit_timeout_ms));
        }
        self.delay = Duration::from_micros(args.delay_us);
        self.hops = args.hops;
        self.origin = args.origin;
    }

    /// Starts emitting `count` events of `size` bytes (at least the header) from a thread.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: Start) -> Result<(), String> {
        self.remaining += args.count;
        self.report.remaining = self.remaining;
        self.size = args.size.max(HEADER);
        if self.pumping || self.remaining == 0 {
            return Ok(());
        }
        let handle = ctx.handle::<Pace>();
        std::thread::Builder::new()
            .name("pace-emit".into())
            .spawn(move || pump(&handle))
            .map_err(|e| format!("cannot start the emitting thread: {e}"))?;
        self.pumping = true;
        Ok(())
    }

    /// Checks, maybe relays, and counts one event.
    #[input]
    fn inp(&mut self, ctx: &mut Context, data: &[u8]) {
        self.report.received += 1;
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let Some((origin, seq, hops)) = header(data) else {
            self.report.malformed += 1;
            return;
        };
        let next = self.expect.entry((origin, hops)).or_insert(0);
        if seq != *next {
            self.report.disorder += 1;
        }
        *next = seq + 1;
        if hops + 1 < self.hops {
            let mut relayed = data.to_vec();
            relayed[12..16].copy_from_slice(&(hops + 1).to_be_bytes());
            match ctx.emit(Self::OUT, &relayed) {
                Ok(()) => self.report.relayed += 1,
                Err(e) => self.failed(&e),
            }
        } else {
            self.report.consumed += 1;
        }
    }

    /// What happened so far.
    #[entry]
    fn report(&mut self) -> Report {
        self.report.remaining = self.remaining;
        self.report.next = self.expect.iter().map(|(k, v)| (k.0, k.1, *v)).collect();
        self.report.clone()
    }
}

/// `(origin, seq, hops)` of an event, if it has the header.
fn header(data: &[u8]) -> Option<(u32, u64, u32)> {
    let origin = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
    let seq = u64::from_be_bytes(data.get(4..12)?.try_into().ok()?);
    let hops = u32::from_be_bytes(data.get(12..16)?.try_into().ok()?);
    Some((origin, seq, hops))
}

/// The emitting thread: bursts until the run is over or the module stops serving calls.
fn pump(handle: &Handle<Pace>) {
    while let Ok(true) = handle.call(|pace: &mut Pace, ctx| pace.burst(ctx)) {}
}

impl Pace {
    /// Emits up to [`BURST`] events; whether more remain.
    fn burst(&mut self, ctx: &mut Context) -> bool {
        let mut payload = vec![0u8; self.size];
        payload[0..4].copy_from_slice(&self.origin.to_be_bytes());
        for _ in 0..self.remaining.min(BURST) {
            payload[4..12].copy_from_slice(&self.next_seq.to_be_bytes());
            match ctx.emit(Self::OUT, &payload) {
                Ok(()) => {
                    self.next_seq += 1;
                    self.remaining -= 1;
                    self.report.sent += 1;
                }
                // The runtime gave up waiting to handle what arrived meanwhile: this event
                // goes in the next burst.
                Err(aex::Error::Overloaded) => break,
                // Sent on the output's other connections, not on these: counted, and the
                // run goes on (the tests check which streams are complete).
                Err(e @ aex::Error::WindowFull { .. }) => {
                    self.failed(&e);
                    self.next_seq += 1;
                    self.remaining -= 1;
                    self.report.sent += 1;
                }
                Err(e) => {
                    self.failed(&e);
                    self.remaining = 0;
                    break;
                }
            }
        }
        self.pumping = self.remaining > 0;
        self.pumping
    }

    fn failed(&mut self, e: &aex::Error) {
        eprintln!("pace: output `out`: {e}");
        self.report.emit_errors += 1;
        self.report.last_error = Some(e.to_string());
    }
}

aex::main!(Pace);
