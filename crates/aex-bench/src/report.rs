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

use crate::aexrun::{self, Plan};
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
/// Seconds to deploy 100 modules with 100 connections, at most; 1000 get ten times that.
const DEPLOY_100_TARGET_S: f64 = 2.0;
/// Resident memory of a module process, under.
const MODULE_RSS_TARGET_KIB: u64 = 8 * 1024;

/// Everything one run measured.
struct Results {
    rtt: Vec<(usize, Summary, Summary, Summary)>,
    throughput: Vec<(usize, Throughput, Throughput)>,
    events: aexrun::Measured,
    deployed: Vec<Deployed>,
}

/// Runs every scenario and reports.
pub fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let quick = args.quick;
    let iterations = args.iterations.unwrap_or(if quick { 1000 } else { 10_000 });
    let warmup = (iterations / 10).clamp(10, 1000);
    let events = args.events.unwrap_or(if quick { 20_000 } else { 200_000 });
    let two_node = args.deploy_sizes.clone().unwrap_or_else(|| {
        if quick {
            vec![2, 10, 50]
        } else {
            vec![2, 10, 100]
        }
    });
    let one_node = args
        .deploy_one_node
        .unwrap_or(if quick { 200 } else { 1000 });
    let mut env = Env::new(&args)?;
    eprintln!(
        "aex-bench: {} round trips per size, {events} events per stream, modules built {:?}, nodes `{}`",
        iterations,
        env.profile,
        env.aex.display()
    );
    let scratch = tempfile::Builder::new()
        .prefix("aex-bench-raw-")
        .tempdir()?;

    eprintln!("baselines");
    let mut rtt = vec![];
    for size in RTT_SIZES {
        eprintln!("  tcp echo and raw round trip, {size} B × {iterations}");
        let tcp = raw::tcp_echo_rtt(size, iterations, warmup)?;
        let raw = raw::rtt(scratch.path(), size, iterations, warmup)?;
        rtt.push((size, tcp, raw));
    }
    let mut raw_streams = vec![];
    for size in STREAM_SIZES {
        let count = stream_events(events, size);
        eprintln!("  raw stream, {size} B × {count}");
        raw_streams.push(raw::throughput(scratch.path(), size, count)?);
    }

    eprintln!("aex events (modules built with cargo first, if needed)");
    let plan = Plan {
        rtt_sizes: RTT_SIZES.to_vec(),
        iterations,
        warmup,
        stream_sizes: STREAM_SIZES.to_vec(),
        events,
    };
    let measured = aexrun::run(&mut env, &plan)?;

    eprintln!("deployments");
    let mut deployed = vec![];
    for &n in &two_node {
        eprintln!("  {n} modules, {n} connections, two nodes");
        deployed.push(deploy::ring(&mut env, n, 2)?);
    }
    if one_node > 0 {
        eprintln!("  {one_node} modules, {one_node} connections, one node");
        deployed.push(deploy::ring(&mut env, one_node, 1)?);
    }

    let results = Results {
        rtt: rtt
            .into_iter()
            .zip(&measured.rtt)
            .map(|((size, tcp, raw), (_, aex))| (size, *aex, raw, tcp))
            .collect(),
        throughput: measured
            .throughput
            .iter()
            .zip(raw_streams)
            .map(|((size, aex), raw)| (*size, *aex, raw))
            .collect(),
        events: measured,
        deployed,
    };
    let mut json = results.json();
    json.insert("quick".into(), Value::from(u8::from(quick)));
    json.insert("iterations".into(), Value::from(iterations));
    json.insert("stream_events".into(), Value::from(events));
    json.insert("run_s".into(), Value::from(started.elapsed().as_secs_f64()));
    let table = results.table(&json);
    std::io::stdout().lock().write_all(table.as_bytes())?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Events per stream of `size`-byte events: fewer for large events, so each stream moves a
/// comparable time's worth of data.
pub fn stream_events(events: u64, size: usize) -> u64 {
    if size > 1024 {
        (events / 4).max(100)
    } else {
        events
    }
}

/// `8b`, `64b`, `1kib`, `16kib`.
fn label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{}kib", size / 1024)
    } else {
        format!("{size}b")
    }
}

/// `8 B`, `1 KiB`.
fn human(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
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
            }
            put(
                format!("throughput_{l}_ratio_to_raw"),
                ratio(aex.events_per_s(), raw.events_per_s()),
            );
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
        let rss = &self.events.module_rss_kib;
        let pong = rss.iter().find(|(n, _)| n == "pong").map_or(0, |(_, k)| *k);
        put("module_rss_kib".into(), pong as f64);
        put(
            "module_rss_max_kib".into(),
            rss.iter().map(|(_, k)| *k).max().unwrap_or(0) as f64,
        );
        for (name, kib) in rss {
            put(format!("module_{name}_rss_kib"), *kib as f64);
        }
        put("node_rss_kib".into(), self.events.node_rss_kib as f64);
        put("module_build_s".into(), self.events.build_s);
        j
    }

    fn table(&self, j: &BTreeMap<String, Value>) -> String {
        let num = |k: &str| j.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let mut t = String::new();
        let _ = writeln!(t, "\nEvent round trip, µs (median / p99)");
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
        let _ = writeln!(t, "  node agent (node1)  {:>8}", self.events.node_rss_kib);
        for (name, kib) in &self.events.module_rss_kib {
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
            format!("64 B round trip median {r:.2} × raw baseline (≤ {RTT_RATIO_TARGET})"),
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
