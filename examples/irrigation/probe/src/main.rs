//! The farm's soil-moisture probe driver, on the field node (`sancus`).
//!
//! The field node's TEE layer grants it the probe `moisture-1` exclusively (the descriptor binds
//! it, and its measurement covers the grant). On every periodic tick it reads the probe and
//! emits the reading, in percent, as an authentic event on `moisture`. The tick itself is
//! untrusted: the node may delay or drop it, so the controller may see fewer readings, never
//! a forged one.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use aex::Context;
use serde::Serialize;

/// The device this driver reads, as the field node's configuration names it.
const DEVICE: &str = "moisture-1";

#[derive(Default)]
struct Probe {
    last: Option<u32>,
    readings: u64,
    failures: u64,
    error: Option<String>,
}

/// What `aex status` shows.
#[derive(Serialize)]
struct Status<'a> {
    moisture: Option<u32>,
    readings: u64,
    failures: u64,
    error: Option<&'a str>,
}

#[aex::module(outputs(moisture))]
impl Probe {
    /// Reads the probe and reports it.
    #[periodic]
    fn sample(&mut self, ctx: &mut Context) {
        match ctx.read_device(DEVICE) {
            Ok(percent) => {
                self.last = Some(percent);
                self.readings += 1;
                if let Err(e) = ctx.emit_json(Self::MOISTURE, &percent) {
                    eprintln!("probe: output `moisture`: {e}");
                }
            }
            Err(e) => {
                self.failures += 1;
                self.error = Some(e.to_string());
            }
        }
    }

    /// The last reading and counters.
    #[entry]
    fn status(&mut self) -> Status<'_> {
        Status {
            moisture: self.last,
            readings: self.readings,
            failures: self.failures,
            error: self.error.as_deref(),
        }
    }
}

aex::main!(Probe);
