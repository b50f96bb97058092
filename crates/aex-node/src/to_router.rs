//! The channel from a module to the router: what a module's output reader hands the router,
//! the bounded queue it travels on, and the module's device accesses, ordered behind it.
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
//!   a time in the order the module wrote them, as the reader did itself before. The credit a
//!   module grants (`FromModule::Credit`) travels the same queue, so it is relayed in its
//!   place among the module's events.
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
//! * **What is dropped.** Nothing on this queue: the router task runs as long as the sender
//!   lives. (Should it be gone, an event is dropped and counted like an unroutable one.) Events
//!   are dropped where they were dropped before: at a destination without room, route or
//!   session, counted in the router's `dropped`.
//! * **Counters.** What the reader itself drops (a bad frame, a device reply that does not fit
//!   its module's input) is counted in the router's `dropped` counter, which the handle shares:
//!   a count is never queued behind events.
//! * **Device accesses** are performed by the handle itself, against the TEE layer's grants
//!   and as the holder the router connected the module as, but only once the router task is
//!   done with every event the module wrote before ([`queue::Sender::drained`]: the task holds
//!   an event's room until it has routed it). So an access still comes after those events
//!   are routed, as when the reader routed them itself, and when none is pending (a driver
//!   polling its device) it is answered as fast as before. (An access sent through the queue
//!   instead, answered by the router task, made every device round trip two task switches
//!   longer; a module's runtime answers `Stats` while it waits for a device, so a longer
//!   wait made `aex output` see a press event not yet taken more often.)
//!
//! The queue holds at most [`ROUTER_QUEUE_BYTES`] of events, the one being routed included,
//! or one event larger than that (at most a frame, 1 MiB): what a module holds of the node's
//! memory grows by that much (docs/SECURITY.md, "Memory ceilings").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aex_proto::flow::Credit;
use aex_proto::{DeviceOp, Event};
use aex_tee::devices::{Access, DeviceGrants, Holder};
use tracing::debug;

use crate::queue;

/// Bytes of events queued from one module to the router (a burst of small events, or one
/// larger one; the router task takes each at once).
pub(crate) const ROUTER_QUEUE_BYTES: usize = 64 << 10;

/// What a module's reader hands the router.
pub(crate) enum RouterCommand {
    /// Route an event the module wrote, in the namespace it was loaded in.
    Event(Event),
    /// Relay credit the module granted for events it took in, toward their sender.
    Credit(Credit),
}

/// A module's way into the router: the sending side of its command queue, the router's drop
/// counter, and the device grants it accesses as its holder.
pub(crate) struct ToRouter {
    commands: queue::Sender<RouterCommand>,
    dropped: Arc<AtomicU64>,
    devices: Arc<dyn DeviceGrants>,
    holder: Holder,
}

