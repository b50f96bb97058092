//! Framing: length prefix, version byte, postcard body.
//!
//! Invariant: no function here allocates more than [`MAX_FRAME_LEN`] bytes for a frame, and
//! none panics on any input.

use std::io::{self, Read, Write};

use postcard::ser_flavors::Size;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Hard limit on a frame body (version byte + message), in bytes.
///
/// Large enough for a 256 KiB module-binary chunk or a 64 KiB event with headroom; small enough
/// that a hostile peer cannot make a reader allocate much.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Version byte at the start of every frame body.
pub const WIRE_VERSION: u8 = 1;

/// Length of the big-endian length prefix.
pub const LEN_PREFIX: usize = 4;

/// Why bytes could not be decoded into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix announces more than [`MAX_FRAME_LEN`] bytes.
    TooLarge {
        /// Announced body length.
        len: usize,
    },
    /// The body is empty (no version byte).
    Empty,
    /// The peer speaks another version of the wire format.
    Version {
        /// The version byte received.
        got: u8,
    },
    /// The body is not a valid message of the expected type.
    Malformed {
        /// What postcard reported.
        reason: String,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooLarge { len } => write!(
                f,
                "frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN} bytes"
            ),
            DecodeError::Empty => f.write_str("empty frame"),
            DecodeError::Version { got } => write!(
                f,
                "unsupported wire version {got} (this build speaks version {WIRE_VERSION})"
            ),
            DecodeError::Malformed { reason } => write!(f, "malformed message: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes `msg` as a complete frame (length prefix included).
pub fn encode<M: Serialize>(msg: &M) -> Vec<u8> {
    // Invariant: serializing our own message types cannot fail (no maps with non-string keys,
    // no unsupported types).
    // Sized first, so the frame takes one allocation of its exact length: growing it as the
    // body is written took several reallocations and copies per small event.
    let size = postcard::serialize_with_flavor::<M, Size, usize>(msg, Size::default())
        .expect("aex messages always serialize");
    let mut out = Vec::with_capacity(LEN_PREFIX + 1 + size);
    out.extend_from_slice(&[0; LEN_PREFIX]);
    out.push(WIRE_VERSION);
    let out = postcard::to_extend(msg, out).expect("aex messages always serialize");
    let body_len = (out.len() - LEN_PREFIX) as u32;
    let mut out = out;
    out[..LEN_PREFIX].copy_from_slice(&body_len.to_be_bytes());
    out
}

/// Checks a length prefix before anything is allocated for the body.
pub fn body_len(prefix: [u8; LEN_PREFIX]) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(DecodeError::TooLarge { len });
    }
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    Ok(len)
}

/// Decodes a frame body (without its length prefix).
pub fn decode<M: DeserializeOwned>(body: &[u8]) -> Result<M, DecodeError> {
    let (&version, rest) = body.split_first().ok_or(DecodeError::Empty)?;
    if version != WIRE_VERSION {
        return Err(DecodeError::Version { got: version });
    }
    let (msg, trailing) = postcard::take_from_bytes(rest).map_err(|e| DecodeError::Malformed {
        reason: e.to_string(),
    })?;
    if !trailing.is_empty() {
        return Err(DecodeError::Malformed {
            reason: format!("{} trailing bytes", trailing.len()),
        });
    }
    Ok(msg)
}

/// Decodes a postcard value that is not a framed message (e.g. a command plaintext),
/// rejecting trailing bytes.
pub fn decode_plain<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, String> {
    let (msg, trailing) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
    if !trailing.is_empty() {
        return Err(format!("{} trailing bytes", trailing.len()));
    }
    Ok(msg)
}

/// Bodies up to this length are read into a buffer of their announced length at once.
const EAGER_BODY: usize = 64 << 10;

/// Reads one frame body from a blocking reader. `Ok(None)` is a clean end of stream
/// between frames.
///
/// Past 64 KiB, the body's buffer grows as its bytes arrive (to at most twice what arrived),
/// never to the announced length up front: a peer that announces 1 MiB and sends one byte
/// makes the reader hold 64 KiB, not 1 MiB.
pub fn read_body<R: Read>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; LEN_PREFIX];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = body_len(prefix).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // Small bodies (most events) get their whole buffer at once; larger ones grow with what
    // arrives, up to what was announced.
    let mut body = Vec::with_capacity(len.min(EAGER_BODY));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the stream ended inside a frame ({} of {len} bytes)",
                body.len()
            ),
        ));
    }
    Ok(Some(body))
}

