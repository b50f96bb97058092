//! The button-led example's LED driver, on the `sancus` node.
//!
//! Each authentic `toggle` event flips the LED. On a real board the module would own the
//! LED's GPIO pin, so nothing but an authentic toggle could switch it; here the LED is the
//! `on` flag, visible in `aex status`.

use serde::Serialize;

/// The LED: on or off, and how often it was switched.
#[derive(Default, Serialize)]
struct Led {
    on: bool,
    toggles: u64,
}

#[aex::module]
impl Led {
    /// Flips the LED (the payload is ignored).
    #[input]
    fn toggle(&mut self, _event: &[u8]) {
        self.on = !self.on;
        self.toggles += 1;
    }

    /// `{"on": bool, "toggles": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Led {
        self
    }
}

aex::main!(Led);
