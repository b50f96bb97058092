//! Queues bounded in bytes: what the node holds for a module's input, a deployer session's
//! answers and events, and a session's requests read ahead.
//!
//! Most queues carry encoded frames (`Vec<u8>`, length prefix included), so what they hold is
//! known exactly: each item costs its bytes plus [`OVERHEAD`] (the allocation and the queue's
//! own node), and the items queued at once cost at most the queue's budget. (A session's
//! requests are queued decoded, at the length of the frame they came in.) The budget is a
//! count of bytes: [`Sender::try_send`] takes room or fails at once (events and credit:
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
//! Underneath is one mutex-guarded `VecDeque` and two `tokio::sync::Notify`s (items to take,
//! room to wait for). A push and a pop each take the lock once; the receiver is woken only when
//! the queue turns non-empty, and waiting senders only when some wait. (It replaced a byte
//! semaphore beside a bounded `mpsc` channel, which cost two atomics-heavy structures, a permit
//! and a semaphore mutex per event: about a tenth of a node agent's time in a stream of
//! 64-byte events.)

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// What a queued frame costs besides its bytes (allocation and queue node, rounded up).
pub(crate) const OVERHEAD: usize = 64;

/// Slots an empty queue keeps allocated.
const KEEP: usize = 32;

/// A frame that did not fit, or a queue whose receiver is gone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError {
    /// No room for its cost now.
    Full,
    /// The receiver is gone.
    Closed,
}

/// What both sides share.
struct Shared<T> {
    state: Mutex<State<T>>,
    /// The receiver waits here for an item (woken when the queue turns non-empty).
    items: Notify,
    /// Senders wait here for room (woken when an item is taken while some wait).
    room: Notify,
    budget: usize,
}

struct State<T> {
    /// Each item with its cost.
    queue: VecDeque<(T, usize)>,
    /// Sum of the queued items' costs.
    held: usize,
    senders: usize,
    /// Senders waiting in [`Sender::send_sized`].
    waiting: usize,
    receiver_gone: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves a consistent queue (every update is one
        // statement), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` of cost `cost` if it fits now; gives it back if it does not.
    fn push(&self, item: T, cost: usize) -> Result<(), (T, TrySendError)> {
        let mut state = self.lock();
        if state.receiver_gone {
            return Err((item, TrySendError::Closed));
        }
        if state.held + cost > self.budget {
            return Err((item, TrySendError::Full));
        }
        let was_empty = state.queue.is_empty();
        state.queue.push_back((item, cost));
        state.held += cost;
        drop(state);
        if was_empty {
            self.items.notify_one();
        }
        Ok(())
    }
}

/// The sending side; cheap to clone.
pub(crate) struct Sender<T = Vec<u8>> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            // The receiver learns that nothing more comes.
            self.shared.items.notify_one();
        }
    }
}

/// The receiving side.
pub(crate) struct Receiver<T = Vec<u8>> {
    shared: Arc<Shared<T>>,
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            state.held = 0;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: an item's own drop may take time (or other locks).
        drop(dropped);
        self.shared.room.notify_waiters();
    }
}

/// A queue holding at most `budget` bytes of items.
pub(crate) fn channel<T>(budget: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            held: 0,
            senders: 1,
            waiting: 0,
            receiver_gone: false,
        }),
        items: Notify::new(),
        room: Notify::new(),
        budget: budget.max(OVERHEAD),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
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
    fn cost(&self, bytes: usize) -> usize {
        bytes.saturating_add(OVERHEAD).min(self.shared.budget)
    }

    /// Queues `item`, which holds `bytes`, if there is room for it now.
    pub(crate) fn try_send_sized(&self, item: T, bytes: usize) -> Result<(), TrySendError> {
        self.shared
            .push(item, self.cost(bytes))
            .map_err(|(_, why)| why)
    }

    /// Queues `item`, which holds `bytes`, waiting for room; false if the receiver is gone.
    pub(crate) async fn send_sized(&self, item: T, bytes: usize) -> bool {
        let cost = self.cost(bytes);
        let mut item = item;
        loop {
            // Registered and counted before the attempt, so room given back in between is
            // not missed: the receiver that takes an item after this sees a waiting sender,
            // and the notification finds this registration.
            let mut room = pin!(self.shared.room.notified());
            room.as_mut().enable();
            self.shared.lock().waiting += 1;
            let _waiting = Waiting(&self.shared);
            match self.shared.push(item, cost) {
                Ok(()) => return true,
                Err((_, TrySendError::Closed)) => return false,
                Err((back, TrySendError::Full)) => item = back,
            }
            room.await;
        }
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.lock().queue.is_empty()
    }

    /// Bytes queued now (costs included).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.shared.lock().held
    }

    /// Items queued now, and their bytes (costs included), read together.
    pub(crate) fn depth(&self) -> (usize, usize) {
        let state = self.shared.lock();
        (state.queue.len(), state.held)
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().receiver_gone
    }

    /// Senders of this queue alive (for tests of who holds a module's input).
    #[cfg(test)]
    pub(crate) fn strong_count(&self) -> usize {
        self.shared.lock().senders
    }
}

