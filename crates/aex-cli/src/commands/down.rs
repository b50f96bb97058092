//! `aex down`: stop the local nodes `aex up` started (and with them the modules).

use std::path::PathBuf;

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::shell::Shell;

/// Stop the local nodes started by `aex up` for this application
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: DownArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let stopped = ops::local::stop_local_nodes(&mut app, None, &Bars::new(shell))?;
    if stopped.is_empty() {
        shell.status("Down", "no local nodes were running for this application");
    } else {
        shell.status("Down", format!("stopped {}", stopped.join(", ")));
    }
    Ok(())
}
