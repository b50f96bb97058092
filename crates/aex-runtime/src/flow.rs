//! Flow control on the module's side: the credit this module holds for what it sends, and the
//! credit it grants for what it receives (the protocol: `aex_proto::flow`, docs/PROTOCOL.md
//! "Flow control").
//!
//! Invariants this file owns:
//! * **sending**: an event goes out on a (connection, direction) only while the credit there
//!   is above zero, and costs [`flow::cost`] bytes; the credit starts at
//!   [`flow::INITIAL_WINDOW`] when the key is installed. So what one connection has in flight
//!   is at most its window plus one event, however fast module code emits;
//! * **receiving**: the runtime grants credit for what it *took in* (out of its inbox, before
//!   module code runs on it), up to a target window per connection sized so that all its
//!   connections' windows fit its inbox ([`target_window`]). It grants in batches (a quarter
//!   window), but never sits on credit longer than [`GRANT_AFTER`] once an event was taken in,
//!   so a slow receiver still hands credit back at its own pace and a blocked sender is never
//!   left without news for longer than one of the receiver's calls;
//! * **loss does not shrink a window for good.** Events lost on the way without a node
//!   noticing (written into a connection that broke) never reach the receiver, so nobody would
//!   give their credit back. An authentic event whose counter skips `n` reveals them: the
//!   receiver grants their cost at once (estimated from the event at hand, at most a window).
//!   And a sender whose wait for credit ran out (stalled) sends one event regardless every
//!   `probe_every` (the emit timeout), so lost events at the end of a stream, which no later
//!   event could reveal, are revealed by the probe. A receiver that is merely slow gets one
//!   event beyond its window per emit timeout.
//!
//! Credit is not authenticated: a node can withhold it (the sender waits, then
//! [`Error::WindowFull`](crate::Error::WindowFull)) or invent it (the sender sends what the
//! node must then queue or drop). Neither can forge an event.

use std::time::{Duration, Instant};

use aex_proto::flow::{self, Credit, INITIAL_WINDOW, MAX_WINDOW};
use aex_proto::{ConnId, Direction};

use crate::backlog::INBOX_BYTES;

/// Longest a receiver sits on credit it owes once it took an event in (unless the batch fills
/// first): a slow receiver grants per event, a fast one per quarter window.
pub(crate) const GRANT_AFTER: Duration = Duration::from_millis(10);

/// The largest credit a sender keeps: a node inventing credit cannot make it overflow, and a
/// sender with that much credit still stops at some point.
const CREDIT_CAP: i64 = 1 << 40;

/// The window a receiver with `receiving` keyed connections keeps open on each: its inbox
/// shared between them, at least [`INITIAL_WINDOW`] (what every sender starts with anyway) and
/// at most [`MAX_WINDOW`].
pub(crate) fn target_window(receiving: usize) -> u32 {
    let share = INBOX_BYTES / receiving.max(1);
    u32::try_from(share)
        .unwrap_or(MAX_WINDOW)
        .clamp(INITIAL_WINDOW, MAX_WINDOW)
}

/// The credit a sender holds on one (connection, direction).
#[derive(Debug)]
pub(crate) struct SendWindow {
    credit: i64,
    /// Since when a wait for credit here ran out with no credit coming since (or the last
    /// probe): emits fail at once instead of waiting again, so a node that withholds credit
    /// delays the module once, not per event; one event goes out per `probe_every`.
    stalled: Option<Instant>,
}

impl Default for SendWindow {
    fn default() -> Self {
        SendWindow {
            credit: i64::from(INITIAL_WINDOW),
            stalled: None,
        }
    }
}

impl SendWindow {
    /// Whether an event may go out now.
    pub(crate) fn open(&self) -> bool {
        self.credit > 0
    }

    /// Whether an event may go out at `now`: with credit, or as a stalled window's probe, at
    /// most one per `probe_every` (the probe restarts the period).
    pub(crate) fn admit(&mut self, now: Instant, probe_every: Duration) -> bool {
        self.admit_sent(0, now, probe_every)
    }

