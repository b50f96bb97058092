//! The handshakes, sans I/O: which Noise pattern each link runs, and the bytes of each step.
//!
//! ```text
//! link       = kind:u8 || message 1 || message 2 || [message 3] || records…
//! message N  = len:u16 BE || bytes                  (len ≤ MAX_HANDSHAKE_MESSAGE)
//! message 2  = len || status:u8 || …                status 0: the Noise message
//!                                                   status 1: the responder's identity key
//! ```
//!
//! * **Deployer links** (`kind = 'D'`) run `Noise_NK_25519_AESGCM_BLAKE2s`: the deployer
//!   pins the node's identity key, so only that node can answer message 1. The deployer's
//!   own key is proven in its first record (the `Hello`, signed over [`Established::hash`]).
//! * **Peer links** (`kind = 'P'`) run `Noise_XK_25519_AESGCM_BLAKE2s`: the initiating node
//!   pins the responder's identity from its route, and sends its own identity key encrypted in
//!   message 3. The responder decides from that key whether to admit the link, and says yes
//!   with one empty record; a refused initiator sees the connection close instead.
//!
//! The kind byte is also the last byte of the Noise prologue, so a changed kind fails the
//! handshake. When message 1 does not decrypt under the responder's key (the initiator
//! pinned another identity for it), the responder answers status 1 with its own public key in
//! clear, so the initiator can name both keys in its error; that claim is unauthenticated and
//! only ever used in an error message.
//!
//! Invariant: a handshake message is at most [`MAX_HANDSHAKE_MESSAGE`] bytes, checked from
//! its length prefix before anything is allocated, and carries an empty payload.

use aex_proto::NodeKey;
use snow::{HandshakeState, StatelessTransportState};

use crate::error::{KeyMismatch, LinkError};
use crate::keys::StaticKey;
use crate::record::{Opener, Sealer};

/// The Noise protocol of deployer links.
pub const DEPLOYER_NOISE: &str = "Noise_NK_25519_AESGCM_BLAKE2s";
/// The Noise protocol of peer links.
pub const PEER_NOISE: &str = "Noise_XK_25519_AESGCM_BLAKE2s";
/// The Noise prologue, followed by the kind byte.
pub const PROLOGUE: &[u8] = b"aex link v1\0";
/// The largest handshake message a side accepts (NK: 48 and 49 bytes; XK message 3: 64).
pub const MAX_HANDSHAKE_MESSAGE: usize = 128;

/// Status byte of message 2: the Noise message follows.
const STATUS_OK: u8 = 0;
/// Status byte of message 2: the initiator pinned another key; the responder's key follows.
const STATUS_OTHER_KEY: u8 = 1;

/// Which link a connection carries: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A deployer's management session (`'D'`, Noise NK).
    Deployer,
    /// A node's event link to another node (`'P'`, Noise XK).
    Peer,
}

impl LinkKind {
    /// The byte that opens such a link.
    pub fn byte(self) -> u8 {
        match self {
            LinkKind::Deployer => b'D',
            LinkKind::Peer => b'P',
        }
    }

    /// The kind a link's first byte names.
    pub fn from_byte(byte: u8) -> Result<LinkKind, LinkError> {
        match byte {
            b'D' => Ok(LinkKind::Deployer),
            b'P' => Ok(LinkKind::Peer),
            other => Err(LinkError::UnknownKind(other)),
        }
    }

    fn noise(self) -> &'static str {
        match self {
            LinkKind::Deployer => DEPLOYER_NOISE,
            LinkKind::Peer => PEER_NOISE,
        }
    }
}

/// `body` with its u16 length prefix.
pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks a handshake message's length prefix.
pub fn check_handshake_len(len: usize) -> Result<(), LinkError> {
    if len > MAX_HANDSHAKE_MESSAGE || len == 0 {
        return Err(LinkError::TooLarge {
            what: "a handshake message",
            len,
            limit: MAX_HANDSHAKE_MESSAGE,
        });
    }
    Ok(())
}

fn builder(kind: LinkKind, prologue: &[u8]) -> snow::Builder<'_> {
    // Invariant: both names are valid Noise protocol names snow supports.
    let params = kind
        .noise()
        .parse()
        .expect("a supported Noise protocol name");
    snow::Builder::new(params)
        .prologue(prologue)
        .expect("a prologue is set once")
}

fn prologue(kind: LinkKind) -> Vec<u8> {
    let mut p = PROLOGUE.to_vec();
    p.push(kind.byte());
    p
}

fn failed(e: snow::Error) -> LinkError {
    LinkError::Handshake(e.to_string())
}

/// A completed handshake: the transport keys, the handshake hash, and the other side's
/// identity (when the pattern transmits or pins one).
pub struct Established {
    transport: StatelessTransportState,
    hash: [u8; 32],
    remote: Option<NodeKey>,
}

