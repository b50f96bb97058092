//! Receipts: what one invocation used, signed by the module (docs/PROTOCOL.md §12).
//!
//! The binary format is a fixed layout, big-endian, versioned by its first five bytes, so that
//! a verifier in any language reads it without a schema, and a receipt is self-delimiting (a
//! file holds any number of them back to back):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "aexR"
//!      4     1  version (1)
//!      5     1  flags: bit 0 heap counted, bit 1 the function failed; other bits 0
//!      6     1  n = length of the function name (1..=64)
//!      7     n  function name (UTF-8)
//!    7+n    32  client id (SHA-256 fingerprint of the client's key)
//!           8  sequence number (per client, from 1)
//!          32  module measurement
//!          32  receipt key id (SHA-256 of the receipt public key)
//!          32  SHA-256 of the input
//!          32  SHA-256 of the output (of the error message if the function failed)
//!           8  input bytes
//!           8  output bytes
//!           8  CPU time of the handler thread, nanoseconds
//!           8  wall time, nanoseconds
//!           8  peak heap bytes above the call's start (0 if not counted)
//!          64  Ed25519 signature over "aex receipt v1" || every byte before it
//! ```
//!
//! Decoding never panics: every failure names the byte offset and the field.

use std::fmt;

use aex_crypto::{sha256, verify_signature, SigningIdentity, SIGNATURE_LEN};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The first four bytes of every receipt.
pub const MAGIC: [u8; 4] = *b"aexR";
/// The format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// What the signature covers before the receipt's bytes (domain separation).
pub const DOMAIN: &[u8] = b"aex receipt v1";
/// The longest function name, in bytes.
pub const MAX_FUNCTION_NAME: usize = 64;
/// Bytes of a receipt besides its function name.
pub const FIXED_LEN: usize = 7 + 32 + 8 + 32 * 4 + 8 * 5 + SIGNATURE_LEN;

const FLAG_HEAP: u8 = 1;
const FLAG_FAILED: u8 = 2;

/// A client's identity: the SHA-256 fingerprint of its key (the TLS client certificate's key,
/// for clients over attested TLS). Shown as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub [u8; 32]);

/// Which receipt key signed a receipt: SHA-256 of its public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

macro_rules! hex_id {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self)
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                parse32(s)
                    .map($ty)
                    .map_err(|()| concat!("not ", $what, " (64 hex characters)").to_owned())
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_id!(ClientId, "a client id");
hex_id!(KeyId, "a key id");

/// What one invocation used, measured inside the module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time of the thread that ran the function, in nanoseconds.
    pub cpu_ns: u64,
    /// Wall-clock time of the call, in nanoseconds.
    pub wall_ns: u64,
    /// Most heap bytes allocated at once during the call, above what was allocated when it
    /// started (0 when [`Receipt::heap_counted`] is false).
    pub peak_heap_bytes: u64,
    /// Bytes of input.
    pub input_bytes: u64,
    /// Bytes of output (of the error message if the function failed).
    pub output_bytes: u64,
}

/// A signed receipt for one invocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The function's name.
    pub function: String,
    /// Who invoked it.
    pub client: ClientId,
    /// The client's invocation number under this receipt key: 1, 2, 3, ...
    pub sequence: u64,
    /// The measurement of the module that ran it (as the module was told it; see
    /// docs/SECURITY.md "Metering and receipts").
    pub measurement: [u8; 32],
    /// The key that signed it.
    pub key_id: KeyId,
    /// SHA-256 of the input.
    pub input_sha256: [u8; 32],
    /// SHA-256 of the output (of the error message if the function failed).
    pub output_sha256: [u8; 32],
    /// What the call used.
    pub usage: Usage,
    /// Whether the module counted heap bytes (it installed the counting allocator).
    pub heap_counted: bool,
    /// Whether the function returned an error (it still used what the receipt says).
    pub failed: bool,
    /// Ed25519 signature over [`DOMAIN`] and the bytes before it.
    pub signature: [u8; SIGNATURE_LEN],
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// A receipt's bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt at byte {offset}: {field}: {what}")]
pub struct DecodeError {
    /// Where the receipt that failed starts, plus the offset of the field in it.
    pub offset: usize,
    /// The field that failed.
    pub field: &'static str,
    /// What is wrong, and what is valid.
    pub what: String,
}

