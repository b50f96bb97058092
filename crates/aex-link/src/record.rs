//! The record layer, sans I/O: the plaintext byte stream of a link (ordinary aex frames) cut
//! into Noise transport messages.
//!
//! ```text
//! record = len:u16 BE || ciphertext        16 ≤ len ≤ 65535 (the tag is 16 bytes)
//! ```
//!
//! Each direction counts its records from 0; a record's number is its Noise nonce, so a record
//! that is dropped, repeated, reordered, changed or injected fails to authenticate and the
//! link ends ([`LinkError::Forged`]). Record boundaries mean nothing to the frame stream
//! above: a frame may span records, and a record may hold many frames.
//!
//! Invariant: an [`Opener`] checks a record's length against its current limit before the
//! caller allocates for it. Until a link's first frame (its `Hello`) is read, the limit is
//! [`FIRST_RECORD_LIMIT`]; afterwards, [`MAX_RECORD`]. Readers grow a record's buffer as its
//! bytes arrive ([`READ_STEP`] at a time), so what a peer announces costs nothing until it
//! sends it.

use std::sync::Arc;

use snow::StatelessTransportState;

use crate::error::LinkError;

/// The largest record (a Noise transport message).
pub const MAX_RECORD: usize = 65535;
/// The authentication tag of every record.
pub const TAG_LEN: usize = 16;
/// The most plaintext one record carries.
pub const MAX_PLAINTEXT: usize = MAX_RECORD - TAG_LEN;
/// The longest `Hello` frame body a node reads as a link's first frame.
pub const MAX_HELLO_LEN: usize = 1024;
/// How much of a record's buffer a reader adds at a time: a record's buffer grows as its bytes
/// arrive, never to its announced length up front.
pub const READ_STEP: usize = 4096;
/// The record a reader is reading: its buffer grows as the record's bytes arrive, by what
/// arrived so far (at least [`READ_STEP`]), so it stays within twice what arrived plus one
/// step, whatever the length prefix announced. Each byte of the buffer is zeroed once, when it
/// is first needed, and the buffer is reused by the next record.
#[derive(Default)]
pub(crate) struct Incoming {
    /// Initialized bytes; the record's first `got` are what arrived.
    buf: Vec<u8>,
    got: usize,
    len: Option<usize>,
}

impl Incoming {
    /// The record's length, once its prefix was read.
    pub(crate) fn expected(&self) -> Option<usize> {
        self.len
    }

    /// Starts a record of `len` bytes (already checked against the opener's limit).
    pub(crate) fn start(&mut self, len: usize) {
        self.got = 0;
        self.len = Some(len);
    }

    /// Room for the next bytes of the record; empty once it is complete (or not started).
    pub(crate) fn room(&mut self) -> &mut [u8] {
        let len = self.len.unwrap_or(0);
        if self.got == self.buf.len() && self.got < len {
            let grown = (self.got + self.got.max(READ_STEP)).min(len);
            self.buf.resize(grown, 0);
        }
        let end = self.buf.len().min(len);
        &mut self.buf[self.got..end]
    }

    /// Counts `n` more bytes of the record as arrived (in [`Incoming::room`]).
    pub(crate) fn advance(&mut self, n: usize) {
        self.got += n;
    }

    /// Bytes of the record that arrived.
    #[cfg(test)]
    pub(crate) fn got(&self) -> usize {
        self.got
    }

    /// Bytes of the record still to arrive (the tokio reader's read-ahead asks).
    #[cfg(feature = "tokio")]
    pub(crate) fn missing(&self) -> usize {
        self.len.unwrap_or(0) - self.got
    }

    /// Whether the whole record arrived.
    pub(crate) fn complete(&self) -> bool {
        self.len == Some(self.got)
    }

    /// The complete record, ending it (the next one starts with a new prefix).
    pub(crate) fn take(&mut self) -> &[u8] {
        self.len = None;
        &self.buf[..self.got]
    }

    /// Bytes held for records.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// The largest record before the first frame: a `Hello` frame (length prefix included) and
/// its tag. A client sends its `Hello` alone in its first record.
pub const FIRST_RECORD_LIMIT: usize = 4 + MAX_HELLO_LEN + TAG_LEN;

/// Seals one direction's records.
pub struct Sealer {
    state: Arc<StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    pub(crate) fn new(state: Arc<StatelessTransportState>) -> Sealer {
        Sealer { state, nonce: 0 }
    }

    /// Appends the record of `plaintext` (at most [`MAX_PLAINTEXT`] bytes) to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), LinkError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(LinkError::TooLarge {
                what: "a record's plaintext",
                len: plaintext.len(),
                limit: MAX_PLAINTEXT,
            });
        }
        let len = plaintext.len() + TAG_LEN;
        let start = out.len();
        out.resize(start + 2 + len, 0);
        out[start..start + 2].copy_from_slice(&(len as u16).to_be_bytes());
        let written = self
            .state
            .write_message(self.nonce, plaintext, &mut out[start + 2..])
            .map_err(|e| LinkError::Handshake(format!("sealing a record failed: {e}")))?;
        debug_assert_eq!(written, len);
        self.nonce += 1;
        Ok(())
    }
}

/// Opens the other direction's records.
pub struct Opener {
    state: Arc<StatelessTransportState>,
    nonce: u64,
    limit: usize,
}

impl Opener {
    pub(crate) fn new(state: Arc<StatelessTransportState>) -> Opener {
        Opener {
            state,
            nonce: 0,
            limit: FIRST_RECORD_LIMIT,
        }
    }

