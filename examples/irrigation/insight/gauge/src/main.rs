//! Insight's soil-moisture gauge, on the farm's field node (`sancus`).
//!
//! Insight is a second stakeholder: its deployer identity is not the farm's, and it deploys
//! on the same field node. Its readings come from its own probe, `moisture-2`, which the
//! node's TEE layer grants to this driver exclusively: insight's guarantee needs a driver
//! insight attested itself, and the farm's probe driver answers only to the farm. Each reading
//! carries a sequence number so the aggregator can count lost ones.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use serde::Serialize;

/// The device this driver reads.
const DEVICE: &str = "moisture-2";

#[derive(Default)]
struct Gauge {
    seq: u64,
    last: Option<u32>,
    failures: u64,
    error: Option<String>,
}

/// One reading, as sent to the aggregator.
#[derive(Serialize)]
struct Reading {
    seq: u64,
    percent: u32,
}

/// What `aex status` shows.
#[derive(Serialize)]
struct Status<'a> {
    moisture: Option<u32>,
    sent: u64,
    failures: u64,
    error: Option<&'a str>,
}

#[aex::module(outputs(reading))]
impl Gauge {
    /// Reads the probe and sends the numbered reading.
    #[periodic]
    fn sample(&mut self, ctx: &mut aex::Context) {
        match ctx.read_device(DEVICE) {
            Ok(percent) => {
                self.seq += 1;
                self.last = Some(percent);
                let reading = Reading {
                    seq: self.seq,
                    percent,
                };
                // A reading not sent is one the aggregator counts as lost (a sequence gap).
                if let Err(e) = ctx.emit_json(Self::READING, &reading) {
                    eprintln!("gauge: output `reading`: {e}");
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
            sent: self.seq,
            failures: self.failures,
            error: self.error.as_deref(),
        }
    }
}

aex::main!(Gauge);
