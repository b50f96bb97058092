//! The thermostat's sensor driver: samples the temperature on a period and publishes it as
//! authentic temperature events.
//!
//! In this tutorial the device is simulated: the owner sets the temperature it reads over a
//! direct connection, and the node triggers `sample` every period the descriptor sets. On a
//! real board `sample` would read a device the module holds exclusively.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use serde::Deserialize;

/// What the simulated device reads until the owner sets a temperature.
const START_CELSIUS: f64 = 18.0;

#[derive(Deserialize)]
struct Reading {
    celsius: f64,
}

#[derive(Default)]
struct Sensor {
    /// The simulated device's temperature, as last set by the owner.
    device: Option<f64>,
    readings: u64,
}

#[aex::module(outputs(temperature))]
impl Sensor {
    /// The owner sets what the simulated device reads; published at once.
    #[input]
    fn reading(&mut self, ctx: &mut aex::Context, reading: Reading) {
        self.device = Some(reading.celsius);
        self.sample(ctx);
    }

    /// Samples the device and publishes the temperature. The node calls this every period of
    /// the descriptor's `[[periodic]]` entry; the trigger is untrusted (it may come late or
    /// not at all), but the event it produces is authentic.
    #[periodic]
    fn sample(&mut self, ctx: &mut aex::Context) {
        self.readings += 1;
        let celsius = self.device.unwrap_or(START_CELSIUS);
        if let Err(e) = ctx.emit_json(Self::TEMPERATURE, &celsius) {
            eprintln!("sensor: output `temperature`: {e}");
        }
    }

    /// How many readings this sensor has published.
    #[entry]
    fn readings(&mut self) -> u64 {
        self.readings
    }
}

aex::main!(Sensor);
