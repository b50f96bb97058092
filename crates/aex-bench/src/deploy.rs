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
use crate::procs::rss_kib;

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
}

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
    let mut cluster = Cluster::start(env, &refs, &body)?;
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
    cluster.shutdown()?;
    Ok(Deployed {
        modules,
        connections,
        nodes,
        total_s,
        phases: timing.done(),
        node_rss_kib,
        module_rss_kib,
    })
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
