//! Periodic triggers: one timer task per periodic entry of a module, sending it `Tick`s.
//!
//! The trigger is untrusted by design (this whole agent is): a tick carries no data, and the
//! module's runtime runs only entries the module itself declares `#[periodic]`. What this file
//! owns is that the node does not make things worse than late:
//!
//! * a tick that would have to queue behind other input for the module (the module is busy) is
//!   skipped, not queued, and a timer that fell behind skips the missed periods: a late trigger
//!   is dropped, never bunched;
//! * a module's triggers are replaced as a whole by each `Periodic` request (idempotent: an
//!   unchanged trigger keeps its phase) and die with the module (its [`Triggers`] aborts them
//!   when dropped; a task also ends once the process has).
//!
//! The timer ([`fire`]) only decides when to offer a tick; what an offer does is a closure
//! ([`offer`] on the module's input queue, in the node), so the unit tests below drive the
//! schedule with paused tokio time and no module process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aex_proto::{NodeError as WireError, NodeErrorKind, ToModule, Trigger};
use tokio::task::AbortHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tracing::{debug, info};

use crate::error::refuse;
use crate::queue::{self, TrySendError};
use crate::sync::lock;

/// The running triggers of one module.
#[derive(Default)]
pub(crate) struct Triggers {
    running: Mutex<Vec<Running>>,
}

struct Running {
    trigger: Trigger,
    task: AbortHandle,
}

/// What a trigger task needs of its module.
pub(crate) struct Target<'a> {
    /// The module's name, for errors and logs.
    pub(crate) name: &'a str,
    /// The periodic entries the module declared in its `Hello` (for early, friendly errors;
    /// the runtime checks again).
    pub(crate) periodic: &'a [String],
    /// The module's input queue.
    pub(crate) input: &'a queue::Sender,
    /// Cleared when the process ends.
    pub(crate) alive: &'a Arc<AtomicBool>,
}

impl Triggers {
    /// The triggers running now.
    pub(crate) fn current(&self) -> Vec<Trigger> {
        lock(&self.running)
            .iter()
            .map(|r| r.trigger.clone())
            .collect()
    }

    /// Replaces the triggers with `wanted`, keeping those that are unchanged.
    pub(crate) fn set(&self, target: Target<'_>, wanted: Vec<Trigger>) -> Result<(), WireError> {
        check(&target, &wanted)?;
        let mut running = lock(&self.running);
        running.retain(|r| {
            let keep = wanted.contains(&r.trigger);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for trigger in wanted {
            if running.iter().any(|r| r.trigger == trigger) {
                continue;
            }
            info!(
                module = target.name,
                entry = %trigger.entry,
                period_ms = trigger.period_ms,
                "periodic trigger installed"
            );
            let input = target.input.clone();
            let entry = trigger.entry.clone();
            let task = tokio::spawn(fire(
                target.name.to_owned(),
                trigger.clone(),
                target.alive.clone(),
                move || offer(&input, &entry),
            ))
            .abort_handle();
            running.push(Running { trigger, task });
        }
        Ok(())
    }
}

impl Drop for Triggers {
    fn drop(&mut self) {
        for r in lock(&self.running).drain(..) {
            r.task.abort();
        }
    }
}

/// Refuses a trigger list the module could not honour.
fn check(target: &Target<'_>, wanted: &[Trigger]) -> Result<(), WireError> {
    for (i, t) in wanted.iter().enumerate() {
        if !target.periodic.contains(&t.entry) {
            let list = if target.periodic.is_empty() {
                "none".to_owned()
            } else {
                target.periodic.join(", ")
            };
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "module `{}` declares no periodic entry `{}` (periodic entries: {list})",
                    target.name, t.entry
                ),
            ));
        }
        if t.period_ms < Trigger::MIN_PERIOD_MS {
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "period of {} ms for `{}.{}` is below the minimum of {} ms",
                    t.period_ms,
                    target.name,
                    t.entry,
                    Trigger::MIN_PERIOD_MS
                ),
            ));
        }
        if t.period_ms > Trigger::MAX_PERIOD_MS {
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "period of {} ms for `{}.{}` is above the maximum of {} ms",
                    t.period_ms,
                    target.name,
                    t.entry,
                    Trigger::MAX_PERIOD_MS
                ),
            ));
        }
        if wanted[..i].iter().any(|u| u.entry == t.entry) {
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!("two triggers for `{}.{}`", target.name, t.entry),
            ));
        }
    }
    Ok(())
}

/// What became of a tick offered to a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    /// Queued for the module.
    Sent,
    /// Skipped: the module is busy.
    Busy,
    /// The module's input is closed: no tick will ever reach it.
    Gone,
}

/// Queues a `Tick` for `entry` unless anything is still queued for the module: a busy module
/// gets its tick skipped rather than queued behind its other input.
fn offer(input: &queue::Sender, entry: &str) -> Offered {
    if input.is_closed() {
        return Offered::Gone;
    }
    if !input.is_empty() {
        return Offered::Busy;
    }
    let tick = ToModule::Tick {
        entry: entry.to_owned(),
    };
    match input.try_send(aex_proto::frame::encode(&tick)) {
        Ok(()) => Offered::Sent,
        Err(TrySendError::Full) => Offered::Busy,
        Err(TrySendError::Closed) => Offered::Gone,
    }
}

/// Offers a tick for `trigger.entry` every period, the first one period from now, while the
/// module runs; a timer that fell behind skips the periods it missed (one tick, then the
/// original phase), never bunching them.
async fn fire(
    module: String,
    trigger: Trigger,
    alive: Arc<AtomicBool>,
    mut offer: impl FnMut() -> Offered,
) {
    // `check` refuses longer periods; the clamp keeps the timer's arithmetic from
    // overflowing (a panic here would kill the trigger task) whoever calls this.
    let period = Duration::from_millis(trigger.period_ms.min(Trigger::MAX_PERIOD_MS));
    let mut timer = interval_at(Instant::now() + period, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        timer.tick().await;
        if !alive.load(Ordering::Relaxed) {
            break;
        }
        match offer() {
            Offered::Sent => {}
            Offered::Busy => debug!(module, entry = %trigger.entry, "module busy; tick skipped"),
            Offered::Gone => break,
        }
    }
}

#[cfg(test)]
#[path = "periodic_tests.rs"]
mod tests;