/// Why a receipt does not verify under a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The receipt names another key than the one it is checked against.
    #[error(
        "signed by another receipt key (key id {found}), not by the given one (key id {expected})"
    )]
    OtherKey {
        /// The key id the receipt names.
        found: KeyId,
        /// The given key's id.
        expected: KeyId,
    },
    /// The signature does not verify: the receipt was changed after signing, or forged.
    #[error(
        "the signature does not verify under the receipt key: altered after signing, or forged"
    )]
    BadSignature,
}

/// The public half of a module's receipt key: what a verifier needs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptPublicKey(pub [u8; 32]);

impl ReceiptPublicKey {
    /// The key's id, as receipts name it: SHA-256 of the 32 key bytes.
    pub fn id(&self) -> KeyId {
        KeyId(sha256(&[&self.0]))
    }
}

impl fmt::Display for ReceiptPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ReceiptPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptPublicKey({self})")
    }
}

impl std::str::FromStr for ReceiptPublicKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let out =
            parse32(s).map_err(|()| "not an Ed25519 public key (64 hex characters)".to_owned())?;
        ed25519_dalek::VerifyingKey::from_bytes(&out)
            .map_err(|_| "not an Ed25519 public key: not a point on the curve".to_owned())?;
        Ok(ReceiptPublicKey(out))
    }
}

/// A module's receipt signing key. Not `Clone`, not printable; the secret is wiped on drop.
pub struct ReceiptKey {
    key: SigningIdentity,
    public: ReceiptPublicKey,
}

impl ReceiptKey {
    /// The key whose 32-byte Ed25519 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningIdentity::from_seed(seed);
        let public = ReceiptPublicKey(key.public());
        ReceiptKey { key, public }
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let key = SigningIdentity::generate();
        let public = ReceiptPublicKey(key.public());
        ReceiptKey { key, public }
    }

    /// The public half.
    pub fn public(&self) -> ReceiptPublicKey {
        self.public
    }

    /// Signs `receipt`: sets its key id, then its signature.
    pub fn sign(&self, receipt: &mut Receipt) {
        receipt.key_id = self.public.id();
        let body = receipt.body();
        receipt.signature = self.key.sign(&signed_message(&body));
    }
}

impl fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptKey(public {})", self.public)
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + body.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(body);
    message
}

