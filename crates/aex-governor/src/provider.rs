//! The provider keys of the governor's identity on the governed application's `trustzone` and
//! `sancus` nodes (docs/ARCHITECTURE.md, "How the governor enforces the rules").
//!
//! On a symmetric node the deployer appraises a module with the provider key the node derives
//! for the deploying identity (node key → provider key per deployer identity → module key).
//! The governor is the only identity the governed nodes admit, so the provider key that
//! matters is the one of the governor's own key (`GET /identity`). Its node's operator hands
//! it over with `PUT /provider-keys/NODE` on the attested channel (`aex governor provider-key`
//! checks the governor's measurement and constitution before sending); it is kept here, in
//! the sealed state only: never in the governor's files, never in a log or an answer (which
//! show its public key id), wiped from memory when dropped.
//!
//! Who may install or replace a key: anyone who reaches the governor. What makes that safe is
//! the pin: a governed descriptor names, for each symmetric node, the fingerprint of the key
//! to use (`provider_key_fingerprint`, approved with the descriptor), and the deployment uses
//! no other (`aex_deploy::App::trust_anchor`). Without it, a member could install a key of a
//! node the member's accomplice emulates, one whose evidence the governor would then accept
//! (an agent that holds the node's identity key but not its TEE's node key, as on hardware).
//! A key that is not the pinned one is kept (the answer shows its fingerprint, so whoever
//! installed it sees the mismatch), and only makes the proposal fail, naming the node: a
//! denial of service, which anyone on the network path has anyway. So a key may be replaced
//! (the operator's fix for a wrong or stale one) without more ceremony; what is bounded is
//! what an unauthenticated client can make the sealed state hold ([`MAX_NODES`] entries of
//! fixed size).

use std::collections::BTreeMap;

use aex_crypto::SecretKey;
use aex_example_http::Response;
use aex_tee::ProviderKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// The most nodes the governor keeps a provider key for.
pub const MAX_NODES: usize = 256;

/// The largest body of `PUT /provider-keys/NODE`: 64 hex digits and some white space.
const MAX_BODY: usize = 256;

/// The provider keys of the governor's identity, by node name: 64 hex digits each.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct ProviderKeys(BTreeMap<String, String>);

impl Drop for ProviderKeys {
    fn drop(&mut self) {
        for key in self.0.values_mut() {
            key.zeroize();
        }
    }
}

/// One stored key, as answers show it: its node and public key id, never the key.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Held {
    /// The node.
    pub node: String,
    /// The key's public id, hex (as the node's evidence carries it).
    pub key_id: String,
    /// The key's fingerprint, hex (as a descriptor pins it: `provider_key_fingerprint`).
    pub fingerprint: String,
    /// Whether it replaced another key (`PUT` only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
}

/// Whether `name` can be a descriptor's node name (`[A-Za-z0-9_-]{1,64}`).
fn valid_node(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse(hex_text: &str) -> Option<ProviderKey> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_text.trim(), bytes.as_mut()).ok()?;
    Some(ProviderKey::new(SecretKey::from_bytes(*bytes)))
}

impl ProviderKeys {
    /// Stores `body` (the key in hex) as node `node`'s, replacing the key held for it: what
    /// the answer shows, or a refusal (status and reason, which never quotes the body).
    pub fn install(&mut self, node: &str, body: &[u8]) -> Result<Held, (u16, String)> {
        if !valid_node(node) {
            return Err((
                400,
                "a node name is 1 to 64 letters, digits, `_` or `-`, as in the descriptor".into(),
            ));
        }
        let malformed = || {
            (
                400,
                "a provider key is 64 hex digits (32 bytes), as `aex node provider-key` prints it"
                    .to_owned(),
            )
        };
        if body.len() > MAX_BODY {
            return Err(malformed());
        }
        let text = Zeroizing::new(String::from_utf8_lossy(body).trim().to_ascii_lowercase());
        let key = parse(&text).ok_or_else(malformed)?;
        if key.expose_secret().expose_secret().iter().all(|b| *b == 0) {
            return Err((
                400,
                "a provider key of 32 zero bytes is no key a node derives".into(),
            ));
        }
        if !self.0.contains_key(node) && self.0.len() >= MAX_NODES {
            return Err((
                507,
                format!("the governor keeps provider keys for at most {MAX_NODES} nodes"),
            ));
        }
        let replaced = self.0.insert(node.to_owned(), (*text).clone());
        let replaced = match replaced {
            Some(mut old) => {
                let differs = *old != *text;
                old.zeroize();
                differs
            }
            None => false,
        };
        Ok(Held {
            node: node.to_owned(),
            key_id: hex::encode(key.key_id()),
            fingerprint: hex::encode(key.fingerprint()),
            replaced,
        })
    }

