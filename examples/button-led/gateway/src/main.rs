//! The button-led example's gateway, on the `trustzone` node.
//!
//! It receives authentic button presses from the `sancus` node and, for each, toggles the LED
//! back on that node and increments the press counter on the `sgx` node. Every hop is an
//! authenticated, encrypted event on a connection whose key only its two endpoints hold.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use aex::Context;
use serde::Serialize;

/// The gateway's state: presses relayed so far.
#[derive(Default, Serialize)]
struct Gateway {
    presses: u64,
}

#[aex::module(outputs(toggle, increment))]
impl Gateway {
    /// An authentic press from the button driver (its payload, the press number, is ignored).
    #[input]
    fn button(&mut self, ctx: &mut Context, _event: &[u8]) {
        self.presses += 1;
        // Each output on its own: the counter still learns of a press the LED missed.
        if let Err(e) = ctx.emit(Self::TOGGLE, b"") {
            eprintln!("gateway: output `toggle`: {e}");
        }
        if let Err(e) = ctx.emit(Self::INCREMENT, b"") {
            eprintln!("gateway: output `increment`: {e}");
        }
    }

    /// `{"presses": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Gateway {
        self
    }
}

aex::main!(Gateway);
