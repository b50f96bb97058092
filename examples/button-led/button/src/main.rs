//! The button-led example's button driver, on the `sancus` node.
//!
//! On a real board it would own the button's GPIO pin; here the owner presses it over the
//! direct connection `press` (`aex output -C examples/button-led press`). Each press is
//! forwarded as an authentic event on the output `pressed`, numbered from 1.

use aex::Context;
use serde::Serialize;

/// The button's state: how many presses it has seen.
#[derive(Default)]
struct Button {
    presses: u64,
}

/// What `aex status` shows for the button.
#[derive(Serialize)]
struct Status {
    presses: u64,
}

#[aex::module(outputs(pressed))]
impl Button {
    /// One press of the button (the payload, if any, is ignored).
    #[input]
    fn press(&mut self, ctx: &mut Context, _event: &[u8]) {
        self.presses += 1;
        ctx.emit_json(Self::PRESSED, &self.presses);
    }

    /// The number of presses so far (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> Status {
        Status {
            presses: self.presses,
        }
    }
}

aex::main!(Button);
