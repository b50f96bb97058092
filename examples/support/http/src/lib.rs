//! A tiny HTTP/1.1 server for the examples' web modules: plain HTTP on std alone, or attested
//! HTTPS through the SDK's `tls` feature (`aex::tls`, docs/PROTOCOL.md §11).
//!
//! A web module starts it on a thread of its own from an entry point and answers each request
//! through an `aex::Handle`, so the runtime runs the answer between events on the module's
//! thread. What arrives over HTTP is not authentic (anyone can connect); only what the module
//! obtains over its attested connections is.
//!
//! Deliberately small: one request per connection (`Connection: close`), request heads of at
//! most [`MAX_HEAD`] bytes, socket timeouts and an overall deadline per request, at most
//! [`MAX_CLIENTS`] connections at a time; a request body only with a `Content-Length` of at
//! most [`MAX_BODY`] bytes.
//!
//! With the feature `metering`, `functions::invoke` serves a module's metered functions
//! (`aex::metering`) to clients identified by their TLS client certificate: the output in the
//! body, the signed receipt in a header (docs/PROTOCOL.md §12, "Over attested HTTPS").
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest request head (request line and headers) the server reads.
pub const MAX_HEAD: usize = 8 * 1024;
/// Read and write timeout of each socket operation.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time a client may take to send its whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
pub const MAX_CLIENTS: usize = 32;
/// Longest request body the server reads (a longer one is answered `413`).
pub const MAX_BODY: usize = 1 << 20;

#[cfg(feature = "metering")]
pub mod functions;

/// What a request says, as a route sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without its query.
    pub path: &'a str,
    /// The client's key fingerprint, if it authenticated with a certificate (attested HTTPS
    /// with mutual TLS; never over plain HTTP).
    pub client: Option<aex::tls::ClientId>,
    /// The request body (`Content-Length` bytes; empty without one).
    pub body: &'a [u8],
}

/// Binds `addr` and serves plain HTTP on a new thread, answering each request with
/// `route(method, path)` (the path without its query). Returns the address actually bound.
pub fn start<F>(addr: SocketAddr, route: F) -> Result<SocketAddr, String>
where
    F: Fn(&str, &str) -> Response + Send + Sync + 'static,
{
    start_with(addr, move |r: &Request<'_>| route(r.method, r.path))
}

/// [`start`] with routes that see the whole [`Request`] (its body; never a client id, which
/// plain HTTP does not authenticate).
pub fn start_with<F>(addr: SocketAddr, route: F) -> Result<SocketAddr, String>
where
    F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    thread::Builder::new()
        .name("http".into())
        .spawn(move || serve(listener, Arc::new(route)))
        .map_err(|e| format!("cannot start the server thread: {e}"))?;
    Ok(bound)
}

/// Binds `addr` and serves attested HTTPS (docs/PROTOCOL.md §11) with `attested`'s key and
/// certificate, under the pre-authentication `limits` (`Limits::default()` unless a test
/// says otherwise). Each request goes to `route`;
/// `GET /.well-known/aex-evidence?nonce=<hex>` is answered here with fresh evidence bound to
/// the connection, which stays open for the request that follows. Returns the address bound.
pub fn start_attested<F>(
    addr: SocketAddr,
    attested: aex::tls::Attested,
    limits: aex::tls::Limits,
    route: F,
) -> Result<SocketAddr, String>
where
    F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
{
    serve_attested(addr, attested, limits, route).map(|s| s.local_addr())
}

/// [`start_attested`], returning the running server: its address, and a way to serve another
/// certificate from the next connection on ([`aex::tls::Server::replace`]), for a module whose
/// certificate attests something that changes (the governor's constitution).
pub fn serve_attested<F>(
    addr: SocketAddr,
    attested: aex::tls::Attested,
    limits: aex::tls::Limits,
    route: F,
) -> Result<aex::tls::Server, String>
where
    F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    aex::tls::serve(listener, attested, limits, move |tls| {
        if let Err(e) = answer_tls(tls, &route) {
            eprintln!("https: connection failed: {e}");
        }
    })
    .map_err(|e| e.to_string())
}

