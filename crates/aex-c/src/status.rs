//! The return codes of the C API, and how the runtime's errors map to them.
#![allow(
    non_camel_case_types,
    reason = "C names: the header spells them as C code does"
)]

use std::ffi::{c_int, CStr};

use aex_runtime::Error;

/// What a call of the C API gives back. `AEX_OK` (0) is success; every other value says why
/// the call failed, and `aex_last_error(ctx)` gives the details.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum aex_status {
    /// Success.
    AEX_OK = 0,
    /// `aex_try_emit`: some connections had no room; the event went out on the others only.
    AEX_WOULD_BLOCK = 1,
    /// `aex_emit` (or a request) waited the whole timeout for room on some connections; the
    /// event went out on the others only. Later emits on them fail at once until room comes.
    AEX_WINDOW_FULL = 2,
    /// A persistent module emitted 4 MiB on a connection since its last commit; not sent there.
    AEX_HELD_FULL = 3,
    /// The request is not connected to any handler yet.
    AEX_NOT_CONNECTED = 4,
    /// No authentic reply arrived within the request timeout.
    AEX_TIMEOUT = 5,
    /// The node closed the module's link while a request or device access waited.
    AEX_CLOSED = 6,
    /// The handler answered (authentically) that it failed; its message is in
    /// `aex_last_error`.
    AEX_HANDLER_FAILED = 7,
    /// The request's connection was re-keyed while it waited; sending it again reaches the new
    /// handler.
    AEX_REKEYED = 8,
    /// The connection used all its counters; the deployer must re-key it.
    AEX_COUNTER_EXHAUSTED = 9,
    /// The TEE layer refused the device access (not granted to this instance, no such device,
    /// an input written, a value out of range).
    AEX_DEVICE_REFUSED = 10,
    /// No answer from the TEE layer within the request timeout.
    AEX_DEVICE_TIMEOUT = 11,
    /// The deployer disabled this instance: it drives no device.
    AEX_DISABLED = 12,
    /// The deployer retired this instance: its successor holds the device.
    AEX_RETIRED = 13,
    /// More input arrived during a wait than the module holds; the wait was given up. Nothing
    /// is lost; asking again may succeed.
    AEX_OVERLOADED = 14,
    /// The output or request is not one listed in the module's table.
    AEX_UNKNOWN_PORT = 15,
    /// A reply does not fit the buffer given for it, or a buffer would pass 256 MiB.
    AEX_TOO_LARGE = 16,
    /// A NULL pointer (or a non-UTF-8 string) where the call needs a valid one.
    AEX_INVALID_ARGUMENT = 17,
    /// An error this version of the header has no code for; `aex_last_error` says which.
    AEX_OTHER = 18,
}

/// Every status's name, by value.
const NAMES: [&CStr; 19] = [
    c"AEX_OK",
    c"AEX_WOULD_BLOCK",
    c"AEX_WINDOW_FULL",
    c"AEX_HELD_FULL",
    c"AEX_NOT_CONNECTED",
    c"AEX_TIMEOUT",
    c"AEX_CLOSED",
    c"AEX_HANDLER_FAILED",
    c"AEX_REKEYED",
    c"AEX_COUNTER_EXHAUSTED",
    c"AEX_DEVICE_REFUSED",
    c"AEX_DEVICE_TIMEOUT",
    c"AEX_DISABLED",
    c"AEX_RETIRED",
    c"AEX_OVERLOADED",
    c"AEX_UNKNOWN_PORT",
    c"AEX_TOO_LARGE",
    c"AEX_INVALID_ARGUMENT",
    c"AEX_OTHER",
];

impl aex_status {
    /// The status for a runtime error.
    pub(crate) fn of(error: &Error) -> aex_status {
        match error {
            Error::WouldBlock { .. } => aex_status::AEX_WOULD_BLOCK,
            Error::WindowFull { .. } => aex_status::AEX_WINDOW_FULL,
            Error::HeldFull { .. } => aex_status::AEX_HELD_FULL,
            Error::NotConnected { .. } => aex_status::AEX_NOT_CONNECTED,
            Error::Timeout { .. } => aex_status::AEX_TIMEOUT,
            Error::Closed => aex_status::AEX_CLOSED,
            Error::Failed { .. } => aex_status::AEX_HANDLER_FAILED,
            Error::Rekeyed { .. } => aex_status::AEX_REKEYED,
            Error::CounterExhausted { .. } => aex_status::AEX_COUNTER_EXHAUSTED,
            Error::Device { .. } => aex_status::AEX_DEVICE_REFUSED,
            Error::DeviceTimeout { .. } => aex_status::AEX_DEVICE_TIMEOUT,
            Error::Disabled { .. } => aex_status::AEX_DISABLED,
            Error::Retired { .. } => aex_status::AEX_RETIRED,
            Error::Overloaded => aex_status::AEX_OVERLOADED,
            // JSON encoding is the Rust SDK's; C payloads are bytes. And `Error` may grow.
            _ => aex_status::AEX_OTHER,
        }
    }

    /// The name of status value `status`.
    pub(crate) fn name(status: c_int) -> &'static CStr {
        usize::try_from(status)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or(c"AEX_UNKNOWN_STATUS")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_values() {
        assert_eq!(aex_status::name(aex_status::AEX_OK as c_int), c"AEX_OK");
        assert_eq!(
            aex_status::name(aex_status::AEX_WINDOW_FULL as c_int),
            c"AEX_WINDOW_FULL"
        );
        assert_eq!(
            aex_status::name(aex_status::AEX_OTHER as c_int),
            c"AEX_OTHER"
        );
        assert_eq!(aex_status::name(-1), c"AEX_UNKNOWN_STATUS");
        assert_eq!(aex_status::name(19), c"AEX_UNKNOWN_STATUS");
    }
}
