//! A module's way into the router: the events and credit its output reader hands over, and
//! the module's device accesses.
//!
//! A module does not own the router. The router owns the registry of modules; a module holding
//! the router's type tied `module/`, the registry and the router into one import circle.
//! Instead the router connects each module with a [`ToRouter`] (`Router::connect_module`),
//! which reaches it through the [`ModuleTraffic`] trait that this file defines and the router
//! implements: module code depends on the trait, the router on this file, never the reverse.
//!
//! The reader routes each event itself, at once, in the order the module wrote them: no queue
//! and no second task between the module's pipe and the destination's queue, so an event costs
//! no task switch on its way through the node. What that keeps:
//!
//! * **Order.** One reader reads one module's frames and routes them one at a time. The credit
//!   a module grants (`FromModule::Credit`) is relayed in its place among its events.
//! * **What blocks.** Nothing: routing never waits (it pushes into destination queues bounded
//!   in bytes with `try_send`, and drops, counts and returns the credit of what does not
//!   fit). A module that writes faster than the node routes is held back by its pipe, which
//!   its reader empties only as fast as it routes.
//! * **Fairness.** Each module has its own reader: a flooding module keeps its own reader busy
//!   and delays no other module (each routing step is short, and the reader yields to the
//!   runtime's other tasks as tokio's cooperative budget says).
//! * **Device accesses** are performed by the handle itself, against the TEE layer's grants
//!   and as the holder the router connected the module as. The events the module wrote before
//!   an access are routed by then, since the reader routed them before it read the access.
//! * **Counters.** What the reader drops (a bad frame, a device reply that does not fit its
//!   module's input) is counted in the router's `dropped` counter, which the handle shares.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aex_proto::flow::Credit;
use aex_proto::forwarding::EventRef;
use aex_proto::{AppId, ConnId, DeviceOp, Direction};
use aex_tee::devices::{Access, DeviceGrants, Holder};
use foldhash::{HashSet, HashSetExt};
use tracing::debug;

/// What the router does with a module's traffic.
pub(crate) trait ModuleTraffic: Send + Sync {
    /// Records module `name` of namespace `app` as the source of `(conn, dir)`'s events when
    /// a route that comes from a local module carries them; false when there is no such route.
    fn note_source(&self, app: AppId, key: (ConnId, Direction), name: &str) -> bool;

    /// Routes an event module `name` wrote, in its namespace `app`.
    fn route_from_module(&self, app: AppId, name: &str, ev: EventRef<'_>);

    /// Relays credit module `name` granted for events it took in, toward their sender.
    fn credit_from_module(&self, app: AppId, name: &str, credit: Credit);
}

/// A module's way into the router (one per module, owned by its output reader): where its
/// events and credit go, the router's drop counter, and the device grants it accesses as its
/// holder.
pub(crate) struct ToRouter {
    router: Arc<dyn ModuleTraffic>,
    app: AppId,
    name: String,
    /// The keys this module was recorded as the source of (`ModuleTraffic::note_source`), so
    /// later events cost no table lookup. Only keys that had a route, so a module cannot grow
    /// it by sending on connections no one routed.
    sent: HashSet<(ConnId, Direction)>,
    dropped: Arc<AtomicU64>,
    devices: Arc<dyn DeviceGrants>,
    holder: Holder,
}

impl ToRouter {
    /// The handle of module `name` in namespace `app`, known to the TEE layer as `holder`;
    /// drops are counted in `dropped`.
    pub(crate) fn new(
        router: Arc<dyn ModuleTraffic>,
        app: AppId,
        name: &str,
        dropped: Arc<AtomicU64>,
        devices: Arc<dyn DeviceGrants>,
    ) -> Self {
        ToRouter {
            router,
            app,
            name: name.to_string(),
            sent: HashSet::new(),
            dropped,
            devices,
            holder: Holder::new(app.to_string(), name),
        }
    }

