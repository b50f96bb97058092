//! The button-led example's LED driver, on the `sancus` node.
//!
//! The field node's TEE layer grants it the digital output `led` exclusively, so nothing but
//! an authentic `toggle` event, handled by this code, switches the LED. Its state is in
//! `aex status`, and the physical LED in `aex device -C examples/button-led field led`.

use aex::Context;
use serde::Serialize;

/// The device this driver drives, as the field node's configuration names it.
const LED: &str = "led";

#[derive(Default, Serialize)]
struct Led {
    on: bool,
    toggles: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[aex::module]
impl Led {
    /// Flips the LED (the payload is ignored).
    #[input]
    fn toggle(&mut self, ctx: &mut Context, _event: &[u8]) {
        let on = !self.on;
        match ctx.write_device(LED, u32::from(on)) {
            Ok(()) => {
                self.on = on;
                self.toggles += 1;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Whether the LED is on, and how often it was switched.
    #[entry]
    fn status(&mut self) -> &Led {
        self
    }
}

aex::main!(Led);
