//! Benchmark module `sink`: counts the events arriving on its `data` input and times them.
//!
//! `expect` resets the counters for a run of `count` events; `report` gives what arrived and
//! the time from the first to the last event, measured here with `Instant`. The sink does
//! nothing to pace its source: the runtime grants the source credit as it takes events in.
//! Its code is `counting.rs`, shared with the persistent `keeper`.

include!("counting.rs");

counting_sink!();

aex::main!(Sink);
