//! The physical world of a node's simulated devices: what each device senses or is driven to.
//!
//! A simulated device has no soil to dry and no finger on its button, so the node keeps the
//! values here. The TEE layer's grants reach them as the devices' pins ([`DevicePins`]: a
//! driver reads a device, drives an output); the physical-world socket (`socket.rs`) plays
//! physics: [`World::sense`] and [`World::watch`] observe any device, [`World::set`] changes
//! what an *input* senses. Inputs may share a physical quantity (`~bed`: two probes in one
//! bed), which they always read alike and the world sets together. Nothing drives an output
//! but its driver, through the grants.
//!
//! Lock order: the grant table calls the world while holding its own lock; the world never
//! calls the grants while holding its own ([`World::list`] reads the grants after).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aex_tee::devices::{
    check_all, DeviceError, DeviceGrants, DeviceKind, DevicePins, DeviceSpec, DeviceSpecError,
};

/// One device's physical state.
#[derive(Debug)]
struct Slot {
    kind: DeviceKind,
    quantity: Option<String>,
    value: u32,
    /// Bumped at every change of `value`, for [`World::watch`].
    version: u64,
}

/// A device as `World::list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: DeviceKind,
    /// Its current value.
    pub value: u32,
    /// Whether a driver holds it.
    pub held: bool,
}

/// The values of one node's devices, and the wake-up of whoever watches them.
#[derive(Debug, Default)]
pub(crate) struct World {
    slots: Mutex<BTreeMap<String, Slot>>,
    changed: Condvar,
}

