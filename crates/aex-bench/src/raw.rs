//! The raw baseline: the same process topology as aex, with nothing but framing.
//!
//! A `raw-node` process starts its `raw-module` process with piped stdin and stdout, like an
//! aex node agent starts a module, and forwards length-prefixed frames between that pipe pair
//! and one TCP connection to the other `raw-node`: no decoding, no routing table, no crypto.
//! A forwarder flushes only when its input has nothing more buffered, as the aex node agent
//! does. A raw module writes and flushes each frame on its own, as the aex runtime does for
//! each emitted event. Its pipes are 1 MiB, what a streaming aex module's grow to. `tcp-echo` is the smallest possible server: one process, one
//! connection, frames echoed back.
//!
//! Results travel back to the controller in small JSON files, so the measured streams carry
//! nothing else.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::procs::{reaped_children_cpu, Guard};
use crate::stats::{Summary, Throughput};

/// Buffer size of every reader and writer (the aex node agent's too).
const BUF_SIZE: usize = 64 * 1024;
/// The size of a raw module's pipes: a streaming aex module's (aex-node `module/pipe.rs`).
const STREAMING_PIPE: usize = 1 << 20;
/// Longest a baseline run may take.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `aex-bench raw-node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Accept the link on a free loopback port and print its address on stdout
    #[arg(long, conflicts_with = "connect")]
    listen: bool,
    /// Connect the link to ADDR
    #[arg(long, value_name = "ADDR")]
    connect: Option<String>,
    /// Arguments of this node's `raw-module` process
    #[arg(last = true)]
    module: Vec<String>,
}

/// `aex-bench raw-module`.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    #[command(subcommand)]
    role: Role,
}

/// What a raw module does with its stdin and stdout.
#[derive(Debug, Subcommand)]
enum Role {
    /// Sends a frame, waits for it to come back, records the round trip; repeats
    Ping {
        #[arg(long)]
        size: usize,
        #[arg(long)]
        iterations: usize,
        #[arg(long)]
        warmup: usize,
        #[arg(long)]
        report: PathBuf,
    },
    /// Sends every frame back
    Echo,
    /// Sends `count` frames of `size` bytes as fast as the pipe takes them
    Source {
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
    },
    /// Counts frames and times them from the first to the last
    Sink {
        #[arg(long)]
        count: u64,
        #[arg(long)]
        report: PathBuf,
    },
}

/// Round trip through raw-module → raw-node → raw-node → raw-module (echo) and back.
pub fn rtt(dir: &Path, size: usize, iterations: usize, warmup: usize) -> Result<Summary> {
    let report = dir.join(format!("raw-rtt-{size}.json"));
    let module = [
        "ping".to_string(),
        format!("--size={size}"),
        format!("--iterations={iterations}"),
        format!("--warmup={warmup}"),
        format!("--report={}", report.display()),
    ];
    run_pair(&["echo".to_string()], &module)?;
    let v = read_report(&report)?;
    Ok(Summary {
        n: iterations,
        median_us: v["median_us"].as_f64().unwrap_or(0.0),
        p99_us: v["p99_us"].as_f64().unwrap_or(0.0),
        min_us: v["min_us"].as_f64().unwrap_or(0.0),
        max_us: v["max_us"].as_f64().unwrap_or(0.0),
    })
}

/// One-way stream raw-module (source) → raw-node → raw-node → raw-module (sink).
pub fn throughput(dir: &Path, size: usize, count: u64) -> Result<Throughput> {
    let report = dir.join(format!("raw-throughput-{size}.json"));
    let sink = [
        "sink".to_string(),
        format!("--count={count}"),
        format!("--report={}", report.display()),
    ];
    let source = [
        "source".to_string(),
        format!("--size={size}"),
        format!("--count={count}"),
    ];
    // The raw nodes wait for their modules and this process for the nodes, so the time of
    // all four lands in this process's reaped-children time.
    let before = reaped_children_cpu();
    run_pair(&sink, &source)?;
    let cpu_s = reaped_children_cpu() - before;
    let v = read_report(&report)?;
    Ok(Throughput {
        sent: count,
        received: v["received"].as_u64().unwrap_or(0),
        size,
        elapsed_s: v["elapsed_us"].as_f64().unwrap_or(0.0) / 1e6,
        cpu_s,
        lost_in_runs: None,
    })
}