    /// Sets the largest record accepted from now on (at most [`MAX_RECORD`]).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(MAX_RECORD);
    }

    /// The largest record accepted now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Checks a record's length prefix before anything is allocated for it.
    pub fn check_len(&self, len: usize) -> Result<(), LinkError> {
        if len > self.limit {
            return Err(LinkError::TooLarge {
                what: "a record",
                len,
                limit: self.limit,
            });
        }
        if len < TAG_LEN {
            return Err(LinkError::Forged);
        }
        Ok(())
    }

    /// Opens the record `ciphertext` (without its length prefix) into `plaintext`, which is
    /// cleared first.
    pub fn open(&mut self, ciphertext: &[u8], plaintext: &mut Vec<u8>) -> Result<(), LinkError> {
        self.check_len(ciphertext.len())?;
        plaintext.clear();
        plaintext.resize(ciphertext.len() - TAG_LEN, 0);
        match self.state.read_message(self.nonce, ciphertext, plaintext) {
            Ok(n) => {
                plaintext.truncate(n);
                self.nonce += 1;
                Ok(())
            }
            Err(_) => {
                plaintext.clear();
                Err(LinkError::Forged)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use snow::HandshakeState;

    /// Both ends of an established link: (initiator, responder). Records need only the
    /// transport keys a handshake ends with, so an unauthenticated `Noise_NN` with the links'
    /// primitives gives them here: this crate's own handshakes sit above this module (they
    /// make [`Sealer`]s and [`Opener`]s), and their tests check that their keys carry records.
    pub(crate) fn pair() -> ((Sealer, Opener), (Sealer, Opener)) {
        let params: snow::params::NoiseParams = "Noise_NN_25519_AESGCM_BLAKE2s".parse().unwrap();
        let mut init = snow::Builder::new(params.clone())
            .build_initiator()
            .unwrap();
        let mut resp = snow::Builder::new(params).build_responder().unwrap();
        let (mut message, mut payload) = ([0u8; 128], [0u8; 128]);
        let n = init.write_message(&[], &mut message).unwrap();
        resp.read_message(&message[..n], &mut payload).unwrap();
        let n = resp.write_message(&[], &mut message).unwrap();
        init.read_message(&message[..n], &mut payload).unwrap();
        let halves = |state: HandshakeState| {
            let transport = Arc::new(state.into_stateless_transport_mode().unwrap());
            (Sealer::new(transport.clone()), Opener::new(transport))
        };
        (halves(init), halves(resp))
    }

    #[test]
    fn records_round_trip_in_order_only() {
        let ((mut seal, _), (_, mut open)) = pair();
        open.set_limit(MAX_RECORD);
        let mut wire = vec![];
        for msg in [&b"hello"[..], b"", &[7u8; MAX_PLAINTEXT]] {
            let mut one = vec![];
            seal.seal(msg, &mut one).unwrap();
            assert_eq!(one.len(), 2 + msg.len() + TAG_LEN);
            wire.push(one);
        }
        let mut plain = vec![];
        open.open(&wire[0][2..], &mut plain).unwrap();
        assert_eq!(plain, b"hello");
        // Skipping record 1 (dropped, or reordered) fails, and so does a replay of record 0.
        assert!(matches!(
            open.open(&wire[2][2..], &mut plain),
            Err(LinkError::Forged)
        ));
        assert!(matches!(
            open.open(&wire[0][2..], &mut plain),
            Err(LinkError::Forged)
        ));
        // A failed record changed nothing: the next in order still opens.
        open.open(&wire[1][2..], &mut plain).unwrap();
        assert!(plain.is_empty());
        open.open(&wire[2][2..], &mut plain).unwrap();
        assert_eq!(plain.len(), MAX_PLAINTEXT);
        let mut too_big = vec![];
        assert!(seal.seal(&[0; MAX_PLAINTEXT + 1], &mut too_big).is_err());
    }

    #[test]
    fn directions_are_separate_keys() {
        let ((mut c_seal, mut c_open), (mut s_seal, mut s_open)) = pair();
        let (mut a, mut b) = (vec![], vec![]);
        c_seal.seal(b"up", &mut a).unwrap();
        s_seal.seal(b"down", &mut b).unwrap();
        let mut plain = vec![];
        // A record reflected back to its sender does not open.
        assert!(c_open.open(&a[2..], &mut plain).is_err());
        s_open.open(&a[2..], &mut plain).unwrap();
        assert_eq!(plain, b"up");
        c_open.open(&b[2..], &mut plain).unwrap();
        assert_eq!(plain, b"down");
    }

    #[test]
    fn lengths_are_checked_against_the_current_limit() {
        let (_, (_, mut open)) = pair();
        assert_eq!(open.limit(), FIRST_RECORD_LIMIT);
        assert!(open.check_len(FIRST_RECORD_LIMIT).is_ok());
        assert!(matches!(
            open.check_len(FIRST_RECORD_LIMIT + 1),
            Err(LinkError::TooLarge { .. })
        ));
        assert!(matches!(
            open.check_len(TAG_LEN - 1),
            Err(LinkError::Forged)
        ));
        open.set_limit(usize::MAX);
        assert_eq!(open.limit(), MAX_RECORD);
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_refused(msg in proptest::collection::vec(any::<u8>(), 0..300), bit in any::<usize>()) {
            let ((mut seal, _), (_, mut open)) = pair();
            let mut rec = vec![];
            seal.seal(&msg, &mut rec).unwrap();
            let body = &mut rec[2..];
            let bit = bit % (body.len() * 8);
            body[bit / 8] ^= 1 << (bit % 8);
            let mut plain = vec![];
            prop_assert!(matches!(open.open(body, &mut plain), Err(LinkError::Forged)));
            prop_assert!(plain.is_empty());
        }

        #[test]
        fn arbitrary_records_never_open(rec in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let (_, (_, mut open)) = pair();
            let mut plain = vec![];
            prop_assert!(open.open(&rec, &mut plain).is_err());
        }
    }
}
