//! Tests of the periodic triggers' schedule in paused tokio time: the clock moves only when
//! every task waits (or when a test advances it), so tick times are exact and nothing depends
//! on the machine's speed. A "module" here is its input queue, read (or not) by the test.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aex_proto::{NodeError as WireError, ToModule, Trigger};
use tokio::time::{advance, sleep_until, Instant};

use super::*;
use crate::queue;

/// A module as its triggers see it.
struct Fake {
    periodic: Vec<String>,
    input: queue::Sender,
    alive: Arc<AtomicBool>,
    triggers: Triggers,
}

/// A module declaring the periodic entries `tick` and `tock`, and its input queue.
fn fake() -> (Fake, queue::Receiver) {
    let (input, rx) = queue::channel(64 * 1024);
    let fake = Fake {
        periodic: vec!["tick".into(), "tock".into()],
        input,
        alive: Arc::new(AtomicBool::new(true)),
        triggers: Triggers::default(),
    };
    (fake, rx)
}

impl Fake {
    /// A `Periodic` request with `(entry, period_ms)` triggers.
    fn set(&self, triggers: &[(&str, u64)]) -> Result<(), WireError> {
        let target = Target {
            name: "m",
            periodic: &self.periodic,
            input: &self.input,
            alive: &self.alive,
        };
        let wanted = triggers
            .iter()
            .map(|(entry, period_ms)| Trigger {
                entry: (*entry).into(),
                period_ms: *period_ms,
            })
            .collect();
        self.triggers.set(target, wanted)
    }

    /// Trigger tasks still holding the module's input (each running timer holds one).
    fn timers(&self) -> usize {
        self.input.strong_count() - 1
    }
}

/// Milliseconds of paused time since `start`.
fn ms_since(start: Instant) -> u64 {
    u64::try_from(Instant::now().duration_since(start).as_millis()).unwrap_or(u64::MAX)
}

/// The instant `ms` milliseconds after `start`.
fn at(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

/// Ticks received, as (entry, milliseconds since start).
type Seen = Arc<Mutex<Vec<(String, u64)>>>;

/// A module that takes each input as soon as it is queued, noting when each tick came.
fn read_at_once(mut rx: queue::Receiver, start: Instant) -> Seen {
    let seen = Seen::default();
    let noted = seen.clone();
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if let ToModule::Tick { entry } = decode(&frame) {
                noted.lock().unwrap().push((entry, ms_since(start)));
            }
        }
    });
    seen
}

/// When `entry` ticked.
fn times(seen: &Seen, entry: &str) -> Vec<u64> {
    let seen = seen.lock().unwrap();
    seen.iter()
        .filter(|(e, _)| e == entry)
        .map(|(_, t)| *t)
        .collect()
}

/// Everything queued for the module, taken out.
fn take_queued(rx: &mut queue::Receiver) -> Vec<ToModule> {
    std::iter::from_fn(|| rx.try_recv())
        .map(|f| decode(&f))
        .collect()
}

/// A queued frame's message.
fn decode(frame: &[u8]) -> ToModule {
    aex_proto::frame::decode(&frame[aex_proto::frame::LEN_PREFIX..]).unwrap()
}

