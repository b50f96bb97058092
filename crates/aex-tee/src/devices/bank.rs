//! The devices of one node: their grants to driver modules, and their values.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::spec::{check_all, DeviceKind, DeviceSpec, DeviceSpecError, MAX_DEVICE_NAME};

/// A module instance a device can be granted to: the namespace it was loaded in (an
/// application of one deployer) and its name on the node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The namespace, as the node agent names it.
    pub namespace: String,
    /// The module's name on the node (`valve`, or `valve.2` for a later instance).
    pub module: String,
}

impl Holder {
    /// A holder.
    pub fn new(namespace: impl Into<String>, module: impl Into<String>) -> Self {
        Holder {
            namespace: namespace.into(),
            module: module.into(),
        }
    }

    /// Whether `self` is a later or earlier instance of the same module as `other`: the same
    /// namespace and the same name before the first `.`.
    fn same_module(&self, other: &Holder) -> bool {
        let base = |m: &str| m.split('.').next().unwrap_or_default().to_owned();
        self.namespace == other.namespace && base(&self.module) == base(&other.module)
    }
}

/// A device access or claim was refused. Messages name the device but never another
/// application's module: who holds a device is that application's business.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The node declares no such device.
    #[error("this node has no device `{device}` (devices: {})", list(valid))]
    Unknown {
        /// The name asked for.
        device: String,
        /// The node's devices.
        valid: Vec<String>,
    },
    /// Another module holds the device.
    #[error("device `{device}` is held exclusively by another module")]
    Busy {
        /// The device.
        device: String,
    },
    /// The device is not granted to the module asking.
    #[error("device `{device}` is not granted to this module")]
    NotGranted {
        /// The device.
        device: String,
    },
    /// An output was asked to be set by the world, or an input to be driven.
    #[error("device `{device}` is {what}")]
    Direction {
        /// The device.
        device: String,
        /// What it is and who sets it.
        what: &'static str,
    },
    /// The value is out of the device's range.
    #[error("device `{device}` takes values 0 to {max}, not {value}")]
    Range {
        /// The device.
        device: String,
        /// The refused value.
        value: u32,
        /// The largest valid value.
        max: u32,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// What a driver does to its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read an input, or an output's current level.
    Read,
    /// Drive an output.
    Write(u32),
}

/// One device's state.
#[derive(Debug)]
struct Slot {
    kind: DeviceKind,
    quantity: Option<String>,
    value: u32,
    /// Bumped at every change of `value`, for [`DeviceBank::watch`].
    version: u64,
    holder: Option<Holder>,
}

/// A device as [`DeviceBank::list`] shows it.
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

/// The devices of one node and their grants.
#[derive(Debug, Default)]
pub struct DeviceBank {
    slots: Mutex<BTreeMap<String, Slot>>,
    changed: Condvar,
}

