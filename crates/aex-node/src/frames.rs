//! Async framing over sockets and module pipes.
//!
//! Invariant: a reader checks a frame's length prefix with [`aex_proto::frame::body_len`]
//! before it reads the body, grows the body's buffer as its bytes arrive (never to the
//! announced length up front: a peer that announces 1 MiB and sends one byte costs the node a
//! few bytes), keeps at most [`KEEP`] bytes of body buffer between frames (at most [`IDLE`]
//! once it has read everything that had arrived), and gives up on a body that does not arrive
//! within its limit (`Timeouts::body`) once its prefix has; nothing here panics on any input.
//!
//! Buffers exist while bytes are in flight, so that an idle stream (a loaded module that
//! sends and receives nothing) costs a few hundred bytes, not a read and a write buffer: a
//! reader's read-ahead buffer (not zeroed) is allocated for a read and freed as soon as a read
//! finds nothing to read, and sized by what the reads find (from [`MIN_READ`] up to its
//! most, doubling while reads fill it); a writer copies the frames that queued up behind each
//! other into one batch of at most [`BATCH`] bytes, written with one `write_all` (a frame
//! alone in the queue, or a large one, is written as it is), and frees the batch once the
//! queue is empty.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::ops::Range;
use std::task::Poll;
use std::time::Duration;

use aex_proto::frame::{self, DecodeError, LEN_PREFIX};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::time::timeout;

use crate::queue;
use crate::timeouts::show;

