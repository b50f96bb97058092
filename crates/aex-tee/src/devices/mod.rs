//! Secure I/O: the devices of a node and who may use them.
//!
//! A node's configuration declares its devices ([`DeviceSpec`]). The TEE layer grants each to
//! at most one driver module instance ([`DeviceBank::claim`], at load, before the module
//! starts); from then on only that instance reaches the device ([`DeviceBank::access`]), and
//! its measurement covers the grant (`Measurement::with_devices`), so the deployer's
//! attestation proves which code holds which device. On Sancus this is the hardware's memory
//! protection of the device's I/O addresses; on TrustZone, a peripheral assigned to the secure
//! world.
//!
//! The physical world is the other side of a device: the soil that dries, the finger on the
//! button, the eye on the valve. [`DeviceBank::sense`] and [`DeviceBank::watch`] observe any
//! device, [`DeviceBank::set_world`] changes what an *input* senses. Nothing drives an output
//! but its driver. These are not an interface of the application: the node exposes them only
//! on a local socket (`aex device`), standing in for physics.
//!
//! Invariants: a device has at most one holder; a claim is all or nothing; a holder is an
//! exact (namespace, module instance) pair, so a module of another application, another module
//! of the same application, or a process that merely learns the name never passes
//! [`DeviceBank::access`]. The one transfer is a later instance of the same module in the same
//! namespace (`name.2` replacing `name`, an update by the same deployer): it takes the grant,
//! and the earlier instance loses it at once.
//!
//! *Simulation:* the bank is state in the node process, so the node's operator can change it;
//! what it shows is the grant logic real hardware enforces. See docs/SECURITY.md.

mod bank;
mod spec;

pub use bank::{Access, DeviceBank, DeviceError, DeviceView, Holder};
pub use spec::{
    check_all, check_name, DeviceKind, DeviceSpec, DeviceSpecError, DEFAULT_ANALOG_MAX,
    MAX_DEVICE_NAME,
};
