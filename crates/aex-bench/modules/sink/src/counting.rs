// The counting sink shared by the `bench-sink` and `bench-keeper` benchmark modules, which
// differ only in `#[aex::module]`'s arguments: `include!`d by both, so the two measure exactly
// the same module code with and without persistence (issue 16).

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

/// The current run. The counts are state a persistent sink seals; the clock readings are
/// not (an `Instant` means nothing to another process), so they restart with the process.
#[derive(Default, Serialize, Deserialize)]
struct Sink {
    count: u64,
    received: u64,
    bytes: u64,
    #[serde(skip)]
    first: Option<Instant>,
    #[serde(skip)]
    last: Option<Instant>,
}

/// `#[aex::module(ARGS)] impl Sink { .. }`.
macro_rules! counting_sink {
    ($($arg:ident),*) => {
        #[aex::module($($arg),*)]
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
    };
}
