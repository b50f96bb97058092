//! Event channels: sealing and opening events on one connection.
//!
//! Invariants this module owns (docs/PROTOCOL.md §7, "Connections and events"):
//! * a [`SendChannel`] never seals two events with the same counter, so a nonce never repeats
//!   under a connection key; at `u64::MAX` it refuses to seal rather than wrap;
//! * a [`RecvChannel`] accepts an event only if its counter is above the last accepted one and
//!   it authenticates under the connection key with associated data binding connection id,
//!   direction, kind and counter; skipped counters are counted as gaps, never waited for;
//! * a refused event changes no state, so an attacker's garbage cannot block later events.

use aex_crypto::{Algorithm, Nonce, SealingKey, SecretKey};
use serde::{Deserialize, Serialize};

use crate::ids::ConnId;

/// Which way an event travels on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// From the source (output, request, or the deployer) to the sink (input, handler).
    Forward,
    /// From the sink back to the source (replies).
    Backward,
}

impl Direction {
    /// The nonce domain byte of this direction.
    fn domain(self) -> u8 {
        match self {
            Direction::Forward => 0,
            Direction::Backward => 1,
        }
    }

    /// The other direction.
    pub fn reverse(self) -> Self {
        match self {
            Direction::Forward => Direction::Backward,
            Direction::Backward => Direction::Forward,
        }
    }
}

/// What an event is, bound into its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// Output → input, fire and forget.
    Event,
    /// Request → handler, expects a reply.
    Request,
    /// Handler → request, answering the request whose counter opens the plaintext.
    Reply,
}

impl EventKind {
    fn code(self) -> u8 {
        match self {
            EventKind::Event => 0,
            EventKind::Request => 1,
            EventKind::Reply => 2,
        }
    }
}

/// An event on the wire. Everything but the plaintext is visible to the node agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Connection the event claims to belong to.
    pub conn: ConnId,
    /// Direction on that connection.
    pub dir: Direction,
    /// Kind of event.
    pub kind: EventKind,
    /// Per-direction counter, starting at 1.
    pub counter: u64,
    /// AEAD ciphertext and tag.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

const AAD_LABEL: &[u8; 12] = b"aex/v1 event";
const AAD_LEN: usize = AAD_LABEL.len() + 4 + 1 + 1 + 8;

/// Associated data of an event: label || conn (u32 BE) || dir || kind || counter (u64 BE).
fn aad(conn: ConnId, dir: Direction, kind: EventKind, counter: u64) -> [u8; AAD_LEN] {
    let mut a = [0u8; AAD_LEN];
    a[..12].copy_from_slice(AAD_LABEL);
    a[12..16].copy_from_slice(&conn.0.to_be_bytes());
    a[16] = dir.domain();
    a[17] = kind.code();
    a[18..].copy_from_slice(&counter.to_be_bytes());
    a
}

/// The sending half of one direction of a connection.
pub struct SendChannel {
    key: SealingKey,
    conn: ConnId,
    dir: Direction,
    last: u64,
}

/// The counter space of a channel is exhausted; the connection must be re-keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterExhausted;

impl SendChannel {
    /// A channel that will seal with counters 1, 2, 3, ...
    pub fn new(algorithm: Algorithm, key: &SecretKey, conn: ConnId, dir: Direction) -> Self {
        Self::resume(algorithm, key, conn, dir, 0)
    }

    /// A channel whose last used counter was `last` (state restored by the deployer).
    pub fn resume(
        algorithm: Algorithm,
        key: &SecretKey,
        conn: ConnId,
        dir: Direction,
        last: u64,
    ) -> Self {
        SendChannel {
            key: SealingKey::new(algorithm, key),
            conn,
            dir,
            last,
        }
    }

