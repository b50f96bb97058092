//! The channel from a module to the router: what a module's output reader hands the router,
//! and the bounded queue it travels on.
//!
//! A module does not own the router. The router owns the registry of modules; a module holding
//! the router back tied `module.rs`, the registry and the router into one import circle, and
//! the objects into a reference cycle. Instead the router gives each module it connects a
//! [`ToRouter`]: the sending side of a queue of [`RouterCommand`]s, its own, bounded in bytes
//! ([`ROUTER_QUEUE_BYTES`]; `queue.rs`, which sits on a bounded `mpsc` channel), whose
//! receiving side one router task drains (`Router::connect_module`). This is the module's only
//! way into the router.
//!
//! Why this changes nothing a module, a peer or a deployer can see:
//!
//! * **Order.** One module's events travel one FIFO queue to one task, which routes them one at
//!   a time in the order the module wrote them, as the reader did itself before. A device
//!   access travels the same queue, so it is performed after the events written before it;
//!   its answer comes back on a oneshot to the reader, which queues it on the module's input as
//!   before.
//! * **What blocks.** Only the module's reader, and only while its queue is full: the reader
//!   waits for room (`send`) rather than drop, because the router task never waits on anything
//!   (it routes with `try_send` into destination queues bounded in bytes and drops and counts
//!   what does not fit, as before), so room always comes back at once. While the reader
//!   waits, the module's stdout is not read: the same backpressure a module had while its
//!   reader was busy routing. No deadlock: the other direction, router to module, is the
//!   module's input queue, which routing fills only with `try_send`; nothing the router task
//!   does waits for the module or its reader.
//! * **Fairness.** Each module has its own queue and router task, as it had its own reader
//!   routing before: a flooding module fills its own queue only and delays no other module.
//! * **What is dropped.** Nothing on this queue: the router task runs as long as a sender
//!   lives. (Should it be gone, an event is dropped and counted like an unroutable one, and a
//!   device access refused.) Events are dropped where they were dropped before: at a
//!   destination without room, route or session, counted in the router's `dropped`.
//! * **Counters.** What the reader itself drops (a bad frame, a device reply that does not fit
//!   its module's input) is counted in the router's `dropped` counter, which the handle shares:
//!   a count is never queued behind events.
//!
//! The queue holds at most [`ROUTER_QUEUE_BYTES`] of commands, or one event larger than that
//! (at most a frame, 1 MiB): what a module holds of the node's memory grows by that much
//! (docs/SECURITY.md, "Memory ceilings").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aex_proto::{DeviceOp, Event};
use tokio::sync::oneshot;
use tracing::debug;

use crate::queue;

/// Bytes of commands queued from one module to the router (a burst of small events, or one
/// larger one; the router task takes each at once).
pub(crate) const ROUTER_QUEUE_BYTES: usize = 64 << 10;

/// What a module's reader asks of the router.
pub(crate) enum RouterCommand {
    /// Route an event the module wrote, in the namespace it was loaded in.
    Event(Event),
    /// Perform a device access for the module (as the holder it was loaded as) and answer on
    /// `reply`: the value, or why it was refused.
    Device {
        /// The device's name.
        device: String,
        /// Read, or write a value.
        op: DeviceOp,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<u32, String>>,
    },
}

/// A module's way into the router: the sending side of its command queue, and the router's
/// drop counter.
pub(crate) struct ToRouter {
    commands: queue::Sender<RouterCommand>,
    dropped: Arc<AtomicU64>,
}

impl ToRouter {
    /// A new queue of [`ROUTER_QUEUE_BYTES`]; drops are counted in `dropped`. The router
    /// drains the receiving side.
    pub(crate) fn channel(dropped: Arc<AtomicU64>) -> (ToRouter, queue::Receiver<RouterCommand>) {
        let (commands, rx) = queue::channel(ROUTER_QUEUE_BYTES);
        (ToRouter { commands, dropped }, rx)
    }

    /// Hands `ev` (read from a frame of `bytes`) to the router, waiting for room.
    pub(crate) async fn event(&self, ev: Event, bytes: usize) {
        if !self
            .commands
            .send_sized(RouterCommand::Event(ev), bytes)
            .await
        {
            debug!("router gone; event dropped");
            self.count_drop();
        }
    }

    /// Has the router perform a device access, and waits for its answer.
    pub(crate) async fn device(&self, device: String, op: DeviceOp) -> Result<u32, String> {
        let bytes = device.len();
        let (reply, answer) = oneshot::channel();
        let command = RouterCommand::Device { device, op, reply };
        if !self.commands.send_sized(command, bytes).await {
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Counts one frame or reply the module's reader could not decode or deliver.
    pub(crate) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The refusal of a device access when the router is gone (the node is stopping).
fn gone() -> String {
    "the node is stopping".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u8) -> Event {
        Event {
            conn: aex_proto::ConnId(u32::from(n)),
            dir: aex_proto::Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter: u64::from(n),
            ciphertext: vec![n; 10],
        }
    }

    #[tokio::test]
    async fn commands_arrive_in_order_and_device_answers_come_back() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (to_router, mut rx) = ToRouter::channel(dropped.clone());
        let router = tokio::spawn(async move {
            let mut seen = vec![];
            while let Some(command) = rx.recv().await {
                match command {
                    RouterCommand::Event(ev) => seen.push(ev.counter),
                    RouterCommand::Device { device, reply, .. } => {
                        seen.push(1000);
                        let _ = reply.send(Ok(device.len() as u32));
                    }
                }
            }
            seen
        });
        to_router.event(event(1), 10).await;
        to_router.event(event(2), 10).await;
        assert_eq!(
            to_router.device("valve".into(), DeviceOp::Read).await,
            Ok(5)
        );
        to_router.event(event(3), 10).await;
        drop(to_router);
        assert_eq!(router.await.unwrap(), vec![1, 2, 1000, 3]);
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn without_a_router_events_are_counted_and_accesses_refused() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (to_router, rx) = ToRouter::channel(dropped.clone());
        drop(rx);
        to_router.event(event(1), 10).await;
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert_eq!(
            to_router.device("valve".into(), DeviceOp::Read).await,
            Err(gone())
        );
        to_router.count_drop();
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
    }
}
