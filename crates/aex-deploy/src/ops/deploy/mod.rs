//! `aex deploy`: build, load, attest and connect, converging on the descriptor.
//!
//! Order of work, and why:
//! 1. build every module and check the descriptor against the interfaces the binaries
//!    declare, before touching any node;
//! 2. keep a module instance that the deployer attested and that its node still runs with
//!    the same measurement; otherwise (re)load it and attest the new instance — next to the
//!    old one, which then hands its state over and retires ([`transfer`]);
//! 3. re-key every connection whose endpoint instances changed (fresh key, fresh counters),
//!    reserving command counters in the state file *before* sending;
//! 4. install routes on every node involved (idempotent, so a restarted node is repaired);
//! 5. arm the modules no key arms with `Command::Start` ([`start`]), then install each
//!    module's periodic triggers (idempotent too).
//!
//! What will change is decided first, without changing anything ([`plan`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aex_proto::NodeRequest;

use crate::app::App;
use crate::build::{Builder, Built};
use crate::error::{Error, Result};
use crate::progress::Observer;
use crate::state::slot_name;
mod attest;
mod check;
mod connect;
mod periodic;
mod plan;
mod start;
pub mod transfer;

pub use attest::attest;
use attest::{attest_instance, load};
use check::{check_interfaces, check_periodic};
use connect::connect;
pub use plan::{plan, plan_forced, Action, ConnectionChange, ModuleChange, Plan, StateSource};
pub use transfer::Transfer;

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
    /// Modules replaced while running, and how their state moved.
    pub transfers: Vec<Transfer>,
    /// The periodic triggers in place after this run, as `module.entry every 5 s`.
    pub periodic: Vec<String>,
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
        let b = builder
            .build(&m.crate_dir)
            .map_err(|source| Error::Build {
                module: m.name.clone(),
                source,
            })?
            .bound_to(&m.devices);
        obs.advance(&m.name);
        built.insert(m.name.clone(), b);
    }
    obs.finish();
    check_interfaces(app, &built)?;
    check_periodic(app, &built)?;
    Ok(built)
}

/// Deploys the application from already built modules.
pub fn deploy(
    app: &mut App,
    built: &BTreeMap<String, Built>,
    obs: &dyn Observer,
) -> Result<DeployReport> {
    deploy_forced(app, built, obs, &BTreeSet::new())
}

/// [`deploy`], also replacing (with state transfer) the modules in `force` (`aex update`).
pub fn deploy_forced(
    app: &mut App,
    built: &BTreeMap<String, Built>,
    obs: &dyn Observer,
    force: &BTreeSet<String>,
) -> Result<DeployReport> {
    let started = Instant::now();
    let mut report = DeployReport::default();
    remove_stale_modules(app, &mut report)?;

    let plan = plan_forced(app, built, force)?;
    let to_load = plan.to_load();
    report.kept = plan
        .modules
        .iter()
        .filter(|m| m.action == Action::Keep)
        .map(|m| m.module.clone())
        .collect();

    obs.phase("load and attest", to_load.len() as u64);
    // Instances with no state to hand over are replaced in place: forget their records, in one
    // save, before the first is touched. A record must never outlive its instance (the next
    // deploy would keep a module it cannot command); forgetting one early, should a crash stop
    // the run before its turn, only makes the next deploy replace it — which this one was
    // about to do anyway. Instances with a state to hand over keep theirs until the new
    // instance is attested beside them (`transfer::hand_over`).
    let has_state = |app: &App, name: &str| {
        plan.live.contains(name)
            || app
                .state
                .state
                .modules
                .get(name)
                .is_some_and(|r| r.pending_state.is_some())
    };
    let mut forgot = false;
    let mut generations = BTreeMap::new();
    for (name, _) in &to_load {
        let keep = has_state(app, name);
        let generation = match app.state.state.modules.get(name) {
            Some(r) if keep => r.generation.wrapping_add(1),
            Some(r) => r.generation,
            None => 0,
        };
        generations.insert(name.clone(), (generation, keep));
        if !keep {
            forgot |= app.state.state.modules.remove(name).is_some();
        }
    }
    if forgot {
        app.state.save()?;
    }
    let mut handovers = vec![];
    let mut attested = || -> Result<()> {
        for (name, node) in &to_load {
            let (generation, keep) = generations[name];
            let slot = slot_name(name, generation);
            let exists = plan.loaded.get(node).is_some_and(|m| m.contains(&slot));
            load(app, &slot, node, &built[name], exists)?;
            crate::crash::point("load");
            let mut record = attest_instance(app, name, &slot, node, &built[name])?;
            record.generation = generation;
            if keep {
                let live = plan.live.contains(name);
                handovers.push(transfer::hand_over(app, name, record, live)?);
            } else {
                app.state.state.modules.insert(name.clone(), record);
            }
            crate::crash::point("attest");
            obs.advance(name);
            report.loaded.push(name.clone());
        }
        Ok(())
    };
    let outcome = attested();
    // One save for every new module attested above, also when a later one failed. (A key lost
    // to a crash before this save only costs a reload: the next deploy finds no record and
    // replaces that instance, so no counter is ever reused.) Hand-overs saved their own steps.
    app.state.save()?;
    crate::crash::point("modules-saved");
    outcome?;
    obs.finish();

    // Snapshots go in before any connection is keyed, including ones an interrupted run left.
    transfer::restore_pending(app)?;
    connect(app, built, obs, &mut report)?;
    start::start_unconnected(app)?;
    for h in handovers {
        report.transfers.push(h.finish());
    }
    transfer::unload_retired(app)?;
    periodic::install_triggers(app, &mut report)?;
    report.deploy_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes modules the descriptor no longer has (from their nodes and from the state), and
/// instances an interrupted update left behind.
fn remove_stale_modules(app: &mut App, report: &mut DeployReport) -> Result<()> {
    transfer::unload_retired(app)?;
    let stale: Vec<(String, String, String)> = app
        .state
        .state
        .modules
        .iter()
        .filter(|(name, _)| app.desc.module(name).is_none())
        .map(|(n, r)| (n.clone(), r.node.clone(), r.slot(n)))
        .collect();
    for (name, node, slot) in stale {
        if app.desc.node(&node).is_some() {
            // The node may be gone for good; forgetting the module is still right.
            let _ = app.request(
                &node,
                &format!("unload module `{name}`"),
                NodeRequest::Unload { module: slot },
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