    /// Seals `plaintext` as the next event of this channel.
    pub fn seal(&mut self, kind: EventKind, plaintext: &[u8]) -> Result<Event, CounterExhausted> {
        let counter = self.last.checked_add(1).ok_or(CounterExhausted)?;
        self.last = counter;
        let ciphertext = self.key.seal(
            Nonce::new(self.dir.domain(), counter),
            &aad(self.conn, self.dir, kind, counter),
            plaintext,
        );
        Ok(Event {
            conn: self.conn,
            dir: self.dir,
            kind,
            counter,
            ciphertext,
        })
    }

    /// The last counter used (0 if none).
    pub fn last_counter(&self) -> u64 {
        self.last
    }

    /// The direction this channel seals.
    pub fn direction(&self) -> Direction {
        self.dir
    }
}

/// Why an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The event is for another connection or direction than this channel.
    WrongChannel,
    /// Counter not above the last accepted one: a replay or a reordered event.
    Stale {
        /// The event's counter.
        counter: u64,
        /// The last accepted counter.
        last: u64,
    },
    /// Authentication failed: tampered ciphertext or header, or a wrong key.
    Forged,
}

impl core::fmt::Display for RecvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecvError::WrongChannel => f.write_str("event for another connection or direction"),
            RecvError::Stale { counter, last } => write!(
                f,
                "replayed or reordered event (counter {counter}, last accepted {last})"
            ),
            RecvError::Forged => f.write_str("event failed authentication"),
        }
    }
}

impl std::error::Error for RecvError {}

/// The receiving half of one direction of a connection.
pub struct RecvChannel {
    key: SealingKey,
    conn: ConnId,
    dir: Direction,
    last: u64,
    gaps: u64,
}

impl RecvChannel {
    /// A channel expecting counters from 1.
    pub fn new(algorithm: Algorithm, key: &SecretKey, conn: ConnId, dir: Direction) -> Self {
        Self::resume(algorithm, key, conn, dir, 0)
    }

    /// A channel whose last accepted counter was `last` (state restored by the deployer).
    pub fn resume(
        algorithm: Algorithm,
        key: &SecretKey,
        conn: ConnId,
        dir: Direction,
        last: u64,
    ) -> Self {
        RecvChannel {
            key: SealingKey::new(algorithm, key),
            conn,
            dir,
            last,
            gaps: 0,
        }
    }

    /// Authenticates and decrypts `event`, updating the counter only on success.
    pub fn open(&mut self, event: &Event) -> Result<Vec<u8>, RecvError> {
        let plaintext = self.peek(event)?;
        self.gaps += event.counter - self.last - 1;
        self.last = event.counter;
        Ok(plaintext)
    }

    /// Like [`RecvChannel::open`], decrypting in the event's own buffer instead of a copy of
    /// it: the event's ciphertext is taken once its header passes (connection, direction,
    /// counter), whether or not its tag verifies. What a receiver does with each event it
    /// reads, so that a 16 KiB event costs no extra copy.
    pub fn open_in_place(&mut self, event: &mut Event) -> Result<Vec<u8>, RecvError> {
        self.check(event)?;
        let ciphertext = std::mem::take(&mut event.ciphertext);
        let plaintext = self.decrypt(event, ciphertext)?;
        self.gaps += event.counter - self.last - 1;
        self.last = event.counter;
        Ok(plaintext)
    }

    /// What [`RecvChannel::open`] would return, without accepting the counter (to drop an event
    /// that can never be accepted before queueing it, say). A refusal is final for as long as
    /// the channel lives: the counter only grows.
    pub fn peek(&self, event: &Event) -> Result<Vec<u8>, RecvError> {
        self.check(event)?;
        self.decrypt(event, event.ciphertext.clone())
    }

    /// `ciphertext`, taken from `event`, opened under `event`'s header.
    fn decrypt(&self, event: &Event, ciphertext: Vec<u8>) -> Result<Vec<u8>, RecvError> {
        self.key
            .open_in_place(
                Nonce::new(self.dir.domain(), event.counter),
                &aad(event.conn, event.dir, event.kind, event.counter),
                ciphertext,
            )
            .map_err(|_| RecvError::Forged)
    }

