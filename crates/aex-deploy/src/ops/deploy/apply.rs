//! Converging the running application on the descriptor from modules already built: the
//! deployment's order of work (see the parent module) and the removal of modules the
//! descriptor dropped.

use std::collections::BTreeMap;
use std::time::Instant;

use aex_proto::{Command, NodeErrorKind, NodeRequest};

use super::connect::connect;
use super::lanes::{load_and_attest, Held, Job};
use super::plan::{plan_with, Action, Options, Plan, StateSource};
use super::report::DeployReport;
use super::transfer;
use super::{periodic, revoke, start, BuiltApp};
use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};
use crate::progress::Observer;
use crate::state::{slot_name, ModuleRecord};

/// Deploys the application from modules already built ([`build_all`](super::build_all)): the
/// deployment of `aex deploy` without the build. [`Options`] may also replace (with state
/// transfer) the modules in `force` (`aex update`), and start the modules in `discard_state`
/// from their default state if they are replaced.
pub fn apply(
    app: &mut App,
    built: &BuiltApp,
    obs: &dyn Observer,
    opts: &Options,
) -> Result<DeployReport> {
    let started = Instant::now();
    let mut report = DeployReport::default();
    revoke::record_stale_connections(app)?;
    revoke::complete(app, &mut report)?;
    remove_stale_modules(app, &mut report)?;

    let mut plan = plan_with(app, built, opts)?;
    // A state the node calls lost is asked for before anything changes; the modules whose
    // instance does not answer start afresh only if the observer agrees.
    let afresh = transfer::take_unconfirmed(app, &plan, obs)?;
    if !afresh.is_empty() {
        let mut options = opts.clone();
        options.discard_state.extend(afresh);
        plan = plan_with(app, built, &options)?;
    }
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
    let source: BTreeMap<&str, StateSource> = plan
        .modules
        .iter()
        .map(|m| (m.module.as_str(), m.state))
        .collect();
    let mut forgot = false;
    let mut generations = BTreeMap::new();
    let mut discarded = vec![];
    for (name, _) in &to_load {
        let keep = matches!(
            source.get(name.as_str()),
            Some(
                StateSource::Running
                    | StateSource::Snapshot
                    | StateSource::Unconfirmed
                    | StateSource::Checkpoint
            )
        );
        let generation = match app.module(name) {
            Some(r) if keep => r.generation.wrapping_add(1),
            Some(r) => r.generation,
            None => 0,
        };
        generations.insert(name.clone(), (generation, keep));
        if !keep {
            if let Some(r) = app.forget_module(name) {
                forgot = true;
                if source.get(name.as_str()) == Some(&StateSource::Discarded) {
                    discarded.push(transfer::Transfer {
                        module: name.clone(),
                        from_node: r.node.clone(),
                        to_node: plan_node(&plan, name),
                        source: StateSource::Discarded,
                        bytes: None,
                        gap: std::time::Duration::ZERO,
                        adopted: false,
                    });
                }
            }
        }
    }
    if forgot {
        app.save()?;
    }
    let jobs: Vec<Job<'_>> = to_load
        .iter()
        .map(|(name, node)| {
            let slot = slot_name(name, generations[name].0);
            Job {
                name,
                node,
                exists: plan.loaded.get(node).is_some_and(|m| m.contains(&slot)),
                slot,
                built: &built.modules[name],
            }
        })
        .collect();
    let mut handovers = vec![];
    let mut done = |app: &mut App, job: &Job<'_>, mut record: ModuleRecord| -> Result<()> {
        let name = job.name;
        let (generation, keep) = generations[name];
        record.generation = generation;
        if keep {
            let planned = source.get(name).copied().unwrap_or(StateSource::Running);
            handovers.push(transfer::hand_over(app, name, record, planned)?);
        } else {
            app.record_module(name, record);
        }
        crate::crash::point("attest");
        obs.advance(name);
        report.loaded.push(name.to_string());
        Ok(())
    };
    let outcome = load_and_attest(app, &jobs, &mut Held::default(), &mut done);
    // One save for every new module attested above, also when a later one failed. (A key lost
    // to a crash before this save only costs a reload: the next deploy finds no record and
    // replaces that instance, so no counter is ever reused.) Hand-overs saved their own steps.
    app.save()?;
    crate::crash::point("modules-saved");
    outcome?;
    obs.finish();

    // Snapshots go in before any connection is keyed, including ones an interrupted run left.
    let restored = transfer::restore_pending(app)?;
    report.warnings.extend(restored.refused);
    connect(app, &built.links, obs, &mut report)?;
    report.transfers.extend(discarded);
    start::start_unconnected(app, &built.links)?;
    for h in handovers {
        let mut t = h.finish();
        t.adopted = restored.adopted.contains(&t.module);
        report.transfers.push(t);
    }
    transfer::unload_retired(app)?;
    periodic::install_triggers(app, &mut report)?;
    report.deploy_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The node the plan places `module` on.
