//! A tiny HTTP/1.1 server for the examples' web modules, std only.
//!
//! A web module starts it on a thread of its own from an entry point and answers each request
//! through an `aex::Handle`, so the runtime runs the answer between events on the module's
//! thread. What arrives over HTTP is not authentic (anyone can connect); only what the module
//! obtains over its attested connections is.
//!
//! Deliberately small: one request per connection (`Connection: close`), request heads of at
//! most [`MAX_HEAD`] bytes, socket timeouts and an overall deadline per request, at most
//! [`MAX_CLIENTS`] connections at a time; bodies are not read (the examples use `GET` and
//! `POST` without one).
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

/// Binds `addr` and serves it on a new thread, answering each request with `route(method,
/// path)` (the path without its query). Returns the address actually bound.
pub fn start<F>(addr: SocketAddr, route: F) -> Result<SocketAddr, String>
where
    F: Fn(&str, &str) -> Response + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    thread::Builder::new()
        .name("http".into())
        .spawn(move || serve(listener, Arc::new(route)))
        .map_err(|e| format!("cannot start the server thread: {e}"))?;
    Ok(bound)
}

/// Accepts connections forever, each on its own thread.
fn serve<F>(listener: TcpListener, route: Arc<F>)
where
    F: Fn(&str, &str) -> Response + Send + Sync + 'static,
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
fn answer(mut stream: TcpStream, route: &dyn Fn(&str, &str) -> Response) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let response = match read_head(&mut stream) {
        Ok(line) => match parse_request_line(&line) {
            Some((method, path)) => route(method, path),
            None => Response::text(400, "bad request"),
        },
        Err(Head::TooLarge) => Response::text(431, "request head too large"),
        Err(Head::Malformed) => Response::text(400, "bad request"),
        // Timed out or gone: nobody to answer.
        Err(Head::Io(e)) => return Err(e),
    };
    stream.write_all(&response.encode())?;
    stream.flush()
}

/// `(method, path without query)` of an HTTP/1.x request line.
fn parse_request_line(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    Some((method, target.split('?').next().unwrap_or_default()))
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

/// A plain-text HTTP/1.1 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    body: String,
}

impl Response {
    /// `body` and a newline, as `text/plain`.
    pub fn text(status: u16, body: &str) -> Response {
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
            405 => "Method Not Allowed",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(parse_request_line("GET /?x=1 HTTP/1.1"), Some(("GET", "/")));
        assert_eq!(
            parse_request_line("POST /increment HTTP/1.0"),
            Some(("POST", "/increment"))
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
}
