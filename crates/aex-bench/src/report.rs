//! A benchmark run: every scenario in turn, then the results table (stdout) and the JSON
//! object (`--json FILE`).
//!
//! Progress goes to stderr. Figures are medians and ratios; the targets of issue 7 are
//! checked at the end and each is printed as met or missed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::aexrun;
use crate::cluster::Env;
use crate::deploy::{self, Deployed};
use crate::raw;
use crate::stats::{Summary, Throughput};
use crate::RunArgs;

/// Round-trip payload sizes.
const RTT_SIZES: [usize; 4] = [8, 64, 1024, 16 * 1024];
/// Stream payload sizes.
const STREAM_SIZES: [usize; 2] = [64, 16 * 1024];
/// Targets: aex median round trip over the raw baseline's, at most.
const RTT_RATIO_TARGET: f64 = 1.25;
/// aex throughput over the raw baseline's, at least.
const THROUGHPUT_RATIO_TARGET: f64 = 0.5;
/// The event size streamed into the persistent sink as well.
const PERSISTENT_SIZE: usize = 64;

/// Seconds to deploy 100 modules with 100 connections, at most; 1000 get ten times that.
const DEPLOY_100_TARGET_S: f64 = 2.0;
/// Resident memory of a module process, under.
const MODULE_RSS_TARGET_KIB: u64 = 8 * 1024;

/// Everything one run measured.
struct Results {
    /// Per size: aex, raw, tcp echo (medians over the rounds).
    rtt: Vec<(usize, Summary, Summary, Summary)>,
    /// Per size: aex, raw (median-rate rounds, with the events sent and lost by all rounds).
    throughput: Vec<(usize, Throughput, Throughput)>,
    /// Per figure: the aex/raw ratio of each round, to show the spread.
    spread: Vec<(String, Vec<f64>)>,
    /// The 64 B stream into the persistent sink (median-rate round), and its ratio to the
    /// plain sink's in each round (issue 16).
    persistent: Option<(Throughput, Vec<f64>)>,
    memory: aexrun::Memory,
    build_s: f64,
    deployed: Vec<Deployed>,
}

