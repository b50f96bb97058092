//! A verified connection to a module: connect, appraise during the handshake, ask for fresh
//! evidence bound to the channel, and make HTTP/1.1 requests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aex_proto::attested_tls::{EXPORTER_LABEL, FRESH_PATH};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::error::ClientError;
use crate::identity::ClientKey;
use crate::policy::{Policy, Verified};
use crate::verify::{appraise_for, AttestedVerifier, Outcome};

/// Longest HTTP answer a client reads.
const MAX_ANSWER: u64 = 16 << 20;

/// An established TLS 1.3 session with a module that passed appraisal.
pub struct Session {
    stream: StreamOwned<ClientConnection, TcpStream>,
    verified: Verified,
    policy: Policy,
    addr: SocketAddr,
}

/// An HTTP answer: its status code, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, `(name, value)`, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a fresh-evidence check proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fresh {
    /// The client's nonce (hex in the request).
    pub nonce: [u8; 32],
    /// The TLS exporter value the evidence answers (the client's own).
    pub exporter: [u8; 32],
}

/// Connects to `addr`, completes a TLS 1.3 handshake in which the module's certificate passes
/// `policy`, presenting `key` as the client's certificate if given. `timeout` bounds the
/// connection and each read and write.
pub fn connect(
    addr: SocketAddr,
    policy: &Policy,
    key: Option<&ClientKey>,
    timeout: Duration,
) -> Result<Session, ClientError> {
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let verifier = Arc::new(AttestedVerifier::new(policy.clone(), outcome.clone()));
    let builder = ClientConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| handshake(addr, e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match key {
        Some(k) => builder
            .with_client_auth_cert(vec![k.certificate()], k.private_key())
            .map_err(|e| handshake(addr, format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    let io = |context: &str| {
        let context = format!("{context} {addr}");
        move |source| ClientError::Io { context, source }
    };
    let sock = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect to"))?;
    // Small writes (handshake flights, a request after fresh evidence) go out at once, not
    // held back by Nagle's algorithm for the server's delayed ACK.
    sock.set_nodelay(true).map_err(io("set TCP_NODELAY on"))?;
    sock.set_read_timeout(Some(timeout))
        .map_err(io("set a timeout on"))?;
    sock.set_write_timeout(Some(timeout))
        .map_err(io("set a timeout on"))?;
    // The name is not checked (the evidence says who the server is); SNI carries it.
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| handshake(addr, e.to_string()))?;
    let mut stream = StreamOwned::new(conn, sock);
    let mut failed = None;
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            failed = Some(e);
            break;
        }
    }
    let recorded = outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match (failed, recorded) {
        // The verifier's own refusal is the precise one.
        (Some(_), Some(Err(refusal))) | (None, Some(Err(refusal))) => Err(refusal),
        (Some(e), _) => Err(handshake(addr, e.to_string())),
        (None, Some(Ok(verified))) => Ok(Session {
            stream,
            verified,
            policy: policy.clone(),
            addr,
        }),
        (None, None) => Err(handshake(addr, "no certificate was verified".into())),
    }
}

fn handshake(addr: SocketAddr, message: String) -> ClientError {
    ClientError::Handshake {
        addr: addr.to_string(),
        message,
    }
}

impl Session {
    /// What the client verified of the module.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// Asks the module for fresh evidence bound to this session (docs/PROTOCOL.md §11): sends
    /// a random nonce, and appraises the answer against the policy with the session's TLS
    /// exporter value as the challenge and the certificate's key binding. Over HTTP:
    /// `GET /.well-known/aex-evidence?nonce=<hex>`, on the same connection as the request
    /// that follows.
    pub fn fresh_evidence(&mut self) -> Result<Fresh, ClientError> {
        let mut nonce = [0u8; 32];
        crate::provider()
            .secure_random
            .fill(&mut nonce)
            .map_err(|_| ClientError::Fresh("no randomness for a nonce".into()))?;
        let exporter = self
            .stream
            .conn
            .export_keying_material([0u8; 32], EXPORTER_LABEL, Some(&nonce))
            .map_err(|e| ClientError::Fresh(format!("TLS exporter: {e}")))?;
        let path = format!("{FRESH_PATH}?nonce={}", hex::encode(nonce));
        let answer = self.exchange("GET", &path, &[], true)?;
        let (code, body) = (answer.status, String::from_utf8_lossy(&answer.body));
        if code != 200 {
            return Err(ClientError::Fresh(format!(
                "the module answered {code}: {}",
                body.trim()
            )));
        }
        let evidence = hex::decode(body.trim())
            .map_err(|_| ClientError::Fresh("the answer is not hex evidence".into()))?;
        appraise_for(&evidence, self.verified.binding, exporter, &self.policy)?;
        Ok(Fresh { nonce, exporter })
    }

    /// Sends one HTTP/1.1 request without a body (`Connection: close`) and reads the answer:
    /// its status code and body.
    pub fn request(self, method: &str, path: &str) -> Result<(u16, String), ClientError> {
        let answer = self.send(method, path, &[])?;
        Ok((
            answer.status,
            String::from_utf8_lossy(&answer.body).into_owned(),
        ))
    }

    /// Sends one HTTP/1.1 request with `body` (`Connection: close`) and reads the whole
    /// answer, headers included (a metered function's receipt travels in one, §12).
    pub fn send(mut self, method: &str, path: &str, body: &[u8]) -> Result<Answer, ClientError> {
        self.exchange(method, path, body, false)
    }

    /// One request and its answer; `keep` keeps the connection open for another.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        keep: bool,
    ) -> Result<Answer, ClientError> {
        let addr = self.addr;
        let io = |source| ClientError::Io {
            context: format!("HTTP exchange with {addr}"),
            source,
        };
        let connection = if keep { "keep-alive" } else { "close" };
        write!(
            self.stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        )
        .map_err(io)?;
        self.stream.write_all(body).map_err(io)?;
        self.stream.flush().map_err(io)?;
        read_answer(&mut self.stream, keep).map_err(|e| match e {
            Failed::Io(source) => io(source),
            Failed::Bad(message) => ClientError::Http(message),
        })
    }
}

enum Failed {
    Io(io::Error),
    Bad(String),
}

/// Reads an HTTP/1.1 answer: to the end of the stream, or (`keep`) as long as its
/// `Content-Length` says.
fn read_answer(stream: &mut impl Read, keep: bool) -> Result<Answer, Failed> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err(Failed::Bad("answer head longer than 64 KiB".into()));
        }
        match stream.read(&mut byte) {
            Ok(0) => return Err(Failed::Bad("the answer ended inside its head".into())),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(Failed::Io(e)),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let code = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Failed::Bad(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<u64>().ok());
    let mut body = Vec::new();
    match (keep, length) {
        (_, Some(n)) if n <= MAX_ANSWER => {
            stream.take(n).read_to_end(&mut body).map_err(Failed::Io)?;
        }
        (_, Some(n)) => return Err(Failed::Bad(format!("a body of {n} bytes is too long"))),
        (true, None) => return Err(Failed::Bad("no Content-Length on a kept connection".into())),
        (false, None) => {
            stream
                .take(MAX_ANSWER)
                .read_to_end(&mut body)
                .map_err(Failed::Io)?;
        }
    }
    Ok(Answer {
        status: code,
        headers,
        body,
    })
}
