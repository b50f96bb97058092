//! Input the runtime holds before handling it, bounded in bytes: what the node can make a
//! module buffer is at most a few MiB (plus a window per receiving connection beyond 64 of
//! them), however much it sends.
//!
//! Two places hold input:
//! * the **inbox**, between the reader thread and the main loop (`link.rs`; a runtime that
//!   reads stdin on its main loop holds nothing there: it reads only when it is ready for the
//!   next message, and the pipe holds the rest). The reader takes
//!   room ([`Budget::take`]) before queueing a message and blocks when there is none, so it
//!   stops reading stdin: the pipe fills and the node's writes to this module wait (its
//!   per-module queue is bounded too). Nothing is dropped. The ceiling is [`inbox_ceiling`]:
//!   the windows this runtime grants its senders (`flow.rs`) fit in it with
//!   [`INBOX_SLACK`] to spare, so senders that keep to their credit never make the reader
//!   block. Backpressure was chosen over dropping because the runtime cannot tell, before
//!   opening it, an authentic event from junk; dropping at the ceiling would let junk push
//!   authentic events out.
//! * the **deferred queue**, where messages wait while module code waits for a reply, a device
//!   answer or credit (`core.rs`). Events that can never be accepted (unknown connection,
//!   wrong direction or kind, stale counter, bad tag) are refused and counted when they arrive
//!   instead of queued, as they would be in their turn (`Conns::check`). What may still be
//!   authentic is queued. An event joining the queue is credited at once while it holds less
//!   than [`CREDIT_DEFERRED_BELOW`] (so modules that wait on each other keep flowing), later
//!   ones when they leave it (so senders stop while module code waits). Past
//!   [`DEFERRED_BYTES`] (a node that ignores credit) the wait ends at once with
//!   [`Error::Overloaded`](crate::Error::Overloaded), module code goes on, and the queue
//!   drains in order. Nothing queued is dropped, and the reply or answer waited for is never
//!   queued.
//!
//! A message counts its heap bytes plus the size of its value ([`footprint`]). One message
//! always fits (a frame is at most `MAX_FRAME_LEN`, 1 MiB), so each bound may be passed by one
//! message: input held is at most the inbox ceiling + `DEFERRED_BYTES` + 2 MiB plus the frame
//! the reader is decoding.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use aex_proto::ToModule;

/// Bytes of decoded messages the reader may queue ahead of the main loop: the windows the
/// runtime grants share it (`flow.rs`). With more receiving connections than fit at the
/// initial window each, the inbox grows to hold their windows ([`inbox_ceiling`]).
pub(crate) const INBOX_BYTES: usize = 4 << 20;

/// Room in the inbox beyond the windows: commands, ticks, credit and device answers, which no
/// window bounds.
pub(crate) const INBOX_SLACK: usize = 1 << 20;

/// Bytes of messages that may wait behind a blocking call (a request, a device access, an
/// emit waiting for credit) before the wait gives up with `Overloaded`.
pub(crate) const DEFERRED_BYTES: usize = 8 << 20;

/// While the deferred queue holds less than this, an event that joins it is credited at once
/// (so modules that wait on each other keep flowing); past it, only when it leaves the queue,
/// so a sender cannot fill the queue while module code waits.
pub(crate) const CREDIT_DEFERRED_BELOW: usize = 2 << 20;

/// The inbox's ceiling for `receiving` connections, each with a window of `target` bytes.
pub(crate) fn inbox_ceiling(receiving: usize, target: u32) -> usize {
    let windows = receiving.saturating_mul(target as usize);
    windows.max(INBOX_BYTES).saturating_add(INBOX_SLACK)
}

/// What holding `msg` costs, in bytes.
pub(crate) fn footprint(msg: &ToModule) -> usize {
    let heap = match msg {
        ToModule::Event(event) => event.ciphertext.len(),
        ToModule::Command(sealed) => sealed.ciphertext.len(),
        ToModule::Tick { entry } => return tick_footprint(entry),
        ToModule::Provision { kind, .. } => kind.len(),
        ToModule::DeviceReply { result, .. } => result.as_ref().map_or_else(String::len, |_| 0),
        _ => 0,
    };
    std::mem::size_of::<ToModule>() + heap
}

/// What holding a tick of `entry` costs, in bytes (the reader queues ticks by their entry).
pub(crate) fn tick_footprint(entry: &str) -> usize {
    std::mem::size_of::<ToModule>() + entry.len()
}

/// The room left in the inbox, shared by the reader thread and the main loop.
#[derive(Debug)]
pub(crate) struct Budget {
    state: Mutex<Room>,
    freed: Condvar,
}

/// What [`Budget`] guards.
#[derive(Debug)]
struct Room {
    used: usize,
    ceiling: usize,
    /// The reader waits for room: only then does a give need to wake it (a wake-up is a
    /// system call, and a give happens for every message).
    waiting: bool,
}

