//! The listener: TLS 1.3 handshakes under pre-authentication limits, one thread per
//! connection, and the finished session handed to the module's handler as a [`TlsStream`].
//!
//! The attested identity it serves can be replaced while it runs ([`Server::replace`]): a
//! module whose certificate attests something that changes (the governor attests its
//! constitution's digest) re-attests without closing its port. Each handshake takes the
//! identity in force when it starts, and keeps it for its session (its fresh evidence too).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use aex_proto::attested_tls::EXPORTER_LABEL;
use rustls::{ServerConnection, StreamOwned};

use crate::attest::{Attest, Attested};
use crate::client_auth::fingerprint;
use crate::error::TlsError;
use crate::identity::ClientId;

/// Pre-authentication limits of a module's TLS listener, like the node's own (connections,
/// bytes, time before the peer is authenticated).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Established connections at once; one more is closed once its handshake is done.
    pub max_connections: usize,
    /// Connections still in their handshake; a new one closes the oldest, so connections
    /// that never finish cannot keep a legitimate client out.
    pub max_handshakes: usize,
    /// Bytes read from a client before its handshake completes (a client certificate chain
    /// included).
    pub handshake_bytes: usize,
    /// Time a client has to complete its handshake.
    pub handshake_time: Duration,
    /// Read and write timeout of each socket operation once established.
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            max_handshakes: 16,
            handshake_bytes: 64 * 1024,
            handshake_time: Duration::from_secs(10),
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// A running attested TLS server.
#[derive(Clone)]
pub struct Server {
    addr: SocketAddr,
    current: Arc<Current>,
}

/// The attested identity served now; replaced whole, so a handshake never sees half of one.
struct Current(RwLock<Arc<Attested>>);

impl Current {
    fn get(&self) -> Arc<Attested> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its certificate's DER (the one served now).
    pub fn certificate(&self) -> Vec<u8> {
        self.current.get().certificate().to_vec()
    }

    /// Serves `attested` (a new certificate, with its evidence and extra keys) from the next
    /// handshake on; sessions already established keep the one they saw. Module code makes
    /// it as the first ([`Attested::in_module`], or [`Attested::new`] from a thread of its
    /// own), usually from the same kept key.
    pub fn replace(&self, attested: Attested) {
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(attested);
    }
}

/// Serves `listener` on a new thread: each connection on a thread of its own completes its
/// TLS 1.3 handshake within `limits`, then goes to `handler`. Stops (closing the listener and
/// dropping the key) once the module instance no longer serves.
pub fn serve<F>(
    listener: TcpListener,
    attested: Attested,
    limits: Limits,
    handler: F,
) -> Result<Server, TlsError>
where
    F: Fn(TlsStream) + Send + Sync + 'static,
{
    if limits.max_connections == 0 || limits.max_handshakes == 0 || limits.handshake_bytes == 0 {
        return Err(TlsError::Option(
            "max_connections, max_handshakes and handshake_bytes must be more than zero".into(),
        ));
    }
    let addr = listener.local_addr().map_err(TlsError::Io)?;
    let current = Arc::new(Current(RwLock::new(Arc::new(attested))));
    let server = Server {
        addr,
        current: current.clone(),
    };
    let shared = Arc::new(Shared {
        attested: current,
        limits,
        pending: Mutex::default(),
        connections: AtomicUsize::new(0),
        stopped: AtomicBool::new(false),
        checked: Mutex::new(None),
        handler: Box::new(handler),
    });
    thread::Builder::new()
        .name("tls".into())
        .spawn(move || accept(listener, shared))
        .map_err(TlsError::Io)?;
    Ok(server)
}

/// What the listener and its connection threads share.
struct Shared {
    attested: Arc<Current>,
    limits: Limits,
    pending: Mutex<Pending>,
    connections: AtomicUsize,
    stopped: AtomicBool,
    /// When the runtime last said the instance serves: asked at most every
    /// [`SERVING_CHECK`], so a flood of connections does not become a flood of calls into the
    /// module's thread.
    checked: Mutex<Option<Instant>>,
    handler: Box<dyn Fn(TlsStream) + Send + Sync>,
}

/// How long a "still serving" answer from the runtime holds: a disabled instance may finish
/// handshakes for this long after it was disabled, never more.
const SERVING_CHECK: Duration = Duration::from_millis(50);

/// Connections in their handshake, oldest first.
#[derive(Default)]
struct Pending {
    next: u64,
    list: VecDeque<(u64, TcpStream)>,
}