impl Established {
    fn finish(state: HandshakeState) -> Result<Established, LinkError> {
        let mut hash = [0u8; 32];
        let h = state.get_handshake_hash();
        if h.len() != hash.len() {
            return Err(LinkError::Handshake(format!(
                "unexpected handshake hash length {}",
                h.len()
            )));
        }
        hash.copy_from_slice(h);
        let remote = state.get_remote_static().and_then(|k| {
            let key: [u8; 32] = k.try_into().ok()?;
            Some(NodeKey(key))
        });
        let transport = state.into_stateless_transport_mode().map_err(failed)?;
        Ok(Established {
            transport,
            hash,
            remote,
        })
    }

    /// The handshake hash: unique to this connection, equal on both sides. The deployer signs
    /// it in its `Hello`.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The other side's static key: the responder's (as pinned) for an initiator, the
    /// initiator's (proven by message 3) for a peer link's responder, `None` for a deployer
    /// link's responder.
    pub fn remote(&self) -> Option<NodeKey> {
        self.remote
    }

    /// The two directions of the record layer.
    pub fn into_halves(self) -> (Sealer, Opener) {
        let state = std::sync::Arc::new(self.transport);
        (Sealer::new(state.clone()), Opener::new(state))
    }
}

/// The initiating side of a link.
pub struct Initiator {
    kind: LinkKind,
    state: HandshakeState,
    pinned: NodeKey,
}

impl Initiator {
    /// A deployer's handshake with the node whose identity is `node`; returns the bytes to
    /// send first (kind and message 1).
    pub fn deployer(node: &NodeKey) -> Result<(Initiator, Vec<u8>), LinkError> {
        let prologue = prologue(LinkKind::Deployer);
        let state = builder(LinkKind::Deployer, &prologue)
            .remote_public_key(&node.0)
            .and_then(|b| b.build_initiator())
            .map_err(failed)?;
        Self::start(LinkKind::Deployer, state, *node)
    }

    /// A node's handshake, as `own`, with the peer node whose identity is `node`; returns the
    /// bytes to send first (kind and message 1).
    pub fn peer(own: &StaticKey, node: &NodeKey) -> Result<(Initiator, Vec<u8>), LinkError> {
        let prologue = prologue(LinkKind::Peer);
        let state = builder(LinkKind::Peer, &prologue)
            .local_private_key(own.expose_secret())
            .and_then(|b| b.remote_public_key(&node.0))
            .and_then(|b| b.build_initiator())
            .map_err(failed)?;
        Self::start(LinkKind::Peer, state, *node)
    }

    fn start(
        kind: LinkKind,
        mut state: HandshakeState,
        pinned: NodeKey,
    ) -> Result<(Initiator, Vec<u8>), LinkError> {
        let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
        let n = state.write_message(&[], &mut buf).map_err(failed)?;
        let mut out = vec![kind.byte()];
        out.extend_from_slice(&framed(&buf[..n]));
        Ok((
            Initiator {
                kind,
                state,
                pinned,
            },
            out,
        ))
    }

    /// Takes the responder's message 2 (without its length prefix). A deployer link is then
    /// established; a peer link also returns message 3 to send (framed), after which the
    /// responder accepts the link with one empty record, or closes it.
    pub fn answer(mut self, message: &[u8]) -> Result<(Established, Option<Vec<u8>>), LinkError> {
        match message.split_first() {
            Some((&STATUS_OK, noise)) => {
                let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
                let n = self
                    .state
                    .read_message(noise, &mut payload)
                    .map_err(failed)?;
                if n != 0 {
                    return Err(LinkError::Handshake(
                        "message 2 carries a payload".to_owned(),
                    ));
                }
            }
            Some((&STATUS_OTHER_KEY, key)) => {
                let actual: [u8; 32] = key.try_into().map_err(|_| {
                    LinkError::Handshake("a malformed identity in message 2".to_owned())
                })?;
                if NodeKey(actual) == self.pinned {
                    // The right node could not read message 1 all the same: it runs another
                    // Noise protocol (an agent of another aex version), not another key.
                    return Err(LinkError::Handshake(format!(
                        "the node has the pinned identity but could not read the handshake: it \
                         speaks another version of the link protocol than this side's `{}` \
                         (upgrade both to the same aex version)",
                        self.kind.noise()
                    )));
                }
                return Err(LinkError::WrongIdentity(Box::new(KeyMismatch {
                    pinned: self.pinned,
                    actual: NodeKey(actual),
                })));
            }
            _ => {
                return Err(LinkError::Handshake(
                    "message 2 has an unknown status".to_owned(),
                ))
            }
        }
        let third = match self.kind {
            LinkKind::Deployer => None,
            LinkKind::Peer => {
                let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
                let n = self.state.write_message(&[], &mut buf).map_err(failed)?;
                Some(framed(&buf[..n]))
            }
        };
        Ok((Established::finish(self.state)?, third))
    }
}

