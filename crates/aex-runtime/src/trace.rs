//! The event trace (`aex events`): the last [`TRACE_CAPACITY`] events this module sealed or
//! was handed, with what became of each.
//!
//! Recording is on the event path, so it costs a copy of a small entry into a ring and no
//! clock reading of its own: callers pass the instant they already read (the receive path
//! reads it for deadlines, the send path for flow control). Instants become Unix time only when
//! the trace is read, against one pair of readings taken when the trace was created.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aex_proto::{ConnId, Direction, Event, TraceEntry, TraceOutcome, TraceReport, TRACE_CAPACITY};

/// The ring of recent events.
pub(crate) struct Trace {
    entries: VecDeque<(Instant, TraceEntry)>,
    /// The sequence number of the last entry recorded.
    last: u64,
    /// An instant and the Unix time in milliseconds at that instant.
    base: (Instant, u64),
}

impl Default for Trace {
    fn default() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Trace {
            entries: VecDeque::with_capacity(TRACE_CAPACITY),
            last: 0,
            base: (Instant::now(), unix_ms),
        }
    }
}

impl Trace {
    /// Records what became of `event` at `at`.
    pub(crate) fn record(&mut self, event: &Event, at: Instant, outcome: TraceOutcome) {
        self.record_header(
            event.conn,
            event.dir,
            event.counter,
            event.ciphertext.len(),
            at,
            outcome,
        );
    }

    /// Records an event by its header (for one whose ciphertext was already taken).
    pub(crate) fn record_header(
        &mut self,
        conn: ConnId,
        dir: Direction,
        counter: u64,
        size: usize,
        at: Instant,
        outcome: TraceOutcome,
    ) {
        if self.entries.len() == TRACE_CAPACITY {
            self.entries.pop_front();
        }
        self.last += 1;
        self.entries.push_back((
            at,
            TraceEntry {
                seq: self.last,
                at_ms: 0,
                conn,
                dir,
                counter,
                size: u32::try_from(size).unwrap_or(u32::MAX),
                outcome,
            },
        ));
    }

    /// Marks the accepted event `counter` of `conn` as failed by the code it went to (the
    /// latest such entry, if the ring still holds it).
    pub(crate) fn failed(&mut self, conn: ConnId, counter: u64) {
        let entry = self
            .entries
            .iter_mut()
            .rev()
            .map(|(_, e)| e)
            .find(|e| e.conn == conn && e.counter == counter);
        if let Some(e) = entry {
            if let TraceOutcome::Accepted { gap } = e.outcome {
                e.outcome = TraceOutcome::Failed { gap };
            }
        }
    }

    /// The entries after sequence number `after`, oldest first, stamped with Unix time.
    pub(crate) fn since(&self, after: u64) -> TraceReport {
        TraceReport {
            last: self.last,
            entries: self.stamped(after),
        }
    }

    fn stamped(&self, after: u64) -> Vec<TraceEntry> {
        let (base, base_ms) = self.base;
        self.entries
            .iter()
            .filter(|(_, e)| e.seq > after)
            .map(|(at, e)| {
                // An instant before the base (a test clock) counts back from it.
                let at_ms = match at.checked_duration_since(base) {
                    Some(d) => base_ms.saturating_add(d.as_millis() as u64),
                    None => base_ms.saturating_sub(base.duration_since(*at).as_millis() as u64),
                };
                TraceEntry { at_ms, ..*e }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(counter: u64) -> Event {
        Event {
            conn: ConnId(3),
            dir: Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter,
            ciphertext: vec![0; 40],
        }
    }

    #[test]
    fn the_trace_keeps_the_last_entries_in_order_with_their_times() {
        let mut trace = Trace::default();
        let start = trace.base.0;
        for counter in 1..=(TRACE_CAPACITY as u64 + 10) {
            let at = start + Duration::from_millis(counter);
            trace.record(&event(counter), at, TraceOutcome::Accepted { gap: 0 });
        }
        let report = trace.since(0);
        assert_eq!(report.last, TRACE_CAPACITY as u64 + 10);
        let all = report.entries;
        assert_eq!(all.len(), TRACE_CAPACITY);
        // The ten oldest were overwritten: the first kept is entry 11.
        assert_eq!(all[0].seq, 11);
        assert_eq!(all[0].counter, 11);
        assert_eq!(all[0].at_ms, trace.base.1 + 11);
        assert!(all.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(all[0].size, 40);
        let last = trace.since(TRACE_CAPACITY as u64 + 9).entries;
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].counter, TRACE_CAPACITY as u64 + 10);
        assert!(trace.since(u64::MAX).entries.is_empty());
    }
}