impl DeviceBank {
    /// A bank holding `specs`; fails on a repeated name, or on inputs sensing one quantity
    /// that start at different values.
    pub fn new(specs: &[DeviceSpec]) -> Result<Self, DeviceSpecError> {
        check_all(specs)?;
        let slots = specs
            .iter()
            .map(|spec| {
                let slot = Slot {
                    kind: spec.kind,
                    quantity: spec.quantity.clone(),
                    value: spec.initial,
                    version: 0,
                    holder: None,
                };
                (spec.name.clone(), slot)
            })
            .collect();
        Ok(DeviceBank {
            slots: Mutex::new(slots),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        // A panic while holding the lock cannot leave a slot half-written: every update is
        // one assignment. Keep serving.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Grants every device of `devices` to `holder`, or none of them.
    pub fn claim(&self, holder: &Holder, devices: &[String]) -> Result<(), DeviceError> {
        let mut slots = self.lock();
        for device in devices {
            let slot = lookup(&slots, device)?;
            if let Some(current) = &slot.holder {
                if current != holder && !current.same_module(holder) {
                    return Err(DeviceError::Busy {
                        device: device.clone(),
                    });
                }
            }
        }
        for device in devices {
            if let Some(slot) = slots.get_mut(device) {
                slot.holder = Some(holder.clone());
            }
        }
        Ok(())
    }

    /// Takes back every device `holder` still holds (at unload; a device another instance
    /// took over stays with it). Outputs are switched off, as hardware resets a released pin.
    pub fn release(&self, holder: &Holder) {
        let mut slots = self.lock();
        let mut changed = false;
        for slot in slots.values_mut() {
            if slot.holder.as_ref() == Some(holder) {
                slot.holder = None;
                if !slot.kind.is_input() && slot.value != 0 {
                    slot.value = 0;
                    slot.version += 1;
                    changed = true;
                }
            }
        }
        drop(slots);
        if changed {
            self.changed.notify_all();
        }
    }

    /// A driver's access: reads the device, or drives an output, if `holder` holds it.
    pub fn access(&self, holder: &Holder, device: &str, op: Access) -> Result<u32, DeviceError> {
        let mut slots = self.lock();
        let slot = lookup_mut(&mut slots, device)?;
        if slot.holder.as_ref() != Some(holder) {
            return Err(DeviceError::NotGranted {
                device: device.to_owned(),
            });
        }
        match op {
            Access::Read => Ok(slot.value),
            Access::Write(_) if slot.kind.is_input() => Err(DeviceError::Direction {
                device: device.to_owned(),
                what: "an input: the physical world sets it",
            }),
            Access::Write(value) => {
                let max = slot.kind.max();
                if value > max {
                    return Err(DeviceError::Range {
                        device: device.to_owned(),
                        value,
                        max,
                    });
                }
                if slot.value != value {
                    slot.value = value;
                    slot.version += 1;
                    drop(slots);
                    self.changed.notify_all();
                }
                Ok(value)
            }
        }
    }

    /// The physical world looks at a device, or at a quantity inputs sense: its current value.
    pub fn sense(&self, device: &str) -> Result<u32, DeviceError> {
        Ok(observe(&self.lock(), device)?.value)
    }

    /// The physical world changes what an input senses (the soil dries, the button is
    /// pressed): `device` is an input's name, or a quantity several inputs sense, which all
    /// change together. Outputs are refused: only their driver drives them.
    pub fn set_world(&self, device: &str, value: u32) -> Result<(), DeviceError> {
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
            None => return Err(unknown(&slots, device)),
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

    /// Waits until `device`'s value (or a quantity's) differs from version `seen` (`None`: answer at once), or
    /// until `timeout` passes; returns the current version and value either way.
    pub fn watch(
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

    /// Every device, in name order.
    pub fn list(&self) -> Vec<DeviceView> {
        self.lock()
            .iter()
            .map(|(name, slot)| DeviceView {
                name: name.clone(),
                kind: slot.kind,
                value: slot.value,
                held: slot.holder.is_some(),
            })
            .collect()
    }

    /// The names of the devices `holder` holds.
    pub fn held_by(&self, holder: &Holder) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, slot)| slot.holder.as_ref() == Some(holder))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

fn unknown(slots: &BTreeMap<String, Slot>, device: &str) -> DeviceError {
    let shown: String = device.chars().take(MAX_DEVICE_NAME).collect();
    DeviceError::Unknown {
        device: shown.escape_default().to_string(),
        valid: slots.keys().cloned().collect(),
    }
}

/// The device named `name`, or else the first input sensing the quantity `name`.
fn observe<'a>(slots: &'a BTreeMap<String, Slot>, name: &str) -> Result<&'a Slot, DeviceError> {
    slots
        .get(name)
        .or_else(|| slots.values().find(|s| s.quantity.as_deref() == Some(name)))
        .ok_or_else(|| unknown(slots, name))
}

fn lookup<'a>(slots: &'a BTreeMap<String, Slot>, device: &str) -> Result<&'a Slot, DeviceError> {
    slots.get(device).ok_or_else(|| unknown(slots, device))
}

