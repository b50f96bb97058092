//! `aex reset`: unload this application's modules (only its own) and forget their keys.

use std::path::PathBuf;

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::shell::Shell;

/// Remove this application's modules from their nodes and forget their keys
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: ResetArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let report = ops::reset::reset(&mut app, &Bars::new(shell))?;
    shell.status(
        "Reset",
        format!(
            "unloaded {}",
            if report.unloaded.is_empty() {
                "nothing".to_string()
            } else {
                report.unloaded.join(", ")
            }
        ),
    );
    for why in &report.not_disabled {
        shell.warn(why);
    }
    for (module, why) in &report.unreachable {
        shell.status(
            "Warning",
            format!("`{module}` forgotten but not unloaded: {why}"),
        );
    }
    Ok(())
}
