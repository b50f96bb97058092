//! The button-led example's button driver, on the `sancus` node.
//!
//! The field node's TEE layer grants it the digital input `button` exclusively. It polls the
//! button on the node's periodic trigger and forwards each press (a rising edge) as an
//! authentic event on the output `pressed`, numbered from 1: press it with
//! `aex device -C examples/button-led field button set 1` (and `set 0` to let go). The owner can
//! also press it from afar over the direct connection `press`
//! (`aex output -C examples/button-led press`), an authentic event like any other.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use aex::Context;
use serde::Serialize;

/// The device this driver reads, as the field node's configuration names it.
const BUTTON: &str = "button";

/// The button's state: how many presses it has seen.
#[derive(Default)]
struct Button {
    presses: u64,
    /// Whether the button was down at the last poll.
    down: bool,
    error: Option<String>,
}

/// What `aex status` shows for the button.
#[derive(Serialize)]
struct Status<'a> {
    presses: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[aex::module(outputs(pressed))]
impl Button {
    /// One press from the owner, over the direct connection (the payload is ignored).
    #[input]
    fn press(&mut self, ctx: &mut Context, _event: &[u8]) {
        self.pressed(ctx);
    }

    /// Looks at the button: a press is the moment it goes down.
    #[periodic]
    fn poll(&mut self, ctx: &mut Context) {
        match ctx.read_device(BUTTON) {
            Ok(level) => {
                let down = level == 1;
                if down && !self.down {
                    self.pressed(ctx);
                }
                self.down = down;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// The number of presses so far (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> Status<'_> {
        Status {
            presses: self.presses,
            error: self.error.as_deref(),
        }
    }
}

impl Button {
    fn pressed(&mut self, ctx: &mut Context) {
        self.presses += 1;
        if let Err(e) = ctx.emit_json(Self::PRESSED, &self.presses) {
            eprintln!("button: output `pressed`: {e}");
        }
    }
}

aex::main!(Button);
