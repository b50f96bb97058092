//! `aex deploy` as one operation: build the modules, decide what to change, and change it — or,
//! in a dry run, only decide. The caller is told the plan before anything changes.

use std::collections::BTreeSet;
use std::time::Instant;

use super::report::DeployReport;
use super::{apply, build_all, plan_with, BuiltApp, Options, Plan};
use crate::app::App;
use crate::build::Builder;
use crate::error::{Error, Result};
use crate::progress::{Observer, Quiet};

/// What `aex deploy` is asked for beyond the descriptor.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Decide what would change, and change nothing (`--dry-run`).
    pub dry_run: bool,
    /// Modules that start from their default state if they are replaced, instead of taking
    /// over the state of their recorded instance (`--discard-state`: for an instance that is
    /// gone for good). Each must be a module of the descriptor.
    pub discard_state: Vec<String>,
    /// Modules whose recorded instance is replaced by one that starts from a checkpoint the
    /// owner holds (`--restore-state MODULE=FILE`, `aex checkpoint`): for an instance whose
    /// board is lost for good. Each must be a deployed module of the descriptor.
    pub restore_state: Vec<(String, std::path::PathBuf)>,
}

/// What a deployment tells its caller while it runs, beyond its progress.
pub trait DeployObserver: Observer {
    /// What the deployment is about to change, before anything changes; only called when it
    /// changes something (a dry run returns its plan instead).
    fn planned(&self, _plan: &Plan) {}
}

impl DeployObserver for Quiet {}

/// What `aex deploy` did.
#[derive(Debug, Clone)]
pub enum Deployed {
    /// A dry run: what would change. Nothing did.
    Planned(Plan),
    /// What the deployment did.
    Applied(DeployReport),
}

/// Converges the running application on the descriptor: builds every module, decides what to
/// change ([`Plan`]), and loads, attests and connects only what differs.
pub fn deploy(app: &mut App, opts: &DeployOptions, obs: &dyn DeployObserver) -> Result<Deployed> {
    // A dry run changes nothing, so members may review the plan of a governed descriptor.
    if !opts.dry_run {
        crate::ops::governed::refuse_if_governed(app.descriptor(), "aex deploy")?;
    }
    // Checked before the build: a typo costs no build.
    discarded(app, &opts.discard_state)?;
    let built = build(app, obs)?;
    deploy_built(app, built, opts, obs)
}

/// [`deploy`] from modules already built ([`build`]): `aex up` builds and checks every
/// application before it starts a node.
pub(crate) fn deploy_built(
    app: &mut App,
    (built, build_secs): (BuiltApp, f64),
    opts: &DeployOptions,
    obs: &dyn DeployObserver,
) -> Result<Deployed> {
    let mut options = Options {
        discard_state: discarded(app, &opts.discard_state)?,
        ..Options::default()
    };
    if !opts.dry_run {
        restore(app, &opts.restore_state, &mut options)?;
    }
    let plan = plan_with(app, &built, &options)?;
    if opts.dry_run {
        return Ok(Deployed::Planned(plan));
    }
    if !plan.is_empty() {
        obs.planned(&plan);
    }
    let mut report = apply(app, &built, obs, &options)?;
    report.build_secs = build_secs;
    Ok(Deployed::Applied(report))
}

/// Builds every module with a builder as the environment says (`AEX_BUILD_PROFILE`,
/// `AEX_PREBUILT`) and checks the descriptor against the interfaces the binaries declare;
/// returns the builds and the seconds building took.
pub(crate) fn build(app: &App, obs: &dyn Observer) -> Result<(BuiltApp, f64)> {
    let mut builder = Builder::from_env().map_err(Error::Builder)?;
    let started = Instant::now();
    let built = build_all(app, &mut builder, obs)?;
    Ok((built, started.elapsed().as_secs_f64()))
}

/// `--restore-state`: each named module's record takes the checkpoint as the state its
/// next instance restores, and the module is replaced (even if its instance runs: the owner
/// chose the checkpoint over it). Saved before anything is loaded.
fn restore(
    app: &mut App,
    restore: &[(String, std::path::PathBuf)],
    options: &mut Options,
) -> Result<()> {
    for (module, path) in restore {
        let snapshot = crate::ops::checkpoint::read(path)?;
        let Some(record) = app.module_mut(module) else {
            return Err(Error::NotDeployed {
                module: module.clone(),
            });
        };
        record.pending_state = Some(snapshot);
        options.force.insert(module.clone());
        options.restore_state.insert(module.clone());
    }
    if !restore.is_empty() {
        app.save()?;
    }
    Ok(())
}

/// The modules named by `--discard-state`, each checked against the descriptor.
fn discarded(app: &App, names: &[String]) -> Result<BTreeSet<String>> {
    let desc = app.descriptor();
    for name in names {
        if desc.module(name).is_none() {
            return Err(Error::Connection {
                message: format!("`--discard-state {name}`: no module `{name}` in the descriptor"),
                given: Some(name.clone()),
                valid: desc.modules.iter().map(|m| m.name.clone()).collect(),
            });
        }
    }
    Ok(names.iter().cloned().collect())
}
