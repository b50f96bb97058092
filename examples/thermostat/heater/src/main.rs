//! The thermostat's controller: switches the heater on below the set point and off above it.

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct State {
    on: bool,
    last_celsius: Option<f64>,
    set_point: f64,
    switches: u64,
}

#[derive(Deserialize)]
struct SetPoint {
    celsius: f64,
}

struct Heater {
    on: bool,
    last: Option<f64>,
    set_point: f64,
    switches: u64,
}

impl Default for Heater {
    fn default() -> Self {
        Heater {
            on: false,
            last: None,
            set_point: 20.0,
            switches: 0,
        }
    }
}

#[aex::module]
impl Heater {
    /// An authentic temperature from the sensor.
    #[input]
    fn temperature(&mut self, celsius: f64) {
        self.last = Some(celsius);
        // Half a degree of hysteresis keeps the heater from chattering.
        let on = if self.on {
            celsius < self.set_point + 0.5
        } else {
            celsius < self.set_point - 0.5
        };
        if on != self.on {
            self.on = on;
            self.switches += 1;
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
        State {
            on: self.on,
            last_celsius: self.last,
            set_point: self.set_point,
            switches: self.switches,
        }
    }
}

aex::main!(Heater);
