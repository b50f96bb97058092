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
//! * **a window grows for a fast receiver only.** A connection starts at [`target_window`]
//!   (at most [`BASE_WINDOW`]). One whose module takes a whole window in within
//!   [`FAST_EPOCH`] doubles it, up to [`window_cap`] (at most the protocol's `MAX_WINDOW`,
//!   and still its share of the inbox); one that then takes in less than a quarter of it in
//!   [`SLOW_EPOCH`] halves it again, down to where it started. A large window keeps a fast
//!   stream from waiting for credit across two nodes; a slow module keeps a small one, so
//!   what queues ahead of its commands stays what a window of [`BASE_WINDOW`] allows;
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

/// The window a connection starts at before it proves fast: what a slow module may have
/// queued ahead of its commands on one connection.
pub(crate) const BASE_WINDOW: u32 = 1024 * 1024;

/// A receiver that takes a whole window in within this doubles it.
pub(crate) const FAST_EPOCH: Duration = Duration::from_millis(50);

/// A receiver that takes in less than a quarter of its window within this halves it.
pub(crate) const SLOW_EPOCH: Duration = Duration::from_secs(1);

/// The window a receiver with `receiving` keyed connections keeps open on each to start
/// with: its inbox shared between them, at least [`INITIAL_WINDOW`] (what every sender starts
/// with anyway) and at most [`BASE_WINDOW`].
pub(crate) fn target_window(receiving: usize) -> u32 {
    share(receiving).clamp(INITIAL_WINDOW, BASE_WINDOW)
}

/// The most a fast receiver's window on one of its `receiving` connections grows to: its
/// share of the inbox, at least [`INITIAL_WINDOW`] and at most `MAX_WINDOW`.
pub(crate) fn window_cap(receiving: usize) -> u32 {
    share(receiving).clamp(INITIAL_WINDOW, MAX_WINDOW)
}

fn share(receiving: usize) -> u32 {
    u32::try_from(INBOX_BYTES / receiving.max(1)).unwrap_or(MAX_WINDOW)
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
    /// This connection's window once it grew past its starting target (0: not grown).
    grown: u32,
    /// Since when, and how many bytes, this connection has taken in towards its next window
    /// (the measure of a fast or slow receiver).
    epoch: Option<(Instant, u64)>,
}

impl Default for RecvWindow {
    fn default() -> Self {
        RecvWindow {
            outstanding: i64::from(INITIAL_WINDOW),
            owed_since: None,
            urgent: false,
            grown: 0,
            epoch: None,
        }
    }
}

impl RecvWindow {
    /// The window kept open now: `target` (the starting one), or what it grew to, within
    /// `cap`.
    pub(crate) fn window(&self, target: u32, cap: u32) -> u32 {
        self.grown.max(target).min(cap.max(target))
    }

    /// Measures the intake of `cost` bytes at `now`: doubles the window after a whole one was
    /// taken in within [`FAST_EPOCH`], halves it (not below `target`) after less than a
    /// quarter was taken in within [`SLOW_EPOCH`].
    fn adapt(&mut self, cost: u32, target: u32, cap: u32, now: Instant) {
        let window = self.window(target, cap);
        let (since, taken) = self.epoch.get_or_insert((now, 0));
        *taken += u64::from(cost);
        let elapsed = now.saturating_duration_since(*since);
        if *taken >= u64::from(window) {
            if elapsed <= FAST_EPOCH {
                self.grown = window.saturating_mul(2).min(cap.max(target));
            }
            self.epoch = Some((now, 0));
        } else if elapsed >= SLOW_EPOCH {
            if *taken < u64::from(window / 4) {
                self.grown = (window / 2).max(target);
            }
            self.epoch = Some((now, 0));
        }
    }

    /// Accounts for `n` events lost on the way, revealed by an authentic event of `cost` bytes
    /// whose counter skipped them: their cost is estimated from it, at most a `target` window.
    pub(crate) fn lost(&mut self, n: u64, cost: u32, target: u32) {
        let most = u64::from(target / cost.max(1)) + 1;
        let bytes = n.min(most) * u64::from(cost);
        self.outstanding -= i64::try_from(bytes).unwrap_or(i64::MAX);
        self.urgent = true;
    }

