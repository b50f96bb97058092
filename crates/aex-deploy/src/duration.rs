//! How the deployer writes a duration in its messages (timeouts in errors, limits in hints).
//!
//! A module of its own because both the node client and the error type use it, and the error
//! type wraps the client's errors: kept in either, it made the two import each other.

use std::time::Duration;

/// A duration for messages: `15 s` when whole seconds, else `250 ms`.
pub(crate) fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