    /// Whether `event`'s header is for this channel and past its last accepted counter.
    fn check(&self, event: &Event) -> Result<(), RecvError> {
        if event.conn != self.conn || event.dir != self.dir {
            return Err(RecvError::WrongChannel);
        }
        if event.counter <= self.last {
            return Err(RecvError::Stale {
                counter: event.counter,
                last: self.last,
            });
        }
        Ok(())
    }

    /// Counter values skipped so far.
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// The last accepted counter.
    pub fn last_counter(&self) -> u64 {
        self.last
    }

    /// The direction this channel opens.
    pub fn direction(&self) -> Direction {
        self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(alg: Algorithm) -> (SendChannel, RecvChannel) {
        let key = SecretKey::from_bytes([5; 32]);
        (
            SendChannel::new(alg, &key, ConnId(9), Direction::Forward),
            RecvChannel::new(alg, &key, ConnId(9), Direction::Forward),
        )
    }

    #[test]
    fn in_order_delivery_replay_and_reorder() {
        let (mut tx, mut rx) = pair(Algorithm::AesGcm);
        let e1 = tx.seal(EventKind::Event, b"one").unwrap();
        let e2 = tx.seal(EventKind::Event, b"two").unwrap();
        assert_eq!((e1.counter, e2.counter), (1, 2));
        assert_eq!(rx.open(&e2).unwrap(), b"two");
        // e1 arrives after e2: reordered, refused.
        assert_eq!(
            rx.open(&e1),
            Err(RecvError::Stale {
                counter: 1,
                last: 2
            })
        );
        // e2 again: replay, refused.
        assert!(matches!(rx.open(&e2), Err(RecvError::Stale { .. })));
        assert_eq!(rx.gaps(), 1);
    }

    #[test]
    fn header_fields_are_bound() {
        let (mut tx, mut rx) = pair(Algorithm::ChaCha20Poly1305);
        let e = tx.seal(EventKind::Event, b"x").unwrap();

        let mut kind = e.clone();
        kind.kind = EventKind::Request;
        assert_eq!(rx.open(&kind), Err(RecvError::Forged));

        let mut counter = e.clone();
        counter.counter = 5;
        assert_eq!(rx.open(&counter), Err(RecvError::Forged));

        let mut conn = e.clone();
        conn.conn = ConnId(10);
        assert_eq!(rx.open(&conn), Err(RecvError::WrongChannel));

        // A channel for connection 10 with the same key still refuses: conn id is in the AAD.
        let key = SecretKey::from_bytes([5; 32]);
        let mut other = RecvChannel::new(
            Algorithm::ChaCha20Poly1305,
            &key,
            ConnId(10),
            Direction::Forward,
        );
        assert_eq!(other.open(&conn), Err(RecvError::Forged));

        // Refusals changed nothing: the genuine event is still accepted.
        assert_eq!(rx.open(&e).unwrap(), b"x");
    }

    #[test]
    fn opening_in_place_accepts_and_refuses_as_open_does() {
        let (mut tx, mut rx) = pair(Algorithm::ChaCha20Poly1305);
        let e1 = tx.seal(EventKind::Event, b"one").unwrap();
        let e2 = tx.seal(EventKind::Event, b"two").unwrap();
        let e3 = tx.seal(EventKind::Event, b"three").unwrap();
        // A forged tag: refused, nothing moved, the event's bytes taken (and wiped).
        let mut forged = e2.clone();
        forged.ciphertext[0] ^= 1;
        assert_eq!(rx.open_in_place(&mut forged), Err(RecvError::Forged));
        assert!(forged.ciphertext.is_empty());
        assert_eq!((rx.last_counter(), rx.gaps()), (0, 0));
        // Another channel's event: refused on its header, its bytes left alone.
        let mut other = Event {
            conn: ConnId(99),
            ..e1.clone()
        };
        assert_eq!(rx.open_in_place(&mut other), Err(RecvError::WrongChannel));
        assert_eq!(other.ciphertext, e1.ciphertext);
        // In order with a gap, then a replay.
        assert_eq!(rx.open_in_place(&mut e2.clone()).unwrap(), b"two");
        assert_eq!(rx.open_in_place(&mut e3.clone()).unwrap(), b"three");
        assert_eq!((rx.last_counter(), rx.gaps()), (3, 1));
        assert!(matches!(
            rx.open_in_place(&mut e1.clone()),
            Err(RecvError::Stale { .. })
        ));
    }

    #[test]
    fn peek_checks_like_open_and_accepts_nothing() {
        let (mut tx, mut rx) = pair(Algorithm::AesGcm);
        let e1 = tx.seal(EventKind::Event, b"one").unwrap();
        let mut forged = tx.seal(EventKind::Event, b"two").unwrap();
        forged.ciphertext[0] ^= 1;
        assert_eq!(rx.peek(&forged), Err(RecvError::Forged));
        // Peeked twice, still acceptable once: peeking moved no counter.
        assert_eq!(rx.peek(&e1).unwrap(), b"one");
        assert_eq!(rx.peek(&e1).unwrap(), b"one");
        assert_eq!((rx.last_counter(), rx.gaps()), (0, 0));
        assert_eq!(rx.open(&e1).unwrap(), b"one");
        assert!(matches!(rx.peek(&e1), Err(RecvError::Stale { .. })));
    }

    #[test]
    fn directions_never_share_nonces() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut f = SendChannel::new(Algorithm::AesGcm, &key, ConnId(1), Direction::Forward);
        let mut b = SendChannel::new(Algorithm::AesGcm, &key, ConnId(1), Direction::Backward);
        let ef = f.seal(EventKind::Event, b"same").unwrap();
        let eb = b.seal(EventKind::Event, b"same").unwrap();
        assert_eq!(ef.counter, eb.counter);
        assert_ne!(ef.ciphertext, eb.ciphertext);
    }

