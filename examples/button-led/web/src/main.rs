//! The button-led example's web front end, on the `sgx` node.
//!
//! The entry point `start` (called by `aex up` with `{"port": N}`) opens a plain HTTP/1.1
//! server on a thread of its own. `GET /` answers with the number of presses as plain text,
//! which it asks `db` for with an authenticated request (`requests(get_presses)`): the
//! number comes from the attested counter, over a connection whose key only `web` and `db`
//! hold. Everything else is `404`.
//!
//! The server thread never touches the module's state or keys itself: it goes through an
//! [`aex::Handle`], so the runtime runs its closure between events on the module's thread.
//! What arrives over HTTP is not authentic (anyone can connect); only the count is.
//!
//! The HTTP side is deliberately small and std only: one request per connection
//! (`Connection: close`), request heads of at most [`MAX_HEAD`] bytes, socket timeouts and an
//! overall deadline per request, at most [`MAX_CLIENTS`] connections at a time.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aex::{Context, Handle};
use serde::{Deserialize, Serialize};

/// Longest request head (request line and headers) the server reads.
const MAX_HEAD: usize = 8 * 1024;
/// Read and write timeout of each socket operation.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time a client may take to send its whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
const MAX_CLIENTS: usize = 32;

/// The argument of `start`.
#[derive(Deserialize)]
struct StartArgs {
    /// TCP port to listen on (`0`: any free port).
    port: u16,
    /// Address to listen on; loopback unless given.
    #[serde(default = "loopback")]
    bind: IpAddr,
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// The web module's state (also what `aex status` shows).
#[derive(Default, Serialize)]
struct Web {
    /// Whether the server runs.
    started: bool,
    /// The port it listens on.
    port: Option<u16>,
    /// `GET /` requests answered with a count from `db`.
    served: u64,
}

/// What `start` answers.
#[derive(Serialize)]
struct Started {
    url: String,
}

#[aex::module(requests(get_presses))]
impl Web {
    /// Starts the HTTP server once. Asking again for the port it already serves succeeds
    /// (so `aex up` can be re-run); asking for another port fails and changes nothing.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<Started, String> {
        if self.started {
            let port = self.port.unwrap_or_default();
            if port == args.port {
                return Ok(Started {
                    url: format!("http://{}:{port}/", args.bind),
                });
            }
            return Err(format!("the web server already runs on port {port}"));
        }
        let addr = SocketAddr::new(args.bind, args.port);
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let handle = ctx.handle::<Web>();
        thread::Builder::new()
            .name("http".into())
            .spawn(move || serve(listener, handle))
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        self.started = true;
        self.port = Some(addr.port());
        Ok(Started {
            url: format!("http://{addr}/"),
        })
    }

    /// `{"started": bool, "port": n, "served": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Web {
        self
    }
}

/// Accepts connections forever, each on its own thread.
fn serve(listener: TcpListener, handle: Handle<Web>) {
    let clients = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("web: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            continue; // dropping the stream closes it
        }
        let slot = Slot(clients.clone());
        let handle = handle.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let _slot = slot;
            if let Err(e) = answer(stream, &handle) {
                eprintln!("web: connection failed: {e}");
            }
        });
        if let Err(e) = spawned {
            // The closure (and with it the slot) was dropped.
            eprintln!("web: cannot start a connection thread: {e}");
        }
    }
}

/// One of the [`MAX_CLIENTS`] connection slots; freed on drop.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads one request from `stream` and writes the response.
fn answer(mut stream: TcpStream, handle: &Handle<Web>) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let response = match read_head(&mut stream) {
        Ok(head) => route(&head, handle),
        Err(Head::TooLarge) => Response::text(431, "request head too large"),
        Err(Head::Malformed) => Response::text(400, "bad request"),
        // Timed out or gone: nobody to answer.
        Err(Head::Io(e)) => return Err(e),
    };
    stream.write_all(&response.encode())?;
    stream.flush()
}

/// Why no request head was read.
enum Head {
    TooLarge,
    Malformed,
    Io(io::Error),
}

/// Reads up to the blank line that ends the request head; returns the request line.
fn read_head(stream: &mut TcpStream) -> Result<String, Head> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            break;
        }
        if buf.len() >= MAX_HEAD {
            return Err(Head::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Head::Io(io::ErrorKind::TimedOut.into()));
        }
        stream
            .set_read_timeout(Some(left.min(IO_TIMEOUT)))
            .map_err(Head::Io)?;
        let want = chunk.len().min(MAX_HEAD + 4 - buf.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) if buf.is_empty() => return Err(Head::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(0) => return Err(Head::Malformed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Head::Io(e)),
        }
    }
    let head = String::from_utf8(buf).map_err(|_| Head::Malformed)?;
    let line = head.lines().next().unwrap_or_default();
    Ok(line.to_owned())
}

/// Where the head ends (`\r\n\r\n`, or `\n\n` from lenient clients), if it has.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The response to request line `line`.
fn route(line: &str, handle: &Handle<Web>) -> Response {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::text(400, "bad request");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Response::text(400, "bad request");
    }
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" || path != "/" {
        return Response::text(404, "not found");
    }
    match presses(handle) {
        Ok(n) => Response::text(200, &n.to_string()),
        Err(e) => {
            eprintln!("web: {e}");
            Response::text(503, "the press counter is not available")
        }
    }
}

/// The press count, from `db` by an authenticated request made on the module's thread.
fn presses(handle: &Handle<Web>) -> Result<u64, String> {
    let reply = handle
        .call(|web, ctx| {
            let reply = ctx.request(Web::GET_PRESSES, b"");
            if reply.is_ok() {
                web.served += 1;
            }
            reply
        })
        .map_err(|e| format!("module unavailable: {e}"))?
        .map_err(|e| format!("asking db: {e}"))?;
    aex::payload::from_json(&reply).map_err(|e| format!("db's answer: {e}"))
}

/// A plain-text HTTP/1.1 response.
struct Response {
    status: u16,
    body: String,
}

impl Response {
    /// `body` and a newline, as `text/plain`.
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            body: format!("{body}\n"),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            431 => "Request Header Fields Too Large",
            _ => "Service Unavailable",
        };
        format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

aex::main!(Web);