impl Budget {
    /// A budget of `ceiling` bytes.
    pub(crate) fn new(ceiling: usize) -> Self {
        Budget {
            state: Mutex::new(Room {
                used: 0,
                ceiling,
                waiting: false,
            }),
            freed: Condvar::new(),
        }
    }

    /// Takes `bytes`, blocking until they fit (at once into an empty inbox).
    pub(crate) fn take(&self, bytes: usize) {
        let mut room = self.lock();
        while room.used > 0 && room.used.saturating_add(bytes) > room.ceiling {
            room.waiting = true;
            room = self
                .freed
                .wait(room)
                .unwrap_or_else(PoisonError::into_inner);
        }
        room.waiting = false;
        room.used += bytes;
    }

    /// Gives back `bytes` the main loop took out of the inbox.
    pub(crate) fn give(&self, bytes: usize) {
        let mut room = self.lock();
        room.used = room.used.saturating_sub(bytes);
        if room.waiting {
            self.freed.notify_all();
        }
    }

    /// Changes the ceiling (the windows granted changed, `flow.rs`).
    pub(crate) fn set_ceiling(&self, ceiling: usize) {
        let mut room = self.lock();
        if room.ceiling != ceiling {
            room.ceiling = ceiling;
            if room.waiting {
                self.freed.notify_all();
            }
        }
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.lock().used
    }

    fn lock(&self) -> MutexGuard<'_, Room> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Messages waiting for the current call to return, in arrival order, each with whether its
/// credit was granted already (see [`CREDIT_DEFERRED_BELOW`]).
#[derive(Default)]
pub(crate) struct Deferred {
    queue: VecDeque<(ToModule, bool)>,
    bytes: usize,
    /// Commands among them: while there are any, a later event may find other keys in its
    /// turn than now, so it cannot be judged on arrival.
    commands: usize,
}

impl Deferred {
    /// Queues `msg`, `credited` or not; `false` once the queue holds [`DEFERRED_BYTES`] or
    /// more.
    pub(crate) fn push(&mut self, msg: ToModule, credited: bool) -> bool {
        self.bytes += footprint(&msg);
        self.commands += usize::from(matches!(msg, ToModule::Command(_)));
        self.queue.push_back((msg, credited));
        self.bytes < DEFERRED_BYTES
    }

    /// The oldest message, and whether its credit was granted already.
    pub(crate) fn pop(&mut self) -> Option<(ToModule, bool)> {
        let (msg, credited) = self.queue.pop_front()?;
        self.bytes -= footprint(&msg);
        self.commands -= usize::from(matches!(msg, ToModule::Command(_)));
        Some((msg, credited))
    }

    /// Whether an event joining the queue now is credited at once.
    pub(crate) fn credits_on_arrival(&self) -> bool {
        self.bytes < CREDIT_DEFERRED_BELOW
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a command waits (see the field).
    pub(crate) fn holds_command(&self) -> bool {
        self.commands > 0
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The waiting messages, oldest first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ToModule> {
        self.queue.iter().map(|(msg, _)| msg)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn event(len: usize) -> ToModule {
        ToModule::Event(aex_proto::Event {
            conn: aex_proto::ConnId(1),
            dir: aex_proto::Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter: 1,
            ciphertext: vec![0; len],
        })
    }

    #[test]
    fn the_deferred_queue_counts_bytes_and_commands_in_and_out() {
        let mut d = Deferred::default();
        assert!(d.push(event(1000), true));
        let command = ToModule::Command(aex_proto::Sealed {
            counter: 1,
            ciphertext: vec![0; 10],
        });
        assert!(d.push(command, false));
        assert!(d.holds_command());
        assert_eq!(d.bytes(), 1010 + 2 * std::mem::size_of::<ToModule>());
        // Past the ceiling by the message that crossed it, and says so.
        assert!(d.credits_on_arrival());
        assert!(!d.push(event(DEFERRED_BYTES), false));
        assert!(!d.credits_on_arrival());
        d.pop();
        d.pop();
        assert!(!d.holds_command());
        assert!(d.pop().is_some() && d.is_empty());
        assert_eq!(d.bytes(), 0);
    }

    #[test]
    fn take_blocks_until_the_main_loop_gives_room() {
        let budget = Arc::new(Budget::new(100));
        budget.take(60);
        // Over the ceiling into an empty inbox: a message larger than the budget still goes.
        let big = Budget::new(10);
        big.take(1000);
        assert_eq!(big.used(), 1000);

        let (done, taken) = std::sync::mpsc::sync_channel(1);
        let reader = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                budget.take(60);
                done.send(()).unwrap();
            })
        };
        // 60 + 60 > 100: the second take waits for room, however long that takes.
        assert!(taken.recv_timeout(Duration::from_millis(50)).is_err());
        budget.give(60);
        taken
            .recv_timeout(Duration::from_secs(10))
            .expect("the blocked take to go through once room was given");
        reader.join().unwrap();
        assert_eq!(budget.used(), 60);
    }
}