impl ToRouter {
    /// A new queue of [`ROUTER_QUEUE_BYTES`] for the module the TEE layer knows as `holder`;
    /// drops are counted in `dropped`. The router drains the receiving side with
    /// `recv_held`, dropping each command's room once it is done with it.
    pub(crate) fn channel(
        dropped: Arc<AtomicU64>,
        devices: Arc<dyn DeviceGrants>,
        holder: Holder,
    ) -> (ToRouter, queue::Receiver<RouterCommand>) {
        let (commands, rx) = queue::channel(ROUTER_QUEUE_BYTES);
        let to_router = ToRouter {
            commands,
            dropped,
            devices,
            holder,
        };
        (to_router, rx)
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

    /// Hands credit the module granted (read from a frame of `bytes`) to the router, behind
    /// the events the module wrote before it, waiting for room.
    pub(crate) async fn credit(&self, credit: Credit, bytes: usize) {
        if !self
            .commands
            .send_sized(RouterCommand::Credit(credit), bytes)
            .await
        {
            debug!("router gone; credit dropped");
            self.count_drop();
        }
    }

    /// Performs the module's device access, for the holder it was loaded as (never anything
    /// the module says), once the events it wrote before are routed; a refusal is the
    /// reason, for the module.
    pub(crate) async fn device(&self, device: &str, op: DeviceOp) -> Result<u32, String> {
        self.commands.drained().await;
        let op = match op {
            DeviceOp::Read => Access::Read,
            DeviceOp::Write(v) => Access::Write(v),
        };
        self.devices.access(&self.holder, device, op).map_err(|e| {
            debug!(module = %self.holder.module, error = %e, "device access refused");
            e.to_string()
        })
    }

    /// Counts one frame or reply the module's reader could not decode or deliver.
    pub(crate) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aex_tee::devices::{DeviceError, DevicePins, DeviceSpec, GrantTable};

    use super::*;

    /// Every device reads as 7.
    struct Sevens;

    impl DevicePins for Sevens {
        fn read(&self, _device: &str) -> Result<u32, DeviceError> {
            Ok(7)
        }

        fn drive(&self, _device: &str, _value: u32) -> Result<(), DeviceError> {
            Ok(())
        }
    }

    fn event(n: u8) -> Event {
        Event {
            conn: aex_proto::ConnId(u32::from(n)),
            dir: aex_proto::Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter: u64::from(n),
            ciphertext: vec![n; 10],
        }
    }

    /// A handle for holder (`app`, `button`), which holds the input `button`.
    fn handle() -> (ToRouter, queue::Receiver<RouterCommand>, Arc<AtomicU64>) {
        let specs = DeviceSpec::parse_all(&["button=digital_in"]).unwrap();
        let grants: Arc<dyn DeviceGrants> =
            Arc::new(GrantTable::new(&specs, Arc::new(Sevens)).unwrap());
        let holder = Holder::new("app", "button");
        grants.claim(&holder, &["button".into()]).unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let (to_router, rx) = ToRouter::channel(dropped.clone(), grants, holder);
        (to_router, rx, dropped)
    }

    #[tokio::test]
    async fn events_arrive_in_order_and_a_device_access_waits_until_they_are_routed() {
        let (to_router, mut rx, dropped) = handle();
        // Nothing pending: answered at once.
        assert_eq!(to_router.device("button", DeviceOp::Read).await, Ok(7));
        to_router.event(event(1), 10).await;
        to_router.event(event(2), 10).await;
        let (first, routing) = rx.recv_held().await.unwrap();
        let RouterCommand::Event(first) = first else {
            panic!("not an event")
        };
        assert_eq!(first.counter, 1);
        let to_router = Arc::new(to_router);
        let access = {
            let to_router = to_router.clone();
            tokio::spawn(async move { to_router.device("button", DeviceOp::Read).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!access.is_finished(), "accessed before event 1 was routed");
        drop(routing);
        let (second, routing) = rx.recv_held().await.unwrap();
        let RouterCommand::Event(second) = second else {
            panic!("not an event")
        };
        assert_eq!(second.counter, 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!access.is_finished(), "accessed before event 2 was routed");
        drop(routing);
        assert_eq!(access.await.unwrap(), Ok(7));
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn credit_travels_in_its_place_among_the_events() {
        let (to_router, mut rx, _) = handle();
        let credit = Credit {
            conn: aex_proto::ConnId(3),
            dir: aex_proto::Direction::Backward,
            bytes: 100,
            dropped: 0,
        };
        to_router.event(event(1), 10).await;
        to_router.credit(credit, 12).await;
        to_router.event(event(2), 10).await;
        let mut got = vec![];
        for _ in 0..3 {
            got.push(match rx.recv().await.unwrap() {
                RouterCommand::Event(ev) => format!("event {}", ev.counter),
                RouterCommand::Credit(c) => format!("credit {}", c.bytes),
            });
        }
        assert_eq!(got, ["event 1", "credit 100", "event 2"]);
    }

    #[tokio::test]
    async fn accesses_are_for_the_holder_and_without_a_router_events_are_counted() {
        let (to_router, rx, dropped) = handle();
        // The grant table refuses a device this holder does not hold, and says why.
        let refused = to_router.device("led", DeviceOp::Write(1)).await;
        assert!(refused.is_err_and(|why| why.contains("led")));
        drop(rx);
        to_router.event(event(1), 10).await;
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        // Nothing can be pending once the router is gone.
        assert_eq!(to_router.device("button", DeviceOp::Read).await, Ok(7));
        to_router.count_drop();
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
    }
}
