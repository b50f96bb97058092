//! Errors the runtime hands to module code.
//!
//! Module code sees an error when an emit finds no room on a connection (flow control: the
//! event was not sent there), when a request or a device access fails, and never for what goes
//! wrong on the link itself (forged events, replayed commands): that is counted, never
//! surfaced to module code.
//! `Display` is written by hand to keep the trusted runtime free of derive crates.

use std::time::Duration;

use aex_proto::ConnId;

/// Why an emit, a request or a device access from module code failed.
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
    /// The request argument, or the value to emit, could not be encoded as JSON (nothing was
    /// sent).
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
    /// The TEE layer gave no evidence for the module's attested TLS key
    /// ([`Context::evidence`](crate::Context::evidence)): it refused (its words), or this
    /// instance is disabled or retired and asks for none.
    Evidence {
        /// Why.
        message: String,
    },
    /// No evidence arrived in time (the request timeout).
    EvidenceTimeout {
        /// How long the runtime waited.
        after: Duration,
    },
    /// While a request or a device access waited, more input arrived than the runtime holds
    /// for later (a few MiB; a flood, or a node replaying authentic events): the wait was
    /// given up so that the input can be handled. Nothing that arrived is lost; asking again
    /// may succeed.
    Overloaded,
    /// [`Context::emit`](crate::Context::emit) (or a request) waited for room on these
    /// connections for as long as it may ([`Context::emit_timeout`](crate::Context::emit_timeout),
    /// or the request timeout) and none came: their receivers took in nothing meanwhile (slow,
    /// stopped, or a node withholding credit). The event was sent on the output's other
    /// connections, and not on these: no counter was used, nothing is lost without this
    /// error. Until credit arrives, emits on these connections fail at once instead of waiting
    /// again.
    WindowFull {
        /// The output's (or request's) name.
        port: &'static str,
        /// The connections whose window stayed full.
        conns: Vec<ConnId>,
        /// How long the call waited.
        waited: Duration,
    },
    /// A persistent module's handler emitted so much on these connections before its state
    /// was committed (4 MiB each) that nothing more is held for them; not sent there.
    HeldFull {
        /// The output's name.
        port: &'static str,
        /// The connections that hold what they may.
        conns: Vec<ConnId>,
    },
    /// [`Context::try_emit`](crate::Context::try_emit) found the window of these connections
    /// full and sent nothing on them (it was sent on the output's other connections).
    WouldBlock {
        /// The output's name.
        port: &'static str,
        /// The connections whose window is full.
        conns: Vec<ConnId>,
    },
}

/// `conns` as a list for a message: `3`, `3, 7`.
fn list(conns: &[ConnId]) -> String {
    let names: Vec<String> = conns.iter().map(ToString::to_string).collect();
    names.join(", ")
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::WindowFull {
                port,
                conns,
                waited,
            } => write!(
                f,
                "`{port}`: the window of connection {} stayed full for {} ms (its receiver took \
                 nothing in: slow, stopped, or its node withholds credit); not sent there",
                list(conns),
                waited.as_millis()
            ),
            Error::HeldFull { port, conns } => write!(
                f,
                "`{port}`: connection {} holds 4 MiB of events emitted since this persistent \
                 module's last commit, the most it holds until the state that made them is \
                 stored; emit less per input; not sent there",
                list(conns)
            ),
            Error::WouldBlock { port, conns } => write!(
                f,
                "`{port}`: the window of connection {} is full; not sent there (try again, or \
                 use `emit` to wait for room)",
                list(conns)
            ),
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
            Error::Encode(reason) => write!(f, "cannot encode the value as JSON: {reason}"),
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
            Error::Evidence { message } => write!(f, "no attestation evidence: {message}"),
            Error::EvidenceTimeout { after } => write!(
                f,
                "no attestation evidence from the TEE layer within {} ms",
                after.as_millis()
            ),
            Error::Overloaded => f.write_str(
                "gave up waiting: more input arrived meanwhile than the module holds for later",
            ),
        }
    }
}

impl std::error::Error for Error {}