/// The most a module pipe's reader reads at once (its read-ahead buffer at its largest).
const MAX_READ: usize = 64 * 1024;
/// The most a link's reader reads at once (a link buffers a record itself), until the link is
/// known to carry events ([`FrameReader::streams`]).
const LINK_MAX_READ: usize = 1024;
/// The most a link's reader reads at once once it carries events: a whole record's plaintext,
/// so that the frames lying inside it are routed from where they lie, with no copy into a
/// body buffer and no timer; in 1 KiB reads a 16 KiB event took sixteen reads and a copy.
pub(crate) const STREAM_READ: usize = 64 * 1024;
/// The smallest read-ahead buffer a reader allocates.
const MIN_READ: usize = 4 * 1024;
/// The most body buffer a reader keeps between frames while more bytes are read ahead.
pub(crate) const KEEP: usize = 64 * 1024;
/// The most body buffer a reader keeps once it has consumed every byte it read.
pub(crate) const IDLE: usize = 1024;
/// The most bytes a writer takes from its queue for one write.
const BATCH: usize = 64 * 1024;
/// Frames at least this long are written from where they lie (a slice of a vectored write)
/// rather than copied into a writer's batch: a 16 KiB event costs a copy of 16 KiB, a slice
/// nothing.
const COPY_BELOW: usize = 4 * 1024;

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
    inner: R,
    /// Read-ahead: `buf[start..end]` is read and not yet consumed. Empty (unallocated) while
    /// the stream has nothing for it.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The size of the next read-ahead buffer (between `MIN_READ` and `max_read`).
    read_size: usize,
    max_read: usize,
    body: Vec<u8>,
    last_len: usize,
    /// How long a frame's body may take once its prefix has arrived.
    body_limit: Duration,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over a module's output that waits at most `body_limit` for a frame's body
    /// once its prefix has arrived.
    pub(crate) fn new(inner: R, body_limit: Duration) -> Self {
        Self::with_max_read(inner, body_limit, MAX_READ)
    }

    /// A reader over a link (which holds a record itself, so this reader's own reads are
    /// small: a connection that has sent nothing costs little).
    pub(crate) fn link(inner: R, body_limit: Duration) -> Self {
        Self::with_max_read(inner, body_limit, LINK_MAX_READ)
    }

    fn with_max_read(inner: R, body_limit: Duration, max_read: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            read_size: MIN_READ.min(max_read),
            max_read,
            body: Vec::new(),
            last_len: 0,
            body_limit,
        }
    }

    /// Lets a link's reader read up to [`STREAM_READ`] bytes at once from now on (its
    /// read-ahead buffer still grows only as reads fill it, and is freed when a read finds
    /// nothing): for a link that was admitted and carries events.
    pub(crate) fn streams(&mut self) {
        self.max_read = self.max_read.max(STREAM_READ);
    }

    /// The body length of the last frame read (what its message holds, about).
    pub(crate) fn last_len(&self) -> usize {
        self.last_len
    }

    /// The underlying stream (to change a link's record limit once its `Hello` is read).
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads ahead once every byte read before is consumed: the number of bytes read, 0 at
    /// the end of the stream. The buffer is allocated only once the stream is ready and
    /// freed whenever it has nothing to read.
    async fn fill(&mut self) -> io::Result<usize> {
        debug_assert_eq!(self.start, self.end, "fill with bytes left");
        self.start = 0;
        self.end = 0;
        let min = MIN_READ.min(self.max_read);
        poll_fn(|cx| {
            self.buf.clear();
            if self.buf.capacity() != self.read_size {
                // Not zeroed: `read_buf` reads into the spare capacity.
                self.buf = Vec::with_capacity(self.read_size);
            }
            // A `read_buf` future holds no state of its own: one per poll is one read attempt.
            let polled = std::pin::pin!(self.inner.read_buf(&mut self.buf)).poll(cx);
            match polled {
                Poll::Pending => {
                    self.buf = Vec::new();
                    Poll::Pending
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Ready(Ok(n)) => {
                    if n == self.read_size {
                        self.read_size = (self.read_size * 2).min(self.max_read);
                    } else if n < self.read_size / 4 {
                        self.read_size = (self.read_size / 2).max(min);
                    }
                    self.end = n;
                    Poll::Ready(Ok(n))
                }
            }
        })
        .await
    }

    /// Reads ahead if every byte read is consumed; false at the end of the stream.
    async fn ready(&mut self) -> io::Result<bool> {
        Ok(self.start < self.end || self.fill().await? > 0)
    }

    /// Fills `dst` entirely, or fails with `UnexpectedEof`.
    async fn read_exact(&mut self, dst: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < dst.len() {
            if !self.ready().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = (dst.len() - done).min(self.end - self.start);
            dst[done..done + n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            done += n;
        }
        Ok(())
    }

    /// Appends `len` bytes to the body as they arrive (its buffer grows with them, to at
    /// most twice what arrived), or fails with `UnexpectedEof`.
    async fn read_body(&mut self, len: usize) -> io::Result<()> {
        while self.body.len() < len {
            if !self.ready().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = (len - self.body.len()).min(self.end - self.start);
            self.body
                .extend_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
        }
        Ok(())
    }

    /// Hands the next frame's body to `take` if the whole frame is read already, where it
    /// lies, with no copy and no timer (nothing can wait). `Err` gives `take` back when more
    /// must be read first.
    fn buffered<T, F>(&mut self, max: usize, take: F) -> Result<Result<T, ReadError>, F>
    where
        F: FnOnce(&[u8]) -> Result<T, DecodeError>,
    {
        let ahead = &self.buf[self.start..self.end];
        let Some(prefix) = ahead.first_chunk::<LEN_PREFIX>() else {
            return Err(take);
        };
        let len = match frame::body_len(*prefix) {
            Ok(len) if len <= max => len,
            // Fatal, as on the slow path, which has read the prefix by then.
            refused => {
                self.start += LEN_PREFIX;
                return Ok(Err(match refused {
                    Ok(len) => ReadError::Limit { len, max },
                    Err(e) => ReadError::Decode(e),
                }));
            }
        };
        let Some(body) = ahead.get(LEN_PREFIX..LEN_PREFIX + len) else {
            return Err(take);
        };
        let taken = take(body).map_err(ReadError::Decode);
        self.start += LEN_PREFIX + len;
        self.last_len = len;
        Ok(taken)
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
        self.next_with(max, frame::decode).await
    }

    /// The next frame's body (version byte on, length prefix off) handed to `take`, which
    /// decodes it or uses it where it lies (an event relayed in place, `aex_proto::relay`);
    /// what `take` returns, or `Ok(None)` when the stream ends cleanly between frames. The
    /// same guarantees as [`FrameReader::next`].
    pub(crate) async fn next_with<T>(
        &mut self,
        max: usize,
        take: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, ReadError> {
        if !self.ready().await.map_err(ReadError::Io)? {
            return Ok(None);
        }
        let take = match self.buffered(max, take) {
            Ok(taken) => return taken.map(Some),
            Err(take) => take,
        };
        self.body.clear();
        let limit = self.body_limit;
        timeout(limit, async {
            let mut prefix = [0u8; LEN_PREFIX];
            self.read_exact(&mut prefix).await.map_err(ReadError::Io)?;
            let len = frame::body_len(prefix).map_err(ReadError::Decode)?;
            if len > max {
                return Err(ReadError::Limit { len, max });
            }
            self.read_body(len).await.map_err(ReadError::Io)
        })
        .await
        .map_err(|_| ReadError::Timeout(limit))??;
        self.last_len = self.body.len();
        let taken = take(&self.body).map(Some).map_err(ReadError::Decode);
        let keep = if self.start < self.end { KEEP } else { IDLE };
        if self.body.capacity() > keep {
            self.body = Vec::new();
        }
        taken
    }
}

/// Writes every frame from `rx` to `out`, flushing whenever the queue runs empty, until the
/// queue closes or a write fails (or a batch takes longer than `limit`, if given).
pub(crate) async fn pump<W>(
    rx: &mut queue::Receiver,
    mut out: W,
    limit: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut batch = Vec::new();
    while let Some(frame) = rx.recv().await {
        let written = write_queued(rx, &mut out, frame, &mut batch);
        match limit {
            None => written.await?,
            Some(limit) => timeout(limit, written)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))??,
        }
        // The queue is empty: an idle writer keeps no batch buffer.
        batch = Vec::new();
    }
    Ok(())
}

