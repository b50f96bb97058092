//! What `aex deploy` will change, decided before anything is changed (and shown by
//! `aex deploy --dry-run`).
//!
//! A module is kept only if the deployer attested it, on the node the descriptor names, with
//! the code the deployer just built, and that node still runs it with that measurement;
//! otherwise it is (re)loaded and attested. A module that is replaced while the deployer
//! holds a record of its instance hands its state over to the new instance (`aex update`);
//! so does one whose snapshot is waiting in the state after a crash. The node's word that the
//! instance is gone is not enough to give its state up: such an instance is asked anyway
//! ([`StateSource::Unconfirmed`]), unless the user discards its state
//! ([`Options::discard_state`]). A connection is kept only if its record matches the
//! descriptor and every endpoint instance that holds its key is kept.

use std::collections::{BTreeSet, HashMap, HashSet};

use aex_proto::{NodeRequest, NodeResponse};

use super::endpoints::from_string;
use super::BuiltApp;
use crate::app::{unexpected, App};
use crate::error::Result;

/// The changes a deployment makes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One entry per module of the descriptor, plus modules to remove.
    pub modules: Vec<ModuleChange>,
    /// One entry per connection of the descriptor.
    pub connections: Vec<ConnectionChange>,
    /// Every instance name each node holds, running or not (a dead instance keeps its name
    /// until it is unloaded).
    pub(super) loaded: HashMap<String, HashSet<String>>,
}

/// What happens to one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleChange {
    /// Module name.
    pub module: String,
    /// Node it will run on (or ran on, for a removal).
    pub node: String,
    /// The change.
    pub action: Action,
    /// Where a replaced module's state comes from.
    pub state: StateSource,
}

/// Where the state of a module's new instance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateSource {
    /// Not replaced (kept or removed), or nothing to take over (a new module, or one an
    /// interrupted reset or removal disabled): it starts from `Default`.
    Fresh,
    /// The running instance hands its state over.
    Running,
    /// A snapshot the deployer holds (an earlier transfer was interrupted).
    Snapshot,
    /// The recorded instance's node reports it gone (not running, or other code): it is asked
    /// for its state anyway, with a sealed command, before anything is loaded, and the
    /// deployment stops if it does not answer.
    Unconfirmed,
    /// The user discarded the recorded instance's state (`--discard-state`): the new
    /// instance starts from `Default`.
    Discarded,
    /// A checkpoint the owner held (`--restore-state`, `aex checkpoint`): the new instance
    /// starts from it.
    Checkpoint,
}

/// Choices of a deployment beyond the descriptor.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replace these modules (with state transfer) even if they are current (`aex update`).
    pub force: BTreeSet<String>,
    /// Start these modules from their default state if they are replaced, instead of taking
    /// the state of their recorded instance (`--discard-state`): for an instance that is
    /// gone for good.
    pub discard_state: BTreeSet<String>,
    /// These modules' records hold a checkpoint the owner restores (`--restore-state`).
    pub restore_state: BTreeSet<String>,
}

/// What happens to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionChange {
    /// Connection name.
    pub connection: String,
    /// The change.
    pub action: Action,
}

/// A change, with the reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Nothing to do.
    Keep,
    /// Load and attest a module / deliver fresh keys to a connection, because of the reason.
    Apply(String),
    /// Unload a module the descriptor no longer has there.
    Remove(String),
}

impl Plan {
    /// Whether the deployment would change nothing.
    pub fn is_empty(&self) -> bool {
        self.modules.iter().all(|m| m.action == Action::Keep)
            && self.connections.iter().all(|c| c.action == Action::Keep)
    }

    /// Modules to (re)load, with their nodes, in descriptor order.
    pub(super) fn to_load(&self) -> Vec<(String, String)> {
        self.modules
            .iter()
            .filter(|m| matches!(m.action, Action::Apply(_)))
            .map(|m| (m.module.clone(), m.node.clone()))
            .collect()
    }
}

/// Compares the descriptor and the deployer's state with what the nodes report.
pub fn plan(app: &mut App, built: &BuiltApp) -> Result<Plan> {
    plan_with(app, built, &Options::default())
}

