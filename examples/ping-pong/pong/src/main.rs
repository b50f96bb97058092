//! The pong half of the ping-pong example: answers every ping with the same bytes.
//!
//! Its input `ping` receives events and its output `pong` sends them back unchanged, so the
//! round trip measures aex's event path (seal, route, open) twice per ping.

use aex::Context;

/// Pong's state: how many pings it answered.
#[derive(Default)]
struct Pong {
    pings: u64,
}

#[aex::module(outputs(pong))]
impl Pong {
    /// Echoes a ping on the `pong` output.
    #[input]
    fn ping(&mut self, ctx: &mut Context, data: &[u8]) {
        self.pings += 1;
        ctx.emit(Self::PONG, data);
    }

    /// The number of pings answered so far.
    #[entry]
    fn count(&mut self) -> u64 {
        self.pings
    }
}

aex::main!(Pong);
