//! The thermostat's alarm panel: shows the heater's alarms, with when they arrived.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Alarm {
    alarm: String,
}

#[derive(Default, Clone, Serialize)]
struct Panel {
    alarms: u64,
    /// The latest alarm's text.
    last: Option<String>,
    /// When the first and the latest alarm arrived, in milliseconds since the Unix epoch.
    first_at_ms: Option<u64>,
    last_at_ms: Option<u64>,
}

#[aex::module]
impl Panel {
    /// An authentic alarm from the heater.
    #[input]
    fn alarm(&mut self, alarm: Alarm) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.alarms += 1;
        self.last = Some(alarm.alarm);
        self.first_at_ms.get_or_insert(now);
        self.last_at_ms = Some(now);
    }

    /// The alarms so far, for `aex status`.
    #[entry]
    fn status(&mut self) -> Panel {
        self.clone()
    }
}

aex::main!(Panel);
