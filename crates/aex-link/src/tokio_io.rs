//! The tokio adapter: handshakes and the record layer over async streams, for the node agent.
//!
//! [`LinkRead`] is an `AsyncRead` of the other side's plaintext and [`LinkWrite`] an
//! `AsyncWrite` that seals what it buffered on `flush` (or when a record is full), so the
//! node's frame readers and writers work on top unchanged. The halves are independent (one
//! task reads, another writes): each owns its direction's nonce. Both keep their state in the
//! struct between polls, so a cancelled read or write loses nothing that it had taken.
//!
//! Errors of the record layer come out as `io::Error`s of kind `InvalidData` carrying a
//! [`LinkError`] ([`LinkError::inside`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aex_proto::NodeKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error::LinkError;
use crate::handshake::{
    check_handshake_len, AfterFirst, Established, Initiator, LinkKind, Responder,
};
use crate::keys::StaticKey;
use crate::record::{Incoming, Opener, Sealer, MAX_PLAINTEXT, MAX_RECORD, READ_STEP, TAG_LEN};

/// An established link over a read half `R` and a write half `W`.
pub struct Link<R, W> {
    /// The other side's plaintext.
    pub reader: LinkRead<R>,
    /// Plaintext for the other side, sealed on `flush`.
    pub writer: LinkWrite<W>,
    /// The handshake hash (what a deployer's `Hello` signs).
    pub hash: [u8; 32],
    /// The other side's identity, where the handshake proved one.
    pub remote: Option<NodeKey>,
}

/// Reads records and serves their plaintext.
pub struct LinkRead<R> {
    inner: R,
    opener: Opener,
    prefix: [u8; 2],
    prefix_got: usize,
    /// Bytes read ahead of the record being read: one read takes a record's prefix and body
    /// (and the next records') instead of a read for each and one more that finds nothing.
    /// Allocated for a read, freed as soon as a read finds nothing to read.
    ahead: Vec<u8>,
    ahead_pos: usize,
    /// The record being read.
    record: Incoming,
    plain: Vec<u8>,
    pos: usize,
}

impl<R> LinkRead<R> {
    /// Reads records from `inner`, opening them with `opener`.
    fn new(inner: R, opener: Opener) -> Self {
        LinkRead {
            inner,
            opener,
            prefix: [0; 2],
            prefix_got: 0,
            ahead: Vec::new(),
            ahead_pos: 0,
            record: Incoming::default(),
            plain: Vec::new(),
            pos: 0,
        }
    }
}

impl<R: AsyncRead + Unpin> LinkRead<R> {
    /// Sets the largest record accepted from now on.
    pub fn set_limit(&mut self, limit: usize) {
        self.opener.set_limit(limit);
    }

    /// Bytes held for reading records (the buffer's capacity): at most twice the most that
    /// arrived of any one record, whatever length prefixes announced.
    pub fn buffered(&self) -> usize {
        self.record.capacity() + self.ahead.capacity()
    }

    /// Reads once into the read-ahead buffer, at most [`crate::READ_STEP`] bytes and never
    /// more than one record of the current limit with its prefix; the number of bytes read,
    /// 0 at the end of the stream.
    fn poll_ahead(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        debug_assert_eq!(
            self.ahead_pos,
            self.ahead.len(),
            "read ahead with bytes left"
        );
        let size = READ_STEP.min(self.opener.limit() + 2);
        self.ahead.clear();
        self.ahead_pos = 0;
        if self.ahead.capacity() != size {
            // Exactly `size`: `read_buf` reads into the spare capacity (not zeroed), no more.
            self.ahead = Vec::with_capacity(size);
        }
        // A `read_buf` future holds no state of its own: one per poll is one read attempt.
        match std::pin::pin!(self.inner.read_buf(&mut self.ahead)).poll(cx) {
            Poll::Pending => {
                self.ahead = Vec::new();
                Poll::Pending
            }
            ready => ready,
        }
    }

