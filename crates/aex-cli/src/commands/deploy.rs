//! `aex deploy`: build, load, attest and connect, changing only what differs.

use std::path::PathBuf;

use aex_deploy::ops;
use aex_deploy::ops::deploy::{DeployOptions, Deployed};
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::report;
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
    /// Replace MODULE with an instance that starts from a checkpoint you hold (written by
    /// `aex checkpoint MODULE -o FILE`): for a module whose board is lost for good. Repeatable
    #[arg(long, value_name = "MODULE=FILE", value_parser = parse_restore)]
    restore_state: Vec<(String, PathBuf)>,
    /// If the recorded instance of a module being replaced cannot hand its state over (its
    /// process ended, its node lost it), start the module from its default state without
    /// asking. Without it, `aex deploy` asks on a terminal and stops elsewhere
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: DeployArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let opts = DeployOptions {
        dry_run: args.dry_run,
        discard_state: args.discard_state,
        restore_state: args.restore_state,
    };
    match ops::deploy::deploy(&mut app, &opts, &Bars::new(shell).yes(args.yes))? {
        Deployed::Planned(plan) => {
            report::plan(&plan, shell);
            if plan.is_empty() {
                shell.status(
                    "Unchanged",
                    "the application already matches the descriptor",
                );
            }
        }
        Deployed::Applied(deployed) => report::deployed(&deployed, shell),
    }
    Ok(())
}

/// `MODULE=FILE`.
fn parse_restore(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((module, file)) if !module.is_empty() && !file.is_empty() => {
            Ok((module.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("expected MODULE=FILE, got `{text}`")),
    }
}
