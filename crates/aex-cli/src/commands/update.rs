//! `aex update`: replace a running module (new code, or another node) without losing its state.

use std::path::PathBuf;

use aex_deploy::ops;
use aex_deploy::ops::update::UpdateOptions;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::report;
use crate::shell::Shell;

/// Replace a running module by a new instance that takes over its state: rebuilt code, or the
/// same code on another node. Connections touching it are re-keyed; other modules keep running
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Module to update
    module: String,
    /// Move the module to this node (the descriptor is not rewritten: change it too, or the
    /// next `aex deploy` moves the module back)
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// Start the new instance from its default state instead of taking over the old one's
    /// (for an old instance that is gone for good: its node restarted, or its process died)
    #[arg(long)]
    discard_state: bool,
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: UpdateArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let opts = UpdateOptions {
        module: args.module.clone(),
        node: args.node,
        discard_state: args.discard_state,
    };
    let report = ops::update::update(&mut app, &opts, &Bars::new(shell))?;
    report::transfers(&report.deploy, shell);
    report::revocations(&report.deploy, shell);
    shell.status(
        "Updated",
        format!(
            "`{}` replaced; {} connections re-keyed ({:.2} s)",
            args.module,
            report.deploy.keyed.len(),
            report.deploy.deploy_secs
        ),
    );
    if let Some(described) = report.descriptor_differs {
        shell.warn(format!(
            "the descriptor still places `{}` on node `{described}`: change its `node` there, or the next `aex deploy` moves it back",
            args.module
        ));
    }
    Ok(())
}
