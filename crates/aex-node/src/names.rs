//! Names deployers give the node, checked before they are used, and the module names taken by
//! uploads in progress.
//!
//! Invariant: a module name matches `[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}` before it touches a
//! path or a table (no leading dot, so never `.` or `..`), a peer address looks like
//! `host:port` before a link is made for it, and a name is reserved in its namespace from
//! `LoadBegin` until its module is running or the upload is abandoned (`load.rs`).
//!
//! These sit low in the crate because both the loader and the router check names, and the
//! node's shared state holds the reservations: none of them should import another for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aex_proto::{AppId, DeployerKey, NodeError as WireError, NodeErrorKind};

use crate::error::refuse;
use crate::sync::lock;

/// Longest module name (a descriptor name of up to 64 characters plus a `.generation`).
const MAX_NAME_LEN: usize = 80;

/// Checks a module name: `[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}`. Deployers name a module's later
/// instances `name.1`, `name.2`, ...; a leading dot is refused so no name is a special path.
pub(crate) fn check_name(name: &str) -> Result<(), WireError> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        let shown: String = name.chars().take(80).collect();
        Err(refuse(
            NodeErrorKind::BadRequest,
            format!(
                "invalid module name `{}`: use 1 to {MAX_NAME_LEN} letters, digits, `_`, `-` \
                 or `.` (not first)",
                shown.escape_default()
            ),
        ))
    }
}

/// Checks that a peer address looks like `host:port`.
pub(crate) fn check_address(address: &str) -> Result<(), WireError> {
    let valid = address.len() <= 255
        && address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(refuse(
            NodeErrorKind::BadRequest,
            format!("node address `{address}` is not `host:port`"),
        ))
    }
}

/// Names of modules being uploaded, per namespace, with the deployer uploading each.
#[derive(Default)]
pub(crate) struct Reservations(pub(crate) Mutex<HashMap<(AppId, String), DeployerKey>>);

/// A reserved name, released on drop.
pub(crate) struct Reservation {
    pub(crate) names: Arc<Reservations>,
    pub(crate) name: (AppId, String),
}

impl Drop for Reservation {
    fn drop(&mut self) {
        lock(&self.names.0).remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        for ok in ["ping", "a", "A-b_9", "counter.2", "a..b", &"x".repeat(80)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "..",
            ".x",
            "a b",
            "a/b",
            ".",
            "é",
            &"x".repeat(81),
            "a\0",
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.kind, NodeErrorKind::BadRequest, "{bad}");
        }
    }

    #[test]
    fn addresses() {
        assert!(check_address("127.0.0.1:7700").is_ok());
        assert!(check_address("edge-1.example:80").is_ok());
        assert!(check_address("[::1]:80").is_ok());
        assert!(check_address("127.0.0.1").is_err());
        assert!(check_address(":80").is_err());
        assert!(check_address("host:http").is_err());
    }
}
