//! Async framing over sockets and module pipes.
//!
//! Invariant: a reader checks a frame's length prefix with [`aex_proto::frame::body_len`]
//! before it reads the body, grows the body's buffer as its bytes arrive (never to the
//! announced length up front: a peer that announces 1 MiB and sends one byte costs the node a
//! few bytes), keeps at most [`KEEP`] bytes of buffer between frames, and gives up on a body
//! that does not arrive within its limit (`Timeouts::body`) once its prefix has; nothing here
//! panics on any input. Writers batch: they write every queued frame into a buffer and flush
//! only when the queue is empty.

use std::io;
use std::time::Duration;

use aex_proto::frame::{self, DecodeError, LEN_PREFIX};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::time::timeout;

use crate::queue;
use crate::timeouts::show;

/// Buffer size of module pipes' readers and of writers.
const BUF_SIZE: usize = 64 * 1024;
/// Buffer size of readers over links (which buffer a record themselves).
const LINK_BUF_SIZE: usize = 1024;
/// The most body buffer a reader keeps between frames.
pub(crate) const KEEP: usize = 64 * 1024;

/// Why no message could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream failed or ended inside a frame.
    Io(io::Error),
    /// The frame was oversized, empty, of another wire version, or not a valid message.
    Decode(DecodeError),
    /// The body did not arrive within this limit.
    Timeout(Duration),
    /// The frame is longer than allowed at this point of the stream (a first frame).
    Limit {
        /// Its announced body length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl ReadError {
    /// Whether the framing is lost (the stream cannot be read further).
    pub(crate) fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ReadError::Decode(DecodeError::Malformed { .. } | DecodeError::Version { .. })
        )
    }
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Decode(e) => e.fmt(f),
            ReadError::Timeout(limit) => {
                write!(f, "frame body did not arrive within {}", show(*limit))
            }
            ReadError::Limit { len, max } => {
                write!(
                    f,
                    "a first frame of {len} bytes exceeds its limit of {max} bytes"
                )
            }
        }
    }
}

/// Reads framed messages from a byte stream.
pub(crate) struct FrameReader<R> {
    inner: BufReader<R>,
    body: Vec<u8>,
    last_len: usize,
    /// How long a frame's body may take once its prefix has arrived.
    body_limit: Duration,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over a module's output that waits at most `body_limit` for a frame's body
    /// once its prefix has arrived.
    pub(crate) fn new(inner: R, body_limit: Duration) -> Self {
        Self::with_buffer(inner, body_limit, BUF_SIZE)
    }

    /// A reader over a link (which holds a record itself, so this reader's own buffer is
    /// small: a connection that has sent nothing costs little).
    pub(crate) fn link(inner: R, body_limit: Duration) -> Self {
        Self::with_buffer(inner, body_limit, LINK_BUF_SIZE)
    }

    fn with_buffer(inner: R, body_limit: Duration, size: usize) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(size, inner),
            body: Vec::new(),
            last_len: 0,
            body_limit,
        }
    }

    /// The body length of the last frame read (what its message holds, about).
    pub(crate) fn last_len(&self) -> usize {
        self.last_len
    }

    /// The underlying stream (to change a link's record limit once its `Hello` is read).
    pub(crate) fn get_mut(&mut self) -> &mut R {
        self.inner.get_mut()
    }

    /// The next message; `Ok(None)` when the stream ends cleanly between frames.
    ///
    /// Not cancel-safe inside a frame: cancel it only to abandon the stream. A body that fails
    /// to decode leaves the framing intact (see [`ReadError::is_fatal`]).
    pub(crate) async fn next<M: DeserializeOwned>(&mut self) -> Result<Option<M>, ReadError> {
        self.next_limited(frame::MAX_FRAME_LEN).await
    }

    /// Like [`FrameReader::next`], refusing (from its length prefix) a frame whose body is
    /// longer than `max` bytes: a link's first frame, its `Hello`, is small.
    pub(crate) async fn next_limited<M: DeserializeOwned>(
        &mut self,
        max: usize,
    ) -> Result<Option<M>, ReadError> {
        let mut prefix = [0u8; LEN_PREFIX];
        if self
            .inner
            .read(&mut prefix[..1])
            .await
            .map_err(ReadError::Io)?
            == 0
        {
            return Ok(None);
        }
        let body = &mut self.body;
        let inner = &mut self.inner;
        let limit = self.body_limit;
        body.clear();
        timeout(limit, async {
            inner
                .read_exact(&mut prefix[1..])
                .await
                .map_err(ReadError::Io)?;
            let len = frame::body_len(prefix).map_err(ReadError::Decode)?;
            if len > max {
                return Err(ReadError::Limit { len, max });
            }
            // Grown as the bytes arrive (to at most about twice what arrived).
            let got = (&mut *inner)
                .take(len as u64)
                .read_to_end(body)
                .await
                .map_err(ReadError::Io)?;
            if got < len {
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok::<(), ReadError>(())
        })
        .await
        .map_err(|_| ReadError::Timeout(limit))??;
        self.last_len = self.body.len();
        let decoded = frame::decode(&self.body)
            .map(Some)
            .map_err(ReadError::Decode);
        if self.body.capacity() > KEEP {
            self.body = Vec::new();
        }
        decoded
    }
}

