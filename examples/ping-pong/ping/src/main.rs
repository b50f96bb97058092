//! The ping half of the ping-pong example: measures round-trip times of authentic events.
//!
//! `start` (an entry point, for `aex call ping start '{"count":100,"size":64}'`) or `kick` (an
//! input, for the deployer's direct connection) starts a run: ping emits a ping of `size`
//! bytes whose first 8 bytes are its sequence number, and each authentic pong with the
//! expected sequence number records a round-trip time and triggers the next ping, until
//! `count` pongs came back. `stats` and the `report` handler summarise the run.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use std::time::Instant;

use aex::Context;
use serde::{Deserialize, Serialize};

/// Parameters of a run; missing fields take their defaults.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct StartArgs {
    /// Round trips to make.
    count: u32,
    /// Ping size in bytes (at least 8: the sequence number).
    size: u32,
}

impl Default for StartArgs {
    fn default() -> Self {
        StartArgs {
            count: 100,
            size: 64,
        }
    }
}

/// Summary of the current run; times in microseconds.
#[derive(Debug, Serialize)]
struct Stats {
    count: u32,
    done: bool,
    completed: u32,
    size: u32,
    min_us: f64,
    median_us: f64,
    p99_us: f64,
    max_us: f64,
    mean_us: f64,
}

/// Ping's state: the current run.
#[derive(Default)]
struct Ping {
    count: u32,
    size: u32,
    /// Sequence number of the ping in flight.
    seq: u64,
    /// When the ping in flight was sent.
    sent_at: Option<Instant>,
    rtts_us: Vec<f64>,
}

#[aex::module(outputs(ping))]
impl Ping {
    /// Starts a run (called by the deployer, who is told if the first ping was not sent).
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<(), aex::Error> {
        self.begin(ctx, args)
    }

    /// Starts a run (an event on the deployer's direct connection).
    #[input]
    fn kick(&mut self, ctx: &mut Context, args: StartArgs) {
        if let Err(e) = self.begin(ctx, args) {
            eprintln!("ping: output `ping`: {e}");
        }
    }

    /// Records the round trip of the ping in flight and sends the next.
    #[input]
    fn pong(&mut self, ctx: &mut Context, data: &[u8]) {
        let seq = data.first_chunk::<8>().map(|s| u64::from_be_bytes(*s));
        let Some(sent_at) = self.sent_at.filter(|_| seq == Some(self.seq)) else {
            eprintln!("ping: ignoring an unexpected pong (sequence {seq:?})");
            return;
        };
        self.rtts_us.push(sent_at.elapsed().as_secs_f64() * 1e6);
        self.sent_at = None;
        if self.rtts_us.len() < self.count as usize {
            if let Err(e) = self.send_next(ctx) {
                eprintln!("ping: output `ping`: {e}");
            }
        }
    }

    /// Summary of the current run.
    #[entry]
    fn stats(&mut self) -> Stats {
        self.summary()
    }

    /// Summary of the current run, for other modules.
    #[handler]
    fn report(&mut self) -> Stats {
        self.summary()
    }
}

impl Ping {
    fn begin(&mut self, ctx: &mut Context, args: StartArgs) -> Result<(), aex::Error> {
        *self = Ping {
            count: args.count,
            size: args.size.max(8),
            ..Ping::default()
        };
        if self.count > 0 {
            self.send_next(ctx)?;
        }
        Ok(())
    }

    fn send_next(&mut self, ctx: &mut Context) -> Result<(), aex::Error> {
        self.seq += 1;
        let mut data = vec![0u8; self.size as usize];
        data[..8].copy_from_slice(&self.seq.to_be_bytes());
        self.sent_at = Some(Instant::now());
        ctx.emit(Self::PING, &data)
    }

    fn summary(&self) -> Stats {
        let mut sorted = self.rtts_us.clone();
        sorted.sort_by(f64::total_cmp);
        let completed = sorted.len() as u32;
        let at = |q: f64| match sorted.len() {
            0 => 0.0,
            n => sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
        };
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sorted.iter().sum::<f64>() / sorted.len() as f64
        };
        Stats {
            count: self.count,
            done: completed >= self.count,
            completed,
            size: self.size,
            min_us: tenth(sorted.first().copied().unwrap_or(0.0)),
            median_us: tenth(at(0.5)),
            p99_us: tenth(at(0.99)),
            max_us: tenth(sorted.last().copied().unwrap_or(0.0)),
            mean_us: tenth(mean),
        }
    }
}

/// `us` rounded to a tenth of a microsecond: the clock's noise is larger, and JSON then shows
/// `130.2`, not `130.16500000000002`.
fn tenth(us: f64) -> f64 {
    (us * 10.0).round() / 10.0
}

aex::main!(Ping);
