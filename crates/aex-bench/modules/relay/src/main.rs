//! Benchmark module `relay`: forwards every event from its `input` to its `output`.
//!
//! The deploy-time benchmark chains many relays (`m0.output → m1.input → …`), so each
//! module has one connection in and one out, like a typical pipeline stage.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use aex::Context;

/// No state besides a counter.
#[derive(Default)]
struct Relay {
    forwarded: u64,
}

#[aex::module(outputs(output))]
impl Relay {
    /// Forwards one event.
    #[input]
    fn input(&mut self, ctx: &mut Context, data: &[u8]) {
        self.forwarded += 1;
        if let Err(e) = ctx.emit(Self::OUTPUT, data) {
            eprintln!("relay: output `output`: {e}");
        }
    }

    /// Events forwarded so far.
    #[entry]
    fn forwarded(&mut self) -> u64 {
        self.forwarded
    }
}

aex::main!(Relay);
