//! Every accepted method shape, and the interface and handles they generate.

use aex::{Context, Module};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Reading {
    celsius: f32,
}

#[derive(Serialize)]
struct Summary {
    max: f32,
}

#[derive(Default)]
pub struct Station {
    max: f32,
}

#[aex::module(outputs(alarm, fanSpeed), requests(fetch_config))]
impl Station {
    #[input]
    fn raw(&mut self, _data: &[u8]) {}

    #[input]
    fn reading(&mut self, ctx: &mut Context, r: Reading) {
        self.max = self.max.max(r.celsius);
        if r.celsius > 40.0 {
            ctx.emit(Self::ALARM, b"hot");
            ctx.emit_json(Self::FAN_SPEED, &100u8);
        }
    }

    #[input]
    fn checked(&mut self, _data: Vec<u8>) -> Result<(), String> {
        Ok(())
    }

    #[handler]
    fn summary(&mut self) -> Summary {
        Summary { max: self.max }
    }

    #[handler]
    fn echo(&mut self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    #[entry]
    fn reset(&mut self, to: Option<f32>) {
        self.max = to.unwrap_or(0.0);
    }

    #[entry]
    fn configure(&mut self, ctx: &mut Context) -> Result<u32, aex::Error> {
        ctx.request_json::<_, u32>(Self::FETCH_CONFIG, &())
    }

    #[entry]
    fn r#type(&mut self) -> &'static str {
        "station"
    }

    /// Not a port: left alone.
    fn helper(&self) -> f32 {
        self.max
    }
}

fn main() {
    let interface = Station::interface();
    assert_eq!(interface.outputs, ["alarm", "fanSpeed"]);
    assert_eq!(interface.inputs, ["raw", "reading", "checked"]);
    assert_eq!(interface.requests, ["fetch_config"]);
    assert_eq!(interface.handlers, ["summary", "echo"]);
    assert_eq!(interface.entries, ["reset", "configure", "type"]);
    assert_eq!(Station::ALARM.name(), "alarm");
    assert_eq!(Station::FAN_SPEED.name(), "fanSpeed");
    assert_eq!(Station::FETCH_CONFIG.name(), "fetch_config");
    assert_eq!(Station::default().helper(), 0.0);
    assert_eq!(
        aex::describe_json::<Station>(),
        r#"{"outputs":["alarm","fanSpeed"],"inputs":["raw","reading","checked"],"requests":["fetch_config"],"handlers":["summary","echo"],"entries":["reset","configure","type"],"periodic":[]}"#
    );
}