/// [`plan`] with [`Options`].
pub fn plan_with(app: &mut App, built: &BuiltApp, opts: &Options) -> Result<Plan> {
    let force = &opts.force;
    let mut running: HashMap<String, HashMap<String, [u8; 32]>> = HashMap::new();
    let mut loaded: HashMap<String, HashSet<String>> = HashMap::new();
    // Persistent instances whose node restarted them and that refused their sealed state
    // (rollback, missing state, ...): they run, unkeyed, as fresh processes, not as the
    // instance the deployer attested.
    let mut refused: HashMap<(String, String), String> = HashMap::new();
    // The nodes the descriptor places modules on, and those recorded instances run on.
    let mut nodes: BTreeSet<String> = app
        .descriptor()
        .modules
        .iter()
        .map(|m| m.node.clone())
        .collect();
    nodes.extend(
        app.modules()
            .values()
            .filter(|r| app.descriptor().node(&r.node).is_some())
            .map(|r| r.node.clone()),
    );
    for node in nodes {
        let status = match app.request(&node, "report status", NodeRequest::Status)? {
            NodeResponse::Status(s) => s,
            _ => return Err(unexpected(&node, "report status", app)),
        };
        loaded.insert(
            node.clone(),
            status.modules.iter().map(|m| m.name.clone()).collect(),
        );
        for m in &status.modules {
            let resume = m.persistence.as_ref().and_then(|p| p.resume.as_ref());
            if let Some(aex_proto::ResumeOutcome::Refused(reason)) = resume {
                refused.insert((node.clone(), m.name.clone()), reason.clone());
            }
        }
        running.insert(
            node.clone(),
            status
                .modules
                .into_iter()
                .filter(|m| m.running && !refused.contains_key(&(node.clone(), m.name.clone())))
                .map(|m| (m.name, m.measurement))
                .collect(),
        );
    }

    // A recorded instance is live if its node runs it with the code the deployer attested.
    let live: HashSet<String> = app
        .modules()
        .iter()
        .filter(|(name, r)| {
            running
                .get(&r.node)
                .and_then(|m| m.get(&r.slot(name)))
                .is_some_and(|m| hex::encode(m) == r.measurement)
        })
        .map(|(name, _)| name.clone())
        .collect();

    let mut modules = vec![];
    for spec in &app.descriptor().modules {
        let want = built.modules[&spec.name].measurement;
        let record = app.module(&spec.name);
        let is_live = live.contains(&spec.name);
        let action = match record {
            None => Action::Apply("new".into()),
            Some(r) if r.disabling => Action::Apply("an interrupted removal disabled it".into()),
            Some(r) if r.retiring => {
                Action::Apply("an interrupted update retired its instance".into())
            }
            Some(r) if r.node != spec.node => {
                Action::Apply(format!("moves from node `{}`", r.node))
            }
            Some(r) if r.measurement != want.to_hex() => Action::Apply("code changed".into()),
            Some(r) if !is_live => match refused.get(&(r.node.clone(), r.slot(&spec.name))) {
                Some(reason) => Action::Apply(format!(
                    "its node restarted it and it refused its sealed state: {reason}"
                )),
                None => Action::Apply(format!("not running on node `{}`", spec.node)),
            },
            Some(_) if force.contains(&spec.name) => Action::Apply("update requested".into()),
            _ => Action::Keep,
        };
        let state = match (record, &action) {
            (_, Action::Keep) | (None, _) => StateSource::Fresh,
            (Some(r), _) if r.disabling => StateSource::Fresh,
            (Some(_), _) if opts.discard_state.contains(&spec.name) => StateSource::Discarded,
            (Some(r), _)
                if r.pending_state.is_some() && opts.restore_state.contains(&spec.name) =>
            {
                StateSource::Checkpoint
            }
            (Some(r), _) if r.pending_state.is_some() => StateSource::Snapshot,
            (Some(_), _) if is_live => StateSource::Running,
            (Some(_), _) => StateSource::Unconfirmed,
        };
        modules.push(ModuleChange {
            module: spec.name.clone(),
            node: spec.node.clone(),
            action,
            state,
        });
    }
    for (name, rec) in app.modules() {
        if app.descriptor().module(name).is_none() {
            modules.push(ModuleChange {
                module: name.clone(),
                node: rec.node.clone(),
                action: Action::Remove("no longer in the descriptor".into()),
                state: StateSource::Fresh,
            });
        }
    }

    let reloaded: HashSet<&str> = modules
        .iter()
        .filter(|m| matches!(m.action, Action::Apply(_)))
        .map(|m| m.module.as_str())
        .collect();
    let mut connections = vec![];
    for link in &built.links {
        let spec = &link.spec;
        let record = app.connection(&spec.name);
        let endpoints = link.modules();
        let action = match record {
            None => Action::Apply("new".into()),
            Some(r)
                if r.from != from_string(spec)
                    || r.to != spec.to.to_string()
                    || r.algorithm != spec.algorithm.name() =>
            {
                Action::Apply("changed in the descriptor".into())
            }
            Some(_) => match endpoints.iter().find(|m| reloaded.contains(m.as_str())) {
                Some(m) => Action::Apply(format!("endpoint `{m}` is reloaded")),
                None => {
                    let complete = record.is_some_and(|r| {
                        endpoints.iter().all(|m| {
                            app.module(m).map(|rec| rec.instance) == r.instances.get(m).copied()
                        })
                    });
                    if complete {
                        Action::Keep
                    } else {
                        Action::Apply("keys were not delivered to every endpoint".into())
                    }
                }
            },
        };
        connections.push(ConnectionChange {
            connection: spec.name.clone(),
            action,
        });
    }
    Ok(Plan {
        modules,
        connections,
        loaded,
    })
}
