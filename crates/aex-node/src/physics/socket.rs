//! The physical world socket: `<data_dir>/physics/devices.sock`, where someone on the node's machine
//! plays physics for the node's simulated devices.
//!
//! A simulated device has no soil to dry and no finger on its button, so the node lets a local
//! process stand in for them: read any device (the eye on the valve), and set what an *input*
//! senses. It is **not** the management interface and carries **no authority**: it cannot
//! load, command or attest anything, cannot drive an output (only the driver module granted the
//! output does, through the TEE layer) and sees nothing of any application but device values.
//! Access is the node's own user's: the socket lives in a directory of mode 0700
//! (`<data_dir>/physics/`), created before the socket is bound, so no other user can reach
//! it even in the moment between `bind` and the socket file's own `chmod 0600`. With real
//! hardware the socket would not exist; the world would.
//!
//! # Protocol
//!
//! Text lines of at most [`MAX_LINE`] bytes, ending in `\n`; words separated by spaces. Each
//! request gets its answer before the next is read:
//!
//! ```text
//! list               → NAME KIND VALUE held|free   (one line per device, by name)
//!                      end
//! read NAME          → ok VALUE | error MESSAGE
//! set NAME VALUE     → ok VALUE | error MESSAGE    (inputs only)
//! watch NAME         → ok VALUE, then VALUE at every change, until the client disconnects
//! anything else      → error MESSAGE
//! ```
//!
//! A longer line is answered `error ...` and skipped up to its end. The server runs on std
//! threads (one per client, at most [`MAX_CLIENTS`]), apart from the node's async runtime, and
//! notices a stopped node or a vanished watcher within a second.
//!
//! [`PhysicsClient`] is the client side, for `aex device` and tests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use aex_tee::devices::{check_name, DeviceGrants, DeviceKind, DeviceSpecError};
use tracing::{debug, warn};

use super::world::{DeviceView, World};

/// The socket's file name, in `PHYSICS_DIR` of the node's data directory.
pub const PHYSICS_SOCKET: &str = "devices.sock";
/// The private directory (mode 0700) holding the socket, in the node's data directory.
pub const PHYSICS_DIR: &str = "physics";
/// Longest request line, newline excluded.
pub const MAX_LINE: usize = 256;
/// Clients served at once; more are answered with an error and closed.
pub const MAX_CLIENTS: usize = 16;
/// How often blocked reads and watches look up for a stopped node or a vanished client.
const POLL: Duration = Duration::from_secs(1);
/// How often the accepting thread looks for a client or a stopped node.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// Limit on the node's answer to `list`, `read` and `set`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const USAGE: &str = "commands are: list, read NAME, set NAME VALUE, watch NAME";

/// Where the node with data directory `data_dir` listens for the physical world.
pub fn physics_socket(data_dir: &Path) -> PathBuf {
    data_dir.join(PHYSICS_DIR).join(PHYSICS_SOCKET)
}

/// A physical-world socket could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhysicsError {
    /// Reading or writing the socket failed.
    #[error("device socket: {0}")]
    Io(#[from] io::Error),
    /// The node refused the request (unknown device, an output, a value out of range), or it
    /// was not a valid request.
    #[error("{0}")]
    Refused(String),
    /// The device name is not one a node can have; nothing was sent.
    #[error(transparent)]
    Name(#[from] DeviceSpecError),
    /// The node's answer is not what the protocol says.
    #[error("unexpected answer on the device socket: `{0}`")]
    Protocol(String),
}

/// A client of a node's physical-world socket.
#[derive(Debug)]
pub struct PhysicsClient {
    stream: BufReader<UnixStream>,
}

impl PhysicsClient {
    /// Connects to the socket at `path` (see [`physics_socket`]).
    pub fn connect(path: &Path) -> io::Result<PhysicsClient> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(PhysicsClient {
            stream: BufReader::new(stream),
        })
    }

    /// Every device of the node, by name, with its value and whether a driver holds it.
    pub fn list(&mut self) -> Result<Vec<DeviceView>, PhysicsError> {
        self.send("list")?;
        let mut devices = Vec::new();
        loop {
            let line = self.line()?;
            if line == "end" {
                return Ok(devices);
            }
            if let Some(message) = line.strip_prefix("error ") {
                return Err(PhysicsError::Refused(message.to_owned()));
            }
            devices.push(parse_view(&line).ok_or(PhysicsError::Protocol(line))?);
        }
    }

    /// What `device` reads now.
    pub fn read(&mut self, device: &str) -> Result<u32, PhysicsError> {
        check_name(device)?;
        self.send(&format!("read {device}"))?;
        self.answer()
    }

    /// Makes input `device` sense `value`; returns the value set.
    pub fn set(&mut self, device: &str, value: u32) -> Result<u32, PhysicsError> {
        check_name(device)?;
        self.send(&format!("set {device} {value}"))?;
        self.answer()
    }

    /// Calls `each` with `device`'s value now, then at every change, until `each` returns
    /// false (or the node goes away: an error).
    pub fn watch(
        &mut self,
        device: &str,
        mut each: impl FnMut(u32) -> bool,
    ) -> Result<(), PhysicsError> {
        check_name(device)?;
        self.send(&format!("watch {device}"))?;
        if !each(self.answer()?) {
            return Ok(());
        }
        self.stream.get_ref().set_read_timeout(None)?;
        loop {
            let line = self.line()?;
            let value = line.parse().map_err(|_| PhysicsError::Protocol(line))?;
            if !each(value) {
                return Ok(());
            }
        }
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(line.as_bytes())?;
        stream.write_all(b"\n")
    }

    /// The next line, without its newline; end of stream is an error.
    fn line(&mut self) -> Result<String, PhysicsError> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(PhysicsError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the device socket",
            )));
        }
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// `ok VALUE` or `error MESSAGE`.
    fn answer(&mut self) -> Result<u32, PhysicsError> {
        let line = self.line()?;
        if let Some(message) = line.strip_prefix("error ") {
            return Err(PhysicsError::Refused(message.to_owned()));
        }
        line.strip_prefix("ok ")
            .and_then(|v| v.parse().ok())
            .ok_or(PhysicsError::Protocol(line))
    }
}

