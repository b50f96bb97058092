//! Benchmark module `source`: emits `count` events of `size` bytes on its `data` output as
//! fast as the runtime lets it.
//!
//! With `window = 0` the `start` entry point emits every event in one call. Otherwise it emits
//! `window` events and then `n` more for each credit of `n` (a 4-byte big-endian count) that
//! arrives on its `credit` input, so no more than `window` events are ever in flight. aex node
//! agents drop rather than block when a queue is full; the window is the application-level
//! flow control that keeps a sustained stream lossless.

use aex::Context;
use serde::Deserialize;

/// Parameters of a run; missing fields take their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StartArgs {
    /// Events to emit in total.
    count: u64,
    /// Bytes per event.
    size: usize,
    /// Events in flight at most (0: no limit).
    window: u64,
}

/// The current run.
#[derive(Default)]
struct Source {
    remaining: u64,
    payload: Vec<u8>,
}

#[aex::module(outputs(data))]
impl Source {
    /// Starts a run; returns the number of events emitted by this call.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> u64 {
        self.payload = vec![0xa5; args.size];
        self.remaining = args.count;
        let first = if args.window == 0 {
            args.count
        } else {
            args.window.min(args.count)
        };
        self.emit(ctx, first)
    }

    /// Credit from the sink: emit that many more events.
    #[input]
    fn credit(&mut self, ctx: &mut Context, data: &[u8]) {
        let n = data
            .first_chunk::<4>()
            .map_or(0, |n| u32::from_be_bytes(*n));
        self.emit(ctx, u64::from(n));
    }
}

impl Source {
    fn emit(&mut self, ctx: &mut Context, n: u64) -> u64 {
        let n = n.min(self.remaining);
        for _ in 0..n {
            ctx.emit(Self::DATA, &self.payload);
        }
        self.remaining -= n;
        n
    }
}

aex::main!(Source);
