//! Benchmark module `relay`: forwards every event from its `input` to its `output`.
//!
//! The deploy-time benchmark chains many relays (`m0.output → m1.input → …`), so each
//! module has one connection in and one out, like a typical pipeline stage.

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
        ctx.emit(Self::OUTPUT, data);
    }

    /// Events forwarded so far.
    #[entry]
    fn forwarded(&mut self) -> u64 {
        self.forwarded
    }
}

aex::main!(Relay);
