//! Async framing over sockets and module pipes.
//!
//! Invariant: a reader checks a frame's length prefix with [`aex_proto::frame::body_len`]
//! before it allocates anything for the body, reuses one body buffer per stream, and gives up
//! on a body that does not arrive within its limit (`Timeouts::body`) once its prefix has;
//! nothing here panics on any input. Writers batch: they write every queued message into a buffer and flush
//! only when the queue is empty.

use std::io;
use std::time::Duration;

use aex_proto::frame::{self, DecodeError, LEN_PREFIX};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::timeouts::show;

/// Buffer size of readers and writers.
const BUF_SIZE: usize = 64 * 1024;

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
    /// How long a frame's body may take once its prefix has arrived.
    body_limit: Duration,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `inner` that waits at most `body_limit` for a frame's body once its
    /// prefix has arrived.
    pub(crate) fn new(inner: R, body_limit: Duration) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(BUF_SIZE, inner),
            body: Vec::new(),
            body_limit,
        }
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
        let len = timeout(limit, async {
            inner
                .read_exact(&mut prefix[1..])
                .await
                .map_err(ReadError::Io)?;
            let len = frame::body_len(prefix).map_err(ReadError::Decode)?;
            if len > max {
                return Err(ReadError::Limit { len, max });
            }
            body.resize(len, 0);
            inner
                .read_exact(&mut body[..len])
                .await
                .map_err(ReadError::Io)?;
            Ok::<usize, ReadError>(len)
        })
        .await
        .map_err(|_| ReadError::Timeout(limit))??;
        frame::decode(&self.body[..len])
            .map(Some)
            .map_err(ReadError::Decode)
    }
}

/// Writes every message from `rx` to `out`, flushing whenever the queue runs empty, until the
/// channel closes or a write fails (or takes longer than `limit`, if given).
pub(crate) async fn pump<W, M>(
    rx: &mut mpsc::Receiver<M>,
    out: W,
    limit: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    M: Serialize,
{
    let mut out = BufWriter::with_capacity(BUF_SIZE, out);
    while let Some(msg) = rx.recv().await {
        let batch = async {
            out.write_all(&frame::encode(&msg)).await?;
            while let Ok(msg) = rx.try_recv() {
                out.write_all(&frame::encode(&msg)).await?;
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
