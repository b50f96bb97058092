//! Deployer authentication on a node: the session proof that binds a deployer key to a link, a
//! node identity and an application namespace (the identifiers themselves live in
//! [`crate::ids`]).
//!
//! Every link to a node is a Noise channel (crate `aex-link`, docs/PROTOCOL.md §1): the
//! deployer pins the node's identity key ([`NodeKey`], an X25519 public key) and the handshake
//! authenticates the node, encrypts and orders everything after it. The deployer then proves
//! its own key in the first message on that channel: `Hello::Deployer` carries an Ed25519
//! signature over [`session_message`], which binds the handshake (its hash, unique to this
//! connection), the node's identity and the application. A signature made for one connection
//! is worthless on any other, and one made for another node is refused by this one. Requests
//! need no signature of their own: the channel authenticates and orders them; their ids must
//! still increase strictly within the session.
//!
//! Every session acts inside one namespace, [`AppId`]: a hash of the deployer's key and the
//! application's name. Modules, routes and return paths live in a namespace; a deployer never
//! reaches another namespace because it cannot sign for another key.
//!
//! Invariant: [`Authenticated`] can only be made by [`Authenticated::verify`] from a valid
//! signature over this connection's handshake hash and this node's identity, and accepts each
//! request id at most once, in increasing order.

use aex_crypto::{verify_signature, SigningIdentity, SIGNATURE_LEN};
use serde::{Deserialize, Serialize};

use crate::ids::{hex, AppId, DeployerKey, NodeKey};

/// Domain string of the session proof ([`session_message`]).
pub const SESSION_DOMAIN: &[u8] = b"aex deployer session v2\0";
/// Length of a link's handshake hash (BLAKE2s), which the session proof signs.
pub const HANDSHAKE_HASH_LEN: usize = 32;
/// Longest application name a node accepts in `Hello::Deployer`.
pub const MAX_APP_NAME_LEN: usize = 128;

/// An Ed25519 signature by a deployer.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "serde_bytes")] pub [u8; SIGNATURE_LEN]);

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Signature({}..)", hex(&self.0[..8]))
    }
}

/// The bytes a deployer signs to open a session: [`SESSION_DOMAIN`] ‖ handshake hash ‖ node
/// identity key ‖ u32-BE name length ‖ application name. The deployer key is bound by the
/// Ed25519 signature itself.
pub fn session_message(
    handshake_hash: &[u8; HANDSHAKE_HASH_LEN],
    node: &NodeKey,
    app: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(SESSION_DOMAIN.len() + 68 + app.len());
    m.extend_from_slice(SESSION_DOMAIN);
    m.extend_from_slice(handshake_hash);
    m.extend_from_slice(&node.0);
    m.extend_from_slice(&(app.len() as u32).to_be_bytes());
    m.extend_from_slice(app.as_bytes());
    m
}

/// Signs the session proof for the link with `handshake_hash` to `node` (deployer side).
pub fn sign_session(
    identity: &SigningIdentity,
    handshake_hash: &[u8; HANDSHAKE_HASH_LEN],
    node: &NodeKey,
    app: &str,
) -> Signature {
    Signature(identity.sign(&session_message(handshake_hash, node, app)))
}

/// Why a session proof or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The session proof does not verify under the deployer key given in `Hello`, for this
    /// link and this node.
    BadSessionProof,
    /// The request id is not above the last accepted one.
    StaleRequestId {
        /// The request's id.
        id: u64,
        /// The last id accepted in this session.
        last: u64,
    },
}

impl core::fmt::Display for AuthError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AuthError::BadSessionProof => f.write_str(
                "the session proof does not verify under the deployer key given in Hello for \
                 this link and this node (signed for another connection or another node?)",
            ),
            AuthError::StaleRequestId { id, last } => write!(
                f,
                "request id {id} is not above the last accepted id {last} (ids must increase)"
            ),
        }
    }
}

impl std::error::Error for AuthError {}

/// Node side: a deployer that proved its key on this link; requests are checked one by one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    key: DeployerKey,
    app: AppId,
    app_name: String,
    last_id: Option<u64>,
}

impl Authenticated {
    /// Checks the session proof of a `Hello::Deployer{key, app, signature}` received on the
    /// link whose handshake hash is `handshake_hash`, by the node whose identity is `node`.
    pub fn verify(
        key: DeployerKey,
        app_name: String,
        signature: &Signature,
        handshake_hash: &[u8; HANDSHAKE_HASH_LEN],
        node: &NodeKey,
    ) -> Result<Authenticated, AuthError> {
        let message = session_message(handshake_hash, node, &app_name);
        verify_signature(&key.0, &message, &signature.0).map_err(|_| AuthError::BadSessionProof)?;
        Ok(Authenticated {
            app: AppId::of(&key, &app_name),
            key,
            app_name,
            last_id: None,
        })
    }

    /// The proven deployer key.
    pub fn key(&self) -> &DeployerKey {
        &self.key
    }

    /// The session's namespace.
    pub fn app(&self) -> AppId {
        self.app
    }

    /// The application name the session gave (informational).
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// Accepts request `id` if it is above every id accepted before; a refused request
    /// changes nothing.
    pub fn check_request(&mut self, id: u64) -> Result<(), AuthError> {
        if let Some(last) = self.last_id {
            if id <= last {
                return Err(AuthError::StaleRequestId { id, last });
            }
        }
        self.last_id = Some(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