/// Writes `first` and every frame queued behind it, then flushes. Frames go out in rounds of
/// about [`BATCH`] bytes, one vectored write each (more only if the writer takes less): runs of
/// small frames are copied into `batch`, so that many small frames take one write; a frame of
/// [`COPY_BELOW`] bytes or more is written from where it lies. (A round has at most
/// `2 × BATCH / COPY_BELOW + 1` slices, far below Linux's `IOV_MAX` of 1,024.)
async fn write_queued<W>(
    rx: &mut queue::Receiver,
    out: &mut W,
    first: Vec<u8>,
    batch: &mut Vec<u8>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut next = Some(first);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    while next.is_some() {
        let mut bytes = 0;
        while let Some(frame) = next.take() {
            bytes += frame.len();
            frames.push(frame);
            if bytes >= BATCH {
                break;
            }
            next = rx.try_recv();
        }
        write_round(out, &frames, batch).await?;
        frames.clear();
        batch.clear();
        next = rx.try_recv();
    }
    out.flush().await
}

/// A piece of one round's vectored write.
enum Part {
    /// Bytes of `batch`: a run of small frames copied there.
    Copied(Range<usize>),
    /// A frame, by index, written from where it lies.
    Frame(usize),
}

/// Writes `frames`, in order, with as few writes as the writer allows.
async fn write_round<W>(out: &mut W, frames: &[Vec<u8>], batch: &mut Vec<u8>) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    if let [frame] = frames {
        return out.write_all(frame).await;
    }
    let mut parts: Vec<Part> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if frame.len() >= COPY_BELOW {
            parts.push(Part::Frame(i));
            continue;
        }
        let start = batch.len();
        batch.extend_from_slice(frame);
        match parts.last_mut() {
            Some(Part::Copied(run)) if run.end == start => run.end = batch.len(),
            _ => parts.push(Part::Copied(start..batch.len())),
        }
    }
    let mut slices: Vec<IoSlice<'_>> = parts
        .iter()
        .map(|part| match part {
            Part::Copied(run) => IoSlice::new(&batch[run.clone()]),
            Part::Frame(i) => IoSlice::new(&frames[*i]),
        })
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = out.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
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
    use std::pin::Pin;

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

    /// Frames read from one buffer (decoded where they lie) and frames that arrive a byte at a
    /// time (copied into the body as they come) give the same messages and lengths.
    #[tokio::test]
    async fn frames_read_whole_or_a_byte_at_a_time_decode_alike() {
        let event = |n: u8| {
            FromModule::Event(aex_proto::Event {
                conn: aex_proto::ConnId(u32::from(n)),
                dir: aex_proto::Direction::Forward,
                kind: aex_proto::EventKind::Event,
                counter: u64::from(n),
                ciphertext: vec![n; usize::from(n) * 7],
            })
        };
        let bytes: Vec<u8> = (0..20).flat_map(|n| frame::encode(&event(n))).collect();
        let mut whole = FrameReader::new(&bytes[..], LIMIT);
        let (mut tx, rx) = tokio::io::duplex(1);
        let sent = bytes.clone();
        let writer = tokio::spawn(async move { tx.write_all(&sent).await });
        let mut trickle = FrameReader::new(rx, LIMIT);
        for n in 0..20 {
            let a = whole.next::<FromModule>().await.unwrap();
            let b = trickle.next::<FromModule>().await.unwrap();
            assert_eq!(a, Some(event(n)));
            assert_eq!(b, Some(event(n)));
            assert_eq!(whole.last_len(), trickle.last_len());
        }
        writer.await.unwrap().unwrap();
        assert_eq!(whole.next::<FromModule>().await.unwrap(), None);
        assert_eq!(trickle.next::<FromModule>().await.unwrap(), None);
    }

    /// An AsyncRead over bytes that counts the reads reaching it.
    struct CountedReads<'a> {
        bytes: &'a [u8],
        reads: usize,
    }

    impl AsyncRead for CountedReads<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            Pin::new(&mut self.bytes).poll_read(cx, buf)
        }
    }

    /// A link reader reads 1 KiB at a time until it streams; then a 16 KiB event no longer
    /// takes sixteen reads, and the events still come out whole and in order.
    #[tokio::test]
    async fn a_streaming_link_reader_reads_records_whole() {
        let event = |n: u8| {
            FromModule::Event(aex_proto::Event {
                conn: aex_proto::ConnId(1),
                dir: aex_proto::Direction::Forward,
                kind: aex_proto::EventKind::Event,
                counter: u64::from(n),
                ciphertext: vec![n; 16 * 1024],
            })
        };
        let bytes: Vec<u8> = (0..40).flat_map(|n| frame::encode(&event(n))).collect();
        let mut reads = [0; 2];
        for (streams, reads) in [false, true].into_iter().zip(&mut reads) {
            let mut r = FrameReader::link(
                CountedReads {
                    bytes: &bytes,
                    reads: 0,
                },
                LIMIT,
            );
            if streams {
                r.streams();
            }
            for n in 0..40 {
                assert_eq!(r.next::<FromModule>().await.unwrap(), Some(event(n)));
            }
            assert_eq!(r.next::<FromModule>().await.unwrap(), None);
            *reads = r.get_mut().reads;
        }
        // 40 events of 16 KiB: about 660 reads of 1 KiB, or a few over a dozen of 64 KiB.
        assert!(reads[0] > 600, "{reads:?}");
        assert!(reads[1] < 30, "{reads:?}");
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

    /// A reader that has read everything that arrived holds no read-ahead buffer and little
    /// body buffer, however large the frames were.
    #[tokio::test]
    async fn an_idle_reader_holds_almost_nothing() {
        let small = frame::encode(&FromModule::Hello(Interface::default()));
        let big = frame::encode(&FromModule::Event(aex_proto::Event {
            conn: aex_proto::ConnId(1),
            dir: aex_proto::Direction::Forward,
            kind: aex_proto::EventKind::Event,
            counter: 1,
            ciphertext: vec![7; 300_000],
        }));
        let (mut peer, stream) = tokio::io::duplex(1 << 20);
        let mut r = FrameReader::new(stream, LIMIT);
        for bytes in [&small, &big, &small, &big] {
            peer.write_all(bytes).await.unwrap();
            assert!(matches!(r.next::<FromModule>().await, Ok(Some(_))));
            assert!(r.body.capacity() <= IDLE, "kept {}", r.body.capacity());
            // Waiting for a frame that does not come allocates nothing either.
            assert!(timeout(Duration::from_millis(5), r.next::<FromModule>())
                .await
                .is_err());
            assert_eq!(r.buf.capacity(), 0);
        }
        // Frames that arrive together are read ahead together, in reads of at most MAX_READ.
        let mut many = vec![];
        for _ in 0..1000 {
            many.extend_from_slice(&small);
        }
        peer.write_all(&many).await.unwrap();
        for _ in 0..1000 {
            assert!(matches!(r.next::<FromModule>().await, Ok(Some(_))));
            assert!(r.buf.capacity() <= MAX_READ);
        }
        assert!(timeout(Duration::from_millis(5), r.next::<FromModule>())
            .await
            .is_err());
        assert_eq!(r.buf.capacity(), 0);
    }

    /// Counts the writes a pump makes.
    #[derive(Default)]
    struct Counting {
        bytes: Vec<u8>,
        writes: usize,
        /// The most bytes one write takes (`None`: all it is given), as a full pipe would.
        short: Option<usize>,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            let mut room = self.short.unwrap_or(usize::MAX);
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(room);
                self.bytes.extend_from_slice(&buf[..take]);
                (n, room) = (n + take, room - take);
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Queues `frames` and pumps them into a writer that takes at most `short` bytes a write.
    async fn pumped(frames: &[Vec<u8>], short: Option<usize>) -> Counting {
        let (tx, mut rx) = queue::channel(8 << 20);
        for frame in frames {
            tx.try_send(frame.clone()).unwrap();
        }
        drop(tx);
        let mut out = Counting {
            short,
            ..Counting::default()
        };
        pump(&mut rx, &mut out, None).await.unwrap();
        assert!(out.bytes == frames.concat(), "bytes differ");
        out
    }

    /// Queued frames go out in rounds of about BATCH bytes, one write each; the bytes are the
    /// frames in order, however little each write takes.
    #[tokio::test]
    async fn the_pump_writes_queued_frames_in_rounds() {
        let mut frames: Vec<Vec<u8>> = (0..3000u32).map(|i| vec![i as u8; 64]).collect();
        frames.push(vec![9; 200_000]);
        frames.push(vec![1; 10]);
        // 1,024 small frames (64 KiB), 1,024 more, the last 952 and the large frame (which
        // takes the round past BATCH), then the last frame alone.
        assert_eq!(pumped(&frames, None).await.writes, 4);
        // The same bytes through writes of at most 1,000 bytes: the three rounds above take
        // 66, 66 and 261 writes.
        assert_eq!(pumped(&frames, Some(1000)).await.writes, 66 + 66 + 261 + 1);
        // Tiny frames: one round.
        let tiny: Vec<Vec<u8>> = (0..3000u32).map(|i| vec![i as u8; 8]).collect();
        assert_eq!(pumped(&tiny, None).await.writes, 1);
        // 16 KiB frames between small ones: four large frames a round (frames 0–9, 10–21,
        // 22–33, 34–39).
        let mixed: Vec<Vec<u8>> = (0..40u32)
            .map(|i| vec![i as u8; if i % 3 == 0 { 16 << 10 } else { 100 }])
            .collect();
        assert_eq!(pumped(&mixed, None).await.writes, 4);
        // A frame alone in the queue is written as it is.
        let alone = pumped(&[vec![5; 64]], None).await;
        assert_eq!((alone.writes, alone.bytes), (1, vec![5; 64]));
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