fn lookup_mut<'a>(
    slots: &'a mut BTreeMap<String, Slot>,
    device: &str,
) -> Result<&'a mut Slot, DeviceError> {
    if slots.contains_key(device) {
        // Invariant: checked just above.
        Ok(slots.get_mut(device).expect("present"))
    } else {
        Err(unknown(slots, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELD: [&str; 3] = [
        "button=digital_in",
        "valve=digital_out",
        "soil=analog_in:100@35",
    ];

    fn bank() -> DeviceBank {
        let specs = DeviceSpec::parse_all(&FIELD).unwrap();
        DeviceBank::new(&specs).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_name_declared_twice_is_refused() {
        let twice = [
            DeviceSpec::parse("a=digital_in").unwrap(),
            DeviceSpec::parse("a=digital_out").unwrap(),
        ];
        assert_eq!(
            DeviceBank::new(&twice).unwrap_err(),
            DeviceSpecError::Twice { device: "a".into() }
        );
    }

    #[test]
    fn only_the_holder_reaches_a_device() {
        let bank = bank();
        let driver = Holder::new("app-a", "valve");
        bank.claim(&driver, &names(&["valve"])).unwrap();
        assert_eq!(bank.access(&driver, "valve", Access::Write(1)), Ok(1));
        assert_eq!(bank.sense("valve"), Ok(1));
        assert_eq!(bank.access(&driver, "valve", Access::Read), Ok(1));
        // Another module of the same application, and the same name in another one.
        for other in [
            Holder::new("app-a", "controller"),
            Holder::new("app-b", "valve"),
        ] {
            for op in [Access::Read, Access::Write(0)] {
                assert_eq!(
                    bank.access(&other, "valve", op),
                    Err(DeviceError::NotGranted {
                        device: "valve".into()
                    })
                );
            }
        }
        // An unclaimed device is no one's.
        assert!(matches!(
            bank.access(&driver, "soil", Access::Read),
            Err(DeviceError::NotGranted { .. })
        ));
        assert!(matches!(
            bank.access(&driver, "pump", Access::Read),
            Err(DeviceError::Unknown { .. })
        ));
        assert_eq!(bank.sense("valve"), Ok(1), "nothing else changed the valve");
    }

    #[test]
    fn a_second_binding_is_refused_and_claims_are_all_or_nothing() {
        let bank = bank();
        let a = Holder::new("app-a", "probe");
        bank.claim(&a, &names(&["soil"])).unwrap();
        // Idempotent for the holder itself.
        bank.claim(&a, &names(&["soil"])).unwrap();
        for other in [Holder::new("app-b", "probe"), Holder::new("app-a", "spy")] {
            let e = bank.claim(&other, &names(&["button", "soil"])).unwrap_err();
            assert_eq!(
                e,
                DeviceError::Busy {
                    device: "soil".into()
                }
            );
            assert!(
                !e.to_string().contains("probe"),
                "never names the holder: {e}"
            );
        }
        // The refused claim took nothing, not even the free button.
        assert!(bank
            .claim(&Holder::new("app-c", "b"), &names(&["button"]))
            .is_ok());
        assert!(matches!(
            bank.claim(&a, &names(&["pump"])),
            Err(DeviceError::Unknown { .. })
        ));
    }

    #[test]
    fn a_later_instance_takes_over_and_release_frees() {
        let bank = bank();
        let old = Holder::new("app-a", "valve");
        let new = Holder::new("app-a", "valve.1");
        bank.claim(&old, &names(&["valve"])).unwrap();
        bank.access(&old, "valve", Access::Write(1)).unwrap();
        bank.claim(&new, &names(&["valve"])).unwrap();
        assert!(bank.access(&old, "valve", Access::Read).is_err());
        assert_eq!(bank.access(&new, "valve", Access::Read), Ok(1));
        // Releasing the old instance does not touch the new one's grant.
        bank.release(&old);
        assert_eq!(bank.held_by(&new), names(&["valve"]));
        assert_eq!(bank.sense("valve"), Ok(1));
        bank.release(&new);
        assert_eq!(
            bank.sense("valve"),
            Ok(0),
            "a released output is switched off"
        );
        assert!(bank.list().iter().all(|d| !d.held));
        bank.claim(&Holder::new("app-b", "valve"), &names(&["valve"]))
            .unwrap();
    }

    #[test]
    fn the_world_sets_inputs_only_within_range() {
        let bank = bank();
        bank.set_world("soil", 20).unwrap();
        assert_eq!(bank.sense("soil"), Ok(20));
        assert!(matches!(
            bank.set_world("soil", 101),
            Err(DeviceError::Range { max: 100, .. })
        ));
        assert!(matches!(
            bank.set_world("valve", 1),
            Err(DeviceError::Direction { .. })
        ));
        assert!(matches!(
            bank.set_world("button", 2),
            Err(DeviceError::Range { max: 1, .. })
        ));
        let driver = Holder::new("a", "probe");
        bank.claim(&driver, &names(&["soil", "valve"])).unwrap();
        assert!(matches!(
            bank.access(&driver, "soil", Access::Write(3)),
            Err(DeviceError::Direction { .. })
        ));
        assert!(matches!(
            bank.access(&driver, "valve", Access::Write(2)),
            Err(DeviceError::Range { .. })
        ));
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
        assert_eq!(specs[0].to_string(), "p1=analog_in:100@40~bed");
        let bank = DeviceBank::new(&specs).unwrap();
        bank.set_world("p1", 20).unwrap();
        assert_eq!(
            (bank.sense("p1"), bank.sense("p2"), bank.sense("p3")),
            (Ok(20), Ok(20), Ok(40))
        );
        bank.set_world("bed", 70).unwrap();
        assert_eq!((bank.sense("p1"), bank.sense("p2")), (Ok(70), Ok(70)));
        assert_eq!(bank.sense("bed"), Ok(70));
        assert!(matches!(
            bank.set_world("bed", 101),
            Err(DeviceError::Range { .. })
        ));
        assert_eq!(bank.sense("p2"), Ok(70), "a refused change changes nothing");
        assert!(DeviceSpec::parse("v=digital_out~bed")
            .unwrap_err()
            .to_string()
            .contains("only inputs"));
        let disagree = [
            DeviceSpec::parse("a=analog_in@1~q").unwrap(),
            DeviceSpec::parse("b=analog_in@2~q").unwrap(),
        ];
        let e = DeviceBank::new(&disagree).unwrap_err();
        assert!(matches!(e, DeviceSpecError::QuantityStart { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "devices `a` and `b` sense `q` but start at 1 and 2"
        );
    }

    #[test]
    fn watch_wakes_on_change_and_times_out() {
        let bank = std::sync::Arc::new(bank());
        let (v0, value) = bank.watch("soil", None, Duration::ZERO).unwrap();
        assert_eq!(value, 35);
        let (same, _) = bank
            .watch("soil", Some(v0), Duration::from_millis(20))
            .unwrap();
        assert_eq!(same, v0, "no change: the timeout answers the same version");
        let setter = {
            let bank = bank.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                bank.set_world("soil", 12).unwrap();
            })
        };
        let (v1, value) = bank
            .watch("soil", Some(v0), Duration::from_secs(10))
            .unwrap();
        assert!(v1 > v0);
        assert_eq!(value, 12);
        setter.join().unwrap();
    }
}