#[allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps"
)]
fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let shared = &shared;
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("tls: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // Bounded before the handshake by `max_handshakes` (the oldest gives way), after it
        // by `max_connections`.
        let Some(id) = shared.admit(&stream) else {
            continue;
        };
        let shared = shared.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let session = shared.handshake(stream, id);
            shared.pending_done(id);
            match session {
                Ok(Some(conn)) => {
                    let used = shared.connections.fetch_add(1, Ordering::SeqCst);
                    let slot = Slot(shared.clone());
                    if used < shared.limits.max_connections {
                        (shared.handler)(conn);
                    }
                    drop(slot);
                }
                Ok(None) => {}
                Err(e) => eprintln!("tls: handshake failed: {e}"),
            }
        });
        if let Err(e) = spawned {
            eprintln!("tls: cannot start a connection thread: {e}");
        }
    }
    // Dropping the listener closes the port; the key goes with the last connection.
}

/// One of the `max_connections` slots (taken even past the limit, then closed); freed on drop.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Registers a connection in its handshake, closing the oldest if there are too many.
    fn admit(&self, stream: &TcpStream) -> Option<u64> {
        let copy = stream.try_clone().ok()?;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        while pending.list.len() >= self.limits.max_handshakes {
            if let Some((_, oldest)) = pending.list.pop_front() {
                // Its thread's next read fails; the handshake ends there.
                let _ = oldest.shutdown(Shutdown::Both);
            }
        }
        let id = pending.next;
        pending.next += 1;
        pending.list.push_back((id, copy));
        Some(id)
    }

    fn pending_done(&self, id: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.list.retain(|(i, _)| *i != id);
    }

    /// Whether the instance still serves; once not, never again.
    fn serving(&self) -> bool {
        if self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.is_some_and(|at| at.elapsed() < SERVING_CHECK) {
            return true;
        }
        if self.attested.get().attest.serving() {
            *checked = Some(Instant::now());
            return true;
        }
        self.stopped.store(true, Ordering::SeqCst);
        false
    }

    /// The finished session, `None` once the instance no longer serves.
    fn handshake(&self, stream: TcpStream, _id: u64) -> Result<Option<TlsStream>, io::Error> {
        if !self.serving() {
            return Ok(None);
        }
        // The handshake and the answers go out in several small writes: without this, Nagle's
        // algorithm and the peer's delayed ACK hold each second one back some 40 ms.
        stream.set_nodelay(true)?;
        let attested = self.attested.get();
        let mut conn = ServerConnection::new(attested.config.clone())
            .map_err(|e| io::Error::other(e.to_string()))?;
        let deadline = Instant::now() + self.limits.handshake_time;
        let mut budget = Budget {
            stream: &stream,
            left: self.limits.handshake_bytes,
            deadline,
        };
        while conn.is_handshaking() {
            conn.complete_io(&mut budget)?;
        }
        // Anything the handshake left to write (the server's last flight).
        while conn.wants_write() {
            conn.write_tls(&mut budget)?;
        }
        stream.set_read_timeout(Some(self.limits.io_timeout))?;
        stream.set_write_timeout(Some(self.limits.io_timeout))?;
        let client = conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(fingerprint);
        Ok(Some(TlsStream {
            inner: StreamOwned::new(conn, stream),
            client,
            binding: attested.binding,
            attest: attested.attest.clone(),
        }))
    }
}

/// The socket as the handshake sees it: at most `left` more bytes, until `deadline`.
struct Budget<'a> {
    stream: &'a TcpStream,
    left: usize,
    deadline: Instant,
}

impl Budget<'_> {
    fn time_left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the handshake took longer than its limit",
            ));
        }
        Ok(left)
    }
}

impl Read for Budget<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client sent more before its handshake completed than the limit",
            ));
        }
        self.stream.set_read_timeout(Some(self.time_left()?))?;
        let want = buf.len().min(self.left);
        let n = self.stream.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

impl Write for Budget<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.time_left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// An established TLS 1.3 session with a client: read the request, write the answer.
pub struct TlsStream {
    inner: StreamOwned<ServerConnection, TcpStream>,
    client: Option<ClientId>,
    binding: [u8; 32],
    attest: Arc<dyn Attest>,
}

impl TlsStream {
    /// The client's key fingerprint, if it presented a certificate (mutual TLS).
    pub fn client_id(&self) -> Option<ClientId> {
        self.client
    }

    /// Fresh evidence bound to this session: the TEE layer's evidence over the certificate's
    /// key binding, answering the TLS exporter value with label
    /// [`EXPORTER_LABEL`](aex_proto::attested_tls::EXPORTER_LABEL) and the client's `nonce` as
    /// context (RFC 8446 §7.5). The client computes the same value on its side of the session.
    pub fn fresh_evidence(&self, nonce: &[u8]) -> Result<Vec<u8>, TlsError> {
        let challenge =
            self.inner
                .conn
                .export_keying_material([0u8; 32], EXPORTER_LABEL, Some(nonce))?;
        self.attest
            .evidence(self.binding, challenge)
            .map_err(TlsError::Evidence)
    }

    /// The client's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// Sends the TLS close notification and flushes.
    pub fn close(mut self) -> io::Result<()> {
        self.inner.conn.send_close_notify();
        self.inner.flush()
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