impl World {
    /// The world of the devices `specs`, each at its initial value; fails on a repeated name,
    /// or on inputs sensing one quantity that start at different values.
    pub(crate) fn new(specs: &[DeviceSpec]) -> Result<Self, DeviceSpecError> {
        check_all(specs)?;
        let slots = specs
            .iter()
            .map(|spec| {
                let slot = Slot {
                    kind: spec.kind,
                    quantity: spec.quantity.clone(),
                    value: spec.initial,
                    version: 0,
                };
                (spec.name.clone(), slot)
            })
            .collect();
        Ok(World {
            slots: Mutex::new(slots),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        // A panic while holding the lock cannot leave a slot half-written: every update is
        // one assignment. Keep serving.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The physical world looks at a device, or at a quantity inputs sense: its current value.
    pub(crate) fn sense(&self, device: &str) -> Result<u32, DeviceError> {
        Ok(observe(&self.lock(), device)?.value)
    }

    /// The physical world changes what an input senses (the soil dries, the button is
    /// pressed): `device` is an input's name, or a quantity several inputs sense, which all
    /// change together. Outputs are refused: only their driver drives them.
    pub(crate) fn set(&self, device: &str, value: u32) -> Result<(), DeviceError> {
        let mut slots = self.lock();
        let quantity = match slots.get(device) {
            Some(slot) if !slot.kind.is_input() => {
                return Err(DeviceError::Direction {
                    device: device.to_owned(),
                    what: "an output: only the driver module it is granted to drives it",
                })
            }
            Some(slot) => slot.quantity.clone(),
            None if slots
                .values()
                .any(|s| s.quantity.as_deref() == Some(device)) =>
            {
                Some(device.to_owned())
            }
            None => return Err(DeviceError::unknown(device, slots.keys())),
        };
        let sensing = |name: &str, slot: &Slot| match &quantity {
            Some(q) => slot.quantity.as_ref() == Some(q),
            None => name == device,
        };
        for (name, slot) in slots.iter().filter(|(n, s)| sensing(n, s)) {
            let max = slot.kind.max();
            if value > max {
                return Err(DeviceError::Range {
                    device: name.clone(),
                    value,
                    max,
                });
            }
        }
        let mut changed = false;
        for (name, slot) in slots.iter_mut() {
            if sensing(name, slot) && slot.value != value {
                slot.value = value;
                slot.version += 1;
                changed = true;
            }
        }
        drop(slots);
        if changed {
            self.changed.notify_all();
        }
        Ok(())
    }

    /// Waits until `device`'s value (or a quantity's) differs from version `seen` (`None`:
    /// answer at once), or until `timeout` passes; returns the current version and value
    /// either way.
    pub(crate) fn watch(
        &self,
        device: &str,
        seen: Option<u64>,
        timeout: Duration,
    ) -> Result<(u64, u32), DeviceError> {
        let deadline = Instant::now() + timeout;
        let mut slots = self.lock();
        loop {
            let slot = observe(&slots, device)?;
            let now = Instant::now();
            if seen != Some(slot.version) || now >= deadline {
                return Ok((slot.version, slot.value));
            }
            slots = self
                .changed
                .wait_timeout(slots, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Every device, in name order, with whether `grants` say a driver holds it.
    pub(crate) fn list(&self, grants: &dyn DeviceGrants) -> Vec<DeviceView> {
        let values: Vec<(String, DeviceKind, u32)> = self
            .lock()
            .iter()
            .map(|(name, slot)| (name.clone(), slot.kind, slot.value))
            .collect();
        // The world's lock is released: the grants may call the world.
        values
            .into_iter()
            .map(|(name, kind, value)| DeviceView {
                held: grants.is_held(&name),
                name,
                kind,
                value,
            })
            .collect()
    }
}

/// The TEE layer's side: a driver's read and an output's drive, by exact device name.
impl DevicePins for World {
    fn read(&self, device: &str) -> Result<u32, DeviceError> {
        let slots = self.lock();
        slots
            .get(device)
            .map(|slot| slot.value)
            .ok_or_else(|| DeviceError::unknown(device, slots.keys()))
    }

    fn drive(&self, device: &str, value: u32) -> Result<(), DeviceError> {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(device) else {
            return Err(DeviceError::unknown(device, slots.keys()));
        };
        if slot.value != value {
            slot.value = value;
            slot.version += 1;
            drop(slots);
            self.changed.notify_all();
        }
        Ok(())
    }
}

/// The device named `name`, or else the first input sensing the quantity `name`.
fn observe<'a>(slots: &'a BTreeMap<String, Slot>, name: &str) -> Result<&'a Slot, DeviceError> {
    slots
        .get(name)
        .or_else(|| slots.values().find(|s| s.quantity.as_deref() == Some(name)))
        .ok_or_else(|| DeviceError::unknown(name, slots.keys()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aex_tee::devices::{Access, Holder};
    use aex_tee::{Backend, NativePlatform};

    use super::*;

    const FIELD: [&str; 3] = [
        "button=digital_in",
        "valve=digital_out",
        "soil=analog_in:100@35",
    ];

    fn world() -> World {
        World::new(&DeviceSpec::parse_all(&FIELD).unwrap()).unwrap()
    }

    #[test]
    fn the_world_sets_inputs_only_within_range() {
        let world = world();
        world.set("soil", 20).unwrap();
        assert_eq!(world.sense("soil"), Ok(20));
        assert!(matches!(
            world.set("soil", 101),
            Err(DeviceError::Range { max: 100, .. })
        ));
        assert!(matches!(
            world.set("valve", 1),
            Err(DeviceError::Direction { .. })
        ));
        assert!(matches!(
            world.set("button", 2),
            Err(DeviceError::Range { max: 1, .. })
        ));
        assert!(matches!(
            world.set("pump", 1),
            Err(DeviceError::Unknown { .. })
        ));
        assert_eq!(
            world.sense("soil"),
            Ok(20),
            "refused changes change nothing"
        );
    }

    #[test]
    fn inputs_sensing_one_quantity_change_together() {
        let specs: Vec<DeviceSpec> = [
            "p1=analog_in:100@40~bed",
            "p2=analog_in:100@40~bed",
            "p3=analog_in:100@40",
        ]
        .iter()
        .map(|s| DeviceSpec::parse(s).unwrap())
        .collect();
        let world = World::new(&specs).unwrap();
        world.set("p1", 20).unwrap();
        assert_eq!(
            (world.sense("p1"), world.sense("p2"), world.sense("p3")),
            (Ok(20), Ok(20), Ok(40))
        );
        world.set("bed", 70).unwrap();
        assert_eq!((world.sense("p1"), world.sense("p2")), (Ok(70), Ok(70)));
        assert_eq!(world.sense("bed"), Ok(70));
        assert!(matches!(
            world.set("bed", 101),
            Err(DeviceError::Range { .. })
        ));
        assert_eq!(
            world.sense("p2"),
            Ok(70),
            "a refused change changes nothing"
        );
        // A driver's pins are devices, not quantities.
        assert!(matches!(
            world.read("bed"),
            Err(DeviceError::Unknown { .. })
        ));
        let disagree = [
            DeviceSpec::parse("a=analog_in@1~q").unwrap(),
            DeviceSpec::parse("b=analog_in@2~q").unwrap(),
        ];
        assert!(matches!(
            World::new(&disagree),
            Err(DeviceSpecError::QuantityStart { .. })
        ));
    }

    #[test]
    fn watch_wakes_on_change_and_times_out() {
        let world = Arc::new(world());
        let (v0, value) = world.watch("soil", None, Duration::ZERO).unwrap();
        assert_eq!(value, 35);
        let (same, _) = world
            .watch("soil", Some(v0), Duration::from_millis(20))
            .unwrap();
        assert_eq!(same, v0, "no change: the timeout answers the same version");
        let setter = {
            let world = world.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                world.set("soil", 12).unwrap();
            })
        };
        let (v1, value) = world
            .watch("soil", Some(v0), Duration::from_secs(10))
            .unwrap();
        assert!(v1 > v0);
        assert_eq!(value, 12);
        setter.join().unwrap();
    }

    /// The grants a backend hands out drive this world: a driver's write is what the world
    /// senses (and wakes its watchers), a release switches the output off, and the world shows
    /// which devices are held.
    #[test]
    fn a_backends_grants_drive_the_world() {
        let specs = DeviceSpec::parse_all(&FIELD).unwrap();
        let world = Arc::new(World::new(&specs).unwrap());
        let grants = NativePlatform.device_grants(&specs, world.clone()).unwrap();
        let driver = Holder::new("ns", "valve");
        grants.claim(&driver, &["valve".to_owned()]).unwrap();
        let (v0, _) = world.watch("valve", None, Duration::ZERO).unwrap();
        assert_eq!(grants.access(&driver, "valve", Access::Write(1)), Ok(1));
        assert_eq!(
            world.watch("valve", Some(v0), Duration::ZERO),
            Ok((v0 + 1, 1))
        );
        world.set("soil", 7).unwrap();
        let spy = Holder::new("ns", "spy");
        assert!(matches!(
            grants.access(&spy, "soil", Access::Read),
            Err(DeviceError::NotGranted { .. })
        ));
        let held: Vec<(String, bool)> = world
            .list(&*grants)
            .into_iter()
            .map(|d| (d.name, d.held))
            .collect();
        assert_eq!(
            held,
            [("button", false), ("soil", false), ("valve", true)].map(|(n, h)| (n.into(), h))
        );
        grants.release(&driver);
        assert_eq!(
            world.sense("valve"),
            Ok(0),
            "a released output is switched off"
        );
        assert!(world.list(&*grants).iter().all(|d| !d.held));
    }
}