/// Reads and decodes one message from a blocking reader.
pub fn read_message<R: Read, M: DeserializeOwned>(r: &mut R) -> io::Result<Option<M>> {
    match read_body(r)? {
        None => Ok(None),
        Some(body) => decode(&body)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

/// Encodes and writes one message to a blocking writer (not flushed).
pub fn write_message<W: Write, M: Serialize>(w: &mut W, msg: &M) -> io::Result<()> {
    w.write_all(&encode(msg))
}

/// Incremental decoder for callers that receive bytes in arbitrary pieces.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed. After an error the
    /// stream is unusable: framing is lost.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        if self.buf.len() < LEN_PREFIX {
            return Ok(None);
        }
        let mut prefix = [0u8; LEN_PREFIX];
        prefix.copy_from_slice(&self.buf[..LEN_PREFIX]);
        let len = body_len(prefix)?;
        if self.buf.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let body = self.buf[LEN_PREFIX..LEN_PREFIX + len].to_vec();
        self.buf.drain(..LEN_PREFIX + len);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    //! Plain values stand in for messages: framing treats every serializable value alike, and
    //! the link messages are tested with their definitions (`message`, a module above this one).

    use super::*;

    #[test]
    fn oversized_prefix_is_refused_before_allocation() {
        let prefix = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert_eq!(
            body_len(prefix),
            Err(DecodeError::TooLarge {
                len: MAX_FRAME_LEN + 1
            })
        );
        // A reader that would yield gigabytes is never read past the prefix.
        let mut r = io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = read_body(&mut r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_body_s_buffer_grows_with_what_arrives() {
        // A frame announcing 1 MiB whose body stops after 3 bytes: the reader never held
        // more than a little over what arrived.
        struct Watch<'a> {
            bytes: &'a [u8],
            pos: usize,
            largest: usize,
        }
        impl Read for Watch<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.largest = self.largest.max(buf.len());
                let n = buf.len().min(self.bytes.len() - self.pos);
                buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
                self.pos += n;
                Ok(n)
            }
        }
        let mut bytes = (MAX_FRAME_LEN as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[WIRE_VERSION, 1, 2]);
        let mut half = Watch {
            bytes: &bytes,
            pos: 0,
            largest: 0,
        };
        let e = read_body(&mut half).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("3 of 1048576 bytes"), "{e}");
        // Reading the prefix and 3 bytes never offered room for more than the eager buffer.
        assert!(
            half.largest <= EAGER_BODY,
            "offered {} bytes of room",
            half.largest
        );
        // A whole frame still reads, byte for byte.
        let frame = encode(&"x".repeat(200_000));
        let mut whole = Watch {
            bytes: &frame,
            pos: 0,
            largest: 0,
        };
        let body = read_body(&mut whole).unwrap().unwrap();
        assert_eq!(body, &frame[LEN_PREFIX..]);
    }

    #[test]
    fn wrong_version_and_trailing_bytes() {
        let mut frame = encode(&7u32);
        frame[LEN_PREFIX] = 9;
        assert_eq!(
            decode::<u32>(&frame[LEN_PREFIX..]),
            Err(DecodeError::Version { got: 9 })
        );
        let mut frame = encode(&7u32);
        frame.push(0);
        assert!(matches!(
            decode::<u32>(&frame[LEN_PREFIX..]),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn incremental_decoder_byte_by_byte() {
        let a = encode(&"stats");
        let b = encode(&"shutdown");
        let mut d = FrameDecoder::new();
        let mut got = vec![];
        for byte in a.iter().chain(b.iter()) {
            d.push(&[*byte]);
            while let Some(body) = d.next_body().unwrap() {
                got.push(decode::<String>(&body).unwrap());
            }
        }
        assert_eq!(got, vec!["stats", "shutdown"]);
    }
}
