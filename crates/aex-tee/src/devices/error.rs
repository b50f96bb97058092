//! Why a device access, claim or change was refused: shared by the grant table and by whatever
//! stands behind the devices (the node's simulated world).
//!
//! Invariant: messages name the device but never another application's module: who holds a
//! device is that application's business.

use super::spec::MAX_DEVICE_NAME;

/// A device access or claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The node declares no such device.
    #[error("this node has no device `{device}` (devices: {})", list(valid))]
    Unknown {
        /// The name asked for (at most 64 characters, escaped).
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

impl DeviceError {
    /// [`DeviceError::Unknown`] for the name `device` asked for (shown bounded and escaped:
    /// it may come from a module or a socket), among the node's devices `valid`.
    pub fn unknown<'a>(device: &str, valid: impl IntoIterator<Item = &'a String>) -> Self {
        let shown: String = device.chars().take(MAX_DEVICE_NAME).collect();
        DeviceError::Unknown {
            device: shown.escape_default().to_string(),
            valid: valid.into_iter().cloned().collect(),
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