impl Receipt {
    /// The bytes the signature covers (after [`DOMAIN`]): the encoding without the signature.
    /// The function name is cut to [`MAX_FUNCTION_NAME`] bytes (the meter never issues a
    /// longer one).
    fn body(&self) -> Vec<u8> {
        let name = &self.function.as_bytes()[..self.function.len().min(MAX_FUNCTION_NAME)];
        let mut out = Vec::with_capacity(FIXED_LEN + name.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(
            if self.heap_counted { FLAG_HEAP } else { 0 }
                | if self.failed { FLAG_FAILED } else { 0 },
        );
        // Invariant: at most MAX_FUNCTION_NAME (64) bytes.
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&self.client.0);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.measurement);
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.input_sha256);
        out.extend_from_slice(&self.output_sha256);
        for n in [
            self.usage.input_bytes,
            self.usage.output_bytes,
            self.usage.cpu_ns,
            self.usage.wall_ns,
            self.usage.peak_heap_bytes,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }

    /// The binary encoding (the module's layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes one receipt from the start of `bytes`; answers it and how many bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<(Receipt, usize), DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let magic: [u8; 4] = r.array("magic")?;
        if magic != MAGIC {
            return Err(r.error(0, "magic", format!("{magic:02x?} is not \"aexR\"")));
        }
        let version = r.array::<1>("version")?[0];
        if version != VERSION {
            return Err(r.error(4, "version", format!("{version} (this reader knows 1)")));
        }
        let flags = r.array::<1>("flags")?[0];
        if flags & !(FLAG_HEAP | FLAG_FAILED) != 0 {
            return Err(r.error(
                5,
                "flags",
                format!("{flags:#04x} sets unknown bits (valid: 0x01 heap counted, 0x02 failed)"),
            ));
        }
        let len = usize::from(r.array::<1>("function name length")?[0]);
        if len == 0 || len > MAX_FUNCTION_NAME {
            return Err(r.error(
                6,
                "function name length",
                format!("{len} (valid: 1..={MAX_FUNCTION_NAME})"),
            ));
        }
        let name = r.take(len, "function name")?;
        let function = std::str::from_utf8(name)
            .map_err(|e| r.error(7, "function name", format!("not UTF-8: {e}")))?
            .to_owned();
        let client = ClientId(r.array("client id")?);
        let sequence = u64::from_be_bytes(r.array("sequence")?);
        let measurement = r.array("measurement")?;
        let key_id = KeyId(r.array("key id")?);
        let input_sha256 = r.array("input SHA-256")?;
        let output_sha256 = r.array("output SHA-256")?;
        let mut n = |field| r.array(field).map(u64::from_be_bytes);
        let usage = Usage {
            input_bytes: n("input bytes")?,
            output_bytes: n("output bytes")?,
            cpu_ns: n("CPU nanoseconds")?,
            wall_ns: n("wall nanoseconds")?,
            peak_heap_bytes: n("peak heap bytes")?,
        };
        let signature = r.array("signature")?;
        let receipt = Receipt {
            function,
            client,
            sequence,
            measurement,
            key_id,
            input_sha256,
            output_sha256,
            usage,
            heap_counted: flags & FLAG_HEAP != 0,
            failed: flags & FLAG_FAILED != 0,
            signature,
        };
        Ok((receipt, r.at))
    }

    /// Decodes every receipt in `bytes` (receipts back to back, as a file holds them).
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<Receipt>, DecodeError> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let (receipt, len) = Receipt::decode(&bytes[at..]).map_err(|mut e| {
                e.offset += at;
                e
            })?;
            out.push(receipt);
            at += len;
        }
        Ok(out)
    }

    /// Checks that `key` signed this receipt as it is.
    pub fn verify(&self, key: &ReceiptPublicKey) -> Result<(), VerifyError> {
        let expected = key.id();
        if self.key_id != expected {
            return Err(VerifyError::OtherKey {
                found: self.key_id,
                expected,
            });
        }
        if self.function.is_empty() || self.function.len() > MAX_FUNCTION_NAME {
            return Err(VerifyError::BadSignature);
        }
        verify_signature(&key.0, &signed_message(&self.body()), &self.signature)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// The receipt as JSON for people: hashes and ids in hex, the usage as numbers.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct View<'a> {
            version: u8,
            function: &'a str,
            client: ClientId,
            sequence: u64,
            measurement: String,
            key_id: KeyId,
            input_sha256: String,
            output_sha256: String,
            failed: bool,
            heap_counted: bool,
            usage: Usage,
            signature: String,
        }
        let view = View {
            version: VERSION,
            function: &self.function,
            client: self.client,
            sequence: self.sequence,
            measurement: hex(&self.measurement),
            key_id: self.key_id,
            input_sha256: hex(&self.input_sha256),
            output_sha256: hex(&self.output_sha256),
            failed: self.failed,
            heap_counted: self.heap_counted,
            usage: self.usage,
            signature: hex(&self.signature),
        };
        // Invariant: strings, numbers and booleans always serialize.
        serde_json::to_string_pretty(&view).unwrap_or_default()
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Invariant: writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// 32 bytes from 64 hex characters (surrounding whitespace ignored), with the parser
/// measurements use.
fn parse32(s: &str) -> Result<[u8; 32], ()> {
    aex_crypto::Measurement::from_hex(s)
        .map(|m| m.0)
        .map_err(|_| ())
}

