//! Benchmark module `sink`: counts the events arriving on its `data` input and times them.
//!
//! `expect` resets the counters for a run of `count` events; with `credit_every = k > 0` the
//! sink grants the source `k` more events (a 4-byte big-endian count on its `credit` output)
//! each time it has consumed `k`. `report` gives what arrived and the time from the first to
//! the last event, measured here with `Instant`.

use std::time::Instant;

use aex::Context;
use serde::{Deserialize, Serialize};

/// Parameters of a run; missing fields take their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExpectArgs {
    /// Events the run will send.
    count: u64,
    /// Grant credit after this many events (0: never).
    credit_every: u32,
}

/// What arrived so far.
#[derive(Debug, Serialize)]
struct Report {
    count: u64,
    received: u64,
    bytes: u64,
    /// From the first to the last event, in microseconds.
    elapsed_us: f64,
    done: bool,
}

/// The current run.
#[derive(Default)]
struct Sink {
    count: u64,
    credit_every: u32,
    /// Events consumed since the last credit.
    uncredited: u32,
    received: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

#[aex::module(outputs(credit))]
impl Sink {
    /// Resets the counters for a run.
    #[entry]
    fn expect(&mut self, args: ExpectArgs) {
        *self = Sink {
            count: args.count,
            credit_every: args.credit_every,
            ..Sink::default()
        };
    }

    /// Counts one event.
    #[input]
    fn data(&mut self, ctx: &mut Context, data: &[u8]) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.received += 1;
        self.bytes += data.len() as u64;
        self.uncredited += 1;
        if self.credit_every > 0 && self.uncredited == self.credit_every {
            self.uncredited = 0;
            ctx.emit(Self::CREDIT, &self.credit_every.to_be_bytes());
        }
    }

    /// What arrived so far.
    #[entry]
    fn report(&mut self) -> Report {
        let elapsed = match (self.first, self.last) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64() * 1e6,
            _ => 0.0,
        };
        Report {
            count: self.count,
            received: self.received,
            bytes: self.bytes,
            elapsed_us: elapsed,
            done: self.received >= self.count,
        }
    }
}

aex::main!(Sink);