fn plan_node(plan: &Plan, module: &str) -> String {
    plan.modules
        .iter()
        .find(|m| m.module == module)
        .map(|m| m.node.clone())
        .unwrap_or_default()
}

/// Removes modules the descriptor no longer has (from their nodes and from the state), and
/// instances an interrupted update left behind.
///
/// Each is disabled first, with a sealed `Disable` (it drops every key it holds), and only
/// then unloaded: a node that ignores `Unload` keeps a module that accepts nothing. The mark
/// `disabling` is saved with the command's counter, so after a crash a repeated `Disable`
/// that the module refuses (it holds no key any more) is known for what it is. A module that
/// cannot be disabled (its node is gone, say) is forgotten anyway, with a warning: every
/// connection it held was revoked at its other end first (`revoke`).
fn remove_stale_modules(app: &mut App, report: &mut DeployReport) -> Result<()> {
    transfer::unload_retired(app)?;
    let stale: Vec<String> = app
        .modules()
        .keys()
        .filter(|name| app.descriptor().module(name).is_none())
        .cloned()
        .collect();
    for name in stale {
        let Some(rec) = app.module(&name) else {
            continue;
        };
        let (node, slot) = (rec.node.clone(), rec.slot(&name));
        if app.descriptor().node(&node).is_some() {
            if let Some(why) = disable(app, &name) {
                report.warnings.push(format!(
                    "module `{name}` could not be disabled before it was unloaded (every \
                     connection it held was revoked at its other end): {why}"
                ));
            }
            crate::crash::point("disabled");
            // The node may be gone for good; forgetting the module is still right.
            let _ = app.request(
                &node,
                &format!("unload module `{name}`"),
                NodeRequest::Unload { module: slot },
            );
        } else {
            report.warnings.push(format!(
                "module `{name}` was not disabled: its node `{node}` is no longer in the descriptor"
            ));
        }
        app.forget_module(&name);
        app.save()?;
        report.removed.push(name);
    }
    // The deployment's first save (of a new state: its format and first connection id).
    app.save()?;
    Ok(())
}

/// Disables `module`'s recorded instance with a sealed `Disable`; why not, if that could not
/// be confirmed.
pub(crate) fn disable(app: &mut App, module: &str) -> Option<String> {
    let resumed = match app.module_mut(module) {
        Some(r) => std::mem::replace(&mut r.disabling, true),
        None => return None,
    };
    match app.command(module, "disable itself", &Command::Disable) {
        Ok(_) => None,
        // It dropped its module key when an interrupted run disabled it: it can no longer
        // open a command, and says so (unauthenticated).
        Err(Error::Node {
            source: ClientError::Node(e),
            ..
        }) if resumed && e.kind == NodeErrorKind::Refused => None,
        Err(e) => Some(crate::error::error_chain(&e)),
    }
}
