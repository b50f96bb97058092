//! The thermostat's controller: switches the heater on below the set point and off above it,
//! and raises an alarm (switching the heater off) when the sensor falls silent.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct State {
    on: bool,
    last_celsius: Option<f64>,
    set_point: f64,
    switches: u64,
    readings: u64,
    alarms: u64,
}

#[derive(Deserialize)]
struct SetPoint {
    celsius: f64,
}

#[derive(Serialize)]
struct Alarm<'a> {
    alarm: &'a str,
    /// How many alarms this heater has raised, this one included.
    count: u64,
}

/// The heater's state. Serializable, so `aex update heater` (or `aex deploy` after a code
/// change) hands it to the new instance: the set point survives an update.
#[derive(Serialize, Deserialize)]
struct Heater {
    on: bool,
    last: Option<f64>,
    set_point: f64,
    switches: u64,
    readings: u64,
    alarms: u64,
}

impl Default for Heater {
    fn default() -> Self {
        Heater {
            on: false,
            last: None,
            set_point: 20.0,
            switches: 0,
            readings: 0,
            alarms: 0,
        }
    }
}

#[aex::module(outputs(alarm))]
impl Heater {
    /// An authentic temperature from the sensor.
    #[input]
    fn temperature(&mut self, celsius: f64) {
        self.last = Some(celsius);
        self.readings += 1;
        // Half a degree of hysteresis keeps the heater from chattering.
        let on = if self.on {
            celsius < self.set_point + 0.5
        } else {
            celsius < self.set_point - 0.5
        };
        self.switch(on);
    }

    /// No authentic temperature for 2 s: heating blind is unsafe, so switch off and raise an
    /// authentic alarm. Runs again every 2 s while the sensor stays silent.
    #[deadline(input = temperature, every = "2s")]
    fn sensor_silent(&mut self, ctx: &mut aex::Context) {
        self.switch(false);
        self.alarms += 1;
        let alarm = Alarm {
            alarm: "no temperature from the sensor for 2 s; heater off",
            count: self.alarms,
        };
        if let Err(e) = ctx.emit_json(Self::ALARM, &alarm) {
            eprintln!("heater: output `alarm`: {e}");
        }
    }

    /// The owner changes the set point (an entry point: authenticated under the module key).
    #[entry]
    fn set_point(&mut self, arg: SetPoint) -> Result<f64, String> {
        if !(5.0..=30.0).contains(&arg.celsius) {
            return Err(format!("set point {} °C is outside 5..30 °C", arg.celsius));
        }
        self.set_point = arg.celsius;
        Ok(self.set_point)
    }

    /// The heater's state, for anyone holding a connection to this handler.
    #[handler]
    fn state(&mut self) -> State {
        self.snapshot()
    }

    /// The same, for `aex status`.
    #[entry]
    fn status(&mut self) -> State {
        self.snapshot()
    }
}

impl Heater {
    fn switch(&mut self, on: bool) {
        if on != self.on {
            self.on = on;
            self.switches += 1;
        }
    }

    fn snapshot(&self) -> State {
        State {
            on: self.on,
            last_celsius: self.last,
            set_point: self.set_point,
            switches: self.switches,
            readings: self.readings,
            alarms: self.alarms,
        }
    }
}

aex::main!(Heater);
