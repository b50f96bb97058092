//! Deployer authentication and application namespaces on a node.
//!
//! A deployer session opens with `Hello::Deployer { key, app, .. }`; the node answers with a
//! fresh random challenge ([`crate::FromNode::Challenge`]). The deployer then proves that it
//! holds the secret half of `key` by signing [`session_message`] ([`crate::ToNode::Auth`]), and
//! signs every management request over [`request_message`]: the challenge, the request id and
//! the request's postcard bytes, under a domain string. The node requires strictly increasing
//! request ids within the session. So a network attacker can neither replay a request (the
//! challenge is fresh per session, the id per request) nor inject or alter one (it cannot sign).
//!
//! Every session acts inside one namespace, [`AppId`]: a hash of the deployer's key and the
//! application's name. Modules, routes and return paths live in a namespace; a deployer never
//! reaches another namespace because it cannot sign for another key.
//!
//! Invariant: [`Authenticated`] can only be made by [`ExpectAuth::authenticate`] from a valid
//! signature over the session's own challenge, and accepts each request id at most once, in
//! increasing order.

use aex_crypto::{verify_signature, SigningIdentity, PUBLIC_IDENTITY_LEN, SIGNATURE_LEN};
use serde::{Deserialize, Serialize};

use crate::message::NodeRequest;

/// Domain string of the session proof ([`session_message`]).
pub const SESSION_DOMAIN: &[u8] = b"aex deployer session v1\0";
/// Domain string of a request signature ([`request_message`]).
pub const REQUEST_DOMAIN: &[u8] = b"aex deployer request v1\0";
/// Domain string of [`AppId::of`].
pub const NAMESPACE_DOMAIN: &[u8] = b"aex application namespace v1\0";
/// Length of a node's session challenge.
pub const CHALLENGE_LEN: usize = 32;
/// Longest application name a node accepts in `Hello::Deployer`.
pub const MAX_APP_NAME_LEN: usize = 128;

/// A deployer's public identity: an Ed25519 public key (RFC 8032). Shown and parsed as 64 hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeployerKey(pub [u8; PUBLIC_IDENTITY_LEN]);

impl DeployerKey {
    /// The public key of `identity`.
    pub fn of(identity: &SigningIdentity) -> Self {
        DeployerKey(identity.public())
    }

    /// The first 8 bytes in hex, for logs and messages.
    pub fn short(&self) -> String {
        hex(&self.0[..8])
    }
}

impl core::fmt::Display for DeployerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl core::fmt::Debug for DeployerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeployerKey({self})")
    }
}

/// Text that is not a deployer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKeyError {
    /// What is wrong.
    pub reason: String,
}

impl core::fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "not a deployer key ({}): expected 64 hex digits, as printed by `aex identity`",
            self.reason
        )
    }
}

impl std::error::Error for ParseKeyError {}

impl core::str::FromStr for DeployerKey {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 2 * PUBLIC_IDENTITY_LEN {
            return Err(ParseKeyError {
                reason: format!("{} characters", s.len()),
            });
        }
        let mut out = [0u8; PUBLIC_IDENTITY_LEN];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
                _ => {
                    return Err(ParseKeyError {
                        reason: format!("non-hex character at position {}", 2 * i + 1),
                    })
                }
            }
        }
        Ok(DeployerKey(out))
    }
}

/// An application namespace on a node: the first 16 bytes of
/// SHA-256([`NAMESPACE_DOMAIN`] ‖ deployer key ‖ u32-BE name length ‖ name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppId(pub [u8; 16]);

impl AppId {
    /// The namespace of application `app` deployed by `key`.
    pub fn of(key: &DeployerKey, app: &str) -> Self {
        let digest = aex_crypto::sha256(&[
            NAMESPACE_DOMAIN,
            &key.0,
            &(app.len() as u32).to_be_bytes(),
            app.as_bytes(),
        ]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        AppId(id)
    }
}

impl core::fmt::Display for AppId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl core::fmt::Debug for AppId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AppId({self})")
    }
}

/// An Ed25519 signature by a deployer.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "serde_bytes")] pub [u8; SIGNATURE_LEN]);

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Signature({}..)", hex(&self.0[..8]))
    }
}

/// The bytes a deployer signs to open a session: [`SESSION_DOMAIN`] ‖ challenge ‖ key ‖
/// u32-BE name length ‖ application name.
pub fn session_message(challenge: &[u8; CHALLENGE_LEN], key: &DeployerKey, app: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SESSION_DOMAIN.len() + 68 + app.len());
    m.extend_from_slice(SESSION_DOMAIN);
    m.extend_from_slice(challenge);
    m.extend_from_slice(&key.0);
    m.extend_from_slice(&(app.len() as u32).to_be_bytes());
    m.extend_from_slice(app.as_bytes());
    m
}

