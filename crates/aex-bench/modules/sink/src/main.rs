//! Benchmark module `sink`: counts the events arriving on its `data` input and times them.
//!
//! `expect` resets the counters for a run of `count` events; `report` gives what arrived and
//! the time from the first to the last event, measured here with `Instant`. The sink does
//! nothing to pace its source: the runtime grants the source credit as it takes events in.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Parameters of a run; missing fields take their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExpectArgs {
    /// Events the run will send.
    count: u64,
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
    received: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

#[aex::module]
impl Sink {
    /// Resets the counters for a run.
    #[entry]
    fn expect(&mut self, args: ExpectArgs) {
        *self = Sink {
            count: args.count,
            ..Sink::default()
        };
    }

    /// Counts one event.
    #[input]
    fn data(&mut self, data: &[u8]) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.received += 1;
        self.bytes += data.len() as u64;
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
