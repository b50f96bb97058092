//! The runtime's one source of time, so that tests can replace it.
//!
//! Every time-dependent decision (deadline due times and the once-per-period rule in
//! `deadline.rs`, a tick's lateness in `serve.rs`, request and device timeouts in `core.rs`)
//! reads [`Clock::now`], and the only blocking wait with a timeout (`link.rs`) asks
//! [`Clock::wait_until`] how long it may block. In a module this is the OS monotonic clock
//! ([`Instant`]), which the untrusted node cannot set.
//!
//! Unit tests swap in a manual clock: it moves only when the test calls `advance`, or when the
//! runtime would wait for input with nothing queued. Then nothing can arrive before the
//! deadline (a test queues its input before driving the runtime), so the clock jumps to the
//! deadline and the wait times out at once, as paused time does in an async runtime. A request
//! timeout or a silent deadline thus takes no real time, and tests assert exact counts at exact
//! instants. The manual clock exists only in `cfg(test)` builds: a module's runtime has no way
//! to run on anything but the OS clock.

use std::time::{Duration, Instant};

/// Where the runtime reads the time: the OS monotonic clock (the default, and the only one in
/// a module), or a test's manual clock.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clock {
    /// The manual clock's reading, shared by its clones.
    #[cfg(test)]
    manual: Option<std::sync::Arc<std::sync::Mutex<Instant>>>,
}

impl Clock {
    /// The current time.
    pub(crate) fn now(&self) -> Instant {
        #[cfg(test)]
        if let Some(manual) = &self.manual {
            return *lock(manual);
        }
        Instant::now()
    }

    /// How long a wait for input, made when nothing is queued, may block to end by `deadline`.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Duration {
        #[cfg(test)]
        if let Some(manual) = &self.manual {
            // Nothing arrives in a test while it waits: the deadline passes at once.
            let mut now = lock(manual);
            *now = (*now).max(deadline);
            return Duration::ZERO;
        }
        deadline.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
impl Clock {
    /// A manual clock that starts now and moves only when advanced (or when the runtime waits
    /// with nothing queued, see the file's doc).
    pub(crate) fn manual() -> Self {
        Clock {
            manual: Some(std::sync::Arc::new(std::sync::Mutex::new(Instant::now()))),
        }
    }

    /// Moves a manual clock forward by `by` (seen by all its clones).
    pub(crate) fn advance(&self, by: Duration) {
        let manual = self.manual.as_ref().expect("only a manual clock advances");
        *lock(manual) += by;
    }
}

#[cfg(test)]
fn lock(manual: &std::sync::Mutex<Instant>) -> std::sync::MutexGuard<'_, Instant> {
    manual
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_or_waited_on() {
        let clock = Clock::manual();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.clone().advance(Duration::from_millis(3));
        assert_eq!(clock.now(), t0 + Duration::from_millis(3));
        // A wait for a deadline already passed does not move it back.
        assert_eq!(clock.wait_until(t0), Duration::ZERO);
        assert_eq!(clock.now(), t0 + Duration::from_millis(3));
        assert_eq!(
            clock.wait_until(t0 + Duration::from_secs(5)),
            Duration::ZERO
        );
        assert_eq!(clock.now(), t0 + Duration::from_secs(5));
    }

    #[test]
    fn the_os_clock_waits_for_real() {
        let clock = Clock::default();
        let wait = clock.wait_until(clock.now() + Duration::from_secs(60));
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        assert_eq!(clock.wait_until(clock.now()), Duration::ZERO);
    }
}