    /// Accounts for an event of `cost` bytes taken in at `now`; the credit to grant, if it is
    /// time (a quarter of the window owed, or some owed for [`GRANT_AFTER`]). The window is
    /// `target`, or more, up to `cap`, for a receiver that proved fast ([`RecvWindow::adapt`]).
    pub(crate) fn took_in(
        &mut self,
        cost: u32,
        target: u32,
        cap: u32,
        now: Instant,
    ) -> Option<u32> {
        self.adapt(cost, target, cap, now);
        let target = self.window(target, cap);
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
            r.took_in(100, target, target, now),
            Some(target - INITIAL_WINDOW + 100)
        );
        let mut granted = 0u64;
        let mut taken = 0u64;
        for _ in 0..10_000 {
            taken += 100;
            if let Some(g) = r.took_in(100, target, target, now) {
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
        r.took_in(100, target, target, start); // the first grant brings the window to the target
        assert_eq!(r.took_in(100, target, target, start), None);
        assert_eq!(
            r.took_in(100, target, target, start + GRANT_AFTER),
            Some(200)
        );
    }

    #[test]
    fn lost_events_are_granted_back_at_once() {
        let target = 1024 * 1024;
        let mut r = RecvWindow::default();
        let now = Instant::now();
        r.took_in(100, target, target, now); // at the target now
        r.took_in(100, target, target, now);
        // Three events of about 100 bytes never arrived: granted with the next intake.
        r.lost(3, 100, target);
        assert_eq!(r.took_in(0, target, target, now), Some(400));
        // A forged counter jump cannot make it grant more than a window.
        r.lost(u64::MAX, 100, target);
        assert!(r.took_in(0, target, target, now).unwrap() <= target + 100);
    }

    #[test]
    fn windows_share_the_inbox() {
        assert_eq!(target_window(0), BASE_WINDOW);
        assert_eq!(target_window(4), BASE_WINDOW);
        assert_eq!(target_window(16), 256 * 1024);
        assert_eq!(target_window(10_000), INITIAL_WINDOW);
        assert_eq!(window_cap(1), MAX_WINDOW);
        assert_eq!(window_cap(4), 1024 * 1024);
        assert_eq!(window_cap(10_000), INITIAL_WINDOW);
    }

    /// Takes in `n` events of `cost` bytes `gap` apart from `*now`; the credit granted.
    fn intake(r: &mut RecvWindow, n: u32, cost: u32, gap: Duration, now: &mut Instant) -> u64 {
        let (target, cap) = (BASE_WINDOW, MAX_WINDOW);
        let mut granted = 0;
        for _ in 0..n {
            *now += gap;
            granted += u64::from(r.took_in(cost, target, cap, *now).unwrap_or(0));
        }
        granted
    }

    #[test]
    fn a_fast_receiver_s_window_grows_to_the_cap_and_a_slow_one_s_does_not() {
        let mut now = Instant::now();
        // 16 KiB events taken in every 10 µs: a window's worth well within the fast epoch.
        let mut fast = RecvWindow::default();
        intake(
            &mut fast,
            2_000,
            16 * 1024,
            Duration::from_micros(10),
            &mut now,
        );
        assert_eq!(fast.window(BASE_WINDOW, MAX_WINDOW), MAX_WINDOW);
        // What it holds outstanding follows: granted up to the grown window.
        assert!(fast.outstanding > i64::from(BASE_WINDOW), "{fast:?}");
        // 1 KiB every 5 ms (a handler that sleeps): the window stays where it started.
        let mut slow = RecvWindow::default();
        intake(&mut slow, 2_000, 1024, Duration::from_millis(5), &mut now);
        assert_eq!(slow.window(BASE_WINDOW, MAX_WINDOW), BASE_WINDOW);
        assert!(slow.outstanding <= i64::from(BASE_WINDOW), "{slow:?}");
    }

    #[test]
    fn a_receiver_that_slows_down_gives_the_grown_window_back() {
        let mut now = Instant::now();
        let mut r = RecvWindow::default();
        intake(
            &mut r,
            2_000,
            16 * 1024,
            Duration::from_micros(10),
            &mut now,
        );
        assert_eq!(r.window(BASE_WINDOW, MAX_WINDOW), MAX_WINDOW);
        // Then one small event every 100 ms: less than a quarter window per second.
        intake(&mut r, 40, 1024, Duration::from_millis(100), &mut now);
        assert_eq!(
            r.window(BASE_WINDOW, MAX_WINDOW),
            BASE_WINDOW,
            "halved twice"
        );
        intake(&mut r, 40, 1024, Duration::from_millis(100), &mut now);
        assert_eq!(
            r.window(BASE_WINDOW, MAX_WINDOW),
            BASE_WINDOW,
            "never below the start"
        );
        // A cap at or below the start (many connections) leaves nothing to grow.
        let mut many = RecvWindow::default();
        for _ in 0..2_000 {
            now += Duration::from_micros(10);
            many.took_in(16 * 1024, INITIAL_WINDOW, INITIAL_WINDOW, now);
        }
        assert_eq!(many.window(INITIAL_WINDOW, INITIAL_WINDOW), INITIAL_WINDOW);
    }
}