    /// Routes `ev`, which the module wrote. The first event the module sends on a locally
    /// originated route records it as that route's source: credit for it comes back to this
    /// module.
    pub(crate) fn event(&mut self, ev: EventRef<'_>) {
        let key = (ev.conn, ev.dir);
        if !self.sent.contains(&key) && self.router.note_source(self.app, key, &self.name) {
            self.sent.insert(key);
        }
        self.router.route_from_module(self.app, &self.name, ev);
    }

    /// Relays credit the module granted, behind the events it wrote before.
    pub(crate) fn credit(&self, credit: Credit) {
        self.router.credit_from_module(self.app, &self.name, credit);
    }

    /// Performs the module's device access, for the holder it was loaded as (never anything
    /// the module says); a refusal is the reason, for the module.
    pub(crate) fn device(&self, device: &str, op: DeviceOp) -> Result<u32, String> {
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
    use std::sync::Mutex;

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

    /// Writes down what it is handed; routes only connection 1.
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl ModuleTraffic for Log {
        fn note_source(&self, _: AppId, (conn, _): (ConnId, Direction), name: &str) -> bool {
            self.0.lock().unwrap().push(format!("source {name} {conn}"));
            conn == ConnId(1)
        }

        fn route_from_module(&self, _: AppId, name: &str, ev: EventRef<'_>) {
            let line = format!("event {name} {} {}", ev.conn, ev.counter);
            self.0.lock().unwrap().push(line);
        }

        fn credit_from_module(&self, _: AppId, name: &str, credit: Credit) {
            let line = format!("credit {name} {} {}", credit.conn, credit.bytes);
            self.0.lock().unwrap().push(line);
        }
    }

    fn event(conn: u32, counter: u64) -> aex_proto::Event {
        aex_proto::Event {
            conn: ConnId(conn),
            dir: Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter,
            ciphertext: vec![1; 10],
        }
    }

    /// A handle for holder (`app`, `button`), which holds the input `button`.
    fn handle() -> (ToRouter, Arc<Log>, Arc<AtomicU64>) {
        let specs = DeviceSpec::parse_all(&["button=digital_in"]).unwrap();
        let grants: Arc<dyn DeviceGrants> =
            Arc::new(GrantTable::new(&specs, Arc::new(Sevens)).unwrap());
        let app = AppId([3; 16]);
        grants
            .claim(&Holder::new(app.to_string(), "button"), &["button".into()])
            .unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Log::default());
        let to_router = ToRouter::new(log.clone(), app, "button", dropped.clone(), grants);
        (to_router, log, dropped)
    }

    #[test]
    fn events_and_credit_are_routed_in_order_and_a_source_is_looked_up_once() {
        let (mut to_router, log, _) = handle();
        to_router.event(event(1, 1).view());
        to_router.credit(Credit {
            conn: ConnId(3),
            dir: Direction::Backward,
            bytes: 100,
            dropped: 0,
        });
        to_router.event(event(1, 2).view());
        // No route: looked up again each time, and never remembered.
        to_router.event(event(2, 1).view());
        to_router.event(event(2, 2).view());
        let got = log.0.lock().unwrap().clone();
        let want = [
            "source button #1",
            "event button #1 1",
            "credit button #3 100",
            "event button #1 2",
            "source button #2",
            "event button #2 1",
            "source button #2",
            "event button #2 2",
        ];
        assert_eq!(got, want);
        assert_eq!(to_router.sent.len(), 1);
    }

    #[test]
    fn accesses_are_for_the_holder_and_drops_are_counted() {
        let (to_router, _, dropped) = handle();
        assert_eq!(to_router.device("button", DeviceOp::Read), Ok(7));
        // The grant table refuses a device this holder does not hold, and says why.
        let refused = to_router.device("led", DeviceOp::Write(1));
        assert!(refused.is_err_and(|why| why.contains("led")));
        to_router.count_drop();
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
