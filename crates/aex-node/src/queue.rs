//! Queues bounded in bytes: what the node holds for a module's input, a deployer session's
//! answers and events, and a session's requests read ahead.
//!
//! Most queues carry encoded frames (`Vec<u8>`, length prefix included), so what they hold is
//! known exactly: each item costs its bytes plus [`OVERHEAD`] (the allocation and the queue's
//! own node), and the items queued at once cost at most the queue's budget. (A session's
//! requests are queued decoded, at the length of the frame they came in.) The budget is a
//! semaphore of bytes: [`Sender::try_send`] takes room or fails at once (events and credit:
//! the caller drops and counts, and gives a dropped event's cost back to its sender as credit
//! marked `dropped`), [`Sender::send`] waits for room (answers and requests: the caller bounds
//! the wait), and the room comes back when the receiver takes the item. An item larger than
//! the whole budget still passes when the queue is empty, so nothing is refused for its size
//! alone (the frame layer bounds that: 1 MiB).
//!
//! Invariant: bytes held = the sum of the costs of the items queued ≤ budget (or one item
//! larger than it); nothing here blocks a caller of `try_send`. The queues stay bounded in
//! bytes whatever senders do; under honoured credit (`aex_proto::flow`) an event queue holds
//! at most what its receiver granted and never fills, so `try_send` fails only for a sender
//! that ignores its credit (or a destination that is gone).
//!
//! Underneath is a bounded `tokio::sync::mpsc` channel (the node uses no unbounded one) of
//! `budget / OVERHEAD` slots. It never refuses an item that got its room: every queued item
//! holds at least [`OVERHEAD`] bytes of the budget until the receiver has taken it out of the
//! channel, so no more items than that can be in it at once. The bytes are the bound that
//! matters; the slots only make the channel's own bound explicit.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// What a queued frame costs besides its bytes (allocation and queue node, rounded up).
pub(crate) const OVERHEAD: usize = 64;

/// A frame that did not fit, or a queue whose receiver is gone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError {
    /// No room for its cost now.
    Full,
    /// The receiver is gone.
    Closed,
}

/// The sending side; cheap to clone.
pub(crate) struct Sender<T = Vec<u8>> {
    tx: mpsc::Sender<(T, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    budget: usize,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            room: self.room.clone(),
            budget: self.budget,
        }
    }
}

/// The receiving side.
pub(crate) struct Receiver<T = Vec<u8>> {
    rx: mpsc::Receiver<(T, OwnedSemaphorePermit)>,
}

/// A queue holding at most `budget` bytes of items.
pub(crate) fn channel<T>(budget: usize) -> (Sender<T>, Receiver<T>) {
    let budget = budget.clamp(OVERHEAD, Semaphore::MAX_PERMITS);
    // At least one slot, since the budget is at least OVERHEAD.
    let (tx, rx) = mpsc::channel(budget / OVERHEAD);
    (
        Sender {
            tx,
            room: Arc::new(Semaphore::new(budget)),
            budget,
        },
        Receiver { rx },
    )
}

impl Sender<Vec<u8>> {
    /// Queues `frame` if there is room for it now.
    pub(crate) fn try_send(&self, frame: Vec<u8>) -> Result<(), TrySendError> {
        let len = frame.len();
        self.try_send_sized(frame, len)
    }

    /// Queues `frame`, waiting for room; false if the receiver is gone.
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        let len = frame.len();
        self.send_sized(frame, len).await
    }
}

impl<T> Sender<T> {
    /// The room an item of `bytes` takes: its cost, capped at the budget (so that any item
    /// fits an empty queue).
    fn permits(&self, bytes: usize) -> u32 {
        let cost = bytes.saturating_add(OVERHEAD).min(self.budget);
        u32::try_from(cost).unwrap_or(u32::MAX)
    }

