//! Secure I/O: the devices of a node and who may use them.
//!
//! A node's configuration declares its devices ([`DeviceSpec`], `spec.rs`). The TEE layer
//! grants each to at most one driver module instance ([`DeviceGrants::claim`], at load, before
//! the module starts); from then on only that instance reaches the device
//! ([`DeviceGrants::access`]), and its measurement covers the grant
//! (`Measurement::with_devices`), so the deployer's attestation proves which code holds which
//! device. On Sancus this is the hardware's memory protection of the device's I/O addresses;
//! on TrustZone, a peripheral assigned to the secure world. The node agent gets its grants
//! from its backend ([`Backend::device_grants`](crate::Backend::device_grants)) and
//! reaches devices only through them (`grant.rs`); refusals are [`DeviceError`]s (`error.rs`).
//!
//! The grants reach the devices through [`DevicePins`]: on hardware, the pins themselves; in
//! simulation, the node agent's model of the physical world (`aex_node`'s `physics/world.rs`),
//! which also lets a local process play physics: sense any device, set what an input senses.
//! Nothing drives an output but its driver, through the grants.
//!
//! *Simulation:* the grant table is state in the node process, so the node's operator can
//! change it; what it shows is the grant logic real hardware enforces. See docs/SECURITY.md.

mod error;
mod grant;
mod spec;

pub use error::DeviceError;
pub use grant::{Access, DeviceGrants, DevicePins, GrantTable, Holder};
pub use spec::{
    check_all, check_name, DeviceKind, DeviceSpec, DeviceSpecError, DEFAULT_ANALOG_MAX,
    MAX_DEVICE_NAME,
};
