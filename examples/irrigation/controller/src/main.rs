//! The farm's irrigation controller, on the edge node (`trustzone`).
//!
//! It receives the probe's authentic readings and commands the valve with hysteresis: open
//! below `low` percent, closed above `high`, unchanged in between. It sends the wanted state
//! on every reading rather than only on changes, so a dropped command is repaired by the next
//! reading; the valve driver acts only on changes.
//!
//! It is persistent (`#[aex::module(persistent)]`): its state, the valve history and the
//! water given, is sealed into blobs the edge node stores, and the edge node restarts it by
//! itself, with that state, when the controller's process or the whole node dies. No reading
//! it acted on is forgotten, and no command it sent is sent again from an older state.
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

/// Switches kept in the valve history.
const HISTORY: usize = 16;

/// One switch of the valve: at which reading, to which state.
#[derive(Serialize, Deserialize, Clone)]
struct Switch {
    reading: u64,
    open: bool,
}

#[derive(Serialize, Deserialize)]
struct Controller {
    moisture: Option<u32>,
    open: bool,
    thresholds: Thresholds,
    readings: u64,
    switches: u64,
    /// Water given, in reading periods: readings taken while the valve was open.
    #[serde(default)]
    watered: u64,
    /// The last switches, oldest first.
    #[serde(default)]
    history: Vec<Switch>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller {
            moisture: None,
            open: false,
            thresholds: Thresholds { low: 30, high: 60 },
            readings: 0,
            switches: 0,
            watered: 0,
            history: Vec::new(),
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
    watered: u64,
    history: Vec<Switch>,
}

#[aex::module(persistent, outputs(valve))]
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
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(Switch {
                reading: self.readings,
                open,
            });
        }
        if self.open {
            self.watered += 1;
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
            watered: self.watered,
            history: self.history.clone(),
        }
    }
}

aex::main!(Controller);
