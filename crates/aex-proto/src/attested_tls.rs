//! Attested TLS: what a module's TLS certificate carries, and what binds it (docs/PROTOCOL.md
//! §11). Shared by the module side (`aex-tls`, which builds the certificate) and the client
//! side (`aex-client`, which checks it), so the format is defined once.
//!
//! A module's certificate carries its attestation evidence in the X.509 extension of the TCG
//! DICE Attestation Architecture for a *conceptual message wrapper* (CMW),
//! `tcg-dice-conceptual-message-wrapper` = [`EVIDENCE_OID`] (2.23.133.5.4.9), the extension
//! Gramine's RA-TLS and the CCC's interoperable RA-TLS use. Its value is a CMW in the CBOR
//! array form of the IETF RATS draft `draft-ietf-rats-msg-wrap`: `[type, value]`, the type the
//! text media type [`MEDIA_TYPE`] and the value the byte string [`CertEvidence::encode`]
//! describes.
//!
//! The evidence answers [`cert_challenge`] and binds [`binding`]: a labelled SHA-256 over the
//! certificate's SubjectPublicKeyInfo and the extra public keys the module attests with it, so
//! the TEE's report data (`SHA-256(binding || challenge) || 0^32`, as in the deployer's
//! attestation) names the very key that signs the handshake. Fresh evidence over an
//! established channel answers the TLS exporter value ([`EXPORTER_LABEL`], RFC 8446 §7.5)
//! with the client's nonce as context, and binds the same [`binding`].

use serde::{Deserialize, Serialize};

/// `tcg-dice-conceptual-message-wrapper` (TCG DICE Attestation Architecture): the extension
/// holding the evidence, as arcs.
pub const EVIDENCE_OID: &[u64] = &[2, 23, 133, 5, 4, 9];

/// The CMW's type: the media type of [`CertEvidence`]'s encoding.
pub const MEDIA_TYPE: &str = "application/vnd.aex.tls-evidence.v1";

/// The TLS exporter label of fresh evidence (RFC 8446 §7.5); the context is the client's
/// nonce, the length 32 bytes.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-aex-fresh-evidence";

/// The HTTP path an attested module answers fresh evidence on:
/// `GET /.well-known/aex-evidence?nonce=<64 hex digits>` answers the evidence envelope in hex.
pub const FRESH_PATH: &str = "/.well-known/aex-evidence";

/// Symmetric kinds: the "deployer public key" in the transcript of a module's MAC over its TLS
/// key binding. All zero, a low-order X25519 key that an attestation refuses, so such a MAC
/// never passes for the proof of an attestation.
pub const SYMMETRIC_PEER: [u8; 32] = [0; 32];

/// Most extra public keys a certificate attests.
pub const MAX_EXTRA: usize = 8;
/// Longest name of an extra key, in bytes.
pub const MAX_EXTRA_NAME: usize = 64;
/// Longest extra key, in bytes.
pub const MAX_EXTRA_KEY: usize = 1024;
/// Longest evidence envelope a certificate carries (an Intel quote with its PCK chain is
/// about 5 KiB).
pub const MAX_EVIDENCE: usize = 64 * 1024;

/// The challenge a certificate's evidence answers: `SHA-256("aex/v1 tls certificate")`. A
/// constant: the certificate is made once per key, before any client exists (freshness comes
/// from the handshake and from fresh evidence, docs/PROTOCOL.md §11).
pub fn cert_challenge() -> [u8; 32] {
    aex_crypto::sha256(&[b"aex/v1 tls certificate"])
}

/// What the evidence binds: `SHA-256("aex/v1 tls binding" || u32be(len(spki)) || spki ||
/// u32be(n) || n × (u32be(len(name)) || name || u32be(len(key)) || key))`, over the DER of the
/// certificate's SubjectPublicKeyInfo and the extra keys in order.
pub fn binding(spki_der: &[u8], extra: &[(&str, &[u8])]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(64 + spki_der.len());
    buf.extend_from_slice(b"aex/v1 tls binding");
    let mut field = |b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    field(spki_der);
    buf.extend_from_slice(&(extra.len() as u32).to_be_bytes());
    for (name, key) in extra {
        buf.extend_from_slice(&(name.len() as u32).to_be_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&(key.len() as u32).to_be_bytes());
        buf.extend_from_slice(key);
    }
    aex_crypto::sha256(&[&buf])
}

/// The CMW's value: the evidence envelope and the extra keys it attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertEvidence {
    /// The evidence envelope, as the node's TEE layer produced it.
    #[serde(with = "serde_bytes")]
    pub evidence: Vec<u8>,
    /// Extra public keys `(name, key)` the evidence binds beside the certificate's own.
    pub extra: Vec<(String, ByteBuf)>,
}

/// Bytes in postcard's compact form.
pub type ByteBuf = serde_bytes::ByteBuf;

/// Why an evidence extension does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvidenceError {
    /// Not a CBOR array of a text type and a byte string.
    NotCmw(&'static str),
    /// Another media type.
    MediaType(String),
    /// The value does not decode.
    Value(String),
    /// Beyond a limit (`MAX_*`).
    TooLarge(&'static str),
}

impl core::fmt::Display for TlsEvidenceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TlsEvidenceError::NotCmw(why) => write!(f, "not a CBOR CMW record: {why}"),
            TlsEvidenceError::MediaType(t) => {
                write!(
                    f,
                    "CMW type `{}`, expected `{MEDIA_TYPE}`",
                    t.escape_debug()
                )
            }
            TlsEvidenceError::Value(e) => write!(f, "CMW value: {e}"),
            TlsEvidenceError::TooLarge(what) => write!(f, "{what} beyond its limit"),
        }
    }
}

impl std::error::Error for TlsEvidenceError {}