/// The bytes a deployer signs for one request: [`REQUEST_DOMAIN`] ‖ challenge ‖ u64-BE id ‖
/// postcard bytes of `body`.
pub fn request_message(challenge: &[u8; CHALLENGE_LEN], id: u64, body: &NodeRequest) -> Vec<u8> {
    let mut m = Vec::with_capacity(REQUEST_DOMAIN.len() + 40 + 64);
    m.extend_from_slice(REQUEST_DOMAIN);
    m.extend_from_slice(challenge);
    m.extend_from_slice(&id.to_be_bytes());
    // Invariant: serializing our own message types into a Vec cannot fail (see frame::encode).
    postcard::to_extend(body, m).expect("aex messages always serialize")
}

/// Signs the session proof for `challenge` (deployer side).
pub fn sign_session(
    identity: &SigningIdentity,
    challenge: &[u8; CHALLENGE_LEN],
    app: &str,
) -> Signature {
    let message = session_message(challenge, &DeployerKey::of(identity), app);
    Signature(identity.sign(&message))
}

/// Signs request `id` of the session with `challenge` (deployer side).
pub fn sign_request(
    identity: &SigningIdentity,
    challenge: &[u8; CHALLENGE_LEN],
    id: u64,
    body: &NodeRequest,
) -> Signature {
    Signature(identity.sign(&request_message(challenge, id, body)))
}

/// Why a session proof or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The session proof does not verify under the key the session claimed.
    BadSessionProof,
    /// The request's signature does not verify for this session.
    BadRequestSignature {
        /// The request's id.
        id: u64,
    },
    /// The request id is not above the last accepted one (a replay or reordering).
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
                "the session proof does not verify under the deployer key given in Hello",
            ),
            AuthError::BadRequestSignature { id } => write!(
                f,
                "request {id} is not signed by this session's deployer key"
            ),
            AuthError::StaleRequestId { id, last } => write!(
                f,
                "request id {id} is not above the last accepted id {last} (replayed or reordered)"
            ),
        }
    }
}

impl std::error::Error for AuthError {}

/// Node side, first state: the challenge is sent, the session proof is awaited.
#[derive(Debug, Clone)]
pub struct ExpectAuth {
    key: DeployerKey,
    app: AppId,
    app_name: String,
    challenge: [u8; CHALLENGE_LEN],
}

impl ExpectAuth {
    /// A session that claimed `key` and application `app_name`, challenged with `challenge`.
    pub fn new(key: DeployerKey, app_name: String, challenge: [u8; CHALLENGE_LEN]) -> Self {
        ExpectAuth {
            app: AppId::of(&key, &app_name),
            key,
            app_name,
            challenge,
        }
    }

    /// The key the session claims (not proven yet).
    pub fn key(&self) -> &DeployerKey {
        &self.key
    }

    /// Checks the session proof; on success the session is authenticated.
    pub fn authenticate(self, signature: &Signature) -> Result<Authenticated, AuthError> {
        let message = session_message(&self.challenge, &self.key, &self.app_name);
        verify_signature(&self.key.0, &message, &signature.0)
            .map_err(|_| AuthError::BadSessionProof)?;
        Ok(Authenticated {
            key: self.key,
            app: self.app,
            app_name: self.app_name,
            challenge: self.challenge,
            last_id: None,
        })
    }
}

/// Node side, second state: the deployer proved its key; requests are checked one by one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    key: DeployerKey,
    app: AppId,
    app_name: String,
    challenge: [u8; CHALLENGE_LEN],
    last_id: Option<u64>,
}

impl Authenticated {
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

    /// Accepts request `id` if its signature verifies and `id` is above every id accepted
    /// before; a refused request changes nothing.
    pub fn check_request(
        &mut self,
        id: u64,
        body: &NodeRequest,
        signature: &Signature,
    ) -> Result<(), AuthError> {
        if let Some(last) = self.last_id {
            if id <= last {
                return Err(AuthError::StaleRequestId { id, last });
            }
        }
        let message = request_message(&self.challenge, id, body);
        verify_signature(&self.key.0, &message, &signature.0)
            .map_err(|_| AuthError::BadRequestSignature { id })?;
        self.last_id = Some(id);
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests;
