//! The evidence envelope: the one wire format every backend's evidence travels in.
//!
//! ```text
//! evidence = postcard(Envelope {
//!     version:   u8   = 1,
//!     kind:      str  "sgx" | "trustzone" | "sancus" | "native",
//!     simulated: bool,          claim; bound by the quote issuer or the MAC, see each backend
//!     challenge: [u8; 32],      claim: the challenge this evidence answers
//!     body:      bytes,         kind-specific, below
//! })
//! sgx:        a DCAP v3 quote (Intel's, or the simulated layout of `sgx::sim`)
//! trustzone,
//! sancus:     provider_key_id (8) || measurement (32) || mac (32)
//! native:     measurement (32) || report_data (64)
//! ```
//!
//! Invariant: nothing in an envelope is believed until a backend's check proves it; the
//! claims (`simulated`, `challenge`, provider key id, measurement) are only ever used to *refuse*
//! early with a precise error, never to accept.

use aex_crypto::Measurement;
use serde::{Deserialize, Serialize};

/// Envelope version this crate writes and reads.
pub const EVIDENCE_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub version: u8,
    pub kind: String,
    pub simulated: bool,
    pub challenge: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Envelope {
    pub fn new(kind: crate::TeeKind, simulated: bool, challenge: &[u8; 32], body: Vec<u8>) -> Self {
        Envelope {
            version: EVIDENCE_VERSION,
            kind: kind.name().into(),
            simulated,
            challenge: *challenge,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Invariant: a struct of integers, strings and byte strings always serializes.
        postcard::to_stdvec(self).expect("envelope serializes")
    }

    /// Decodes, refusing trailing bytes and unknown versions.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        match postcard::take_from_bytes::<Envelope>(bytes) {
            Ok((env, [])) if env.version == EVIDENCE_VERSION => Ok(env),
            Ok((env, [])) => Err(FormatError::Version { got: env.version }),
            Ok((_, rest)) => Err(FormatError::Trailing { len: rest.len() }),
            Err(e) => Err(FormatError::NotEnvelope { reason: e }),
        }
    }
}

/// Why evidence bytes do not decode (the detail of [`AppraisalError::Malformed`](crate::AppraisalError::Malformed)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormatError {
    /// Not a postcard envelope at all.
    #[error("not an evidence envelope: {reason}")]
    NotEnvelope { reason: postcard::Error },
    /// An envelope of another version.
    #[error("evidence version {got} (this deployer reads version {EVIDENCE_VERSION})")]
    Version { got: u8 },
    /// Bytes after the envelope.
    #[error("{len} trailing bytes")]
    Trailing { len: usize },
    /// A kind's body of the wrong length.
    #[error("{kind} evidence body is {got} bytes, expected {expected}")]
    BodyLength {
        kind: &'static str,
        got: usize,
        expected: usize,
    },
}

/// Body of `trustzone` and `sancus` evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SymmetricBody {
    /// The id of the provider key the module key derives from.
    pub provider_key_id: [u8; 8],
    pub measurement: [u8; 32],
    pub mac: [u8; 32],
}

impl SymmetricBody {
    pub const LEN: usize = 8 + 32 + 32;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.provider_key_id);
        out.extend_from_slice(&self.measurement);
        out.extend_from_slice(&self.mac);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let length = || FormatError::BodyLength {
            kind: "symmetric",
            got: b.len(),
            expected: Self::LEN,
        };
        if b.len() != Self::LEN {
            return Err(length());
        }
        let (key_id, rest) = b.split_at(8);
        let (m, mac) = rest.split_at(32);
        Ok(SymmetricBody {
            provider_key_id: key_id.try_into().map_err(|_| length())?,
            measurement: m.try_into().map_err(|_| length())?,
            mac: mac.try_into().map_err(|_| length())?,
        })
    }
}

/// Body of `native` evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NativeBody {
    pub measurement: [u8; 32],
    pub report_data: [u8; 64],
}

impl NativeBody {
    pub const LEN: usize = 32 + 64;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.measurement);
        out.extend_from_slice(&self.report_data);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let length = || FormatError::BodyLength {
            kind: "native",
            got: b.len(),
            expected: Self::LEN,
        };
        if b.len() != Self::LEN {
            return Err(length());
        }
        let (m, rd) = b.split_at(32);
        Ok(NativeBody {
            measurement: m.try_into().map_err(|_| length())?,
            report_data: rd.try_into().map_err(|_| length())?,
        })
    }
}

/// What a kind's cryptographic check proved.
#[derive(Debug, Clone)]
pub(crate) struct Claims {
    pub measurement: Measurement,
    pub simulated: bool,
    pub debug: bool,
    /// `Some` for quote and native kinds: must bind the module pk and the challenge.
    pub report_data: Option<[u8; 64]>,
    pub provider_key_id: Option<[u8; 8]>,
    pub tcb_status: Option<String>,
}

/// `SHA-256(module_pk || challenge) || 32 zero bytes`: the report data of `sgx` quotes and
/// `native` evidence.
pub fn report_data(module_pk: &[u8; 32], challenge: &[u8; 32]) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&aex_crypto::sha256(&[module_pk, challenge]));
    rd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_refuses_garbage() {
        let env = Envelope::new(crate::TeeKind::Sancus, true, &[4; 32], vec![1, 2, 3]);
        let bytes = env.encode();
        assert_eq!(Envelope::decode(&bytes), Ok(env.clone()));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Envelope::decode(&long),
            Err(FormatError::Trailing { len: 1 })
        );
        let mut v2 = env;
        v2.version = 2;
        let e = Envelope::decode(&v2.encode()).unwrap_err();
        assert_eq!(e, FormatError::Version { got: 2 });
        assert_eq!(
            e.to_string(),
            "evidence version 2 (this deployer reads version 1)"
        );
        assert!(matches!(
            Envelope::decode(&[]),
            Err(FormatError::NotEnvelope { .. })
        ));
    }

    #[test]
    fn bodies_round_trip() {
        let s = SymmetricBody {
            provider_key_id: [3; 8],
            measurement: [4; 32],
            mac: [5; 32],
        };
        let enc = s.encode();
        assert_eq!(&enc[..9], &[3, 3, 3, 3, 3, 3, 3, 3, 4]);
        assert_eq!(SymmetricBody::decode(&enc), Ok(s));
        assert!(SymmetricBody::decode(&enc[1..]).is_err());
        let n = NativeBody {
            measurement: [1; 32],
            report_data: report_data(&[2; 32], &[3; 32]),
        };
        assert_eq!(n.report_data[32..], [0; 32]);
        assert_eq!(NativeBody::decode(&n.encode()), Ok(n));
        assert_eq!(
            NativeBody::decode(&[0; 95]).unwrap_err().to_string(),
            "native evidence body is 95 bytes, expected 96"
        );
    }
}
