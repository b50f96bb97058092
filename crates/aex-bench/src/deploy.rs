//! Deploy + attest + connect time of prebuilt modules, for growing applications.
//!
//! Each application is a ring of `relay` modules (`m0.output → m1.input → … → m0.input`), so
//! it has as many connections as modules; across two nodes the modules alternate, so every
//! connection crosses nodes. The relay crate is built once per run; what is timed is
//! `ops::deploy::apply` with the built modules, on fresh nodes: load (upload, store, measure,
//! start), attest (evidence, appraisal, key agreement), key every connection and install its
//! routes, with the state file saved as the deployer's crash-safety rules require.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::Instant;

use aex_deploy::ops::deploy::{apply, Options};
use aex_deploy::progress::Observer;
use anyhow::{ensure, Context, Result};

use crate::cluster::{Cluster, Env};
use crate::procs::{pss_kib, rss_kib};

/// One deployment's figures.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    /// Modules deployed.
    pub modules: usize,
    /// Connections keyed and routed.
    pub connections: usize,
    /// Nodes used.
    pub nodes: usize,
    /// Seconds `deploy` took.
    pub total_s: f64,
    /// Seconds per phase of `deploy`, as its progress reports them.
    pub phases: Vec<(String, f64)>,
    /// Resident memory of the first node's agent afterwards, KiB.
    pub node_rss_kib: u64,
    /// Resident memory of one (idle) relay module afterwards, KiB.
    pub module_rss_kib: u64,
    /// Resident memory of every node agent and every module process afterwards, KiB.
    pub total_rss_kib: u64,
    /// Their proportional set size (shared pages divided among their sharers), KiB: the
    /// memory they take together.
    pub total_pss_kib: u64,
}

/// Default of the node's `deployer_modules` limit; larger deployments raise it.
const DEFAULT_MODULE_QUOTA: usize = 2048;

