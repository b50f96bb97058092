//! Waiting for room on a direct connection before `aex output` or `aex request` seals an event
//! ([`aex_proto::flow`]).
//!
//! The deployer is the source of its direct connections' events, so it holds a window there
//! like any sender: the bytes it sent that the module has not taken in yet. Deployer sessions
//! are short-lived, so the module's node keeps that window (per namespace, connection and
//! direction) and the deployer asks for it ([`aex_proto::NodeRequest::Window`]) before it
//! sends. Before it *seals*, in fact: sealing takes a counter from the state file, and an
//! event that is not sent must not take one (the module would count the skipped counter as a
//! lost event).
//!
//! While the window is full the deployer asks again, after pauses that start short (a module
//! that is merely busy takes an event in within milliseconds) and double up to
//! [`MAX_PAUSE`] (a stopped module is not asked hundreds of times a second), until the
//! caller's bound. The policy is a function of a [`Clock`] and of a closure that asks, so it
//! is tested without a node and without sleeping.

use std::time::{Duration, Instant};

/// How long `aex output` and `aex request` wait for room in a full window, unless told
/// otherwise (`--wait`, or `--timeout` for every node wait).
pub const WINDOW_WAIT: Duration = Duration::from_secs(5);

/// The first pause before asking again.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(2);

/// The longest pause between two questions.
pub(crate) const MAX_PAUSE: Duration = Duration::from_millis(100);

/// What the node says of the deployer's window on a direct connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The node keeps the window: the deployer may send while `credit` is above zero.
    Known {
        /// Bytes the deployer may still send.
        credit: i64,
        /// Bytes sent and not yet taken in by the module.
        in_flight: u64,
    },
    /// The node keeps no window (a node agent older than flow control): nothing is known.
    Unknown,
}

/// What waiting found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// The window has room: seal and send.
    Open,
    /// The node keeps no window: send without checking, as before flow control.
    Unchecked,
    /// The window was still full at the bound: send nothing.
    Full {
        /// Bytes in flight at the last answer.
        in_flight: u64,
    },
}

/// Time, as [`wait_for_room`] sees it: the real clock, or a test's.
pub(crate) trait Clock {
    /// Now.
    fn now(&self) -> Instant;
    /// Pauses for `pause`.
    fn sleep(&mut self, pause: Duration);
}

/// The real clock: [`Instant::now`] and [`std::thread::sleep`].
pub(crate) struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&mut self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

/// Asks for the window (`ask`) until it has room, the node turns out to keep none, or `wait`
/// has passed; a failure to ask ends the wait with that failure. The last question is asked
/// at the bound, so a window that opens just then is not missed; `wait` zero asks once.
pub(crate) fn wait_for_room<E>(
    wait: Duration,
    clock: &mut impl Clock,
    mut ask: impl FnMut() -> Result<Window, E>,
) -> Result<Room, E> {
    let deadline = clock.now() + wait;
    let mut pause = FIRST_PAUSE;
    loop {
        match ask()? {
            Window::Unknown => return Ok(Room::Unchecked),
            Window::Known { credit, .. } if credit > 0 => return Ok(Room::Open),
            Window::Known { in_flight, .. } => {
                let left = deadline.saturating_duration_since(clock.now());
                if left.is_zero() {
                    return Ok(Room::Full { in_flight });
                }
                clock.sleep(pause.min(left));
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that moves only when slept on, and records the pauses.
    struct FakeClock {
        now: Instant,
        pauses: Vec<Duration>,
    }

    impl FakeClock {
        fn new() -> FakeClock {
            FakeClock {
                now: Instant::now(),
                pauses: vec![],
            }
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.now
        }

        fn sleep(&mut self, pause: Duration) {
            self.now += pause;
            self.pauses.push(pause);
        }
    }

    const FULL: Window = Window::Known {
        credit: 0,
        in_flight: 4096,
    };

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn room_at_once_is_asked_once_and_waits_for_nothing() {
        let mut clock = FakeClock::new();
        let mut asked = 0;
        let room = wait_for_room::<()>(WINDOW_WAIT, &mut clock, || {
            asked += 1;
            Ok(Window::Known {
                credit: 1,
                in_flight: 65_535,
            })
        });
        assert_eq!(room, Ok(Room::Open));
        assert_eq!((asked, clock.pauses.len()), (1, 0));
    }

    #[test]
    fn a_full_window_is_asked_again_with_doubling_pauses_until_it_has_room() {
        let mut clock = FakeClock::new();
        let mut asked = 0;
        let room = wait_for_room::<()>(WINDOW_WAIT, &mut clock, || {
            asked += 1;
            Ok(if asked <= 9 {
                FULL
            } else {
                Window::Known {
                    credit: 200,
                    in_flight: 100,
                }
            })
        });
        assert_eq!(room, Ok(Room::Open));
        assert_eq!(
            clock.pauses,
            [2, 4, 8, 16, 32, 64, 100, 100, 100].map(MS),
            "pauses between the 10 questions"
        );
    }

    #[test]
    fn a_window_still_full_at_the_bound_is_full_and_the_last_question_is_at_the_bound() {
        let mut clock = FakeClock::new();
        let start = clock.now();
        let mut last_asked = start;
        let mut asked = 0;
        let wait = MS(250);
        let room = wait_for_room::<()>(wait, &mut clock, || {
            asked += 1;
            Ok(FULL)
        });
        assert_eq!(room, Ok(Room::Full { in_flight: 4096 }));
        // 2+4+8+16+32+64+100 = 226 ms, then what is left of the 250: 24 ms.
        assert_eq!(clock.pauses, [2, 4, 8, 16, 32, 64, 100, 24].map(MS));
        assert_eq!(asked, 9);
        last_asked += clock.pauses.iter().sum::<Duration>();
        assert_eq!(last_asked - start, wait);
    }

    #[test]
    fn zero_wait_asks_once() {
        let mut clock = FakeClock::new();
        let mut asked = 0;
        let room = wait_for_room::<()>(Duration::ZERO, &mut clock, || {
            asked += 1;
            Ok(Window::Known {
                credit: -40,
                in_flight: 70_000,
            })
        });
        assert_eq!(room, Ok(Room::Full { in_flight: 70_000 }));
        assert_eq!((asked, clock.pauses.len()), (1, 0));
    }

    #[test]
    fn a_node_without_windows_is_sent_to_unchecked_and_a_failure_ends_the_wait() {
        let mut clock = FakeClock::new();
        let room = wait_for_room::<()>(WINDOW_WAIT, &mut clock, || Ok(Window::Unknown));
        assert_eq!(room, Ok(Room::Unchecked));

        let mut asked = 0;
        let room = wait_for_room(WINDOW_WAIT, &mut clock, || {
            asked += 1;
            if asked < 3 {
                Ok(FULL)
            } else {
                Err("the node went away")
            }
        });
        assert_eq!(room, Err("the node went away"));
        assert_eq!(clock.pauses, [2, 4].map(MS));
    }
}
