//! `aex deploy`: build, load, attest and connect, converging on the descriptor.
//!
//! Order of work, and why:
//! 1. build every module and check the descriptor against the interfaces the binaries
//!    declare, before touching any node;
//! 2. keep a module instance that the deployer attested and that its node still runs with
//!    the same measurement; otherwise (re)load it and attest the new instance;
//! 3. re-key every connection whose endpoint instances changed (fresh key, fresh counters),
//!    reserving command counters in the state file *before* sending;
//! 4. install routes on every node involved (idempotent, so a restarted node is repaired).
//!
//! What will change is decided first, without changing anything ([`plan`]).

use std::collections::BTreeMap;
use std::time::Instant;

use aex_proto::NodeRequest;

use crate::app::App;
use crate::build::{Builder, Built};
use crate::error::{Error, Result};
use crate::progress::Observer;
mod attest;
mod check;
mod connect;
mod plan;

pub use attest::attest;
use attest::{attest_unsaved, load};
use check::check_interfaces;
use connect::connect;
pub use plan::{plan, Action, ConnectionChange, ModuleChange, Plan};

const CHUNK: usize = 256 * 1024;

/// An entry point by this name, if a module has one, is called by `aex status` to show the
/// module's own state (e.g. whether an LED is on).
pub const STATUS_ENTRY: &str = "status";

/// What a deployment did.
#[derive(Debug, Default, Clone)]
pub struct DeployReport {
    /// Modules loaded and attested in this run.
    pub loaded: Vec<String>,
    /// Modules kept as they were.
    pub kept: Vec<String>,
    /// Modules removed because the descriptor no longer has them.
    pub removed: Vec<String>,
    /// Connections (re)keyed in this run.
    pub keyed: Vec<String>,
    /// Seconds spent building.
    pub build_secs: f64,
    /// Seconds spent loading, attesting and connecting.
    pub deploy_secs: f64,
}

/// The part an endpoint plays, resolved against the module's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Event,
    Request,
}

/// Builds every module of the application.
pub fn build_all(
    app: &App,
    builder: &mut Builder,
    obs: &dyn Observer,
) -> Result<BTreeMap<String, Built>> {
    obs.phase("build", app.desc.modules.len() as u64);
    let mut built = BTreeMap::new();
    for m in &app.desc.modules {
        let b = builder.build(&m.crate_dir).map_err(|source| Error::Build {
            module: m.name.clone(),
            source,
        })?;
        obs.advance(&m.name);
        built.insert(m.name.clone(), b);
    }
    obs.finish();
    check_interfaces(app, &built)?;
    Ok(built)
}

/// Deploys the application from already built modules.
pub fn deploy(
    app: &mut App,
    built: &BTreeMap<String, Built>,
    obs: &dyn Observer,
) -> Result<DeployReport> {
    let started = Instant::now();
    let mut report = DeployReport::default();
    remove_stale_modules(app, &mut report)?;

    let plan = plan(app, built)?;
    let to_load = plan.to_load();
    report.kept = plan
        .modules
        .iter()
        .filter(|m| m.action == Action::Keep)
        .map(|m| m.module.clone())
        .collect();
    let loaded = plan.loaded;

    obs.phase("load and attest", to_load.len() as u64);
    // Forget every instance about to be replaced, in one save, before the first is touched:
    // a record must never outlive its instance (the next deploy would keep a module it cannot
    // command). Forgetting one early, should a crash stop the run before its turn, only makes
    // the next deploy replace it — which this one was about to do anyway.
    let mut forgot = false;
    for (name, _) in &to_load {
        forgot |= app.state.state.modules.remove(name).is_some();
    }
    if forgot {
        app.state.save()?;
    }
    let mut attested = || -> Result<()> {
        for (name, node) in &to_load {
            let exists = loaded.get(node).is_some_and(|m| m.contains(name));
            load(app, name, node, &built[name], exists)?;
            crate::crash::point("load");
            attest_unsaved(app, name, node, &built[name])?;
            crate::crash::point("attest");
            obs.advance(name);
            report.loaded.push(name.clone());
        }
        Ok(())
    };
    let outcome = attested();
    // One save for every module attested above, also when a later one failed. (A key lost to
    // a crash before this save only costs a reload: the next deploy finds no record and
    // replaces that instance, so no counter is ever reused.)
    app.state.save()?;
    crate::crash::point("modules-saved");
    outcome?;
    obs.finish();

    connect(app, built, obs, &mut report)?;
    report.deploy_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes modules the descriptor no longer has (from their nodes and from the state).
fn remove_stale_modules(app: &mut App, report: &mut DeployReport) -> Result<()> {
    let stale: Vec<(String, String)> = app
        .state
        .state
        .modules
        .iter()
        .filter(|(name, rec)| app.desc.module(name).is_none_or(|m| m.node != rec.node))
        .map(|(n, r)| (n.clone(), r.node.clone()))
        .collect();
    for (name, node) in stale {
        if app.desc.node(&node).is_some() {
            // The node may be gone for good; forgetting the module is still right.
            let _ = app.request(
                &node,
                &format!("unload module `{name}`"),
                NodeRequest::Unload {
                    module: name.clone(),
                },
            );
        }
        app.state.state.modules.remove(&name);
        report.removed.push(name);
    }
    let names: Vec<String> = app
        .desc
        .connections
        .iter()
        .map(|c| c.name.clone())
        .collect();
    app.state.state.connections.retain(|k, _| names.contains(k));
    app.state.save()?;
    Ok(())
}
