//! `aex update MODULE [--node NODE]`: replace one running module by a new instance (new code,
//! or the same code on another node) that takes over its state.
//!
//! The work is `aex deploy`'s with the module forced into the plan, so the hand-over is the one
//! of [`crate::ops::deploy::transfer`]: the new instance is started and attested, the old one retires with a snapshot of its state, the snapshot is
//! restored into the new instance, and every connection touching the module is re-keyed.
//! Other modules keep running throughout.
//!
//! `--node` moves the module for this deployer's state only: the descriptor is not rewritten,
//! so the next `aex deploy` moves the module back unless the descriptor is changed to match
//! ([`UpdateReport::descriptor_differs`]).

use std::collections::BTreeSet;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::deploy::{apply, build, plan_with, Action, DeployReport, Options};
use crate::progress::Observer;

/// What `aex update` is asked for.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// The module to replace.
    pub module: String,
    /// The node to move it to (default: where it runs now).
    pub node: Option<String>,
    /// Start the new instance from its default state instead of taking over the old one's
    /// (for an old instance that is gone for good).
    pub discard_state: bool,
}

/// What an update did.
#[derive(Debug, Clone)]
pub struct UpdateReport {
    /// The deployment it ran.
    pub deploy: DeployReport,
    /// The node the descriptor names for the module, when the module now runs elsewhere.
    pub descriptor_differs: Option<String>,
}

/// Checks that `opts.module` is deployed and `opts.node` exists, builds the application's
/// modules, then replaces `opts.module` with a new instance on
/// `opts.node` (default: where it runs now) that takes over its state (or, with
/// `discard_state`, starts from its default state: for an instance that is gone for good).
/// Refuses, changing nothing, if other modules would have to change too.
pub fn update(app: &mut App, opts: &UpdateOptions, obs: &dyn Observer) -> Result<UpdateReport> {
    super::governed::refuse_if_governed(app.descriptor(), "aex update")?;
    let (module, node) = (opts.module.as_str(), opts.node.as_deref());
    let names: Vec<String> = app
        .descriptor()
        .modules
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let Some(index) = names.iter().position(|n| n == module) else {
        return Err(app.no_module(module));
    };
    let Some(record) = app.module(module) else {
        return Err(Error::NotDeployed {
            module: module.into(),
        });
    };
    let target = match node {
        Some(n) => {
            app.node_spec(n)?;
            n.to_string()
        }
        None => record.node.clone(),
    };
    // Built only once the request makes sense: a mistyped module or node costs no build.
    let (built, _) = build(app, obs)?;
    let described = app.descriptor().modules[index].node.clone();
    app.place_module(module, &target);

    let options = Options {
        force: BTreeSet::from([module.to_string()]),
        discard_state: if opts.discard_state {
            BTreeSet::from([module.to_string()])
        } else {
            BTreeSet::new()
        },
        restore_state: BTreeSet::new(),
    };
    let plan = plan_with(app, &built, &options)?;
    let others: Vec<String> = plan
        .modules
        .iter()
        .filter(|m| m.module != module)
        .filter_map(|m| match &m.action {
            Action::Keep => None,
            Action::Apply(why) => Some(format!("module `{}` ({why})", m.module)),
            Action::Remove(why) => Some(format!("remove module `{}` ({why})", m.module)),
        })
        .collect();
    if !others.is_empty() {
        return Err(Error::OtherChanges {
            module: module.into(),
            changes: others,
        });
    }
    let deploy = apply(app, &built, obs, &options)?;
    Ok(UpdateReport {
        deploy,
        descriptor_differs: (described != target).then_some(described),
    })
}