    /// Copies read-ahead bytes into `dst`; how many.
    fn take_ahead(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.ahead.len() - self.ahead_pos);
        dst[..n].copy_from_slice(&self.ahead[self.ahead_pos..self.ahead_pos + n]);
        self.ahead_pos += n;
        n
    }

    /// Reads and opens the next record; `Ready(Ok(false))` at a clean end of stream between
    /// records. A record's buffer grows as its bytes arrive ([`crate::READ_STEP`] at a time), so a
    /// length prefix alone makes this hold nothing.
    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.record.expected().is_none() {
            while self.prefix_got < 2 {
                if self.ahead_pos == self.ahead.len() && ready!(self.poll_ahead(cx))? == 0 {
                    return Poll::Ready(if self.prefix_got == 0 {
                        Ok(false)
                    } else {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    });
                }
                let mut prefix = self.prefix;
                self.prefix_got += self.take_ahead(&mut prefix[self.prefix_got..]);
                self.prefix = prefix;
            }
            let len = usize::from(u16::from_be_bytes(self.prefix));
            self.opener.check_len(len).map_err(LinkError::into_io)?;
            self.record.start(len);
        }
        while !self.record.complete() {
            if self.ahead_pos < self.ahead.len() {
                let n = {
                    let (ahead, pos) = (&self.ahead, self.ahead_pos);
                    let room = self.record.room();
                    let n = room.len().min(ahead.len() - pos);
                    room[..n].copy_from_slice(&ahead[pos..pos + n]);
                    n
                };
                self.ahead_pos += n;
                self.record.advance(n);
                continue;
            }
            if self.record.missing() < READ_STEP {
                // The rest of a small record, and what follows it, in one read.
                if ready!(self.poll_ahead(cx))? == 0 {
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                continue;
            }
            // A large record is read straight into its buffer; the read-ahead buffer is drained,
            // so it goes.
            self.ahead = Vec::new();
            self.ahead_pos = 0;
            let mut buf = ReadBuf::new(self.record.room());
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            self.record.advance(n);
        }
        self.prefix_got = 0;
        self.pos = 0;
        self.opener
            .open(self.record.take(), &mut self.plain)
            .map_err(LinkError::into_io)?;
        Poll::Ready(Ok(true))
    }

    /// The next record, which must be empty (a peer link's admission); false if the stream
    /// ended instead.
    async fn empty_record(&mut self) -> io::Result<bool> {
        let got = std::future::poll_fn(|cx| self.poll_record(cx)).await?;
        if got && !self.plain.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer's first record is not empty",
            ));
        }
        Ok(got)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LinkRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.pos == this.plain.len() {
            if !ready!(this.poll_record(cx))? {
                return Poll::Ready(Ok(()));
            }
        }
        let n = buf.remaining().min(this.plain.len() - this.pos);
        buf.put_slice(&this.plain[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Buffers plaintext and writes it as records.
pub struct LinkWrite<W> {
    inner: W,
    sealer: Sealer,
    plain: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
}

impl<W: AsyncWrite + Unpin> LinkWrite<W> {
    /// Writes out the sealed bytes pending, sealing the buffered plaintext first if nothing is
    /// pending.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.out_pos == self.out.len() && !self.plain.is_empty() {
            self.out.clear();
            self.out_pos = 0;
            self.sealer
                .seal(&self.plain, &mut self.out)
                .map_err(LinkError::into_io)?;
            self.plain.clear();
        }
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for LinkWrite<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.plain.len() == MAX_PLAINTEXT || this.out_pos < this.out.len() {
            ready!(this.poll_drain(cx))?;
            if this.plain.len() == MAX_PLAINTEXT {
                ready!(this.poll_drain(cx))?;
            }
        }
        let n = buf.len().min(MAX_PLAINTEXT - this.plain.len());
        this.plain.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.out_pos < this.out.len() || !this.plain.is_empty() {
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

async fn read_message<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Vec<u8>, LinkError> {
    let mut prefix = [0u8; 2];
    rd.read_exact(&mut prefix).await.map_err(closed_or_io)?;
    let len = usize::from(u16::from_be_bytes(prefix));
    check_handshake_len(len)?;
    let mut message = vec![0u8; len];
    rd.read_exact(&mut message).await.map_err(closed_or_io)?;
    Ok(message)
}

fn closed_or_io(e: io::Error) -> LinkError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        LinkError::Closed
    } else {
        LinkError::Io(e)
    }
}

fn established<R, W>(rd: R, wr: W, done: Established) -> Link<R, W> {
    let (hash, remote) = (*done.hash(), done.remote());
    let (sealer, opener) = done.into_halves();
    Link {
        reader: LinkRead::new(rd, opener),
        writer: LinkWrite {
            inner: wr,
            sealer,
            plain: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
        },
        hash,
        remote,
    }
}

/// A node's link, as `own`, to the peer node whose identity is `node` (Noise XK). Returns once
/// the peer admitted it ([`LinkError::Refused`] if it closed instead).
pub async fn connect_peer<R, W>(
    mut rd: R,
    mut wr: W,
    own: &StaticKey,
    node: &NodeKey,
) -> Result<Link<R, W>, LinkError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (init, first) = Initiator::peer(own, node)?;
    wr.write_all(&first).await?;
    wr.flush().await?;
    let reply = read_message(&mut rd).await?;
    let (done, third) = init.answer(&reply)?;
    if let Some(third) = third {
        wr.write_all(&third).await?;
        wr.flush().await?;
    }
    let mut link = established(rd, wr, done);
    link.reader.set_limit(TAG_LEN);
    match link.reader.empty_record().await {
        Ok(true) => {
            link.reader.set_limit(MAX_RECORD);
            Ok(link)
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Err(LinkError::Handshake(e.to_string()))
        }
        Ok(false) | Err(_) => Err(LinkError::Refused(own.public())),
    }
}

