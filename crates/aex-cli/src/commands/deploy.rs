//! `aex deploy`: build, load, attest and connect, changing only what differs.

use std::path::PathBuf;

use aex_deploy::build::{Builder, Profile};
use aex_deploy::{ops, App};
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::shell::Shell;

/// Build, load, attest and connect the application's modules on running nodes
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    #[command(flatten)]
    app: AppPath,
}

pub fn exec(args: DeployArgs, shell: &Shell) -> Result<()> {
    let mut app = App::open(&args.app.resolve(args.path.as_ref()))?;
    let report = deploy(&mut app, shell)?;
    let _ = report;
    Ok(())
}

/// Builds and deploys, reporting what changed; shared with `aex up`.
pub fn deploy(app: &mut App, shell: &Shell) -> Result<ops::deploy::DeployReport> {
    let bars = Bars::new(shell);
    let mut builder = Builder::new(Profile::from_env());
    let started = std::time::Instant::now();
    let built = ops::deploy::build_all(app, &mut builder, &bars)?;
    let build_secs = started.elapsed().as_secs_f64();
    let mut report = ops::deploy::deploy(app, &built, &bars)?;
    report.build_secs = build_secs;
    if report.loaded.is_empty() && report.keyed.is_empty() && report.removed.is_empty() {
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
    Ok(report)
}
