//! `aex deploy`: build, load, attest and connect, changing only what differs.

use std::path::PathBuf;

use aex_deploy::build::Builder;
use aex_deploy::{ops, App};
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::shell::Shell;

/// Converge the running application on the descriptor: build, then load, attest and connect
/// only what differs
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// If MODULE is replaced, start it from its default state instead of taking over the
    /// state of its recorded instance (for an instance that is gone for good: its node
    /// restarted, or its process died). Repeatable
    #[arg(long, value_name = "MODULE")]
    discard_state: Vec<String>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: DeployArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let opts = ops::deploy::Options {
        discard_state: discard_state(&app, &args.discard_state)?,
        ..Default::default()
    };
    if args.dry_run {
        let built = build(&mut app, shell)?.0;
        let plan = ops::deploy::plan_with(&mut app, &built, &opts)?;
        show_plan(&plan, shell);
        if plan.is_empty() {
            shell.status(
                "Unchanged",
                "the application already matches the descriptor",
            );
        }
        return Ok(());
    }
    deploy_with(&mut app, shell, &opts)?;
    Ok(())
}

/// The modules named by `--discard-state`, each checked against the descriptor.
fn discard_state(app: &App, names: &[String]) -> Result<std::collections::BTreeSet<String>> {
    for name in names {
        if app.descriptor().module(name).is_none() {
            return Err(aex_deploy::Error::Connection {
                message: format!("`--discard-state {name}`: no module `{name}` in the descriptor"),
                given: Some(name.clone()),
                valid: app
                    .descriptor()
                    .modules
                    .iter()
                    .map(|m| m.name.clone())
                    .collect(),
            }
            .into());
        }
    }
    Ok(names.iter().cloned().collect())
}

pub(super) fn build(app: &mut App, shell: &Shell) -> Result<(ops::deploy::BuiltApp, f64)> {
    let mut builder = Builder::from_env()?;
    let started = std::time::Instant::now();
    let built = ops::deploy::build_all(app, &mut builder, &Bars::new(shell))?;
    Ok((built, started.elapsed().as_secs_f64()))
}

/// One line per change; kept items are counted, not listed.
pub(super) fn show_plan(plan: &ops::deploy::Plan, shell: &Shell) {
    use ops::deploy::Action;
    let line = |what: String, verb: &str, action: &Action| match action {
        Action::Keep => None,
        Action::Apply(why) => Some(format!("{what}: {verb} ({why})")),
        Action::Remove(why) => Some(format!("{what}: remove ({why})")),
        _ => Some(format!("{what}: {action:?}")),
    };
    let mut kept = 0;
    for m in &plan.modules {
        let what = format!("module `{}` on `{}`", m.module, m.node);
        let verb = match m.state {
            ops::deploy::StateSource::Running => "load, attest and take over the running state",
            ops::deploy::StateSource::Snapshot => "load, attest and restore the saved state",
            ops::deploy::StateSource::Unconfirmed => {
                "ask the recorded instance for its state (its node reports it gone), then load and attest"
            }
            ops::deploy::StateSource::Discarded => {
                "load and attest, discarding the recorded instance's state"
            }
            _ => "load and attest",
        };
        match line(what, verb, &m.action) {
            Some(l) => shell.status("Plan", l),
            None => kept += 1,
        }
    }
    for c in &plan.connections {
        let what = format!("connection `{}`", c.connection);
        match line(what, "deliver fresh keys", &c.action) {
            Some(l) => shell.status("Plan", l),
            None => kept += 1,
        }
    }
    if kept > 0 {
        shell.status(
            "Plan",
            format!("{kept} modules and connections stay as they are"),
        );
    }
}

/// Builds and deploys, reporting what changed; shared with `aex up`.
pub fn deploy(app: &mut App, shell: &Shell) -> Result<ops::deploy::DeployReport> {
    deploy_with(app, shell, &ops::deploy::Options::default())
}

fn deploy_with(
    app: &mut App,
    shell: &Shell,
    opts: &ops::deploy::Options,
) -> Result<ops::deploy::DeployReport> {
    let bars = Bars::new(shell);
    let (built, build_secs) = build(app, shell)?;
    let plan = ops::deploy::plan_with(app, &built, opts)?;
    if !plan.is_empty() {
        show_plan(&plan, shell);
    }
    let mut report = ops::deploy::deploy_with(app, &built, &bars, opts)?;
    report.build_secs = build_secs;
    show_transfers(&report, shell);
    show_revocations(&report, shell);
    if report.loaded.is_empty()
        && report.keyed.is_empty()
        && report.removed.is_empty()
        && report.revoked.is_empty()
    {
        shell.status(
            "Unchanged",
            format!(
                "{} modules already attested and connected",
                report.kept.len()
            ),
        );
    } else {
        shell.status(
            "Deployed",
            format!(
                "{} loaded and attested, {} kept, {} removed, {} connections keyed ({:.2} s, builds {:.2} s)",
                report.loaded.len(),
                report.kept.len(),
                report.removed.len(),
                report.keyed.len(),
                report.deploy_secs,
                report.build_secs
            ),
        );
    }
    for trigger in &report.periodic {
        shell.status("Periodic", trigger);
    }
    Ok(report)
}

/// The connections revoked, and what needs the user's attention.
pub(super) fn show_revocations(report: &ops::deploy::DeployReport, shell: &Shell) {
    for name in &report.revoked {
        shell.status(
            "Revoked",
            format!("connection `{name}`: its keys dropped in its modules, its routes removed"),
        );
    }
    for warning in &report.warnings {
        shell.warn(warning);
    }
}

/// One line per module that was replaced while running: where its state came from, and how
/// long it took part in no connection.
pub(super) fn show_transfers(report: &ops::deploy::DeployReport, shell: &Shell) {
    use ops::deploy::StateSource;
    for t in &report.transfers {
        let route = if t.from_node == t.to_node {
            format!("on `{}`", t.to_node)
        } else {
            format!("from `{}` to `{}`", t.from_node, t.to_node)
        };
        let what = match (t.source, t.bytes) {
            (StateSource::Running, Some(n)) => format!("took over the state ({n} bytes)"),
            (StateSource::Snapshot, Some(n)) => {
                format!("restored the state an interrupted update saved ({n} bytes)")
            }
            (StateSource::Unconfirmed, Some(n)) => format!(
                "took over the state ({n} bytes) of an instance its node had reported gone"
            ),
            (StateSource::Running | StateSource::Unconfirmed, None) => "starts from its default state: its state type is not serializable and it has no #[save]/#[restore] methods".into(),
            (StateSource::Discarded, _) => "starts from its default state: the state of the old instance was discarded (--discard-state)".into(),
            _ => "starts from its default state".into(),
        };
        shell.status(
            "Transferred",
            format!(
                "`{}` {route}: {what}; connectivity gap {:.1} ms",
                t.module,
                t.gap.as_secs_f64() * 1e3
            ),
        );
    }
}
