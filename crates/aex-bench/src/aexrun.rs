//! The aex event scenarios: round trips with the `ping`/`pong` example modules and a one-way
//! stream with the `source`/`sink` benchmark modules, across two `aex node` processes.
//!
//! Round trips are timed inside `ping` (an `Instant` per ping, kept until its pong returns)
//! and summarised by its `stats` entry point; the stream is timed inside `sink`, from the
//! first to the last event. Both are read with `ops::call`, sealed under the module keys like
//! any call, and polled sparingly so that polling barely touches the measured path.

use std::time::{Duration, Instant};

use aex_deploy::ops::call::call;
use aex_deploy::ops::deploy::{apply, Options};
use aex_deploy::progress::Quiet;
use aex_deploy::App;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cluster::{Cluster, Env};
use crate::procs::{rss_kib, tree_cpu};
use crate::stats::{Summary, Throughput};

/// The application: ping on node1, pong on node2; source on node1, sink on node2; and the same
/// stream into a persistent sink, feeder on node1, keeper on node2 (issue 16).
const APP: &str = r#"
[[module]]
name = "ping"
crate = "{root}/examples/ping-pong/ping"
node = "node1"

[[module]]
name = "pong"
crate = "{root}/examples/ping-pong/pong"
node = "node2"

[[module]]
name = "source"
crate = "{root}/crates/aex-bench/modules/source"
node = "node1"

[[module]]
name = "sink"
crate = "{root}/crates/aex-bench/modules/sink"
node = "node2"

[[connection]]
from = "ping.ping"
to = "pong.ping"

[[connection]]
from = "pong.pong"
to = "ping.pong"

[[module]]
name = "feeder"
crate = "{root}/crates/aex-bench/modules/source"
node = "node1"

[[module]]
name = "keeper"
crate = "{root}/crates/aex-bench/modules/keeper"
node = "node2"

[[connection]]
from = "source.data"
to = "sink.data"

[[connection]]
from = "feeder.data"
to = "keeper.data"
"#;

/// A stream that makes no progress for this long has lost events.
const STALL: Duration = Duration::from_secs(3);

/// The event application, deployed on its two nodes, between measurements.
pub struct Events {
    cluster: Cluster,
    /// Seconds spent building the modules (cached builds are near zero).
    pub build_s: f64,
}

/// Resident memory after the runs, KiB.
#[derive(Debug, Default)]
pub struct Memory {
    /// node1's agent.
    pub node_kib: u64,
    /// Each module, by name.
    pub modules_kib: Vec<(String, u64)>,
}

impl Events {
    /// Starts two nodes, builds the modules (or reuses their builds) and deploys them.
    pub fn start(env: &mut Env) -> Result<Events> {
        let body = APP.replace("{root}", &env.root.display().to_string());
        let mut cluster = Cluster::start(env, &["node1", "node2"], &body)?;
        let started = Instant::now();
        let built = cluster.build(env)?;
        let build_s = started.elapsed().as_secs_f64();
        apply(&mut cluster.app, &built, &Quiet, &Options::default())
            .context("deploy the event benchmark")?;
        Ok(Events { cluster, build_s })
    }

    /// `warmup` unmeasured, then `count` measured round trips of `size` bytes.
    pub fn round_trips(&mut self, size: usize, count: usize, warmup: usize) -> Result<Summary> {
        round_trips(&mut self.cluster.app, warmup, size)?;
        round_trips(&mut self.cluster.app, count, size)
    }

    /// An unmeasured stream of a tenth of `count`, then a measured one of `count` events.
    pub fn stream(&mut self, size: usize, count: u64) -> Result<Throughput> {
        self.stream_between(STREAM, size, count)
    }

    /// [`Events::stream`] into the persistent sink, which commits its state (sealed, stored,
    /// counted) before it grants nothing more than the plain one: what persistence costs.
    pub fn stream_persistent(&mut self, size: usize, count: u64) -> Result<Throughput> {
        self.stream_between(PERSISTENT_STREAM, size, count)
    }