/// The responding side of a link (a node).
pub struct Responder {
    kind: LinkKind,
    state: HandshakeState,
    own: NodeKey,
}

/// What a responder does after message 1.
pub enum AfterFirst {
    /// A deployer link: established once the reply (message 2) is sent.
    Established(Box<Established>),
    /// A peer link: message 3 comes next.
    AwaitThird(Box<AwaitThird>),
    /// Message 1 was for another identity: send the reply (this node's key in clear) and
    /// close.
    PinnedOther,
}

/// A peer link's responder waiting for message 3.
pub struct AwaitThird {
    state: HandshakeState,
}

impl Responder {
    /// A responder as `own` for a link that opened with `kind`.
    pub fn new(own: &StaticKey, kind: LinkKind) -> Result<Responder, LinkError> {
        let prologue = prologue(kind);
        let state = builder(kind, &prologue)
            .local_private_key(own.expose_secret())
            .and_then(|b| b.build_responder())
            .map_err(failed)?;
        Ok(Responder {
            kind,
            state,
            own: own.public(),
        })
    }

    /// Takes message 1 (without its length prefix); returns what comes next and the reply to
    /// send (framed message 2).
    pub fn first(mut self, message: &[u8]) -> Result<(AfterFirst, Vec<u8>), LinkError> {
        let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
        match self.state.read_message(message, &mut payload) {
            Ok(0) => {}
            Ok(_) => {
                return Err(LinkError::Handshake(
                    "message 1 carries a payload".to_owned(),
                ))
            }
            Err(snow::Error::Decrypt) => {
                let mut reply = vec![STATUS_OTHER_KEY];
                reply.extend_from_slice(&self.own.0);
                return Ok((AfterFirst::PinnedOther, framed(&reply)));
            }
            Err(e) => return Err(failed(e)),
        }
        let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
        buf[0] = STATUS_OK;
        let n = self
            .state
            .write_message(&[], &mut buf[1..])
            .map_err(failed)?;
        let reply = framed(&buf[..1 + n]);
        let next = match self.kind {
            LinkKind::Deployer => {
                AfterFirst::Established(Box::new(Established::finish(self.state)?))
            }
            LinkKind::Peer => AfterFirst::AwaitThird(Box::new(AwaitThird { state: self.state })),
        };
        Ok((next, reply))
    }
}