    /// The nodes and the public ids of their keys.
    pub fn list(&self) -> Vec<Held> {
        self.0
            .iter()
            .filter_map(|(node, text)| {
                let key = parse(text)?;
                Some(Held {
                    node: node.clone(),
                    key_id: hex::encode(key.key_id()),
                    fingerprint: hex::encode(key.fingerprint()),
                    replaced: false,
                })
            })
            .collect()
    }

    /// The keys, for a deployment (`aex_deploy::bundle::open`).
    pub fn keys(&self) -> BTreeMap<String, ProviderKey> {
        self.0
            .iter()
            .filter_map(|(node, text)| Some((node.clone(), parse(text)?)))
            .collect()
    }
}

/// Answers `PUT /provider-keys/NODE` and `GET /provider-keys`, the change committed before
/// the answer leaves; `None` for another path.
pub fn answer(
    handle: &aex::Handle<crate::Governor>,
    method: &str,
    segments: &[&str],
    body: &[u8],
) -> Option<Response> {
    let unavailable =
        |e: &dyn std::fmt::Display| Response::text(503, &format!("governor unavailable: {e}"));
    Some(match (method, segments) {
        ("PUT", ["provider-keys", node]) => {
            let (node, body) = ((*node).to_owned(), Zeroizing::new(body.to_vec()));
            match handle.call_committed(move |g: &mut crate::Governor, _ctx| {
                g.provider_keys.install(&node, &body)
            }) {
                Ok(Ok(held)) => json(200, &held),
                Ok(Err((status, reason))) => Response::text(status, &reason),
                Err(e) => unavailable(&e),
            }
        }
        ("GET", ["provider-keys"]) => {
            match handle.call(|g: &mut crate::Governor, _ctx| g.provider_keys.list()) {
                Ok(list) => json(200, &list),
                Err(e) => unavailable(&e),
            }
        }
        (_, ["provider-keys", ..]) => Response::text(
            405,
            "PUT /provider-keys/NODE (body: the key, 64 hex digits) or GET /provider-keys",
        ),
        _ => return None,
    })
}

fn json(status: u16, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => Response::bytes(status, "application/json", bytes),
        Err(e) => Response::text(500, &format!("cannot encode the answer: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_key_is_kept_by_node_and_shown_only_by_its_id() {
        let mut keys = ProviderKeys::default();
        let held = keys
            .install("node2", format!("{KEY}\n").as_bytes())
            .unwrap();
        let id = hex::encode(parse(KEY).unwrap().key_id());
        assert_eq!(held.key_id, id);
        assert!(!held.replaced);
        assert_eq!(keys.list()[0].key_id, id);
        let shown = serde_json::to_string(&keys.list()).unwrap();
        assert!(!shown.contains(KEY), "{shown}");
        assert_eq!(keys.keys()["node2"].key_id(), parse(KEY).unwrap().key_id());
        // The same key again replaces nothing; another one replaces it.
        assert!(
            !keys
                .install("node2", KEY.to_uppercase().as_bytes())
                .unwrap()
                .replaced
        );
        let other = "ab".repeat(32);
        assert!(keys.install("node2", other.as_bytes()).unwrap().replaced);
        assert_eq!(keys.list().len(), 1);
    }

    #[test]
    fn malformed_keys_and_names_are_refused_without_quoting_them() {
        let mut keys = ProviderKeys::default();
        for body in [&KEY[..62], "zz".repeat(32).as_str(), "", &"00".repeat(32)] {
            let (status, reason) = keys.install("node2", body.as_bytes()).unwrap_err();
            assert_eq!(status, 400, "{reason}");
            assert!(body.is_empty() || !reason.contains(body), "{reason}");
        }
        assert_eq!(keys.install("node2", &[b' '; 300]).unwrap_err().0, 400);
        for node in ["", "a/b", "bad name", &"n".repeat(65)] {
            assert_eq!(keys.install(node, KEY.as_bytes()).unwrap_err().0, 400);
        }
        assert!(keys.list().is_empty());
    }

    #[test]
    fn the_sealed_state_holds_a_bounded_number_of_keys() {
        let mut keys = ProviderKeys::default();
        for i in 0..MAX_NODES {
            keys.install(&format!("n{i}"), KEY.as_bytes()).unwrap();
        }
        assert_eq!(keys.install("one-more", KEY.as_bytes()).unwrap_err().0, 507);
        // Replacing a node's key is still possible.
        keys.install("n0", "ab".repeat(32).as_bytes()).unwrap();
    }
}