    #[test]
    fn counter_refuses_to_wrap() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut tx = SendChannel::resume(
            Algorithm::AesGcm,
            &key,
            ConnId(1),
            Direction::Forward,
            u64::MAX - 1,
        );
        assert_eq!(tx.seal(EventKind::Event, b"").unwrap().counter, u64::MAX);
        assert_eq!(
            tx.seal(EventKind::Event, b"").unwrap_err(),
            CounterExhausted
        );
    }

    proptest! {
        #[test]
        fn any_delivery_order_accepts_only_increasing(order in proptest::collection::vec(0usize..20, 0..40)) {
            let (mut tx, mut rx) = pair(Algorithm::AesGcm);
            let events: Vec<Event> = (0..20).map(|i| tx.seal(EventKind::Event, &[i as u8]).unwrap()).collect();
            let mut last = 0u64;
            let mut accepted = 0u64;
            for i in order {
                let e = &events[i];
                match rx.open(e) {
                    Ok(pt) => {
                        prop_assert!(e.counter > last);
                        prop_assert_eq!(pt, vec![i as u8]);
                        last = e.counter;
                        accepted += 1;
                    }
                    Err(RecvError::Stale { .. }) => prop_assert!(e.counter <= last),
                    Err(other) => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            prop_assert_eq!(rx.gaps(), last - accepted);
        }

        #[test]
        fn tampered_ciphertexts_are_forged(pt in proptest::collection::vec(any::<u8>(), 0..256), flip in any::<usize>()) {
            let (mut tx, mut rx) = pair(Algorithm::AesGcm);
            let mut e = tx.seal(EventKind::Event, &pt).unwrap();
            let i = flip % e.ciphertext.len();
            e.ciphertext[i] ^= 0x80;
            prop_assert_eq!(rx.open(&e), Err(RecvError::Forged));
            prop_assert_eq!(rx.last_counter(), 0);
        }
    }
}
