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
use crate::ops::deploy::{deploy_with, plan_with, Action, BuiltApp, DeployReport, Options};
use crate::progress::Observer;

/// What an update did.
#[derive(Debug, Clone)]
pub struct UpdateReport {
    /// The deployment it ran.
    pub deploy: DeployReport,
    /// The node the descriptor names for the module, when the module now runs elsewhere.
    pub descriptor_differs: Option<String>,
}

/// Replaces `module` with a new instance on `node` (default: where it runs now) that takes
/// over its state (or, with `discard_state`, starts from its default state: for an instance
/// that is gone for good). Refuses, changing nothing, if other modules would have to change
/// too.
pub fn update(
    app: &mut App,
    built: &BuiltApp,
    module: &str,
    node: Option<&str>,
    discard_state: bool,
    obs: &dyn Observer,
) -> Result<UpdateReport> {
    let names: Vec<String> = app
        .descriptor()
        .modules
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let Some(index) = names.iter().position(|n| n == module) else {
        return Err(Error::Connection {
            message: format!("no module `{module}` in the descriptor"),
            given: Some(module.into()),
            valid: names,
        });
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
    let described = app.descriptor().modules[index].node.clone();
    app.place_module(module, &target);

    let opts = Options {
        force: BTreeSet::from([module.to_string()]),
        discard_state: if discard_state {
            BTreeSet::from([module.to_string()])
        } else {
            BTreeSet::new()
        },
    };
    let plan = plan_with(app, built, &opts)?;
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
    let deploy = deploy_with(app, built, obs, &opts)?;
    Ok(UpdateReport {
        deploy,
        descriptor_differs: (described != target).then_some(described),
    })
}