/// Writes every frame from `rx` to `out`, flushing whenever the queue runs empty, until the
/// queue closes or a write fails (or takes longer than `limit`, if given).
pub(crate) async fn pump<W>(
    rx: &mut queue::Receiver,
    out: W,
    limit: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut out = BufWriter::with_capacity(BUF_SIZE, out);
    while let Some(frame) = rx.recv().await {
        let batch = async {
            out.write_all(&frame).await?;
            while let Some(frame) = rx.try_recv() {
                out.write_all(&frame).await?;
            }
            out.flush().await
        };
        match limit {
            None => batch.await?,
            Some(limit) => timeout(limit, batch)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))??,
        }
    }
    Ok(())
}

/// Writes one message to a buffered writer (not flushed).
pub(crate) async fn write_message<W, M>(out: &mut BufWriter<W>, msg: &M) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    M: Serialize,
{
    out.write_all(&frame::encode(msg)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aex_proto::{FromModule, Interface};

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn reads_frames_and_refuses_oversized_prefix() {
        let mut bytes = frame::encode(&FromModule::Hello(Interface::default()));
        bytes.extend_from_slice(&[0, 0, 0, 2, 1, 0xff]);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut r = FrameReader::new(&bytes[..], LIMIT);
        assert!(matches!(
            r.next::<FromModule>().await,
            Ok(Some(FromModule::Hello(_)))
        ));
        let e = r.next::<FromModule>().await.unwrap_err();
        assert!(!e.is_fatal(), "{e}");
        let e = r.next::<FromModule>().await.unwrap_err();
        assert!(
            matches!(e, ReadError::Decode(DecodeError::TooLarge { .. })),
            "{e}"
        );
        assert!(e.is_fatal());
        // The body buffer was never grown for the hostile prefix.
        assert!(r.body.capacity() < 1024);
    }

    /// A frame announcing 1 MiB of which 100 bytes arrive: the reader holds about what
    /// arrived, not what was announced (the old reader held 1 MiB); and after a whole large
    /// frame it keeps little.
    #[tokio::test]
    async fn a_body_s_buffer_grows_as_its_bytes_arrive() {
        let big = FromModule::Event(aex_proto::Event {
            conn: aex_proto::ConnId(1),
            dir: aex_proto::Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter: 1,
            ciphertext: vec![7; frame::MAX_FRAME_LEN - 64],
        });
        let bytes = frame::encode(&big);
        let (mut peer, stream) = tokio::io::duplex(1 << 21);
        let mut r = FrameReader::link(stream, LIMIT);
        peer.write_all(&bytes[..LEN_PREFIX + 100]).await.unwrap();
        let deadline = tokio::time::Instant::now() + LIMIT;
        // Each attempt is abandoned once it has waited a little (this reader is not reused).
        while r.body.len() < 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bytes were never read"
            );
            let _ = timeout(Duration::from_millis(5), r.next::<FromModule>()).await;
        }
        assert!(
            r.body.capacity() <= 4096,
            "holds {} bytes for 100",
            r.body.capacity()
        );

        let (mut peer, stream) = tokio::io::duplex(1 << 21);
        let mut r = FrameReader::link(stream, LIMIT);
        peer.write_all(&bytes).await.unwrap();
        assert!(matches!(
            r.next::<FromModule>().await,
            Ok(Some(FromModule::Event(_)))
        ));
        assert!(
            r.body.capacity() <= KEEP,
            "kept {} bytes",
            r.body.capacity()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_after_the_reader_s_limit() {
        let (mut peer, stream) = tokio::io::duplex(64);
        // A length prefix announcing 9 bytes, then 2 of them, then silence.
        peer.write_all(&[0, 0, 0, 9, 1, 0]).await.unwrap();
        let limit = Duration::from_millis(250);
        let mut r = FrameReader::new(stream, limit);
        let started = tokio::time::Instant::now();
        let e = r.next::<FromModule>().await.unwrap_err();
        assert!(matches!(e, ReadError::Timeout(l) if l == limit), "{e}");
        assert_eq!(started.elapsed(), limit);
        assert_eq!(e.to_string(), "frame body did not arrive within 250 ms");
        assert!(e.is_fatal());
    }

    #[tokio::test]
    async fn clean_eof_and_truncated_frame() {
        let mut r = FrameReader::new(&[][..], LIMIT);
        assert!(matches!(r.next::<FromModule>().await, Ok(None)));
        let mut r = FrameReader::new(&[0u8, 0, 0, 9, 1][..], LIMIT);
        assert!(matches!(
            r.next::<FromModule>().await,
            Err(ReadError::Io(_))
        ));
    }
}
