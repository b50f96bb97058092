//! The `[[up]]` steps of a descriptor: entry points `aex up` calls once the application is
//! connected, e.g. to start a workload and show its result.
//!
//! A step with `until = "field"` is repeated (every 100 ms, at most [`STEP_TIMEOUT`]) until
//! its JSON result has that field set to `true`, so `up` can wait for asynchronous work such
//! as a ping-pong run to finish.

use std::time::{Duration, Instant};

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::call::call;

/// Longest wait for an `until` condition.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The result of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// `module.entry`.
    pub call: String,
    /// The entry point's last result.
    pub result: Vec<u8>,
    /// Whether the descriptor asked to show it.
    pub show: bool,
}

/// Runs the descriptor's `[[up]]` steps in order.
pub fn run_steps(app: &mut App) -> Result<Vec<StepResult>> {
    let steps = app.descriptor().up.clone();
    let mut results = vec![];
    for step in steps {
        let started = Instant::now();
        let result = loop {
            let result = call(app, &step.module, &step.entry, &step.payload)?;
            let Some(field) = &step.until else {
                break result;
            };
            let done = serde_json::from_slice::<serde_json::Value>(&result)
                .ok()
                .and_then(|v| v.get(field).and_then(|f| f.as_bool()))
                .unwrap_or(false);
            if done {
                break result;
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("`{}.{}` to report `{field}: true`", step.module, step.entry),
                    limit: STEP_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        results.push(StepResult {
            call: format!("{}.{}", step.module, step.entry),
            result,
            show: step.show,
        });
    }
    Ok(results)
}
