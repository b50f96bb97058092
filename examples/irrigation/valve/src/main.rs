//! The farm's irrigation valve driver, on the field node (`sancus`).
//!
//! The field node's TEE layer grants it the output `valve` exclusively. It drives the valve
//! as the controller's authentic commands say (`true` opens), and only then: if the valve is
//! open, authentic readings and the controller's code explain it. Nothing else on the node,
//! not another application's module nor the node agent, can drive it.

use aex::Context;
use serde::Serialize;

/// The device this driver drives, as the field node's configuration names it.
const DEVICE: &str = "valve";

#[derive(Default)]
struct Valve {
    /// What the valve was last driven to, if anything.
    driven: Option<bool>,
    commands: u64,
    switches: u64,
    refused: u64,
    error: Option<String>,
}

/// What `aex status` shows.
#[derive(Serialize)]
struct Status<'a> {
    valve: &'static str,
    commands: u64,
    switches: u64,
    refused: u64,
    error: Option<&'a str>,
}

#[aex::module]
impl Valve {
    /// The controller's command: `true` opens the valve, `false` closes it.
    #[input]
    fn command(&mut self, ctx: &mut Context, open: bool) {
        self.commands += 1;
        if self.driven == Some(open) {
            return;
        }
        match ctx.write_device(DEVICE, u32::from(open)) {
            Ok(()) => {
                self.driven = Some(open);
                self.switches += 1;
            }
            Err(e) => {
                self.refused += 1;
                self.error = Some(e.to_string());
            }
        }
    }

    /// The valve as this driver last drove it, and counters.
    #[entry]
    fn status(&mut self) -> Status<'_> {
        Status {
            valve: match self.driven {
                Some(true) => "open",
                Some(false) => "closed",
                None => "untouched",
            },
            commands: self.commands,
            switches: self.switches,
            refused: self.refused,
            error: self.error.as_deref(),
        }
    }
}

aex::main!(Valve);