/// Round trip from this process to a `tcp-echo` process over one TCP connection.
pub fn tcp_echo_rtt(size: usize, iterations: usize, warmup: usize) -> Result<Summary> {
    let mut echo = Guard::spawn(
        "tcp-echo",
        Command::new(self_exe()?)
            .arg("tcp-echo")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let addr = echo.read_line()?;
    let stream = TcpStream::connect(&addr).with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(BUF_SIZE, stream.try_clone()?);
    let mut w = BufWriter::with_capacity(BUF_SIZE, stream.try_clone()?);
    let samples = ping_loop(&mut r, &mut w, size, iterations, warmup)?;
    stream.shutdown(Shutdown::Both)?;
    echo.wait(Duration::from_secs(5))?;
    Ok(Summary::of(&mut samples.clone()))
}

/// Starts the listening node (with `far`) and the connecting node (with `near`), and waits
/// for the connecting node's module to finish.
fn run_pair(far: &[String], near: &[String]) -> Result<()> {
    let exe = self_exe()?;
    let mut b = Guard::spawn(
        "raw node B",
        Command::new(&exe)
            .args(["raw-node", "--listen", "--"])
            .args(far)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let addr = b.read_line()?;
    let mut a = Guard::spawn(
        "raw node A",
        Command::new(&exe)
            .args(["raw-node", "--connect", &addr, "--"])
            .args(near)
            .stdin(Stdio::null()),
    )?;
    let status = a.wait(RUN_LIMIT)?;
    if !status.success() {
        bail!("raw node A failed: {status}");
    }
    let status = b.wait(Duration::from_secs(30))?;
    if !status.success() {
        bail!("raw node B failed: {status}");
    }
    Ok(())
}

fn read_report(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
}

fn self_exe() -> Result<PathBuf> {
    std::env::current_exe().context("cannot locate the aex-bench binary")
}

/// `aex-bench raw-node`: forwards frames between a module process and one TCP link.
pub fn node(args: NodeArgs) -> Result<()> {
    let stream = if args.listen {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut out = io::stdout().lock();
        writeln!(out, "{}", listener.local_addr()?)?;
        out.flush()?;
        listener.accept()?.0
    } else {
        let addr = args
            .connect
            .context("raw-node needs --listen or --connect")?;
        TcpStream::connect(&addr).with_context(|| format!("connect to {addr}"))?
    };
    stream.set_nodelay(true)?;
    let mut child = Command::new(self_exe()?)
        .arg("raw-module")
        .args(&args.module)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the raw module")?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("raw module started without pipes");
    };
    // The node agent grows a module's pipes to 1 MiB once they run full (aex-node
    // `module/pipe.rs`); every raw module streams, so its pipes get that size at once.
    for pipe in [stdin.as_fd(), stdout.as_fd()] {
        let _ = rustix::pipe::fcntl_setpipe_size(pipe, STREAMING_PIPE);
    }
    let up = {
        let tcp = stream.try_clone()?;
        std::thread::spawn(move || {
            let result = forward(stdout, &tcp);
            // The module ended its output: the far side sees the end of the stream.
            let _ = tcp.shutdown(Shutdown::Write);
            result
        })
    };
    // The link ended: closing the module's stdin ends it.
    let down = forward(&stream, stdin);
    let status = child.wait()?;
    let up = up
        .join()
        .map_err(|_| anyhow::anyhow!("forwarder panicked"))?;
    down.context("link to module")?;
    up.context("module to link")?;
    if !status.success() {
        bail!("raw module failed: {status}");
    }
    Ok(())
}

/// Copies frames from `from` to `to`, flushing when `from` has nothing more buffered.
fn forward(from: impl Read, to: impl Write) -> io::Result<()> {
    let mut r = BufReader::with_capacity(BUF_SIZE, from);
    let mut w = BufWriter::with_capacity(BUF_SIZE, to);
    let mut body = Vec::new();
    while read_frame(&mut r, &mut body)? {
        write_frame(&mut w, &body)?;
        if r.buffer().is_empty() {
            w.flush()?;
        }
    }
    w.flush()
}

/// `aex-bench raw-module`.
pub fn module(args: ModuleArgs) -> Result<()> {
    // The descriptors themselves, as the aex runtime reads and writes them: `Stdout` is
    // line-buffered and would scan every frame for a newline (about 0.65 µs of CPU per 16 KiB
    // event), and `Stdin` adds a lock and a buffer; a baseline with either would be slower
    // than it needs to be.
    let mut r = BufReader::with_capacity(
        BUF_SIZE,
        std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?),
    );
    let mut w = BufWriter::with_capacity(
        BUF_SIZE,
        std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?),
    );
    match args.role {
        Role::Ping {
            size,
            iterations,
            warmup,
            report,
        } => {
            let mut samples = ping_loop(&mut r, &mut w, size, iterations, warmup)?;
            let s = Summary::of(&mut samples);
            let json = serde_json::json!({
                "median_us": s.median_us, "p99_us": s.p99_us,
                "min_us": s.min_us, "max_us": s.max_us,
            });
            std::fs::write(&report, json.to_string())?;
        }
        Role::Echo => {
            let mut body = Vec::new();
            while read_frame(&mut r, &mut body)? {
                write_frame(&mut w, &body)?;
                w.flush()?;
            }
        }
        Role::Source { size, count } => {
            let body = vec![0xa5u8; size];
            for _ in 0..count {
                write_frame(&mut w, &body)?;
                w.flush()?;
            }
        }
        Role::Sink { count, report } => {
            let mut body = Vec::new();
            let (mut received, mut first, mut last) = (0u64, None, None);
            while received < count && read_frame(&mut r, &mut body)? {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
                received += 1;
            }
            let elapsed = match (first, last) {
                (Some(f), Some(l)) => l.duration_since(f).as_secs_f64() * 1e6,
                _ => 0.0,
            };
            let json = serde_json::json!({ "received": received, "elapsed_us": elapsed });
            std::fs::write(&report, json.to_string())?;
            // Drain until the source's side closes, so nobody writes to a closed pipe.
            while read_frame(&mut r, &mut body)? {}
        }
    }
    Ok(())
}

