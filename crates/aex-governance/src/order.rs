//! What a `disable` proposal asks the governor to disable: a [`DisableOrder`].
//!
//! A `disable` proposal's change is the digest of an order, so a ballot approves disabling
//! exactly the modules it names, nothing else. The order travels to the governor before the
//! proposal (`POST /orders`), which keeps it by digest; a member fetches it back
//! (`GET /orders/DIGEST`) and checks its digest before approving.
//!
//! One order has one encoding ([`DisableOrder::to_bytes`]: JSON of the application and the
//! module names sorted, without duplicates), and [`DisableOrder::from_bytes`] accepts only
//! that encoding, so the digest a member computes from the names is the one the proposer
//! named, whatever tool made the bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::GovernanceError;

/// The largest order, in bytes.
pub const MAX_ORDER: usize = 8 * 1024;

/// The most modules one order names.
pub const MAX_ORDER_MODULES: usize = 64;

/// The modules of an application to disable (their instances drop all their keys; only a new
/// deployment brings them back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableOrder {
    /// The application (the descriptor's `[application] name`).
    pub application: String,
    /// The modules, by the descriptor's names: sorted, each once.
    pub modules: Vec<String>,
}

fn malformed(reason: String) -> GovernanceError {
    GovernanceError::Malformed {
        what: "disable order",
        reason,
    }
}

/// Whether `name` is a module name as descriptors allow it: 1 to 64 letters, digits, `_` or
/// `-`.
fn valid_module(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl DisableOrder {
    /// An order for `modules` of `application`, in its one form (sorted, each once); refused
    /// if it names no module, too many, or a name no descriptor allows.
    pub fn new(
        application: impl Into<String>,
        modules: impl IntoIterator<Item = String>,
    ) -> Result<DisableOrder, GovernanceError> {
        let mut modules: Vec<String> = modules.into_iter().collect();
        modules.sort();
        modules.dedup();
        let order = DisableOrder {
            application: application.into(),
            modules,
        };
        order.check()?;
        Ok(order)
    }

    fn check(&self) -> Result<(), GovernanceError> {
        if self.application.is_empty() || self.application.len() > 128 {
            return Err(malformed(
                "the application name must have 1 to 128 bytes".into(),
            ));
        }
        if self.modules.is_empty() || self.modules.len() > MAX_ORDER_MODULES {
            return Err(malformed(format!(
                "{} modules; an order names 1 to {MAX_ORDER_MODULES}",
                self.modules.len()
            )));
        }
        if let Some(bad) = self.modules.iter().find(|m| !valid_module(m)) {
            return Err(malformed(format!(
                "`{}` is no module name: 1 to 64 letters, digits, `_` or `-`",
                bad.escape_debug()
            )));
        }
        if self.modules.windows(2).any(|w| w[0] >= w[1]) {
            return Err(malformed(
                "the modules are not sorted, or one is named twice (an order has one encoding)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Its bytes, as sent: its one encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings only: always encodes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// An order from bytes a client sent: at most [`MAX_ORDER`] bytes, every field known,
    /// valid names, and exactly the encoding [`DisableOrder::to_bytes`] gives (so that one
    /// order has one digest).
    pub fn from_bytes(bytes: &[u8]) -> Result<DisableOrder, GovernanceError> {
        if bytes.len() > MAX_ORDER {
            return Err(malformed(format!(
                "{} bytes; at most {MAX_ORDER}",
                bytes.len()
            )));
        }
        let order: DisableOrder =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        order.check()?;
        if order.to_bytes() != bytes {
            return Err(malformed(
                "not in its one encoding (compact JSON, fields in order `application`, \
                 `modules`)"
                    .into(),
            ));
        }
        Ok(order)
    }

    /// The digest a `disable` proposal names as its change: SHA-256 of its bytes.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.to_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_order_has_one_encoding_and_its_digest_is_of_those_bytes() {
        let a = DisableOrder::new("app", names(&["pong", "ping", "pong"])).unwrap();
        let b = DisableOrder::new("app", names(&["ping", "pong"])).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.modules, names(&["ping", "pong"]));
        let bytes = a.to_bytes();
        assert_eq!(bytes, br#"{"application":"app","modules":["ping","pong"]}"#);
        assert_eq!(DisableOrder::from_bytes(&bytes).unwrap(), a);
        assert_eq!(a.digest(), <[u8; 32]>::from(Sha256::digest(&bytes)));
        let other = DisableOrder::new("app", names(&["ping"])).unwrap();
        assert_ne!(other.digest(), a.digest());
    }

    #[test]
    fn other_encodings_of_the_same_order_are_refused() {
        for text in [
            r#"{"application":"app","modules":["pong","ping"]}"#,
            r#"{"application":"app","modules":["ping","ping"]}"#,
            r#"{ "application":"app","modules":["ping"]}"#,
            r#"{"modules":["ping"],"application":"app"}"#,
        ] {
            let e = DisableOrder::from_bytes(text.as_bytes()).unwrap_err();
            assert!(
                matches!(e, GovernanceError::Malformed { .. }),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn bad_orders_are_refused_with_what_is_valid() {
        let e = DisableOrder::new("app", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 64"), "{e}");
        let e = DisableOrder::new("app", names(&["a b"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`a b` is no module name"), "{e}");
        let many = (0..=MAX_ORDER_MODULES).map(|i| format!("m{i}"));
        assert!(DisableOrder::new("app", many).is_err());
        assert!(DisableOrder::new("", names(&["ping"])).is_err());
        assert!(DisableOrder::from_bytes(&vec![b' '; MAX_ORDER + 1]).is_err());
        assert!(DisableOrder::from_bytes(b"{\"application\": 1}").is_err());
        let extra = br#"{"application":"app","modules":["ping"],"more":1}"#;
        assert!(DisableOrder::from_bytes(extra).is_err());
        assert!(DisableOrder::from_bytes(&[0xff, 0xfe]).is_err());
    }
}
