//! A module's stdin and stdout pipes, which grow once the module streams.
//!
//! Linux gives a pipe 64 KiB. A module that streams large events fills that with four 16 KiB
//! events, and the async writer or reader on the node's side then pays for every few events
//! with a write or read that stops short, an `epoll` wake-up, a task switch and a retry, and
//! the module with a blocked `write(2)` and a wake-up of its own. A pipe of [`STREAMING`] bytes
//! lets each side run through many events per wake-up: in a 16 KiB stream (`aex-bench
//! --streams-only 16384`, nine rounds each way on a busy 2-core machine) it took the median CPU
//! time per event of both node agents and both modules together from 34.9 to 32.2 µs.
//!
//! Only a pipe that ran full grows (a write that had to wait after writes went through, a read
//! that took half a default pipe's worth): an idle or lightly used module keeps the default,
//! so a node with thousands of modules does not reserve a megabyte of kernel memory for each
//! pipe, nor use up the pipe pages an unprivileged user may hold
//! (`/proc/sys/fs/pipe-user-pages-soft`, past which Linux gives new pipes 8 KiB). Growing is best effort: where Linux refuses (that limit reached, or
//! a `pipe-max-size` below [`STREAMING`]), the pipe keeps its size and the module works as
//! before, only with more wake-ups. The kernel allocates a pipe's pages as bytes are written,
//! so a grown pipe holds memory only while it holds bytes.

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

/// The size a streaming module's pipe grows to: Linux's default `pipe-max-size`, the most an
/// unprivileged process may ask for.
pub(crate) const STREAMING: usize = 1 << 20;

/// A read of at least this many bytes means the module writes faster than the node reads: half
/// of Linux's default pipe (a full one holds a little less than its 64 KiB, since a write that
/// does not end on a page boundary leaves the rest of its last page unused).
const FULL_READ: usize = 32 << 10;

/// One end of a module's pipe, grown to [`STREAMING`] bytes the first time it runs full.
pub(crate) struct Pipe<P> {
    inner: P,
    /// Whether growing was tried (once: it succeeded, or Linux said why not).
    tried: bool,
    /// Whether a write went through: a fresh pipe's first write may wait for the runtime to
    /// learn that the pipe is writable, after that only a full pipe makes one wait.
    wrote: bool,
}

impl<P: AsFd> Pipe<P> {
    /// The pipe end `inner`, at its current size.
    pub(crate) fn new(inner: P) -> Self {
        Pipe {
            inner,
            tried: false,
            wrote: false,
        }
    }

    /// Grows the pipe, once.
    fn grow(&mut self) {
        if self.tried {
            return;
        }
        self.tried = true;
        match rustix::pipe::fcntl_setpipe_size(self.inner.as_fd(), STREAMING) {
            Ok(size) => debug!(size, "module pipe ran full; grown"),
            Err(e) => debug!(error = %e, "module pipe ran full; cannot grow it"),
        }
    }

    /// After a write attempt: one that waits after writes went through means a full pipe.
    fn written(&mut self, waits: bool) {
        if !waits {
            self.wrote = true;
        } else if self.wrote {
            self.grow();
        }
    }
}

impl<P: AsyncRead + AsFd + Unpin> AsyncRead for Pipe<P> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() - before >= FULL_READ {
            this.grow();
        }
        Poll::Ready(Ok(()))
    }
}

impl<P: AsyncWrite + AsFd + Unpin> AsyncWrite for Pipe<P> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.written(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.written(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn size(fd: impl AsFd) -> usize {
        rustix::pipe::fcntl_getpipe_size(fd).unwrap()
    }

    /// A writer that must wait grows the pipe, and everything still arrives in order; a
    /// reader that takes a full default pipe grows it too. (Where Linux refuses to grow, the
    /// sizes stay and only the order is checked.)
    #[tokio::test]
    async fn a_pipe_grows_once_it_runs_full_and_loses_nothing() {
        let (tx, rx) = tokio::net::unix::pipe::pipe().unwrap();
        let start = size(&tx);
        let mut tx = Pipe::new(tx);
        let mut rx = Pipe::new(rx);
        let data: Vec<u8> = (0..4 * STREAMING).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            tx.write_all(&sent).await.unwrap();
            tx
        });
        let mut got = vec![0u8; data.len()];
        rx.read_exact(&mut got).await.unwrap();
        assert!(got == data, "bytes lost or reordered");
        let tx = writer.await.unwrap();
        assert!(
            tx.tried,
            "the writer had to wait, so it tried to grow the pipe"
        );
        let now = size(&tx.inner);
        assert!(now == STREAMING || now == start, "pipe of {now} bytes");
        // An idle pipe is not grown.
        let (idle_tx, idle_rx) = tokio::net::unix::pipe::pipe().unwrap();
        let (mut idle_rx, mut idle_tx) = (Pipe::new(idle_rx), Pipe::new(idle_tx));
        idle_tx.write_all(b"hello").await.unwrap();
        let mut five = [0u8; 5];
        idle_rx.read_exact(&mut five).await.unwrap();
        assert!(!idle_tx.tried && !idle_rx.tried);
        assert_eq!(size(&idle_tx.inner), start);
    }
}