/// Accepts connections forever, each on its own thread.
fn serve<F>(listener: TcpListener, route: Arc<F>)
where
    F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
{
    let clients = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("http: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            continue; // dropping the stream closes it
        }
        let slot = Slot(clients.clone());
        let route = route.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let _slot = slot;
            if let Err(e) = answer(stream, &*route) {
                eprintln!("http: connection failed: {e}");
            }
        });
        if let Err(e) = spawned {
            // The closure (and with it the slot) was dropped.
            eprintln!("http: cannot start a connection thread: {e}");
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
fn answer(mut stream: TcpStream, route: &dyn Fn(&Request<'_>) -> Response) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut carry = Vec::new();
    let response = match read_request(&mut stream, &mut carry) {
        Ok(head) => match parse_request_line(&head.line) {
            Some((method, path, _)) => route(&Request {
                method,
                path,
                client: None,
                body: &head.body,
            }),
            None => Response::text(400, "bad request"),
        },
        Err(Head::Closed) => return Ok(()),
        Err(e) => match e.response() {
            Some(r) => r,
            None => return Err(e.into_io()),
        },
    };
    stream.write_all(&response.encode(false))?;
    stream.flush()
}

/// Answers requests on an attested TLS session: at most one fresh-evidence request (kept
/// open), then one request (closed).
fn answer_tls(
    mut stream: aex::tls::TlsStream,
    route: &dyn Fn(&Request<'_>) -> Response,
) -> io::Result<()> {
    let mut carry = Vec::new();
    let mut fresh_given = false;
    loop {
        let head = match read_request(&mut stream, &mut carry) {
            Ok(head) => head,
            Err(Head::Closed) => return Ok(()),
            Err(e) => match e.response() {
                Some(r) => {
                    stream.write_all(&r.encode(false))?;
                    return stream.close();
                }
                None => return Err(e.into_io()),
            },
        };
        let Some((method, path, query)) = parse_request_line(&head.line) else {
            stream.write_all(&Response::text(400, "bad request").encode(false))?;
            return stream.close();
        };
        if path == aex::tls::attested_tls::FRESH_PATH && !fresh_given {
            fresh_given = true;
            let response = fresh(&stream, method, query);
            let keep = response.status == 200;
            stream.write_all(&response.encode(keep))?;
            stream.flush()?;
            if keep {
                continue;
            }
            return stream.close();
        }
        let request = Request {
            method,
            path,
            client: stream.client_id(),
            body: &head.body,
        };
        let response = route(&request);
        stream.write_all(&response.encode(false))?;
        return stream.close();
    }
}

/// The answer to a fresh-evidence request: the evidence envelope in hex.
fn fresh(stream: &aex::tls::TlsStream, method: &str, query: &str) -> Response {
    if method != "GET" {
        return Response::text(405, "use GET");
    }
    let nonce = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("nonce="))
        .and_then(|h| decode_hex(h).filter(|n| (16..=64).contains(&n.len())));
    let Some(nonce) = nonce else {
        return Response::text(400, "nonce=<32 to 128 hex digits> required");
    };
    match stream.fresh_evidence(&nonce) {
        Ok(evidence) => Response::text(200, &encode_hex(&evidence)),
        Err(e) => {
            eprintln!("https: fresh evidence: {e}");
            Response::text(503, "no fresh evidence")
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(method, path without query, query)` of an HTTP/1.x request line.
fn parse_request_line(line: &str) -> Option<(&str, &str, &str)> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some((method, path, query))
}

/// Why no request head was read.
enum Head {
    TooLarge,
    BodyTooLarge,
    Malformed,
    /// The client left before sending a byte: nothing to answer and nothing to report (a
    /// client that only wants the certificate, as `aex tls export` does, leaves this way).
    Closed,
    Io(io::Error),
}

impl Head {
    /// The answer to give, if there is anyone to give it to.
    fn response(&self) -> Option<Response> {
        match self {
            Head::TooLarge => Some(Response::text(431, "request head too large")),
            Head::BodyTooLarge => Some(Response::text(
                413,
                &format!("request body longer than {MAX_BODY} bytes"),
            )),
            Head::Malformed => Some(Response::text(400, "bad request")),
            // Timed out or gone: nobody to answer.
            Head::Closed | Head::Io(_) => None,
        }
    }

    fn into_io(self) -> io::Error {
        match self {
            Head::Io(e) => e,
            Head::Closed => io::ErrorKind::UnexpectedEof.into(),
            _ => io::ErrorKind::InvalidData.into(),
        }
    }
}

/// A request as read: its request line and its body.
struct Read1 {
    line: String,
    body: Vec<u8>,
}

/// Reads one request: its head, then as many body bytes as its `Content-Length` says (at most
/// [`MAX_BODY`]). Bytes read past it stay in `carry` for the next request on the connection.
fn read_request(stream: &mut impl Read, carry: &mut Vec<u8>) -> Result<Read1, Head> {
    let head = read_head(stream, carry)?;
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    for header in lines {
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| Head::Malformed)?;
            } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                // Chunked bodies are not read: refused rather than misread as the next request.
                return Err(Head::Malformed);
            }
        }
    }
    if length > MAX_BODY {
        return Err(Head::BodyTooLarge);
    }
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut body = std::mem::take(carry);
    let mut chunk = [0u8; 16 * 1024];
    while body.len() < length {
        if Instant::now() >= deadline {
            return Err(Head::Io(io::ErrorKind::TimedOut.into()));
        }
        let want = chunk.len().min(length - body.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(Head::Malformed),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Head::Io(e)),
        }
    }
    *carry = body.split_off(length);
    Ok(Read1 { line, body })
}

/// Reads up to the blank line that ends the request head; returns the head. Bytes read past
/// the head stay in `carry`.
fn read_head(stream: &mut impl Read, carry: &mut Vec<u8>) -> Result<String, Head> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut buf = std::mem::take(carry);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some((end, len)) = head_end(&buf) {
            *carry = buf.split_off(end + len);
            buf.truncate(end);
            break;
        }
        if buf.len() >= MAX_HEAD {
            return Err(Head::TooLarge);
        }
        // Each read is bounded by the socket's timeout; the deadline bounds them all.
        if Instant::now() >= deadline {
            return Err(Head::Io(io::ErrorKind::TimedOut.into()));
        }
        let want = chunk.len().min(MAX_HEAD + 4 - buf.len());
        match stream.read(&mut chunk[..want]) {
            // A TLS peer that closes without close_notify reads as UnexpectedEof.
            Ok(0) if buf.is_empty() => return Err(Head::Closed),
            Err(e) if buf.is_empty() && e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Head::Closed)
            }
            Ok(0) => return Err(Head::Malformed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Head::Io(e)),
        }
    }
    String::from_utf8(buf).map_err(|_| Head::Malformed)
}

/// Where the head ends (`\r\n\r\n`, or `\n\n` from lenient clients), if it has, and the
/// length of that end.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|a| (a, 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|b| (b, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// An HTTP/1.1 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    /// `body` and a newline, as `text/plain`.
    pub fn text(status: u16, body: &str) -> Response {
        Response::bytes(
            status,
            "text/plain; charset=utf-8",
            format!("{body}\n").into_bytes(),
        )
    }

    /// `body` as it is, of type `content_type`.
    pub fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds the header `name: value` (`value` must be one line of visible ASCII).
    pub fn header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response's bytes; `keep` keeps the connection open for another request.
    fn encode(&self, keep: bool) -> Vec<u8> {
        let connection = if keep { "keep-alive" } else { "close" };
        let reason = match self.status {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            404 => "Not Found",
            401 => "Unauthorized",
            403 => "Forbidden",
            405 => "Method Not Allowed",
            409 => "Conflict",
            413 => "Content Too Large",
            422 => "Unprocessable Content",
            431 => "Request Header Fields Too Large",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Service Unavailable",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: {connection}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line("GET /?x=1 HTTP/1.1"),
            Some(("GET", "/", "x=1"))
        );
        assert_eq!(
            parse_request_line("POST /increment HTTP/1.0"),
            Some(("POST", "/increment", ""))
        );
        for bad in [
            "GET / HTTP/2",
            "GET x HTTP/1.1",
            "GET /",
            "GET / HTTP/1.1 x",
            "",
        ] {
            assert_eq!(parse_request_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_client_that_leaves_before_a_byte_is_not_an_error_but_one_that_leaves_midway_is() {
        let closed = |r: &mut dyn Read| read_request(&mut &mut *r, &mut Vec::new());
        assert!(matches!(closed(&mut io::empty()), Err(Head::Closed)));
        // What rustls reads when the peer closes without close_notify.
        struct Eof;
        impl Read for Eof {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::UnexpectedEof.into())
            }
        }
        assert!(matches!(closed(&mut Eof), Err(Head::Closed)));
        assert!(matches!(
            closed(&mut b"GET / HT".as_slice()),
            Err(Head::Malformed)
        ));
        assert!(matches!(
            closed(&mut b"GET / HT".as_slice().chain(Eof)),
            Err(Head::Io(_))
        ));
    }

    #[test]
    fn serves_and_refuses_oversized_heads() {
        let addr = start("127.0.0.1:0".parse().unwrap(), |m, p| {
            Response::text(200, &format!("{m} {p}"))
        })
        .unwrap();
        let get = |req: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(req).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.ends_with("GET /a\n"), "{ok}");
        // Exactly MAX_HEAD bytes and no end of head: all read, so the close is clean.
        let prefix = b"GET / HTTP/1.1\r\nX: ".as_slice();
        let big = [prefix, &vec![b'a'; MAX_HEAD - prefix.len()]].concat();
        assert!(get(&big).starts_with("HTTP/1.1 431"));
        assert!(get(b"nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
    }

    #[test]
    fn bodies_are_read_to_their_length_and_bounded() {
        let addr = start_with("127.0.0.1:0".parse().unwrap(), |r: &Request<'_>| {
            Response::bytes(200, "application/octet-stream", r.body.to_vec())
                .header("X-Len", r.body.len().to_string())
        })
        .unwrap();
        let send = |req: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(req).unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            String::from_utf8_lossy(&out).into_owned()
        };
        // A body in two writes, bytes after it ignored (one request per connection).
        let ok = send(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello, more");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(
            ok.contains("X-Len: 5\r\n") && ok.ends_with("\r\n\r\nhello"),
            "{ok}"
        );
        let big = format!(
            "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(send(big.as_bytes()).starts_with("HTTP/1.1 413"));
        let chunked =
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(send(chunked).starts_with("HTTP/1.1 400"));
        assert!(send(b"POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n").starts_with("HTTP/1.1 400"));
        // A body cut short (the client stopped sending): refused, not waited for.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 9\r\n\r\nab")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    }
}