/// Runs every scenario and reports.
pub fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let quick = args.quick;
    let iterations = args.iterations.unwrap_or(if quick { 1000 } else { 10_000 });
    let events = args
        .events
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let two_node = args.deploy_sizes.clone().unwrap_or_else(|| {
        if quick {
            vec![2, 10, 50]
        } else {
            vec![2, 10, 100]
        }
    });
    let mut one_node = args
        .deploy_one_node
        .clone()
        .unwrap_or_else(|| vec![if quick { 200 } else { 1000 }]);
    one_node.retain(|&n| n > 0);
    let rounds = args.rounds.max(1);
    let per_round = iterations.div_ceil(rounds);
    let warmup = (per_round / 10).clamp(10, 500);
    let mut env = Env::new(&args)?;
    if args.deploy_only {
        eprintln!("aex-bench: deployments only; nodes `{}`", env.aex.display());
        return deploy::only(&mut env, &two_node, &one_node, args.json.as_deref());
    }
    eprintln!(
        "aex-bench: {rounds} rounds of {per_round} round trips per size and of {events} events \
         per stream; modules built {:?}; nodes `{}`",
        env.profile,
        env.aex.display()
    );
    let scratch = tempfile::Builder::new()
        .prefix("aex-bench-raw-")
        .tempdir()?;
    eprintln!("starting the aex event application (modules built with cargo first, if needed)");
    let mut events_app = aexrun::Events::start(&mut env)?;
    if let Some(sizes) = &args.streams_only {
        return streams_only(events_app, scratch.path(), sizes, events, rounds);
    }

    // Every round measures aex and both baselines side by side, so that a machine whose
    // speed drifts during the run affects them alike.
    let mut rtt_runs: Vec<[Vec<Summary>; 3]> =
        RTT_SIZES.iter().map(|_| Default::default()).collect();
    let mut stream_runs: Vec<[Vec<Throughput>; 2]> =
        STREAM_SIZES.iter().map(|_| Default::default()).collect();
    let mut persistent_runs: Vec<(Throughput, f64)> = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        for (i, &size) in RTT_SIZES.iter().enumerate() {
            eprintln!("  round trips, {size} B × {per_round}: aex, raw, tcp echo");
            let [aex, raw, tcp] = &mut rtt_runs[i];
            aex.push(events_app.round_trips(size, per_round, warmup)?);
            raw.push(raw::rtt(scratch.path(), size, per_round, warmup)?);
            tcp.push(raw::tcp_echo_rtt(size, per_round, warmup)?);
        }
        for (i, &size) in STREAM_SIZES.iter().enumerate() {
            let count = stream_events(events, size);
            eprintln!("  stream, {size} B × {count}: aex, raw");
            let [aex, raw] = &mut stream_runs[i];
            let plain = events_app.stream(size, count)?;
            if size == PERSISTENT_SIZE {
                eprintln!("  stream, {size} B × {count}: into a persistent sink");
                let kept = events_app.stream_persistent(size, count)?;
                persistent_runs.push((kept, ratio(kept.events_per_s(), plain.events_per_s())));
            }
            aex.push(plain);
            raw.push(raw::throughput(scratch.path(), size, count)?);
        }
    }
    let build_s = events_app.build_s;
    let memory = events_app.finish()?;

    eprintln!("deployments");
    let mut deployed = vec![];
    for &n in &two_node {
        eprintln!("  {n} modules, {n} connections, two nodes");
        deployed.push(deploy::ring(&mut env, n, 2)?);
    }
    for &n in &one_node {
        eprintln!("  {n} modules, {n} connections, one node");
        deployed.push(deploy::ring(&mut env, n, 1)?);
    }

    let results = Results {
        rtt: RTT_SIZES
            .iter()
            .zip(&rtt_runs)
            .map(|(size, [aex, raw, tcp])| {
                (
                    *size,
                    Summary::median_of(aex),
                    Summary::median_of(raw),
                    Summary::median_of(tcp),
                )
            })
            .collect(),
        throughput: STREAM_SIZES
            .iter()
            .zip(&stream_runs)
            .map(|(size, [aex, raw])| {
                (
                    *size,
                    Throughput::median_of(aex),
                    Throughput::median_of(raw),
                )
            })
            .collect(),
        spread: rtt_runs
            .iter()
            .zip(RTT_SIZES)
            .map(|([aex, raw, _], size)| {
                let ratios = aex
                    .iter()
                    .zip(raw)
                    .map(|(a, r)| ratio(a.median_us, r.median_us));
                (format!("rtt_{}", label(size)), ratios.collect())
            })
            .chain(
                stream_runs
                    .iter()
                    .zip(STREAM_SIZES)
                    .map(|([aex, raw], size)| {
                        let ratios = aex
                            .iter()
                            .zip(raw)
                            .map(|(a, r)| ratio(a.events_per_s(), r.events_per_s()));
                        (format!("throughput_{}", label(size)), ratios.collect())
                    }),
            )
            .collect(),
        persistent: (!persistent_runs.is_empty()).then(|| {
            let runs: Vec<Throughput> = persistent_runs.iter().map(|(t, _)| *t).collect();
            let ratios = persistent_runs.iter().map(|(_, r)| *r).collect();
            (Throughput::median_of(&runs), ratios)
        }),
        memory,
        build_s,
        deployed,
    };
    let mut json = results.json();
    for (key, value) in machine() {
        json.insert(key.into(), Value::from(value));
    }
    json.insert("quick".into(), Value::from(u8::from(quick)));
    json.insert("iterations".into(), Value::from(per_round * rounds));
    json.insert("rounds".into(), Value::from(rounds));
    json.insert("stream_events".into(), Value::from(events));
    json.insert("run_s".into(), Value::from(started.elapsed().as_secs_f64()));
    let mut table = results.table(&json);
    let text = |k: &str| {
        json.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let _ = writeln!(
        table,
        "\nMachine: {} × {}, {} memory, Linux {}",
        text("machine_cores"),
        text("machine_cpu"),
        text("machine_memory"),
        text("machine_kernel")
    );
    std::io::stdout().lock().write_all(table.as_bytes())?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `--streams-only`: each round streams every size through aex and then the raw baseline,
/// and prints each stream's rate and CPU per event as it ends, then the medians.
fn streams_only(
    mut app: aexrun::Events,
    scratch: &std::path::Path,
    sizes: &[usize],
    events: u64,
    rounds: usize,
) -> Result<()> {
    let mut runs: Vec<[Vec<Throughput>; 2]> = sizes.iter().map(|_| Default::default()).collect();
    for round in 1..=rounds {
        for (i, &size) in sizes.iter().enumerate() {
            let count = stream_events(events, size);
            let aex = app.stream(size, count)?;
            let raw = raw::throughput(scratch, size, count)?;
            eprintln!(
                "round {round} {}: aex {:.0} ev/s {:.2} µs/ev, raw {:.0} ev/s {:.2} µs/ev, \
                 ratio {:.2}, cpu ratio {:.2}, lost {} / {}",
                human(size),
                aex.events_per_s(),
                aex.cpu_us_per_event(),
                raw.events_per_s(),
                raw.cpu_us_per_event(),
                ratio(aex.events_per_s(), raw.events_per_s()),
                ratio(aex.cpu_us_per_event(), raw.cpu_us_per_event()),
                aex.lost(),
                raw.lost(),
            );
            runs[i][0].push(aex);
            runs[i][1].push(raw);
        }
    }
    for (size, [aex, raw]) in sizes.iter().zip(&runs) {
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[(v.len() - 1) / 2]
        };
        let mut cpu: Vec<f64> = aex.iter().map(Throughput::cpu_us_per_event).collect();
        let mut raw_cpu: Vec<f64> = raw.iter().map(Throughput::cpu_us_per_event).collect();
        let mut ratios: Vec<f64> = aex
            .iter()
            .zip(raw)
            .map(|(a, r)| ratio(a.events_per_s(), r.events_per_s()))
            .collect();
        let (a, r) = (Throughput::median_of(aex), Throughput::median_of(raw));
        println!(
            "{}: aex {:.0} ev/s, raw {:.0} ev/s, ratio median {:.2}; CPU µs/event aex {:.2} \
             raw {:.2} (medians over {} rounds)",
            human(*size),
            a.events_per_s(),
            r.events_per_s(),
            median(&mut ratios),
            median(&mut cpu),
            median(&mut raw_cpu),
            aex.len(),
        );
    }
    app.finish().map(|_| ())
}