/// Deploys a ring of `modules` relays over `nodes` fresh nodes and times it.
pub fn ring(env: &mut Env, modules: usize, nodes: usize) -> Result<Deployed> {
    let names: Vec<String> = (1..=nodes).map(|i| format!("node{i}")).collect();
    let relay = env.crate_dir("crates/aex-bench/modules/relay");
    let mut body = String::new();
    for i in 0..modules {
        writeln!(
            body,
            "[[module]]\nname = \"m{i}\"\ncrate = \"{}\"\nnode = \"{}\"\n",
            relay.display(),
            names[i % nodes]
        )?;
    }
    let connections = if modules > 1 { modules } else { 0 };
    for i in 0..connections {
        let next = (i + 1) % modules;
        writeln!(
            body,
            "[[connection]]\nfrom = \"m{i}.output\"\nto = \"m{next}.input\"\n"
        )?;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Beyond the default quotas, the nodes are told to allow the deployment (and its
    // request rate, which the token bucket saves up for one second only).
    let node_args = if modules > DEFAULT_MODULE_QUOTA {
        vec![
            "--limit".into(),
            format!("deployer_modules={}", modules + 16),
            "--limit".into(),
            format!("deployer_requests_per_second={}", modules * 10),
            // Two routes per module in a ring on one node (its input, its credit back);
            // the default (16,384) covers the default module quota eight times over.
            "--limit".into(),
            format!("deployer_routes={}", modules * 8),
        ]
    } else {
        vec![]
    };
    let mut cluster = Cluster::start_with(env, &refs, &body, &node_args)?;
    let built = cluster.build(env)?;
    let timing = Phases::default();
    let started = Instant::now();
    let report = apply(&mut cluster.app, &built, &timing, &Options::default())
        .with_context(|| format!("deploy {modules} modules"))?;
    let total_s = started.elapsed().as_secs_f64();
    ensure!(
        report.loaded.len() == modules && report.keyed.len() == connections,
        "deployed {} modules and {} connections of {modules} and {connections}",
        report.loaded.len(),
        report.keyed.len()
    );
    let node_rss_kib = cluster.node_pid("node1").and_then(rss_kib).unwrap_or(0);
    let module_rss_kib = cluster
        .module_pids("node1")?
        .first()
        .and_then(|(_, pid)| rss_kib(*pid))
        .unwrap_or(0);
    let (mut total_rss_kib, mut total_pss_kib) = (0, 0);
    for node in &names {
        let modules = cluster.module_pids(node)?.into_iter().map(|(_, pid)| pid);
        for pid in cluster.node_pid(node).into_iter().chain(modules) {
            total_rss_kib += rss_kib(pid).unwrap_or(0);
            total_pss_kib += pss_kib(pid).unwrap_or(0);
        }
    }
    cluster.shutdown()?;
    Ok(Deployed {
        modules,
        connections,
        nodes,
        total_s,
        phases: timing.done(),
        node_rss_kib,
        module_rss_kib,
        total_rss_kib,
        total_pss_kib,
    })
}

impl Deployed {
    /// Seconds of phase `name` (0 if it did not run).
    pub fn phase(&self, name: &str) -> f64 {
        self.phases
            .iter()
            .filter(|(p, _)| p == name)
            .map(|(_, s)| s)
            .sum()
    }
}

/// `--deploy-only`: the deployments alone, each with its memory (node agent and total) and
/// the cost per module; the table to stdout, the figures to `json`.
pub fn only(
    env: &mut Env,
    two_node: &[usize],
    one_node: &[usize],
    json: Option<&std::path::Path>,
) -> Result<()> {
    let mut deployed = vec![];
    let sizes = two_node.iter().map(|&n| (n, 2));
    for (n, nodes) in sizes.chain(one_node.iter().map(|&n| (n, 1))) {
        eprintln!("  {n} modules, {n} connections, {nodes} node(s)");
        let d = ring(env, n, nodes)?;
        eprintln!(
            "    {:.2} s (load and attest {:.2} s, connect {:.2} s)",
            d.total_s,
            d.phase("load and attest"),
            d.phase("connect")
        );
        deployed.push(d);
    }
    print!("{}", table(&deployed));
    if let Some(path) = json {
        let mut obj = serde_json::Map::new();
        for d in &deployed {
            let key = format!("deploy_{}_modules_{}_nodes", d.modules, d.nodes);
            let mut put = |k: &str, v: f64| {
                obj.insert(format!("{key}_{k}"), serde_json::Value::from(v));
            };
            put("s", d.total_s);
            put("per_module_ms", d.total_s * 1e3 / d.modules as f64);
            for (phase, secs) in &d.phases {
                put(&format!("{}_s", phase.replace(' ', "_")), *secs);
            }
            put("node_rss_kib", d.node_rss_kib as f64);
            put("module_rss_kib", d.module_rss_kib as f64);
            put("total_rss_kib", d.total_rss_kib as f64);
            put("total_pss_kib", d.total_pss_kib as f64);
        }
        std::fs::write(path, serde_json::to_string_pretty(&obj)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The deployments with their memory: node agent, all processes (RSS and PSS), and PSS per
/// module.
fn table(deployed: &[Deployed]) -> String {
    let mut t = String::from(
        "Deploy + attest + connect, prebuilt modules (ring of relays), and memory afterwards\n",
    );
    let _ = writeln!(
        t,
        "{:>7} {:>5} {:>8} {:>11} {:>13} {:>9} {:>9} {:>13} {:>13} {:>10}",
        "modules",
        "nodes",
        "total s",
        "per module",
        "load+attest s",
        "connect s",
        "node KiB",
        "all RSS KiB",
        "all PSS KiB",
        "PSS/module"
    );
    for d in deployed {
        let _ = writeln!(
            t,
            "{:>7} {:>5} {:>8.2} {:>8.2} ms {:>13.2} {:>9.2} {:>9} {:>13} {:>13} {:>10.0}",
            d.modules,
            d.nodes,
            d.total_s,
            d.total_s * 1e3 / d.modules as f64,
            d.phase("load and attest"),
            d.phase("connect"),
            d.node_rss_kib,
            d.total_rss_kib,
            d.total_pss_kib,
            d.total_pss_kib as f64 / d.modules as f64,
        );
    }
    t
}

/// Records how long each phase of a deployment takes.
#[derive(Default)]
struct Phases {
    current: RefCell<Option<(String, Instant)>>,
    done: RefCell<Vec<(String, f64)>>,
}

impl Phases {
    fn done(self) -> Vec<(String, f64)> {
        self.done.into_inner()
    }
}

impl Observer for Phases {
    fn phase(&self, name: &str, _total: u64) {
        *self.current.borrow_mut() = Some((name.to_string(), Instant::now()));
    }

    fn finish(&self) {
        if let Some((name, started)) = self.current.borrow_mut().take() {
            self.done
                .borrow_mut()
                .push((name, started.elapsed().as_secs_f64()));
        }
    }
}