/// Parses a `list` line: `NAME KIND VALUE held|free`.
fn parse_view(line: &str) -> Option<DeviceView> {
    let mut words = line.split(' ');
    let (name, kind, value, holder) = (words.next()?, words.next()?, words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    Some(DeviceView {
        name: name.to_owned(),
        kind: DeviceKind::parse(kind).ok()?,
        value: value.parse().ok()?,
        held: match holder {
            "held" => true,
            "free" => false,
            _ => return None,
        },
    })
}

/// The listening socket and its accepting thread; dropping it stops accepting and removes the
/// socket file (clients notice within [`POLL`]).
pub(crate) struct PhysicsServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PhysicsServer {
    /// Listens on `path` (a stale file there is removed first; the socket is made mode 0600)
    /// inside its parent directory, which is created (or narrowed) to mode 0700 first.
    /// `grants` only say which devices are held (`list`).
    pub(crate) fn start(
        path: PathBuf,
        world: Arc<World>,
        grants: Arc<dyn DeviceGrants>,
    ) -> io::Result<PhysicsServer> {
        if let Some(dir) = path.parent() {
            private_dir(dir)?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("aex-physics".into())
                .spawn(move || accept(listener, world, grants, stop))?
        };
        Ok(PhysicsServer {
            path,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for PhysicsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The accepting thread polls, so this returns within `ACCEPT_POLL` even when the
        // socket file is already gone.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates `dir` readable, writable and searchable by its owner only, or narrows an existing
/// one to that; refuses a path that is not a directory (a symlink included).
fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => other?,
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn accept(
    listener: UnixListener,
    world: Arc<World>,
    grants: Arc<dyn DeviceGrants>,
    stop: Arc<AtomicBool>,
) {
    let clients = Arc::new(AtomicUsize::new(0));
    if let Err(e) = listener.set_nonblocking(true) {
        warn!(error = %e, "device socket: cannot poll; closing it");
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => match stream.set_nonblocking(false) {
                Ok(()) => stream,
                Err(e) => {
                    debug!(error = %e, "device socket: client dropped");
                    continue;
                }
            },
            Err(e) if would_block(&e) => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) => {
                warn!(error = %e, "device socket: accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::Relaxed);
            let _ = writeln!(stream, "error too many clients (at most {MAX_CLIENTS})");
            continue;
        }
        let (world, grants) = (world.clone(), grants.clone());
        let (stop, count) = (stop.clone(), clients.clone());
        let spawned = std::thread::Builder::new()
            .name("aex-physics-client".into())
            .spawn(move || {
                if let Err(e) = serve(stream, &world, &*grants, &stop) {
                    debug!(error = %e, "device socket client ended");
                }
                count.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            clients.fetch_sub(1, Ordering::Relaxed);
            warn!(error = %e, "device socket: cannot start a client thread");
        }
    }
}

/// Serves one client until it disconnects or the node stops.
fn serve(
    mut stream: UnixStream,
    world: &World,
    grants: &dyn DeviceGrants,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_read_timeout(Some(POLL))?;
    let mut lines = Lines::default();
    loop {
        let reply = match lines.next(&mut stream, stop)? {
            Incoming::Closed => return Ok(()),
            Incoming::TooLong => format!("error line longer than {MAX_LINE} bytes; {USAGE}\n"),
            Incoming::Line(line) => match parse(&line) {
                Ok(Request::Watch(device)) => return watch(stream, world, stop, device),
                Ok(request) => answer(world, grants, request),
                Err(message) => format!("error {message}\n"),
            },
        };
        stream.write_all(reply.as_bytes())?;
    }
}

/// A parsed request line.
#[derive(Debug, PartialEq, Eq)]
enum Request<'a> {
    List,
    Read(&'a str),
    Set(&'a str, u32),
    Watch(&'a str),
}

/// Parses one request line; the error is a one-line message.
fn parse(line: &str) -> Result<Request<'_>, String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let request = match words.as_slice() {
        ["list"] => Request::List,
        ["read", device] => Request::Read(device),
        ["set", device, value] => match value.parse::<u32>() {
            Ok(value) => Request::Set(device, value),
            Err(_) => {
                return Err(format!(
                    "`{}` is not a value: use a whole number",
                    shown(value)
                ))
            }
        },
        ["watch", device] => Request::Watch(device),
        [] => return Err(format!("empty line; {USAGE}")),
        [command @ ("list" | "read" | "set" | "watch"), ..] => {
            return Err(format!("wrong number of words for `{command}`; {USAGE}"))
        }
        [command, ..] => return Err(format!("unknown command `{}`; {USAGE}", shown(command))),
    };
    Ok(request)
}

/// The answer to a request other than `watch`, newline-terminated.
fn answer(world: &World, grants: &dyn DeviceGrants, request: Request<'_>) -> String {
    let result = match request {
        Request::List => {
            let mut text = String::new();
            for d in world.list(grants) {
                let holder = if d.held { "held" } else { "free" };
                text.push_str(&format!("{} {} {} {holder}\n", d.name, d.kind, d.value));
            }
            text.push_str("end\n");
            return text;
        }
        Request::Read(device) => world.sense(device),
        Request::Set(device, value) => world.set(device, value).map(|()| value),
        Request::Watch(device) => world.watch(device, None, Duration::ZERO).map(|(_, v)| v),
    };
    match result {
        Ok(value) => format!("ok {value}\n"),
        Err(e) => format!("error {e}\n"),
    }
}

/// Streams `device`'s value at every change until the client disconnects or the node stops.
fn watch(mut stream: UnixStream, world: &World, stop: &AtomicBool, device: &str) -> io::Result<()> {
    let mut seen = match world.watch(device, None, Duration::ZERO) {
        Ok((version, value)) => {
            stream.write_all(format!("ok {value}\n").as_bytes())?;
            version
        }
        Err(e) => {
            stream.write_all(format!("error {e}\n").as_bytes())?;
            return Ok(());
        }
    };
    // From here the client only listens; a read that ends means it has gone.
    stream.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut scratch = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let Ok((version, value)) = world.watch(device, Some(seen), POLL) else {
            return Ok(());
        };
        if version != seen {
            seen = version;
            stream.write_all(format!("{value}\n").as_bytes())?;
        }
        match stream.read(&mut scratch) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One read from a client.
enum Incoming {
    Line(String),
    TooLong,
    Closed,
}

/// Splits a client's bytes into lines of at most [`MAX_LINE`] bytes.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
    /// Inside an over-long line: drop bytes up to the next newline.
    skipping: bool,
}

impl Lines {
    fn next(&mut self, stream: &mut impl Read, stop: &AtomicBool) -> io::Result<Incoming> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                if end > MAX_LINE {
                    return Ok(Incoming::TooLong);
                }
                let text = String::from_utf8_lossy(&line[..end]);
                return Ok(Incoming::Line(text.trim_end_matches('\r').to_owned()));
            }
            if self.pending.len() > MAX_LINE {
                self.pending.clear();
                if !std::mem::replace(&mut self.skipping, true) {
                    return Ok(Incoming::TooLong);
                }
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(Incoming::Closed);
            }
            let mut buf = [0u8; 512];
            match stream.read(&mut buf) {
                Ok(0) => return Ok(Incoming::Closed),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A client's word, made printable and short for an error line.
fn shown(word: &str) -> String {
    let short: String = word.chars().take(32).collect();
    short.escape_default().to_string()
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
