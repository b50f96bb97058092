//! A persistent module's events between sealing and sending (docs/PROTOCOL.md §9, "Commit").
//!
//! A persistent module's emits are held until the state that made them is committed, so the
//! window of their connection cannot gate them when they are sealed: the receiver grants
//! credit only for events it received, and held events are not sent yet. Waiting for credit
//! there would wait for ever (it used to stall for the emit timeout, then fail). Instead:
//!
//! * **sealing**: an emit on a connection is admitted while the connection's *outbox* is empty
//!   (every event released by earlier commits went out) and the bytes sealed and not yet sent
//!   there stay below [`HELD_ALLOWANCE`]; it is sealed at once (its counter and its credit are
//!   spent) and held. With events still in the outbox, the emit waits for credit as any emit
//!   does: the outbox drains as credit comes, so a slow receiver slows a persistent sender
//!   down exactly as it slows any other;
//! * **release**: after the commit, the held events go to their connection's outbox, in
//!   order, and leave it while the connection's window counts less than a window of sent,
//!   unanswered bytes (`credit + unsent > 0`: credit was spent at sealing), with the stalled
//!   window's probe as for any emit (`flow.rs`);
//! * a handler that emits more than [`HELD_ALLOWANCE`] on one connection before its state is
//!   committed gets [`crate::Error::HeldFull`] at once for the rest.
//!
//! Events that were released but not sent when the process ends are lost like events lost on
//! the network: their counters were committed as used, so the receiver sees a gap and gives
//! their credit back (`flow.rs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aex_proto::{flow, ConnId, Event};

use super::{Conn, Conns};

/// Bytes ([`flow::cost`]) a persistent module may seal on one connection and not send yet:
/// held for the next commit, or released and waiting for credit.
pub(crate) const HELD_ALLOWANCE: u64 = 4 << 20;

/// A connection's events sealed and not yet sent.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Released by a commit, waiting for credit, in counter order.
    events: VecDeque<Event>,
    /// The cost of every event sealed here and not sent: held ones and the queue's.
    unsent: u64,
}

/// Whether a held emit may be sealed on a connection.
pub(super) enum Admission {
    Yes,
    /// Earlier events still wait for credit: wait for it too.
    Blocked,
    /// [`HELD_ALLOWANCE`] is sealed and unsent already.
    Full,
}

impl Conn {
    /// Whether a persistent module's emit may be sealed here now.
    pub(super) fn hold_admission(&self) -> Admission {
        if !self.outbox.events.is_empty() {
            Admission::Blocked
        } else if self.outbox.unsent >= HELD_ALLOWANCE {
            Admission::Full
        } else {
            Admission::Yes
        }
    }

    /// Counts an event sealed to be held.
    pub(super) fn held(&mut self, event: &Event) {
        self.outbox.unsent += u64::from(flow::cost(event));
    }
}

impl Conns {
    /// Whether a persistent module's emit on `conn` may be sealed now (its outbox is empty).
    pub(crate) fn outbox_clear(&self, conn: ConnId) -> bool {
        self.map
            .get(&conn)
            .is_none_or(|c| c.outbox.events.is_empty())
    }

    /// Queues an event a commit released on its connection's outbox; `false` if it is not a
    /// held emit of a connection still keyed (revoked or re-keyed since: then it is dropped,
    /// as a revoked connection drops everything).
    pub(crate) fn release(&mut self, event: Event) -> bool {
        match self.map.get_mut(&event.conn) {
            Some(conn) if conn.outbox.unsent > 0 => {
                conn.outbox.events.push_back(event);
                true
            }
            _ => false,
        }
    }

    /// The released events that may go out at `now`, in order per connection: while the
    /// window has room for sent bytes, and one per `probe_every` on a stalled window.
    pub(crate) fn drain(&mut self, now: Instant, probe_every: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        for conn in self.map.values_mut() {
            while let Some(front) = conn.outbox.events.front() {
                let cost = flow::cost(front);
                if !conn
                    .sending
                    .admit_sent(conn.outbox.unsent, now, probe_every)
                {
                    break;
                }
                conn.outbox.unsent = conn.outbox.unsent.saturating_sub(u64::from(cost));
                out.extend(conn.outbox.events.pop_front());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use aex_proto::flow::{Credit, INITIAL_WINDOW};
    use aex_proto::{Direction, Interface, Role, WireAlgorithm, WireKey};

    use super::*;

    fn persistent_output() -> Conns {
        let mut conns = Conns::default();
        conns.persist();
        let interface = Interface {
            outputs: vec!["out".into()],
            ..Interface::default()
        };
        conns
            .install(
                &interface,
                ConnId(1),
                Role::Output("out".into()),
                WireAlgorithm::AesGcm,
                WireKey([7; 32]),
            )
            .unwrap();
        // A commit reserved counters.
        let sealed = conns.export(1 << 20);
        conns.committed(&sealed);
        conns
    }

    /// Held emits go past the window: a handler may emit more than a window before its
    /// commit; released, they leave a window at a time, the rest as credit comes.
    #[test]
    fn held_emits_pass_the_window_and_leave_as_credit_comes() {
        let mut conns = persistent_output();
        let now = Instant::now();
        let probe = Duration::from_secs(5);
        let payload = [0u8; 1000];
        let mut sealed = vec![];
        while sealed.len() < 200 {
            let s = conns.seal_on(&[ConnId(1)], &payload, now, probe);
            assert!(s.blocked.is_empty() && s.full.is_empty(), "{s:?}");
            sealed.extend(s.events);
        }
        let cost = flow::cost(&sealed[0]);
        assert!(200 * cost > INITIAL_WINDOW, "more than a window is held");
        // Nothing released yet: nothing to send.
        assert!(conns.drain(now, probe).is_empty());
        for event in sealed {
            assert!(conns.release(event));
        }
        let first = conns.drain(now, probe);
        assert_eq!(first.len() as u32, INITIAL_WINDOW.div_ceil(cost));
        // The next emit waits: events released earlier still wait for credit.
        let s = conns.seal_on(&[ConnId(1)], &payload, now, probe);
        assert_eq!(s.blocked, vec![ConnId(1)]);
        assert!(!conns.outbox_clear(ConnId(1)));
        // Credit for what was received lets the rest out, in order.
        let mut sent = first;
        while sent.len() < 200 {
            let bytes = cost * 20;
            conns.credit(&Credit {
                conn: ConnId(1),
                dir: Direction::Forward,
                bytes,
                dropped: 0,
            });
            let more = conns.drain(now, probe);
            assert!(!more.is_empty());
            sent.extend(more);
        }
        assert!(sent.windows(2).all(|w| w[0].counter + 1 == w[1].counter));
        assert!(conns.outbox_clear(ConnId(1)));
    }

    /// What a handler may hold on one connection is bounded: past it, emits fail at once.
    #[test]
    fn held_emits_are_bounded_in_bytes() {
        let mut conns = persistent_output();
        let now = Instant::now();
        let payload = vec![0u8; 64 * 1024];
        let mut held = 0u64;
        loop {
            let s = conns.seal_on(&[ConnId(1)], &payload, now, Duration::from_secs(5));
            if !s.full.is_empty() {
                break;
            }
            held += u64::from(flow::cost(&s.events[0]));
        }
        assert!(
            (HELD_ALLOWANCE..HELD_ALLOWANCE + 70 * 1024).contains(&held),
            "{held}"
        );
    }
}