/// One sender counted as waiting for room, until it stops waiting (or its future is dropped).
struct Waiting<'a, T>(&'a Shared<T>);

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty. Its room is
    /// given back as it is returned.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            match self.take() {
                Ok(item) => return Some(item),
                Err(true) => return None,
                Err(false) => self.shared.items.notified().await,
            }
        }
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        self.take().ok()
    }

    /// The next item, or whether every sender is gone.
    fn take(&mut self) -> Result<T, bool> {
        let mut state = self.shared.lock();
        let Some((item, cost)) = state.queue.pop_front() else {
            return Err(state.senders == 0);
        };
        state.held -= cost;
        if state.queue.is_empty() && state.queue.capacity() > KEEP {
            // A burst's slots are not kept by an idle queue (memory per idle module).
            state.queue.shrink_to(KEEP);
        }
        let waiting = state.waiting > 0;
        drop(state);
        if waiting {
            self.shared.room.notify_waiters();
        }
        Ok(item)
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
    async fn empty_items_cost_their_overhead_and_a_waiting_send_gets_the_room_back() {
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
    #[tokio::test]
    async fn recv_ends_once_every_sender_is_gone_and_the_queue_is_drained() {
        let (tx, mut rx) = channel::<Vec<u8>>(1000);
        let second = tx.clone();
        assert_eq!(tx.strong_count(), 2);
        tx.try_send(vec![7]).unwrap();
        drop(tx);
        drop(second);
        assert_eq!(rx.recv().await, Some(vec![7]));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_send_given_up_on_stops_counting_as_waiting() {
        let (tx, mut rx) = channel::<Vec<u8>>(200);
        tx.try_send(vec![0; 100]).unwrap();
        let given_up =
            tokio::time::timeout(std::time::Duration::from_millis(10), tx.send(vec![0; 100]));
        assert!(given_up.await.is_err());
        assert_eq!(tx.shared.lock().waiting, 0);
        rx.recv().await.unwrap();
        assert!(tx.is_empty());
    }

    /// Producers on several threads, each sending and waiting for room, and one consumer:
    /// every item arrives once, in each producer's order, with no wake-up lost (the test
    /// would hang otherwise), and the queue never held more than its budget.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_producers_lose_no_item_and_no_wake_up() {
        const EACH: u32 = 20_000;
        let (tx, mut rx) = channel::<Vec<u8>>(1024);
        let mut producers = Vec::new();
        for p in 0..3u8 {
            let tx = tx.clone();
            producers.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let mut item = vec![p];
                    item.extend_from_slice(&i.to_le_bytes());
                    if i % 2 == 0 {
                        assert!(tx.send(item).await);
                    } else {
                        while let Err(TrySendError::Full) = tx.try_send(item.clone()) {
                            tokio::task::yield_now().await;
                        }
                    }
                    assert!(tx.held() <= 1024);
                }
            }));
        }
        drop(tx);
        let mut next = [0u32; 3];
        while let Some(item) = rx.recv().await {
            let p = usize::from(item[0]);
            let i = u32::from_le_bytes(item[1..5].try_into().unwrap());
            assert_eq!(i, next[p], "producer {p}");
            next[p] += 1;
        }
        for producer in producers {
            producer.await.unwrap();
        }
        assert_eq!(next, [EACH; 3]);
    }
}
