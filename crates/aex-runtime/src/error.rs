//! Errors the runtime hands to module code.
//!
//! Only [`Context::request`](crate::Context::request) (and its JSON twin) and the device
//! accesses ([`Context::read_device`](crate::Context::read_device),
//! [`Context::write_device`](crate::Context::write_device)) can fail in a way the module must
//! handle: emitting is fire-and-forget (aex does not promise delivery: docs/SECURITY.md, "What
//! aex promises"), and everything that goes wrong on the link itself (forged events, replayed
//! commands) is counted, never surfaced to module code.
//! `Display` is written by hand to keep the trusted runtime free of derive crates.

use std::time::Duration;

use aex_proto::ConnId;

/// Why a request or a device access from module code failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The deployer has not connected this request to any handler yet.
    NotConnected {
        /// The request's name.
        port: &'static str,
    },
    /// No authentic reply arrived in time.
    Timeout {
        /// The request's name.
        port: &'static str,
        /// How long the runtime waited.
        after: Duration,
    },
    /// The node closed the module's link (or writing to it failed) while a request or a
    /// device access waited.
    Closed,
    /// The connection has used all 2^64 counters; the deployer must re-key it.
    CounterExhausted {
        /// The exhausted connection.
        conn: ConnId,
    },
    /// The handler answered authentically that it failed.
    Failed {
        /// The request's name.
        port: &'static str,
        /// The handler's message.
        message: String,
    },
    /// The deployer re-keyed the request's connection while it waited (its handler was
    /// replaced, say by `aex update`): no reply can authenticate under the old key any more.
    /// Sending the request again reaches the new handler.
    Rekeyed {
        /// The request's name.
        port: &'static str,
    },
    /// The argument could not be encoded as JSON.
    Encode(String),
    /// The reply was not valid JSON for the expected type.
    Decode(String),
    /// The TEE layer refused a device access: the device is not granted to this module
    /// instance, does not exist, cannot do that (writing an input), or the value is out of
    /// range.
    ///
    /// The message comes from the node and is not authenticated: in simulation the TEE layer
    /// is the node process, so a compromised node can refuse any access (as it can stop any
    /// event) and word the refusal as it likes.
    Device {
        /// The device's name.
        device: String,
        /// Why, in the TEE layer's words.
        message: String,
    },
    /// No answer to a device access arrived in time (the request timeout, see
    /// [`Context::request_timeout`](crate::Context::request_timeout)).
    DeviceTimeout {
        /// The device's name.
        device: String,
        /// How long the runtime waited.
        after: Duration,
    },
    /// A device access was refused without being sent: the deployer disabled this instance.
    Disabled {
        /// The device's name.
        device: String,
    },
    /// A device access was refused without being sent: the deployer retired this instance
    /// (its state moved to a new instance, which holds the device now).
    Retired {
        /// The device's name.
        device: String,
    },
    /// While a request or a device access waited, more input arrived than the runtime holds
    /// for later (a few MiB; a flood, or a node replaying authentic events): the wait was
    /// given up so that the input can be handled. Nothing that arrived is lost; asking again
    /// may succeed.
    Overloaded,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotConnected { port } => {
                write!(f, "request `{port}` is not connected to any handler")
            }
            Error::Timeout { port, after } => write!(
                f,
                "request `{port}` got no reply within {} ms",
                after.as_millis()
            ),
            Error::Closed => f.write_str("the link to the node is closed"),
            Error::CounterExhausted { conn } => write!(
                f,
                "connection {conn} has exhausted its counters and must be re-keyed"
            ),
            Error::Failed { port, message } => {
                write!(f, "the handler of request `{port}` failed: {message}")
            }
            Error::Rekeyed { port } => write!(
                f,
                "the connection of request `{port}` was re-keyed while it waited; send it again"
            ),
            Error::Encode(reason) => write!(f, "cannot encode the request argument: {reason}"),
            Error::Decode(reason) => write!(f, "cannot decode the reply: {reason}"),
            Error::Device { device, message } => write!(f, "device `{device}`: {message}"),
            Error::DeviceTimeout { device, after } => write!(
                f,
                "device `{device}`: no answer from the TEE layer within {} ms",
                after.as_millis()
            ),
            Error::Disabled { device } => write!(
                f,
                "device `{device}`: this module instance is disabled and drives no device"
            ),
            Error::Retired { device } => write!(
                f,
                "device `{device}`: this module instance is retired; its successor holds the device"
            ),
            Error::Overloaded => f.write_str(
                "gave up waiting: more input arrived meanwhile than the module holds for later",
            ),
        }
    }
}

impl std::error::Error for Error {}
