//! The farm's irrigation controller, on the edge node (`trustzone`).
//!
//! It receives the probe's authentic readings and commands the valve with hysteresis: open
//! below `low` percent, closed above `high`, unchanged in between. It sends the wanted state
//! on every reading rather than only on changes, so a dropped command is repaired by the next
//! reading; the valve driver acts only on changes.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone)]
struct Thresholds {
    low: u32,
    high: u32,
}

#[derive(Serialize, Deserialize)]
struct Controller {
    moisture: Option<u32>,
    open: bool,
    thresholds: Thresholds,
    readings: u64,
    switches: u64,
}

impl Default for Controller {
    fn default() -> Self {
        Controller {
            moisture: None,
            open: false,
            thresholds: Thresholds { low: 30, high: 60 },
            readings: 0,
            switches: 0,
        }
    }
}

/// What `aex status` shows.
#[derive(Serialize)]
struct Status {
    moisture: Option<u32>,
    valve: &'static str,
    low: u32,
    high: u32,
    readings: u64,
    switches: u64,
}

#[aex::module(outputs(valve))]
impl Controller {
    /// A reading from the probe, in percent.
    #[input]
    fn moisture(&mut self, ctx: &mut aex::Context, percent: u32) {
        self.moisture = Some(percent);
        self.readings += 1;
        let open = if self.open {
            percent <= self.thresholds.high
        } else {
            percent < self.thresholds.low
        };
        if open != self.open {
            self.open = open;
            self.switches += 1;
        }
        // A command not sent is repaired by the next reading's.
        if let Err(e) = ctx.emit_json(Self::VALVE, &self.open) {
            eprintln!("controller: output `valve`: {e}");
        }
    }

    /// Sets the thresholds (`{"low": 30, "high": 60}`, percent, `low < high <= 100`).
    #[entry]
    fn thresholds(&mut self, t: Thresholds) -> Result<Thresholds, String> {
        if t.low >= t.high || t.high > 100 {
            return Err(format!(
                "thresholds must satisfy low < high <= 100, got low {} and high {}",
                t.low, t.high
            ));
        }
        self.thresholds = t;
        Ok(self.thresholds.clone())
    }

    /// The last reading, the valve as commanded, and counters.
    #[entry]
    fn status(&mut self) -> Status {
        Status {
            moisture: self.moisture,
            valve: if self.open { "open" } else { "closed" },
            low: self.thresholds.low,
            high: self.thresholds.high,
            readings: self.readings,
            switches: self.switches,
        }
    }
}

aex::main!(Controller);
