//! Flow control: per-connection credit, in bytes, granted by the receiving runtime.
//!
//! Every event travels on one (connection, direction). Its sender may have at most a window of
//! bytes in flight there: the bytes it sent that the receiving runtime has not yet taken in.
//! The window starts at [`INITIAL_WINDOW`] when the sender's key for the connection is
//! installed (both ends know it, so no message is needed before the first event), and grows
//! with every [`Credit`] the receiver grants: a receiving runtime grants credit when it takes
//! an event out of its input queue, before module code runs, so a cycle of modules that wait
//! on each other keeps flowing. A receiver grants up to a target window of its own choosing
//! (at most [`MAX_WINDOW`]), sized so that what all its connections may have in flight fits
//! its input queue.
//!
//! A sender may send while its credit is above zero, and an event costs [`cost`] bytes, so
//! credit can end below zero by at most one event: an event larger than the window still
//! passes once nothing is in flight.
//!
//! Credit is **not authenticated**. It travels in clear from the receiving runtime through its
//! node, back over the link the events came on, and through the sending node to the sending
//! runtime. A node that withholds credit can only delay a connection's events, which it can do
//! anyway by holding them; a node that invents credit can only make a sender send what the
//! node then has to queue or drop, which it can do anyway. Neither can forge or replay an
//! event. docs/PROTOCOL.md ("Flow control") has the message flow.

use serde::{Deserialize, Serialize};

use crate::channel::{Direction, Event};
use crate::ids::ConnId;

/// The credit a sender holds on a (connection, direction) when its key is installed, before
/// the receiver granted anything.
pub const INITIAL_WINDOW: u32 = 64 * 1024;

/// The most credit a receiver keeps outstanding on one (connection, direction).
pub const MAX_WINDOW: u32 = 4 * 1024 * 1024;

/// What an event costs besides its ciphertext: the header a node queues with it, rounded up,
/// so that empty events are not free.
pub const EVENT_OVERHEAD: u32 = 32;

/// The bytes `event` costs against its window: its ciphertext (payload and tag) and
/// [`EVENT_OVERHEAD`]. The same on every hop, since nothing on the way changes the ciphertext.
pub fn cost(event: &Event) -> u32 {
    cost_of(event.ciphertext.len())
}

/// The cost of an event whose ciphertext is `len` bytes long (see [`cost`]).
pub fn cost_of(len: usize) -> u32 {
    u32::try_from(len)
        .unwrap_or(u32::MAX)
        .saturating_add(EVENT_OVERHEAD)
}

/// More room on one (connection, direction): the receiver took in `bytes` worth of events
/// (or a node dropped them), so the sender may send that much more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The connection whose events the credit is for.
    pub conn: ConnId,
    /// The direction of those events (credit itself travels the other way).
    pub dir: Direction,
    /// Bytes the sender may send on top of its current credit.
    pub bytes: u32,
    /// How many events of these `bytes` a node dropped instead of delivering (a dead or
    /// unreachable peer, no route): the sender counts them, so a loss is never silent.
    /// Zero when the receiving runtime grants.
    pub dropped: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::EventKind;

    #[test]
    fn an_event_costs_its_ciphertext_and_the_overhead() {
        let event = Event {
            conn: ConnId(1),
            dir: Direction::Forward,
            kind: EventKind::Event,
            counter: 1,
            ciphertext: vec![0; 80],
        };
        assert_eq!(cost(&event), 80 + EVENT_OVERHEAD);
        assert_eq!(cost_of(usize::MAX), u32::MAX);
        const { assert!(INITIAL_WINDOW <= MAX_WINDOW) };
    }
}