    /// Queues `item`, which holds `bytes`, if there is room for it now.
    pub(crate) fn try_send_sized(&self, item: T, bytes: usize) -> Result<(), TrySendError> {
        if self.tx.is_closed() {
            return Err(TrySendError::Closed);
        }
        let permit = match self
            .room
            .clone()
            .try_acquire_many_owned(self.permits(bytes))
        {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return Err(TrySendError::Full),
            Err(TryAcquireError::Closed) => return Err(TrySendError::Closed),
        };
        // With its room taken, an item always finds a slot (see the file's doc); `Full` would
        // still only drop it, as a queue without room does.
        self.tx.try_send((item, permit)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => TrySendError::Full,
            mpsc::error::TrySendError::Closed(_) => TrySendError::Closed,
        })
    }

    /// Queues `item`, which holds `bytes`, waiting for room; false if the receiver is gone.
    pub(crate) async fn send_sized(&self, item: T, bytes: usize) -> bool {
        let n = self.permits(bytes);
        let Ok(permit) = self.room.clone().acquire_many_owned(n).await else {
            return false;
        };
        self.tx.send((item, permit)).await.is_ok()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.room.available_permits() == self.budget
    }

    /// Bytes queued now (costs included).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.budget - self.room.available_permits()
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Senders of this queue alive (for tests of who holds a module's input).
    #[cfg(test)]
    pub(crate) fn strong_count(&self) -> usize {
        self.tx.strong_count()
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty. Its room is
    /// given back as it is returned.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await.map(|(item, _room)| item)
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok().map(|(item, _room)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_at_most_its_budget_in_bytes() {
        let (tx, mut rx) = channel::<Vec<u8>>(10_000);
        // Frames of 1,000 bytes cost 1,064: nine fit, the tenth does not.
        for _ in 0..9 {
            tx.try_send(vec![1; 1000]).unwrap();
        }
        assert_eq!(tx.held(), 9 * 1064);
        assert_eq!(tx.try_send(vec![1; 1000]), Err(TrySendError::Full));
        // Small frames still fit in what is left.
        tx.try_send(vec![2; 100]).unwrap();
        assert!(!tx.is_empty());
        // Taking one gives its room back.
        assert_eq!(rx.recv().await.unwrap().len(), 1000);
        tx.try_send(vec![3; 1000]).unwrap();
        while rx.try_recv().is_some() {}
        assert!(tx.is_empty());
        assert_eq!(tx.held(), 0);
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_passes_an_empty_queue_only() {
        let (tx, mut rx) = channel::<Vec<u8>>(4096);
        tx.try_send(vec![0; 10]).unwrap();
        assert_eq!(tx.try_send(vec![0; 100_000]), Err(TrySendError::Full));
        rx.recv().await.unwrap();
        tx.try_send(vec![0; 100_000]).unwrap();
        assert_eq!(tx.held(), 4096);
        assert_eq!(rx.recv().await.unwrap().len(), 100_000);
    }

    #[tokio::test]
    async fn the_bytes_run_out_before_the_channel_s_slots() {
        for budget in [OVERHEAD, 100, 640, 10_000] {
            let (tx, mut rx) = channel::<Vec<u8>>(budget);
            // Empty frames cost OVERHEAD only: the most items a budget admits.
            let mut queued = 0;
            while tx.try_send(vec![]).is_ok() {
                queued += 1;
            }
            assert_eq!(queued, budget / OVERHEAD, "budget {budget}");
            assert_eq!(tx.try_send(vec![]), Err(TrySendError::Full));
            rx.recv().await.unwrap();
            tx.try_send(vec![]).unwrap();
            // A waiting send finds its slot as soon as its room comes back.
            let waiting = {
                let tx = tx.clone();
                tokio::spawn(async move { tx.send(vec![]).await })
            };
            rx.recv().await.unwrap();
            assert!(waiting.await.unwrap());
        }
    }

    #[tokio::test]
    async fn send_waits_for_room_and_fails_once_the_receiver_is_gone() {
        let (tx, mut rx) = channel::<Vec<u8>>(2000);
        tx.try_send(vec![0; 1500]).unwrap();
        let waiting = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(vec![1; 1500]).await })
        };
        assert_eq!(rx.recv().await.unwrap()[0], 0);
        assert!(waiting.await.unwrap());
        assert_eq!(rx.recv().await.unwrap()[0], 1);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(vec![0]), Err(TrySendError::Closed));
        assert!(!tx.send(vec![0]).await);
    }
}
