//! Insight's moisture aggregator, on the cloud node (`sgx`).
//!
//! It keeps statistics of the gauge's authentic readings (count, lost, minimum, maximum, mean,
//! last) and expects one at least every 3 seconds. When none comes, its deadline handler runs
//! on the module's own clock, whatever the nodes do, and emits an authentic alarm on `alarm`
//! (insight's pager shows it), once per silent period.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Reading {
    seq: u64,
    percent: u32,
}

#[derive(Default, Serialize, Deserialize, Clone)]
struct Aggregator {
    readings: u64,
    /// Readings the gauge sent that never arrived (sequence gaps).
    lost: u64,
    last_seq: u64,
    last: Option<u32>,
    min: Option<u32>,
    max: Option<u32>,
    sum: u64,
    alarms: u64,
}

/// What `aex status` shows.
#[derive(Serialize)]
struct Status {
    readings: u64,
    lost: u64,
    last: Option<u32>,
    min: Option<u32>,
    max: Option<u32>,
    mean: Option<f64>,
    alarms: u64,
}

#[derive(Serialize)]
struct Alarm {
    alarm: String,
}

#[aex::module(outputs(alarm))]
impl Aggregator {
    /// One reading from the gauge.
    #[input]
    fn reading(&mut self, r: Reading) {
        if self.last_seq != 0 && r.seq > self.last_seq + 1 {
            self.lost += r.seq - self.last_seq - 1;
        }
        self.last_seq = r.seq;
        self.readings += 1;
        self.last = Some(r.percent);
        self.min = Some(self.min.map_or(r.percent, |m| m.min(r.percent)));
        self.max = Some(self.max.map_or(r.percent, |m| m.max(r.percent)));
        self.sum += u64::from(r.percent);
    }

    /// No reading for 3 s: the gauge, its node or the network is down, or someone holds the
    /// readings back.
    #[deadline(input = reading, every = "3s")]
    fn silent(&mut self, ctx: &mut aex::Context) {
        self.alarms += 1;
        let alarm = Alarm {
            alarm: format!(
                "no moisture reading from the field for 3 s (alarm {})",
                self.alarms
            ),
        };
        if let Err(e) = ctx.emit_json(Self::ALARM, &alarm) {
            eprintln!("aggregator: output `alarm`: {e}");
        }
    }

    /// The statistics so far.
    #[entry]
    fn status(&mut self) -> Status {
        Status {
            readings: self.readings,
            lost: self.lost,
            last: self.last,
            min: self.min,
            max: self.max,
            mean: (self.readings > 0).then(|| self.sum as f64 / self.readings as f64),
            alarms: self.alarms,
        }
    }
}

aex::main!(Aggregator);