impl CertEvidence {
    /// Checks the limits: at most [`MAX_EXTRA`] keys, names and keys within theirs, distinct
    /// names, evidence within [`MAX_EVIDENCE`].
    pub fn check(&self) -> Result<(), TlsEvidenceError> {
        if self.evidence.len() > MAX_EVIDENCE {
            return Err(TlsEvidenceError::TooLarge("evidence"));
        }
        if self.extra.len() > MAX_EXTRA {
            return Err(TlsEvidenceError::TooLarge("number of extra keys"));
        }
        for (i, (name, key)) in self.extra.iter().enumerate() {
            if name.is_empty() || name.len() > MAX_EXTRA_NAME {
                return Err(TlsEvidenceError::TooLarge("extra key name"));
            }
            if key.len() > MAX_EXTRA_KEY {
                return Err(TlsEvidenceError::TooLarge("extra key"));
            }
            if self.extra[..i].iter().any(|(n, _)| n == name) {
                return Err(TlsEvidenceError::Value(format!(
                    "extra key `{}` twice",
                    name.escape_debug()
                )));
            }
        }
        Ok(())
    }

    /// The extra keys as [`binding`] takes them.
    pub fn extra_refs(&self) -> Vec<(&str, &[u8])> {
        self.extra
            .iter()
            .map(|(n, k)| (n.as_str(), k.as_slice()))
            .collect()
    }

    /// The extension's value: CBOR `[tstr MEDIA_TYPE, bstr postcard(self)]`.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: postcard of owned bytes and strings cannot fail.
        let value = postcard::to_allocvec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(value.len() + MEDIA_TYPE.len() + 12);
        out.push(0x82);
        cbor_head(&mut out, 3, MEDIA_TYPE.len());
        out.extend_from_slice(MEDIA_TYPE.as_bytes());
        cbor_head(&mut out, 2, value.len());
        out.extend_from_slice(&value);
        out
    }

    /// Decodes and checks an extension's value; never panics.
    pub fn decode(b: &[u8]) -> Result<Self, TlsEvidenceError> {
        let rest = b
            .strip_prefix(&[0x82])
            .ok_or(TlsEvidenceError::NotCmw("not a two-element array"))?;
        let (ty, rest) = cbor_item(rest, 3)?;
        let ty = std::str::from_utf8(ty).map_err(|_| TlsEvidenceError::NotCmw("type not UTF-8"))?;
        if ty != MEDIA_TYPE {
            return Err(TlsEvidenceError::MediaType(ty.chars().take(80).collect()));
        }
        let (value, rest) = cbor_item(rest, 2)?;
        if !rest.is_empty() {
            return Err(TlsEvidenceError::NotCmw("trailing bytes"));
        }
        let (ev, tail): (CertEvidence, _) =
            postcard::take_from_bytes(value).map_err(|e| TlsEvidenceError::Value(e.to_string()))?;
        if !tail.is_empty() {
            return Err(TlsEvidenceError::Value("trailing bytes".into()));
        }
        ev.check()?;
        Ok(ev)
    }
}

/// A CBOR head of major type `major` and length `len` (RFC 8949 §3).
fn cbor_head(out: &mut Vec<u8>, major: u8, len: usize) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, len as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

/// A definite-length text (`major` 3) or byte string (2) at the start of `b`, and the rest.
fn cbor_item(b: &[u8], major: u8) -> Result<(&[u8], &[u8]), TlsEvidenceError> {
    let short = TlsEvidenceError::NotCmw("truncated");
    let (&first, rest) = b.split_first().ok_or(short.clone())?;
    if first >> 5 != major {
        return Err(TlsEvidenceError::NotCmw(match major {
            3 => "type is not a text string",
            _ => "value is not a byte string",
        }));
    }
    let (len, rest) = match first & 0x1f {
        n @ 0..=23 => (usize::from(n), rest),
        24 => match rest.split_first() {
            Some((&n, rest)) => (usize::from(n), rest),
            None => return Err(short),
        },
        25 => match rest.split_first_chunk::<2>() {
            Some((n, rest)) => (usize::from(u16::from_be_bytes(*n)), rest),
            None => return Err(short),
        },
        26 => match rest.split_first_chunk::<4>() {
            Some((n, rest)) => (u32::from_be_bytes(*n) as usize, rest),
            None => return Err(short),
        },
        _ => return Err(TlsEvidenceError::NotCmw("unsupported length encoding")),
    };
    if rest.len() < len {
        return Err(short);
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let ev = CertEvidence {
            evidence: vec![7; 300],
            extra: vec![("receipts".into(), ByteBuf::from(vec![1; 32]))],
        };
        let enc = ev.encode();
        assert_eq!(enc[0], 0x82);
        assert_eq!(CertEvidence::decode(&enc), Ok(ev.clone()));
        for cut in 0..enc.len() {
            assert!(CertEvidence::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = enc.clone();
        long.push(0);
        assert!(CertEvidence::decode(&long).is_err());
        let mut other = enc;
        other[3] ^= 1;
        assert!(matches!(
            CertEvidence::decode(&other),
            Err(TlsEvidenceError::MediaType(_))
        ));
    }

    #[test]
    fn binding_covers_every_key_and_name() {
        let b = binding(b"spki", &[("a", b"k")]);
        assert_ne!(b, binding(b"spkj", &[("a", b"k")]));
        assert_ne!(b, binding(b"spki", &[("b", b"k")]));
        assert_ne!(b, binding(b"spki", &[("a", b"l")]));
        assert_ne!(b, binding(b"spki", &[]));
        // Lengths are framed: moving a byte between fields changes the hash.
        assert_ne!(binding(b"ab", &[]), binding(b"a", &[("b", b"")]));
    }
}
