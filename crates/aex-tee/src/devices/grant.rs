//! The TEE layer's grant table: which module instance holds which device, and the one way a
//! driver reaches its device.
//!
//! Invariant: a device has at most one holder; a claim is all or nothing; a holder is an exact
//! (namespace, module instance) pair, so a module of another application, another module of
//! the same application, or a process that merely learns the name never passes
//! [`DeviceGrants::access`]. The one transfer is a later instance of the same module in the
//! same namespace (`name.2` replacing `name`, an update by the same deployer): it takes the
//! grant, and the earlier instance loses it at once.
//!
//! Lock order: [`GrantTable`] calls its [`DevicePins`] while holding its own lock (so a release
//! cannot slip between the check of a grant and the access it allows); pins never call back
//! into the grants.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::DeviceError;
use super::spec::{check_all, DeviceKind, DeviceSpec, DeviceSpecError};

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

/// What a driver does to its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read an input, or an output's current level.
    Read,
    /// Drive an output.
    Write(u32),
}

/// The device side the TEE layer reaches on a driver's behalf: the device's I/O addresses on
/// Sancus, a peripheral of the secure world on TrustZone; in simulation, the node's model of
/// the physical world. The grant table calls it only for devices it declares, and drives only
/// outputs, with values checked against their kind.
pub trait DevicePins: Send + Sync {
    /// The device's current level: what an input senses, or what an output is driven to.
    fn read(&self, device: &str) -> Result<u32, DeviceError>;

    /// Drives output `device` to `value`.
    fn drive(&self, device: &str, value: u32) -> Result<(), DeviceError>;
}

/// The operations the node agent has of its TEE layer's grants: the one way a module reaches
/// a device. A backend hands them out ([`Backend::device_grants`](crate::Backend::device_grants)).
pub trait DeviceGrants: Send + Sync {
    /// Grants every device of `devices` to `holder`, or none of them (at load, before the
    /// module runs).
    fn claim(&self, holder: &Holder, devices: &[String]) -> Result<(), DeviceError>;

    /// Takes back every device `holder` still holds (at unload; a device another instance
    /// took over stays with it). Outputs are switched off, as hardware resets a released pin.
    fn release(&self, holder: &Holder);

    /// A driver's access: reads the device, or drives an output, if `holder` holds it.
    fn access(&self, holder: &Holder, device: &str, op: Access) -> Result<u32, DeviceError>;

    /// Whether some module holds `device` (never which: that is its application's business).
    fn is_held(&self, device: &str) -> bool;
}

/// One device as the grant table knows it.
#[derive(Debug)]
struct Grant {
    kind: DeviceKind,
    holder: Option<Holder>,
}

/// The grant table of every backend in this crate: kept in the node process, as simulation
/// does (see the [module documentation](super)).
pub struct GrantTable {
    grants: Mutex<BTreeMap<String, Grant>>,
    pins: Arc<dyn DevicePins>,
}

