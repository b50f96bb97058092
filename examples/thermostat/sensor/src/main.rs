//! The thermostat's sensor driver: receives raw readings and publishes them as authentic
//! temperature events.
//!
//! In this tutorial the readings come from the owner over a direct connection; on a real
//! board they would come from a device the module holds exclusively.

use serde::Deserialize;

#[derive(Deserialize)]
struct Reading {
    celsius: f64,
}

#[derive(Default)]
struct Sensor {
    readings: u64,
}

#[aex::module(outputs(temperature))]
impl Sensor {
    /// A reading from the physical world; forwarded to whoever is connected.
    #[input]
    fn reading(&mut self, ctx: &mut aex::Context, reading: Reading) {
        self.readings += 1;
        ctx.emit_json(Self::TEMPERATURE, &reading.celsius);
    }

    /// How many readings this sensor has published.
    #[entry]
    fn readings(&mut self) -> u64 {
        self.readings
    }
}

aex::main!(Sensor);