fn tick() -> ToModule {
    ToModule::Tick {
        entry: "tick".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_come_exactly_every_period() {
    let (m, rx) = fake();
    let start = Instant::now();
    // Periods that never coincide here: two ticks due at once find each other queued, and
    // the second is skipped as for a busy module.
    m.set(&[("tick", 100), ("tock", 270)]).unwrap();
    let seen = read_at_once(rx, start);
    sleep_until(at(start, 1_050)).await;
    assert_eq!(
        times(&seen, "tick"),
        [100, 200, 300, 400, 500, 600, 700, 800, 900, 1_000]
    );
    assert_eq!(times(&seen, "tock"), [270, 540, 810]);
    assert_eq!(m.timers(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_same_trigger_again_keeps_its_phase_and_its_one_timer() {
    let (m, rx) = fake();
    let start = Instant::now();
    m.set(&[("tick", 100)]).unwrap();
    let seen = read_at_once(rx, start);
    sleep_until(at(start, 50)).await;
    m.set(&[("tick", 100)]).unwrap();
    sleep_until(at(start, 130)).await;
    // Adding a trigger keeps the unchanged one too; the new one starts its own phase.
    m.set(&[("tock", 300), ("tick", 100)]).unwrap();
    sleep_until(at(start, 1_050)).await;
    // A second `tick` timer, restarted at 50 or 130, would add ticks at x50 or x30.
    assert_eq!(
        times(&seen, "tick"),
        [100, 200, 300, 400, 500, 600, 700, 800, 900, 1_000]
    );
    assert_eq!(times(&seen, "tock"), [430, 730, 1_030]);
    assert_eq!(m.timers(), 2);
}

#[tokio::test(start_paused = true)]
async fn removed_triggers_stop_and_a_changed_one_restarts() {
    let (m, rx) = fake();
    let start = Instant::now();
    m.set(&[("tick", 100)]).unwrap();
    let seen = read_at_once(rx, start);
    sleep_until(at(start, 350)).await;
    // A changed period replaces the timer: the new one counts from now.
    m.set(&[("tick", 200)]).unwrap();
    sleep_until(at(start, 800)).await;
    assert_eq!(times(&seen, "tick"), [100, 200, 300, 550, 750]);
    assert_eq!(m.timers(), 1);

    m.set(&[]).unwrap();
    sleep_until(at(start, 5_000)).await;
    assert_eq!(times(&seen, "tick"), [100, 200, 300, 550, 750]);
    // No timer holds the module's input any more: none can ever tick again.
    assert_eq!(m.timers(), 0);
}

#[tokio::test(start_paused = true)]
async fn triggers_end_with_the_module() {
    // The process ended: its timers stop at their next period.
    let (m, rx) = fake();
    let start = Instant::now();
    m.set(&[("tick", 100), ("tock", 120)]).unwrap();
    let seen = read_at_once(rx, start);
    sleep_until(at(start, 150)).await;
    m.alive.store(false, Ordering::Relaxed);
    sleep_until(at(start, 1_000)).await;
    assert_eq!(seen.lock().unwrap().len(), 2, "{seen:?}");
    assert_eq!(m.timers(), 0);

    // The module was unloaded: dropping its triggers ends them at once.
    let (m, _rx) = fake();
    m.set(&[("tick", 100), ("tock", 120)]).unwrap();
    tokio::task::yield_now().await;
    assert_eq!(m.timers(), 2);
    let Fake {
        input, triggers, ..
    } = m;
    drop(triggers);
    tokio::task::yield_now().await;
    assert_eq!(input.strong_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_busy_module_has_its_ticks_skipped_not_queued() {
    let (m, mut rx) = fake();
    let start = Instant::now();
    m.set(&[("tick", 100)]).unwrap();
    // The module reads nothing: the tick of 100 waits, those of 200 to 500 are skipped.
    sleep_until(at(start, 550)).await;
    assert_eq!(take_queued(&mut rx), [tick()]);
    // Reading its input brings no backlog: the next tick comes on time.
    sleep_until(at(start, 599)).await;
    assert_eq!(take_queued(&mut rx), []);
    sleep_until(at(start, 650)).await;
    assert_eq!(take_queued(&mut rx), [tick()]);

    // Any other input waiting makes the module busy too.
    m.input
        .try_send(aex_proto::frame::encode(&ToModule::Stats))
        .unwrap();
    sleep_until(at(start, 750)).await;
    assert_eq!(take_queued(&mut rx), [ToModule::Stats]);
    sleep_until(at(start, 850)).await;
    assert_eq!(take_queued(&mut rx), [tick()]);
}

#[tokio::test(start_paused = true)]
async fn missed_periods_are_skipped_not_bunched() {
    // The timer alone, offering to a module that always takes the tick at once.
    let start = Instant::now();
    let offered = Arc::new(Mutex::new(Vec::new()));
    let noted = offered.clone();
    let alive = Arc::new(AtomicBool::new(true));
    let trigger = Trigger {
        entry: "tick".into(),
        period_ms: 100,
    };
    tokio::spawn(fire("m".into(), trigger, alive, move || {
        noted.lock().unwrap().push(ms_since(start));
        Offered::Sent
    }));
    tokio::task::yield_now().await;
    // The node stalls for three and a half periods: the timer wakes late, once.
    advance(Duration::from_millis(350)).await;
    sleep_until(at(start, 460)).await;
    // One tick for the three missed periods, then the original phase (400, not 450); a
    // bunching timer would offer 350, 350, 350, 400.
    assert_eq!(*offered.lock().unwrap(), [350, 400]);
}

#[tokio::test(start_paused = true)]
async fn an_overflowing_period_is_refused_and_cannot_kill_a_timer() {
    let (m, _rx) = fake();
    let e = m.set(&[("tick", u64::MAX)]).unwrap_err();
    assert!(e.message.contains("above the maximum"), "{e}");
    assert_eq!(m.timers(), 0);
    m.set(&[("tick", Trigger::MAX_PERIOD_MS)]).unwrap();

    // The timer itself, given what `check` refuses, neither panics nor offers a tick.
    let offered = Arc::new(Mutex::new(0));
    let noted = offered.clone();
    let trigger = Trigger {
        entry: "tick".into(),
        period_ms: u64::MAX,
    };
    let alive = Arc::new(AtomicBool::new(true));
    let task = tokio::spawn(fire("m".into(), trigger, alive, move || {
        *noted.lock().unwrap() += 1;
        Offered::Sent
    }));
    tokio::task::yield_now().await;
    advance(Duration::from_secs(3600)).await;
    tokio::task::yield_now().await;
    assert!(!task.is_finished(), "the trigger task ended (panicked?)");
    assert_eq!(*offered.lock().unwrap(), 0);
    task.abort();
}