/// Reads fields front to back; every failure names its offset and field.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let Some(out) = self.bytes.get(self.at..self.at.saturating_add(n)) else {
            return Err(self.error(
                self.at,
                field,
                format!(
                    "{n} bytes needed, {} left (the receipt is cut short)",
                    self.bytes.len().saturating_sub(self.at)
                ),
            ));
        };
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let at = self.at;
        let bytes = self.take(N, field)?;
        bytes
            .try_into()
            .map_err(|_| self.error(at, field, "wrong length".into()))
    }

    fn error(&self, offset: usize, field: &'static str, what: String) -> DecodeError {
        DecodeError {
            offset,
            field,
            what,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample(key: &ReceiptKey, client: u8, sequence: u64) -> Receipt {
        let mut r = Receipt {
            function: "validate".into(),
            client: ClientId([client; 32]),
            sequence,
            measurement: [7; 32],
            key_id: KeyId([0; 32]),
            input_sha256: sha256(&[b"in"]),
            output_sha256: sha256(&[b"out"]),
            usage: Usage {
                cpu_ns: 1_000,
                wall_ns: 2_000,
                peak_heap_bytes: 300,
                input_bytes: 2,
                output_bytes: 3,
            },
            heap_counted: true,
            failed: false,
            signature: [0; 64],
        };
        key.sign(&mut r);
        r
    }

    #[test]
    fn a_signed_receipt_round_trips_and_verifies() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let r = sample(&key, 9, 1);
        let bytes = r.encode();
        assert_eq!(bytes.len(), FIXED_LEN + "validate".len());
        let (back, used) = Receipt::decode(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, r);
        back.verify(&key.public()).unwrap();
        assert!(r.to_json().contains("\"sequence\": 1"), "{}", r.to_json());
    }

    #[test]
    fn any_changed_field_breaks_the_signature_and_another_key_is_named() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let r = sample(&key, 9, 1);
        let mut inflated = r.clone();
        inflated.usage.cpu_ns *= 10;
        assert_eq!(
            inflated.verify(&key.public()),
            Err(VerifyError::BadSignature)
        );
        let other = ReceiptKey::from_seed(&[2; 32]);
        assert!(matches!(
            r.verify(&other.public()),
            Err(VerifyError::OtherKey { .. })
        ));
        // The signature covers the domain: the same body signed without it does not verify.
        let mut bare = r.clone();
        bare.signature = key.key.sign(&r.body());
        assert_eq!(bare.verify(&key.public()), Err(VerifyError::BadSignature));
    }

    #[test]
    fn decode_errors_name_offset_and_field() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let bytes = sample(&key, 9, 1).encode();
        let e = Receipt::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(e.field, "signature");
        let mut bad = bytes.clone();
        bad[4] = 2;
        let e = Receipt::decode(&bad).unwrap_err();
        assert_eq!((e.offset, e.field), (4, "version"));
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes[..10]);
        let e = Receipt::decode_all(&two).unwrap_err();
        assert_eq!(e.offset, bytes.len() + 7, "{e}");
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Receipt::decode_all(&bytes);
        }

        #[test]
        fn a_flipped_byte_never_verifies(at in 0usize..(FIXED_LEN + 8), bit in 0u8..8) {
            let key = ReceiptKey::from_seed(&[1; 32]);
            let mut bytes = sample(&key, 9, 1).encode();
            bytes[at] ^= 1 << bit;
            if let Ok((r, _)) = Receipt::decode(&bytes) {
                prop_assert!(r.verify(&key.public()).is_err());
            }
        }

        #[test]
        fn encoding_round_trips(
            name in "[a-z_]{1,64}", client in any::<[u8; 32]>(), seq in any::<u64>(),
            n in any::<[u64; 5]>(), heap in any::<bool>(), failed in any::<bool>(),
        ) {
            let r = Receipt {
                function: name, client: ClientId(client), sequence: seq, measurement: [3; 32],
                key_id: KeyId([4; 32]), input_sha256: [5; 32], output_sha256: [6; 32],
                usage: Usage { cpu_ns: n[0], wall_ns: n[1], peak_heap_bytes: n[2],
                    input_bytes: n[3], output_bytes: n[4] },
                heap_counted: heap, failed, signature: [8; 64],
            };
            let bytes = r.encode();
            prop_assert_eq!(Receipt::decode(&bytes).unwrap(), (r, bytes.len()));
        }
    }
}