impl AwaitThird {
    /// Takes message 3 (without its length prefix): the initiator's identity, now proven
    /// ([`Established::remote`]).
    pub fn third(mut self, message: &[u8]) -> Result<Established, LinkError> {
        let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
        let n = self
            .state
            .read_message(message, &mut payload)
            .map_err(failed)?;
        if n != 0 {
            return Err(LinkError::Handshake(
                "message 3 carries a payload".to_owned(),
            ));
        }
        Established::finish(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(framed: &[u8]) -> &[u8] {
        let len = u16::from_be_bytes([framed[0], framed[1]]) as usize;
        assert_eq!(framed.len(), 2 + len);
        &framed[2..]
    }

    /// The two ends' record halves pair up: what one seals, the other opens, both ways.
    fn records_flow(a: Established, b: Established) {
        let ((mut a_seal, mut a_open), (mut b_seal, mut b_open)) =
            (a.into_halves(), b.into_halves());
        let (mut up, mut down, mut plain) = (vec![], vec![], vec![]);
        a_seal.seal(b"up", &mut up).unwrap();
        b_seal.seal(b"down", &mut down).unwrap();
        b_open.open(&up[2..], &mut plain).unwrap();
        assert_eq!(plain, b"up");
        a_open.open(&down[2..], &mut plain).unwrap();
        assert_eq!(plain, b"down");
    }

    #[test]
    fn deployer_handshake_agrees_and_pins_the_node() {
        let node = StaticKey::generate();
        let (init, first) = Initiator::deployer(&node.public()).unwrap();
        assert_eq!(first[0], b'D');
        let resp = Responder::new(&node, LinkKind::from_byte(first[0]).unwrap()).unwrap();
        let (next, reply) = resp.first(body(&first[1..])).unwrap();
        let AfterFirst::Established(server) = next else {
            panic!("a deployer link is established after message 2");
        };
        let (client, third) = init.answer(body(&reply)).unwrap();
        assert!(third.is_none());
        assert_eq!(client.hash(), server.hash());
        assert_eq!(client.remote(), Some(node.public()));
        assert_eq!(server.remote(), None);
        // The sizes the limits are made for.
        assert_eq!((first.len(), reply.len()), (1 + 2 + 48, 2 + 49));
        records_flow(client, *server);
    }

    #[test]
    fn peer_handshake_proves_the_initiator() {
        let (a, b) = (StaticKey::generate(), StaticKey::generate());
        let (init, first) = Initiator::peer(&a, &b.public()).unwrap();
        assert_eq!(first[0], b'P');
        let (next, reply) = Responder::new(&b, LinkKind::Peer)
            .unwrap()
            .first(body(&first[1..]))
            .unwrap();
        let AfterFirst::AwaitThird(wait) = next else {
            panic!("a peer link waits for message 3");
        };
        let (client, third) = init.answer(body(&reply)).unwrap();
        let third = third.expect("message 3");
        assert!(third.len() - 2 <= MAX_HANDSHAKE_MESSAGE);
        let server = wait.third(body(&third)).unwrap();
        assert_eq!(server.remote(), Some(a.public()));
        assert_eq!(client.remote(), Some(b.public()));
        assert_eq!(client.hash(), server.hash());
        records_flow(client, server);
    }

    #[test]
    fn a_node_that_cannot_read_message_1_under_the_right_key_speaks_another_protocol() {
        // What an agent of another aex version (another Noise protocol name) answers: its
        // own key, which is the pinned one.
        let node = StaticKey::generate();
        let (init, _) = Initiator::deployer(&node.public()).unwrap();
        let mut reply = vec![STATUS_OTHER_KEY];
        reply.extend_from_slice(&node.public().0);
        match init.answer(&reply) {
            Err(LinkError::Handshake(why)) => {
                assert!(
                    why.contains("another version of the link protocol"),
                    "{why}"
                );
                assert!(why.contains(DEPLOYER_NOISE), "{why}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a handshake nobody read completed"),
        }
    }

    #[test]
    fn a_wrong_pin_is_answered_with_the_responder_s_key() {
        let (real, pinned) = (StaticKey::generate(), StaticKey::generate());
        for kind in [LinkKind::Deployer, LinkKind::Peer] {
            let (init, first) = match kind {
                LinkKind::Deployer => Initiator::deployer(&pinned.public()).unwrap(),
                LinkKind::Peer => {
                    Initiator::peer(&StaticKey::generate(), &pinned.public()).unwrap()
                }
            };
            let (next, reply) = Responder::new(&real, kind)
                .unwrap()
                .first(body(&first[1..]))
                .unwrap();
            assert!(matches!(next, AfterFirst::PinnedOther));
            match init.answer(body(&reply)) {
                Err(LinkError::WrongIdentity(keys)) => {
                    assert_eq!((keys.pinned, keys.actual), (pinned.public(), real.public()));
                }
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("a handshake with the wrong pin completed"),
            }
        }
    }

    #[test]
    fn changed_messages_and_kinds_fail() {
        let node = StaticKey::generate();
        // A flipped bit in message 2's Noise part.
        let (init, first) = Initiator::deployer(&node.public()).unwrap();
        let (_, reply) = Responder::new(&node, LinkKind::Deployer)
            .unwrap()
            .first(body(&first[1..]))
            .unwrap();
        let mut bad = body(&reply).to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(init.answer(&bad), Err(LinkError::Handshake(_))));
        // A deployer's message 1 read as a peer link (the kind byte changed on the way).
        let (_, first) = Initiator::deployer(&node.public()).unwrap();
        let got = Responder::new(&node, LinkKind::Peer)
            .unwrap()
            .first(body(&first[1..]));
        assert!(matches!(got, Ok((AfterFirst::PinnedOther, _))));
        // Unknown kinds and oversized or empty messages.
        assert!(matches!(
            LinkKind::from_byte(0),
            Err(LinkError::UnknownKind(0))
        ));
        assert!(check_handshake_len(MAX_HANDSHAKE_MESSAGE).is_ok());
        assert!(check_handshake_len(MAX_HANDSHAKE_MESSAGE + 1).is_err());
        assert!(check_handshake_len(0).is_err());
        // A message 3 from someone else's handshake.
        let (a, b) = (StaticKey::generate(), StaticKey::generate());
        let (_, first) = Initiator::peer(&a, &b.public()).unwrap();
        let (next, _) = Responder::new(&b, LinkKind::Peer)
            .unwrap()
            .first(body(&first[1..]))
            .unwrap();
        let AfterFirst::AwaitThird(wait) = next else {
            panic!()
        };
        let (other_init, other_first) = Initiator::peer(&a, &b.public()).unwrap();
        let (_, other_reply) = Responder::new(&b, LinkKind::Peer)
            .unwrap()
            .first(body(&other_first[1..]))
            .unwrap();
        let (_, third) = other_init.answer(body(&other_reply)).unwrap();
        assert!(wait.third(body(&third.unwrap())).is_err());
    }
}
