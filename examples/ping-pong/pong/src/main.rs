//! The pong half of the ping-pong example: answers every ping with the same bytes.
//!
//! Its input `ping` receives events and its output `pong` sends them back unchanged, so the
//! round trip measures aex's event path (seal, route, open) twice per ping.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

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
        // An input has no caller to tell: the module's log (stderr) says what was not sent.
        if let Err(e) = ctx.emit(Self::PONG, data) {
            eprintln!("pong: output `pong`: {e}");
        }
    }

    /// The number of pings answered so far.
    #[entry]
    fn count(&mut self) -> u64 {
        self.pings
    }
}

aex::main!(Pong);