    /// [`SendWindow::admit`] for a sender that spent its credit when it sealed events, of
    /// which `unsent` bytes have not gone out yet (a persistent module's, `conn/outbox.rs`):
    /// the window counts only what was sent.
    pub(crate) fn admit_sent(&mut self, unsent: u64, now: Instant, probe_every: Duration) -> bool {
        let unsent = i64::try_from(unsent).unwrap_or(i64::MAX);
        if self.credit.saturating_add(unsent) > 0 {
            return true;
        }
        match self.stalled {
            Some(since) if now.saturating_duration_since(since) >= probe_every => {
                self.stalled = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Accounts for an event of `cost` bytes that went out.
    pub(crate) fn spend(&mut self, cost: u32) {
        self.credit -= i64::from(cost);
    }

    /// Adds credit the receiver granted (or a node returned for events it dropped).
    pub(crate) fn grant(&mut self, bytes: u32) {
        self.credit = (self.credit + i64::from(bytes)).min(CREDIT_CAP);
        if bytes > 0 {
            self.stalled = None;
        }
    }

    /// Whether a wait for credit ran out with none arriving since.
    pub(crate) fn stalled(&self) -> bool {
        self.stalled.is_some()
    }

    /// Marks a wait for credit that ran out at `now`.
    pub(crate) fn stall(&mut self, now: Instant) {
        self.stalled = Some(now);
    }

    /// The credit left (below zero after an event larger than what was left).
    #[cfg(test)]
    pub(crate) fn credit(&self) -> i64 {
        self.credit
    }
}

/// What a receiver granted on one (connection, direction), by its own count.
#[derive(Debug)]
pub(crate) struct RecvWindow {
    /// Credit the sender holds or has in flight: granted (the initial window included) minus
    /// taken in.
    outstanding: i64,
    /// When the oldest event taken in since the last grant was taken in.
    owed_since: Option<Instant>,
    /// Lost events were revealed: grant what is owed at the next chance, whatever its size.
    urgent: bool,
}

impl Default for RecvWindow {
    fn default() -> Self {
        RecvWindow {
            outstanding: i64::from(INITIAL_WINDOW),
            owed_since: None,
            urgent: false,
        }
    }
}

impl RecvWindow {
    /// Accounts for `n` events lost on the way, revealed by an authentic event of `cost` bytes
    /// whose counter skipped them: their cost is estimated from it, at most a `target` window.
    pub(crate) fn lost(&mut self, n: u64, cost: u32, target: u32) {
        let most = u64::from(target / cost.max(1)) + 1;
        let bytes = n.min(most) * u64::from(cost);
        self.outstanding -= i64::try_from(bytes).unwrap_or(i64::MAX);
        self.urgent = true;
    }

    /// Accounts for an event of `cost` bytes taken in at `now`; the credit to grant, if it is
    /// time (a quarter of `target` owed, or some owed for [`GRANT_AFTER`]).
    pub(crate) fn took_in(&mut self, cost: u32, target: u32, now: Instant) -> Option<u32> {
        self.outstanding -= i64::from(cost);
        let owed_since = *self.owed_since.get_or_insert(now);
        let owed = i64::from(target) - self.outstanding;
        let due = owed >= i64::from(target / 4)
            || (owed > 0
                && (self.urgent || now.saturating_duration_since(owed_since) >= GRANT_AFTER));
        if !due {
            return None;
        }
        self.owed_since = None;
        self.urgent = false;
        self.outstanding += owed;
        u32::try_from(owed).ok()
    }
}

/// The credit message for `bytes` on (`conn`, `dir`).
pub(crate) fn grant(conn: ConnId, dir: Direction, bytes: u32) -> Credit {
    Credit {
        conn,
        dir,
        bytes,
        dropped: 0,
    }
}

/// The cost of `event` against its window.
pub(crate) use flow::cost;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_sends_while_its_credit_is_above_zero() {
        let mut w = SendWindow::default();
        assert!(w.open());
        w.spend(INITIAL_WINDOW - 1);
        assert!(w.open(), "one byte left is room for one more event");
        w.spend(1000);
        assert!(!w.open());
        assert_eq!(w.credit(), -999);
        let now = Instant::now();
        w.stall(now);
        assert!(
            !w.admit(now, Duration::from_secs(1)),
            "no probe before its time"
        );
        assert!(
            w.admit(now + Duration::from_secs(1), Duration::from_secs(1)),
            "a probe"
        );
        assert!(
            !w.admit(now + Duration::from_secs(1), Duration::from_secs(1)),
            "one"
        );
        w.grant(999);
        assert!(!w.open() && !w.stalled(), "credit clears the stall");
        w.grant(1);
        assert!(w.open());
        w.grant(u32::MAX);
        for _ in 0..1000 {
            w.grant(u32::MAX);
        }
        assert_eq!(w.credit(), CREDIT_CAP, "invented credit is capped");
    }

    #[test]
    fn a_fast_receiver_grants_per_quarter_window() {
        let target = 256 * 1024;
        let mut r = RecvWindow::default();
        let now = Instant::now();
        // The sender started with 64 KiB; the first event already brings the window up.
        assert_eq!(
            r.took_in(100, target, now),
            Some(target - INITIAL_WINDOW + 100)
        );
        let mut granted = 0u64;
        let mut taken = 0u64;
        for _ in 0..10_000 {
            taken += 100;
            if let Some(g) = r.took_in(100, target, now) {
                assert!(g >= target / 4, "batched: {g}");
                granted += u64::from(g);
            }
        }
        assert!(
            taken - granted < u64::from(target / 4),
            "owes less than a batch"
        );
    }

    #[test]
    fn a_slow_receiver_grants_what_it_owes_after_a_while() {
        let target = 1024 * 1024;
        let mut r = RecvWindow::default();
        let start = Instant::now();
        r.took_in(100, target, start); // the first grant brings the window to the target
        assert_eq!(r.took_in(100, target, start), None);
        assert_eq!(r.took_in(100, target, start + GRANT_AFTER), Some(200));
    }

    #[test]
    fn lost_events_are_granted_back_at_once() {
        let target = 1024 * 1024;
        let mut r = RecvWindow::default();
        let now = Instant::now();
        r.took_in(100, target, now); // at the target now
        r.took_in(100, target, now);
        // Three events of about 100 bytes never arrived: granted with the next intake.
        r.lost(3, 100, target);
        assert_eq!(r.took_in(0, target, now), Some(400));
        // A forged counter jump cannot make it grant more than a window.
        r.lost(u64::MAX, 100, target);
        assert!(r.took_in(0, target, now).unwrap() <= target + 100);
    }

    #[test]
    fn windows_share_the_inbox() {
        assert_eq!(target_window(0), MAX_WINDOW);
        assert_eq!(target_window(4), MAX_WINDOW);
        assert_eq!(target_window(16), 256 * 1024);
        assert_eq!(target_window(10_000), INITIAL_WINDOW);
    }
}