impl std::fmt::Debug for GrantTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantTable")
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl GrantTable {
    /// The grants of the devices `specs` (none held), reached through `pins`; fails on a
    /// repeated name, or on inputs sensing one quantity that start at different values.
    pub fn new(specs: &[DeviceSpec], pins: Arc<dyn DevicePins>) -> Result<Self, DeviceSpecError> {
        check_all(specs)?;
        let grants = specs
            .iter()
            .map(|spec| {
                let grant = Grant {
                    kind: spec.kind,
                    holder: None,
                };
                (spec.name.clone(), grant)
            })
            .collect();
        Ok(GrantTable {
            grants: Mutex::new(grants),
            pins,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Grant>> {
        // A panic while holding the lock cannot leave a grant half-written: every update is
        // one assignment. Keep serving.
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DeviceGrants for GrantTable {
    fn claim(&self, holder: &Holder, devices: &[String]) -> Result<(), DeviceError> {
        let mut grants = self.lock();
        for device in devices {
            let grant = grants
                .get(device)
                .ok_or_else(|| DeviceError::unknown(device, grants.keys()))?;
            if let Some(current) = &grant.holder {
                if current != holder && !current.same_module(holder) {
                    return Err(DeviceError::Busy {
                        device: device.clone(),
                    });
                }
            }
        }
        for device in devices {
            if let Some(grant) = grants.get_mut(device) {
                grant.holder = Some(holder.clone());
            }
        }
        Ok(())
    }

    fn release(&self, holder: &Holder) {
        let mut grants = self.lock();
        for (device, grant) in grants.iter_mut() {
            if grant.holder.as_ref() == Some(holder) {
                grant.holder = None;
                if !grant.kind.is_input() {
                    // Invariant: the pins hold every declared device; if they refused, the
                    // output keeps its level and nobody holds it.
                    let _ = self.pins.drive(device, 0);
                }
            }
        }
    }

    fn access(&self, holder: &Holder, device: &str, op: Access) -> Result<u32, DeviceError> {
        let grants = self.lock();
        let grant = grants
            .get(device)
            .ok_or_else(|| DeviceError::unknown(device, grants.keys()))?;
        if grant.holder.as_ref() != Some(holder) {
            return Err(DeviceError::NotGranted {
                device: device.to_owned(),
            });
        }
        match op {
            Access::Read => self.pins.read(device),
            Access::Write(_) if grant.kind.is_input() => Err(DeviceError::Direction {
                device: device.to_owned(),
                what: "an input: the physical world sets it",
            }),
            Access::Write(value) => {
                let max = grant.kind.max();
                if value > max {
                    return Err(DeviceError::Range {
                        device: device.to_owned(),
                        value,
                        max,
                    });
                }
                self.pins.drive(device, value)?;
                Ok(value)
            }
        }
    }

    fn is_held(&self, device: &str) -> bool {
        self.lock()
            .get(device)
            .is_some_and(|grant| grant.holder.is_some())
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

    /// The levels behind the devices, as plain memory: the node's world model (which also
    /// plays physics) lives in the node agent and runs these grants in its own tests.
    struct Levels(Mutex<BTreeMap<String, u32>>);

    impl DevicePins for Levels {
        fn read(&self, device: &str) -> Result<u32, DeviceError> {
            let levels = self.0.lock().unwrap();
            levels
                .get(device)
                .copied()
                .ok_or_else(|| DeviceError::unknown(device, levels.keys()))
        }

        fn drive(&self, device: &str, value: u32) -> Result<(), DeviceError> {
            self.0.lock().unwrap().insert(device.to_owned(), value);
            Ok(())
        }
    }

    fn table() -> (GrantTable, Arc<Levels>) {
        let specs = DeviceSpec::parse_all(&FIELD).unwrap();
        let levels = specs.iter().map(|s| (s.name.clone(), s.initial)).collect();
        let pins = Arc::new(Levels(Mutex::new(levels)));
        (GrantTable::new(&specs, pins.clone()).unwrap(), pins)
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
        let pins = Arc::new(Levels(Mutex::default()));
        assert_eq!(
            GrantTable::new(&twice, pins).unwrap_err(),
            DeviceSpecError::Twice { device: "a".into() }
        );
    }

    #[test]
    fn only_the_holder_reaches_a_device() {
        let (table, pins) = table();
        let driver = Holder::new("app-a", "valve");
        table.claim(&driver, &names(&["valve"])).unwrap();
        assert_eq!(table.access(&driver, "valve", Access::Write(1)), Ok(1));
        assert_eq!(pins.read("valve"), Ok(1));
        assert_eq!(table.access(&driver, "valve", Access::Read), Ok(1));
        // Another module of the same application, and the same name in another one.
        for other in [
            Holder::new("app-a", "controller"),
            Holder::new("app-b", "valve"),
        ] {
            for op in [Access::Read, Access::Write(0)] {
                assert_eq!(
                    table.access(&other, "valve", op),
                    Err(DeviceError::NotGranted {
                        device: "valve".into()
                    })
                );
            }
        }
        // An unclaimed device is no one's.
        assert!(matches!(
            table.access(&driver, "soil", Access::Read),
            Err(DeviceError::NotGranted { .. })
        ));
        assert!(matches!(
            table.access(&driver, "pump", Access::Read),
            Err(DeviceError::Unknown { .. })
        ));
        assert_eq!(pins.read("valve"), Ok(1), "nothing else changed the valve");
    }

    #[test]
    fn a_second_binding_is_refused_and_claims_are_all_or_nothing() {
        let (table, _) = table();
        let a = Holder::new("app-a", "probe");
        table.claim(&a, &names(&["soil"])).unwrap();
        // Idempotent for the holder itself.
        table.claim(&a, &names(&["soil"])).unwrap();
        for other in [Holder::new("app-b", "probe"), Holder::new("app-a", "spy")] {
            let e = table
                .claim(&other, &names(&["button", "soil"]))
                .unwrap_err();
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
        assert!(table
            .claim(&Holder::new("app-c", "b"), &names(&["button"]))
            .is_ok());
        assert!(matches!(
            table.claim(&a, &names(&["pump"])),
            Err(DeviceError::Unknown { .. })
        ));
    }

    #[test]
    fn a_later_instance_takes_over_and_release_frees() {
        let (table, pins) = table();
        let old = Holder::new("app-a", "valve");
        let new = Holder::new("app-a", "valve.1");
        table.claim(&old, &names(&["valve"])).unwrap();
        table.access(&old, "valve", Access::Write(1)).unwrap();
        table.claim(&new, &names(&["valve"])).unwrap();
        assert!(table.access(&old, "valve", Access::Read).is_err());
        assert_eq!(table.access(&new, "valve", Access::Read), Ok(1));
        // Releasing the old instance does not touch the new one's grant.
        table.release(&old);
        assert_eq!(table.access(&new, "valve", Access::Read), Ok(1));
        assert!(table.is_held("valve"));
        assert_eq!(pins.read("valve"), Ok(1));
        table.release(&new);
        assert_eq!(
            pins.read("valve"),
            Ok(0),
            "a released output is switched off"
        );
        assert!(["button", "valve", "soil"]
            .iter()
            .all(|d| !table.is_held(d)));
        table
            .claim(&Holder::new("app-b", "valve"), &names(&["valve"]))
            .unwrap();
    }

    #[test]
    fn a_driver_reads_inputs_and_drives_outputs_within_range() {
        let (table, pins) = table();
        let driver = Holder::new("a", "probe");
        table.claim(&driver, &names(&["soil", "valve"])).unwrap();
        assert_eq!(table.access(&driver, "soil", Access::Read), Ok(35));
        assert!(matches!(
            table.access(&driver, "soil", Access::Write(3)),
            Err(DeviceError::Direction { .. })
        ));
        assert!(matches!(
            table.access(&driver, "valve", Access::Write(2)),
            Err(DeviceError::Range { .. })
        ));
        assert_eq!(
            (pins.read("soil"), pins.read("valve")),
            (Ok(35), Ok(0)),
            "refused writes drive nothing"
        );
    }
}
