//! Benchmark module `keeper`: the `sink` (`../sink/src/counting.rs`, the same code) declared
//! `persistent`, so the benchmark measures what sealing and output commit cost a stream
//! against the plain sink in the same run (issue 16).

include!("../../sink/src/counting.rs");

counting_sink!(persistent);

aex::main!(Sink);