/// What the figures were measured on: CPU, cores, memory, kernel.
fn machine() -> Vec<(&'static str, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    vec![
        ("machine_cpu", field(&cpuinfo, "model name")),
        (
            "machine_cores",
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        ("machine_memory", field(&read("/proc/meminfo"), "MemTotal")),
        (
            "machine_kernel",
            read("/proc/sys/kernel/osrelease").trim().to_string(),
        ),
    ]
}

/// Events per stream of `size`-byte events: fewer for large events, so each stream moves a
/// comparable time's worth of data.
pub fn stream_events(events: u64, size: usize) -> u64 {
    if size > 1024 {
        (events / 10).max(10)
    } else {
        events
    }
}

/// `8b`, `64b`, `1kib`, `16kib`.
fn label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}kib", size / 1024)
    } else {
        format!("{size}b")
    }
}

/// `8 B`, `1 KiB`.
fn human(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl Results {
    /// Events lost by aex's measured streams and by the raw baseline's, over every round
    /// and every stream size.
    fn lost_events(&self) -> (u64, u64) {
        let kept = self.persistent.as_ref().map_or(0, |(t, _)| t.lost());
        self.throughput
            .iter()
            .fold((kept, 0), |(a, r), (_, aex, raw)| {
                (a + aex.lost(), r + raw.lost())
            })
    }

    /// Every figure, by JSON key. Among them:
    ///
    /// * `rtt_<size>_median_us`, `raw_rtt_<size>_median_us`, `tcp_echo_rtt_<size>_median_us`:
    ///   the median round trip of each round, then the median over the rounds.
    /// * `rtt_<size>_p99_us`, `raw_rtt_<size>_p99_us`, `tcp_echo_rtt_<size>_p99_us` (so
    ///   `rtt_64b_p99_us` and `raw_rtt_64b_p99_us`): the 99th percentile of each round's
    ///   per-round-trip samples ([`crate::stats::quantile`], nearest rank ⌈n·0.99⌉; for aex
    ///   computed by the `ping` module's `stats` with the same rule), then the median over
    ///   the rounds — the same combination as the medians, so p99 ≥ median always holds.
    ///   It is not the p99 of all rounds' samples pooled.
    /// * `throughput_<size>_cpu_us_per_event`, `raw_throughput_<size>_cpu_us_per_event`: CPU
    ///   time (user and system) of every process of the stream (both node agents and all
    ///   their modules; the raw nodes and modules, their start and exit included) per event
    ///   received, in the round of median rate; `throughput_<size>_cpu_ratio_to_raw` their
    ///   ratio. Steadier than the rates on a shared machine.
    /// * `throughput_<size>_lost_events`, `raw_throughput_<size>_lost_events`: events sent
    ///   but never received, summed over the rounds (integers written as floats).
    /// * `lost_events`: aex's events lost over the whole run, an integer: the sum of every
    ///   `throughput_<size>_lost_events` (all rounds, all stream sizes; the unmeasured
    ///   warm-up streams are not counted). `raw_lost_events` is the same for the raw
    ///   baseline (a loss there is a fault of the benchmark, since pipes and TCP block).
    fn json(&self) -> BTreeMap<String, Value> {
        let mut j = BTreeMap::new();
        let mut put = |k: String, v: f64| {
            j.insert(k, Value::from(v));
        };
        for (size, aex, raw, tcp) in &self.rtt {
            let l = label(*size);
            for (prefix, s) in [("rtt", aex), ("raw_rtt", raw), ("tcp_echo_rtt", tcp)] {
                put(format!("{prefix}_{l}_median_us"), s.median_us);
                put(format!("{prefix}_{l}_p99_us"), s.p99_us);
            }
            put(
                format!("rtt_{l}_ratio_to_raw"),
                ratio(aex.median_us, raw.median_us),
            );
            put(
                format!("rtt_{l}_ratio_to_tcp_echo"),
                ratio(aex.median_us, tcp.median_us),
            );
        }
        for (size, aex, raw) in &self.throughput {
            let l = label(*size);
            for (prefix, t) in [("throughput", aex), ("raw_throughput", raw)] {
                put(format!("{prefix}_{l}_events_per_s"), t.events_per_s());
                put(format!("{prefix}_{l}_mb_per_s"), t.mb_per_s());
                put(format!("{prefix}_{l}_lost_events"), t.lost() as f64);
                put(
                    format!("{prefix}_{l}_cpu_us_per_event"),
                    t.cpu_us_per_event(),
                );
            }
            put(
                format!("throughput_{l}_cpu_ratio_to_raw"),
                ratio(aex.cpu_us_per_event(), raw.cpu_us_per_event()),
            );
            put(
                format!("throughput_{l}_ratio_to_raw"),
                ratio(aex.events_per_s(), raw.events_per_s()),
            );
        }
        if let Some((kept, ratios)) = &self.persistent {
            let l = label(PERSISTENT_SIZE);
            put(
                format!("persistent_throughput_{l}_events_per_s"),
                kept.events_per_s(),
            );
            put(
                format!("persistent_throughput_{l}_lost_events"),
                kept.lost() as f64,
            );
            put(format!("persistent_throughput_{l}_ratio_to_aex"), {
                let mut sorted = ratios.clone();
                sorted.sort_by(f64::total_cmp);
                crate::stats::quantile(&sorted, 0.5)
            });
        }
        for d in &self.deployed {
            let key = if d.nodes == 1 {
                format!("deploy_{}_modules_one_node", d.modules)
            } else {
                format!("deploy_{}_modules", d.modules)
            };
            put(format!("{key}_s"), d.total_s);
            put(
                format!("{key}_per_module_ms"),
                d.total_s * 1e3 / d.modules as f64,
            );
            for (phase, secs) in &d.phases {
                put(format!("{key}_{}_s", phase.replace(' ', "_")), *secs);
            }
            put(format!("{key}_node_rss_kib"), d.node_rss_kib as f64);
            put(format!("{key}_module_rss_kib"), d.module_rss_kib as f64);
        }
        // The two headline deployment figures, measured or (with smaller runs) extrapolated
        // linearly from the largest deployment of the same shape, else of any shape;
        // `_measured` says which.
        for (n, nodes) in [(100usize, 2usize), (1000, 1)] {
            let same_shape = self
                .deployed
                .iter()
                .filter(|d| (d.nodes == 1) == (nodes == 1));
            let exact = same_shape.clone().find(|d| d.modules == n);
            let largest = same_shape
                .max_by_key(|d| d.modules)
                .or_else(|| self.deployed.iter().max_by_key(|d| d.modules));
            let (secs, measured) = match (exact, largest) {
                (Some(d), _) => (d.total_s, 1.0),
                (None, Some(d)) => (d.total_s / d.modules as f64 * n as f64, 0.0),
                (None, None) => (0.0, 0.0),
            };
            put(format!("deploy_{n}_modules_s"), secs);
            put(format!("deploy_{n}_modules_measured"), measured);
        }
        for (figure, ratios) in &self.spread {
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(0.0, f64::max);
            put(format!("{figure}_ratio_to_raw_min"), min);
            put(format!("{figure}_ratio_to_raw_max"), max);
        }
        let rss = &self.memory.modules_kib;
        let pong = rss.iter().find(|(n, _)| n == "pong").map_or(0, |(_, k)| *k);
        put("module_rss_kib".into(), pong as f64);
        put(
            "module_rss_max_kib".into(),
            rss.iter().map(|(_, k)| *k).max().unwrap_or(0) as f64,
        );
        for (name, kib) in rss {
            put(format!("module_{name}_rss_kib"), *kib as f64);
        }
        put("node_rss_kib".into(), self.memory.node_kib as f64);
        put("module_build_s".into(), self.build_s);
        let (lost, raw_lost) = self.lost_events();
        j.insert("lost_events".into(), Value::from(lost));
        j.insert("raw_lost_events".into(), Value::from(raw_lost));
        j
    }

    fn table(&self, j: &BTreeMap<String, Value>) -> String {
        let num = |k: &str| j.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let mut t = String::new();
        let _ = writeln!(
            t,
            "\nEvent round trip, µs (median / p99; medians over the rounds)"
        );
        let _ = writeln!(
            t,
            "{:<8} {:>17} {:>17} {:>17} {:>9} {:>9}",
            "payload", "aex", "raw same topology", "tcp echo", "aex/raw", "aex/tcp"
        );
        for (size, aex, raw, tcp) in &self.rtt {
            let pair = |s: &Summary| format!("{:.1} / {:.1}", s.median_us, s.p99_us);
            let _ = writeln!(
                t,
                "{:<8} {:>17} {:>17} {:>17} {:>9.2} {:>9.2}",
                human(*size),
                pair(aex),
                pair(raw),
                pair(tcp),
                ratio(aex.median_us, raw.median_us),
                ratio(aex.median_us, tcp.median_us),
            );
        }
        let _ = writeln!(t, "\nOne-way throughput over one connection");
        let _ = writeln!(
            t,
            "{:<8} {:>13} {:>9} {:>6} {:>13} {:>9} {:>8}",
            "payload", "aex ev/s", "aex MB/s", "lost", "raw ev/s", "raw MB/s", "aex/raw"
        );
        for (size, aex, raw) in &self.throughput {
            let _ = writeln!(
                t,
                "{:<8} {:>13.0} {:>9.1} {:>6} {:>13.0} {:>9.1} {:>8.2}",
                human(*size),
                aex.events_per_s(),
                aex.mb_per_s(),
                aex.lost(),
                raw.events_per_s(),
                raw.mb_per_s(),
                ratio(aex.events_per_s(), raw.events_per_s()),
            );
        }
        let cpu: Vec<String> = self
            .throughput
            .iter()
            .map(|(size, aex, raw)| {
                format!(
                    "{} aex {:.2}, raw {:.2} ({:.2} ×)",
                    human(*size),
                    aex.cpu_us_per_event(),
                    raw.cpu_us_per_event(),
                    ratio(aex.cpu_us_per_event(), raw.cpu_us_per_event()),
                )
            })
            .collect();
        let _ = writeln!(
            t,
            "CPU per event, all processes of the stream, µs: {}",
            cpu.join("; ")
        );
        if let Some((kept, ratios)) = &self.persistent {
            let list: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            let _ = writeln!(
                t,
                "{:<8} {:>13.0} {:>9.1} {:>6}  into a persistent sink (sealed, stored and counted \
                 per commit); to the plain sink, each round: {}",
                human(PERSISTENT_SIZE),
                kept.events_per_s(),
                kept.mb_per_s(),
                kept.lost(),
                list.join("  ")
            );
        }
        let (lost, raw_lost) = self.lost_events();
        let _ = writeln!(
            t,
            "Events lost, all rounds and sizes: aex {lost}, raw {raw_lost}"
        );
        let _ = writeln!(t, "\naex/raw ratio in each round (the spread)");
        for (figure, ratios) in &self.spread {
            let list: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            let _ = writeln!(t, "  {figure:<18} {}", list.join("  "));
        }
        let _ = writeln!(
            t,
            "\nDeploy + attest + connect, prebuilt modules (ring of relays)"
        );
        let _ = writeln!(
            t,
            "{:>7} {:>11} {:>5} {:>9} {:>12} {:>15} {:>9} {:>13}",
            "modules",
            "connections",
            "nodes",
            "total s",
            "per module",
            "load+attest s",
            "connect s",
            "node RSS KiB"
        );
        for d in &self.deployed {
            let phase = |name: &str| {
                d.phases
                    .iter()
                    .filter(|(p, _)| p == name)
                    .map(|(_, s)| s)
                    .sum::<f64>()
            };
            let _ = writeln!(
                t,
                "{:>7} {:>11} {:>5} {:>9.2} {:>9.1} ms {:>15.2} {:>9.2} {:>13}",
                d.modules,
                d.connections,
                d.nodes,
                d.total_s,
                d.total_s * 1e3 / d.modules as f64,
                phase("load and attest"),
                phase("connect"),
                d.node_rss_kib,
            );
        }
        let _ = writeln!(t, "\nResident memory after the event runs, KiB");
        let _ = writeln!(t, "  node agent (node1)  {:>8}", self.memory.node_kib);
        for (name, kib) in &self.memory.modules_kib {
            let _ = writeln!(t, "  module {name:<12} {kib:>8}");
        }
        if let Some(d) = self.deployed.iter().max_by_key(|d| d.modules) {
            let _ = writeln!(
                t,
                "  idle relay module   {:>8}   (node agent with {} modules: {})",
                d.module_rss_kib, d.modules, d.node_rss_kib
            );
        }

        let _ = writeln!(t, "\nTargets (issue 7)");
        let mut check = |ok: bool, what: String| {
            let _ = writeln!(t, "  [{}] {what}", if ok { "met" } else { "MISSED" });
        };
        let r = num("rtt_64b_ratio_to_raw");
        check(
            r <= RTT_RATIO_TARGET,
            format!(
                "64 B round trip median {r:.2} × raw baseline (≤ {RTT_RATIO_TARGET}); \
                 p99 {:.1} µs, raw {:.1} µs",
                num("rtt_64b_p99_us"),
                num("raw_rtt_64b_p99_us")
            ),
        );
        for size in STREAM_SIZES {
            let l = label(size);
            let r = num(&format!("throughput_{l}_ratio_to_raw"));
            check(
                r >= THROUGHPUT_RATIO_TARGET,
                format!(
                    "{} throughput {:.0} % of raw baseline (≥ {:.0} %)",
                    human(size),
                    r * 100.0,
                    THROUGHPUT_RATIO_TARGET * 100.0
                ),
            );
        }
        for (n, limit) in [
            (100, DEPLOY_100_TARGET_S),
            (1000, 10.0 * DEPLOY_100_TARGET_S),
        ] {
            let secs = num(&format!("deploy_{n}_modules_s"));
            let how = if num(&format!("deploy_{n}_modules_measured")) > 0.0 {
                "measured"
            } else {
                "extrapolated from a smaller run"
            };
            check(
                secs > 0.0 && secs <= limit,
                format!("{n} modules deployed in {secs:.2} s, {how} (≤ {limit} s)"),
            );
        }
        let kib = num("module_rss_kib") as u64;
        check(
            kib > 0 && kib < MODULE_RSS_TARGET_KIB,
            format!("module process resident memory {kib} KiB (< {MODULE_RSS_TARGET_KIB} KiB)"),
        );
        t
    }
}