/// `aex-bench tcp-echo`: echoes frames on one accepted connection until it closes.
pub fn tcp_echo() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{}", listener.local_addr()?)?;
        out.flush()?;
    }
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(BUF_SIZE, &stream);
    let mut w = BufWriter::with_capacity(BUF_SIZE, &stream);
    let mut body = Vec::new();
    while read_frame(&mut r, &mut body)? {
        write_frame(&mut w, &body)?;
        w.flush()?;
    }
    Ok(())
}

/// Sends `warmup + iterations` frames of `size` bytes one at a time, each after the previous
/// came back; returns the measured round trips in microseconds.
fn ping_loop(
    r: &mut impl Read,
    w: &mut impl Write,
    size: usize,
    iterations: usize,
    warmup: usize,
) -> Result<Vec<f64>> {
    let mut body = vec![0u8; size.max(8)];
    let mut back = Vec::new();
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..(warmup + iterations) as u64 {
        body[..8].copy_from_slice(&i.to_be_bytes());
        let sent = Instant::now();
        write_frame(w, &body)?;
        w.flush()?;
        if !read_frame(r, &mut back)? {
            bail!("the echo closed the stream");
        }
        let rtt = sent.elapsed().as_secs_f64() * 1e6;
        if back.get(..8) != Some(&body[..8]) {
            bail!("the echo returned another frame");
        }
        if i >= warmup as u64 {
            samples.push(rtt);
        }
    }
    Ok(samples)
}

/// Reads one frame body into `body`; false on a clean end of stream.
fn read_frame(r: &mut impl Read, body: &mut Vec<u8>) -> io::Result<bool> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    body.resize(u32::from_be_bytes(prefix) as usize, 0);
    r.read_exact(body)?;
    Ok(true)
}

/// Writes one frame (not flushed).
fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(body)
}