/// The responding side, as `own`: reads the link's kind and runs its handshake; a peer link's
/// initiator must pass `admit` (its identity) to be accepted, before anything else of it is
/// read. The first record is limited to a `Hello` until the caller raises the reader's limit
/// ([`LinkRead::set_limit`]). The caller bounds the time it takes.
pub async fn accept<R, W>(
    mut rd: R,
    mut wr: W,
    own: &StaticKey,
    admit: impl FnOnce(&NodeKey) -> bool,
) -> Result<(LinkKind, Link<R, W>), LinkError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut kind = [0u8; 1];
    rd.read_exact(&mut kind).await.map_err(closed_or_io)?;
    let kind = LinkKind::from_byte(kind[0])?;
    let first = read_message(&mut rd).await?;
    let (next, reply) = Responder::new(own, kind)?.first(&first)?;
    wr.write_all(&reply).await?;
    wr.flush().await?;
    let done = match next {
        AfterFirst::Established(done) => *done,
        AfterFirst::PinnedOther => return Err(LinkError::PinnedOther(own.public())),
        AfterFirst::AwaitThird(wait) => {
            let third = read_message(&mut rd).await?;
            let done = wait.third(&third)?;
            let remote = done
                .remote()
                .ok_or_else(|| LinkError::Handshake("no initiator identity".to_owned()))?;
            if !admit(&remote) {
                return Err(LinkError::NotAdmitted(remote));
            }
            done
        }
    };
    let mut link = established(rd, wr, done);
    if kind == LinkKind::Peer {
        // Admitted: one empty record says so.
        link.writer.sealer.seal(&[], &mut link.writer.out)?;
        link.writer.flush().await?;
    }
    Ok((kind, link))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FIRST_RECORD_LIMIT;
    use crate::record::READ_STEP;
    use tokio::io::{split, DuplexStream, ReadHalf, WriteHalf};

    type Halves = (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>);

    fn pipe() -> (Halves, Halves) {
        let (a, b) = tokio::io::duplex(4096);
        (split(a), split(b))
    }

    #[tokio::test]
    async fn peer_link_streams_records_and_ends_cleanly() {
        let (a, b) = (StaticKey::generate(), StaticKey::generate());
        let (a_pub, b_pub) = (a.public(), b.public());
        let ((ar, aw), (br, bw)) = pipe();
        let server = tokio::spawn(async move {
            let (kind, mut link) = accept(br, bw, &b, |k| *k == a_pub).await.unwrap();
            assert_eq!(kind, LinkKind::Peer);
            assert_eq!(link.remote, Some(a_pub));
            link.reader.set_limit(MAX_RECORD);
            let mut got = vec![0u8; 300_000];
            link.reader.read_exact(&mut got).await.unwrap();
            assert!(got.iter().enumerate().all(|(i, b)| *b == i as u8));
            // Then the stream ends cleanly.
            let mut more = [0u8; 1];
            assert_eq!(link.reader.read(&mut more).await.unwrap(), 0);
        });
        let mut link = connect_peer(ar, aw, &a, &b_pub).await.unwrap();
        let data: Vec<u8> = (0..300_000).map(|i| i as u8).collect();
        // Small writes, several records, flushed at the end.
        for chunk in data.chunks(7000) {
            link.writer.write_all(chunk).await.unwrap();
        }
        link.writer.shutdown().await.unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_peer_reads_nothing_and_learns_it() {
        let (a, b) = (StaticKey::generate(), StaticKey::generate());
        let b_pub = b.public();
        let a_pub = a.public();
        let ((ar, aw), (br, bw)) = pipe();
        let server = tokio::spawn(async move { accept(br, bw, &b, |_| false).await.err() });
        let got = connect_peer(ar, aw, &a, &b_pub).await;
        assert!(matches!(got, Err(LinkError::Refused(k)) if k == a_pub));
        assert!(matches!(server.await.unwrap(), Some(LinkError::NotAdmitted(k)) if k == a_pub));
    }

    /// An authenticated client that announces the largest record and sends one byte of it
    /// makes the node hold one read step, not 64 KiB; the rest, when it comes, still opens.
    #[tokio::test]
    async fn a_record_s_buffer_grows_as_its_bytes_arrive() {
        let node = StaticKey::generate();
        let public = node.public();
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let (sr, sw) = split(server);
        let accepting = tokio::spawn(async move { accept(sr, sw, &node, |_| true).await });
        // The client's side of the handshake, by hand.
        let (init, first) = Initiator::deployer(&public).unwrap();
        client.write_all(&first).await.unwrap();
        let mut prefix = [0u8; 2];
        client.read_exact(&mut prefix).await.unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        client.read_exact(&mut reply).await.unwrap();
        let (done, _) = init.answer(&reply).unwrap();
        let (mut seal, _) = done.into_halves();
        let (_, mut link) = accepting.await.unwrap().unwrap();
        link.reader.set_limit(MAX_RECORD);

        let mut record = vec![];
        seal.seal(&[7u8; MAX_PLAINTEXT], &mut record).unwrap();
        assert_eq!(record.len(), 2 + MAX_RECORD);
        client.write_all(&record[..3]).await.unwrap();
        let mut plain = vec![0u8; MAX_PLAINTEXT];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        // Read until the one byte is taken (each attempt is abandoned, which a link read
        // survives), then look at what the reader holds.
        while link.reader.record.got() < 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the byte was never read"
            );
            let attempt = link.reader.read(&mut plain);
            let _ = tokio::time::timeout(std::time::Duration::from_millis(5), attempt).await;
        }
        assert!(
            link.reader.buffered() <= READ_STEP,
            "holds {} bytes for one byte of a record",
            link.reader.buffered()
        );
        client.write_all(&record[3..]).await.unwrap();
        link.reader.read_exact(&mut plain).await.unwrap();
        assert!(plain.iter().all(|b| *b == 7));
        assert!(link.reader.buffered() <= 2 * MAX_RECORD);
    }

    /// Counts the reads that reach the stream.
    struct Counted<R> {
        inner: R,
        reads: usize,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn small_records_that_arrived_together_take_one_read() {
        let ((mut seal, _), (_, mut opener)) = crate::record::tests::pair();
        opener.set_limit(MAX_RECORD);
        let mut bytes = vec![];
        for i in 0..10u8 {
            seal.seal(&[i; 100], &mut bytes).unwrap();
        }
        let counted = Counted {
            inner: &bytes[..],
            reads: 0,
        };
        let mut reader = LinkRead::new(counted, opener);
        let mut plain = vec![0u8; 1000];
        reader.read_exact(&mut plain).await.unwrap();
        for (i, chunk) in plain.chunks(100).enumerate() {
            assert!(chunk.iter().all(|b| usize::from(*b) == i), "record {i}");
        }
        // Ten records of 118 bytes fit one read-ahead: one read, not a read for each prefix,
        // one for each body, and one more that finds nothing.
        assert_eq!(reader.inner.reads, 1);
    }

    #[tokio::test]
    async fn a_blocking_client_s_oversized_first_record_is_refused_by_the_async_node() {
        let node = StaticKey::generate();
        let public = node.public();
        // The blocking client against the async node over a real socket.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            use std::io::Write;
            let s = std::net::TcpStream::connect(addr).unwrap();
            let mut link =
                crate::blocking::connect_deployer(s.try_clone().unwrap(), s, &public).unwrap();
            link.writer.write_all(&[1u8; FIRST_RECORD_LIMIT]).unwrap();
            link.writer.flush().unwrap();
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (rd, wr) = stream.into_split();
        let (_, mut link) = accept(rd, wr, &node, |_| true).await.unwrap();
        let mut buf = [0u8; 8];
        let e = link.reader.read(&mut buf).await.unwrap_err();
        assert!(
            matches!(LinkError::inside(&e), Some(LinkError::TooLarge { len, .. }) if *len == FIRST_RECORD_LIMIT + TAG_LEN),
            "{e}"
        );
        client.join().unwrap();
    }
}