    fn stream_between(&mut self, ends: Ends, size: usize, count: u64) -> Result<Throughput> {
        stream(&mut self.cluster.app, ends, (count / 10).max(10), size)?;
        // Both node agents and every module under them: the stream's whole topology (the
        // idle modules and the sink's polled reports add little).
        let nodes: Vec<u32> = ["node1", "node2"]
            .iter()
            .filter_map(|n| self.cluster.node_pid(n))
            .collect();
        let before = tree_cpu(&nodes);
        let mut measured = stream(&mut self.cluster.app, ends, count, size)?;
        measured.cpu_s = tree_cpu(&nodes) - before;
        Ok(measured)
    }

    /// Reads resident memory, then stops the nodes and their modules.
    pub fn finish(mut self) -> Result<Memory> {
        let mut memory = Memory {
            node_kib: self
                .cluster
                .node_pid("node1")
                .and_then(rss_kib)
                .unwrap_or(0),
            ..Memory::default()
        };
        for node in ["node1", "node2"] {
            for (name, pid) in self.cluster.module_pids(node)? {
                memory.modules_kib.push((name, rss_kib(pid).unwrap_or(0)));
            }
        }
        self.cluster.shutdown()?;
        Ok(memory)
    }
}

/// Makes `count` round trips of `size` bytes and reads ping's statistics.
fn round_trips(app: &mut App, count: usize, size: usize) -> Result<Summary> {
    let args = json!({ "count": count, "size": size }).to_string();
    call(app, "ping", "start", args.as_bytes())?;
    // Poll rarely: each poll is a command the ping module handles between two pings.
    std::thread::sleep(Duration::from_micros(30 * count as u64));
    let limit = Instant::now() + Duration::from_secs(60) + Duration::from_millis(count as u64);
    loop {
        let stats = call_json(app, "ping", "stats")?;
        if stats["done"].as_bool() == Some(true) {
            return Ok(Summary {
                n: stats["completed"].as_u64().unwrap_or(0) as usize,
                median_us: stats["median_us"].as_f64().unwrap_or(0.0),
                p99_us: stats["p99_us"].as_f64().unwrap_or(0.0),
                min_us: stats["min_us"].as_f64().unwrap_or(0.0),
                max_us: stats["max_us"].as_f64().unwrap_or(0.0),
            });
        }
        if Instant::now() > limit {
            bail!(
                "ping completed {} of {count} round trips",
                stats["completed"]
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The source and sink modules of a stream.
type Ends = (&'static str, &'static str);

const STREAM: Ends = ("source", "sink");
const PERSISTENT_STREAM: Ends = ("feeder", "keeper");

/// Streams `count` events of `size` bytes from source to sink and reads what arrived.
fn stream(app: &mut App, (source, sink): Ends, count: u64, size: usize) -> Result<Throughput> {
    let expect = json!({ "count": count }).to_string();
    call(app, sink, "expect", expect.as_bytes())?;
    // The source emits from its own thread once `start` returned, as fast as the runtime's
    // per-connection credit lets it: nothing paces it here, and nothing is dropped.
    let start = json!({ "count": count, "size": size }).to_string();
    call(app, source, "start", start.as_bytes())?;
    let mut last = (0, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let report = call_json(app, sink, "report")?;
        let received = report["received"].as_u64().unwrap_or(0);
        if report["done"].as_bool() == Some(true) || last.1.elapsed() > STALL {
            return Ok(Throughput {
                sent: count,
                received,
                size,
                elapsed_s: report["elapsed_us"].as_f64().unwrap_or(0.0) / 1e6,
                cpu_s: 0.0,
                lost_in_runs: None,
            });
        }
        if received != last.0 {
            last = (received, Instant::now());
        }
    }
}

fn call_json(app: &mut App, module: &str, entry: &str) -> Result<Value> {
    let bytes = call(app, module, entry, b"")?;
    serde_json::from_slice(&bytes).with_context(|| format!("{module}.{entry} returned bad JSON"))
}
