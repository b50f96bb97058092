//! `aex disable`: make a module drop its keys (authenticated under its module key).

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// Disable a module: it drops its module key and connection keys and accepts nothing more
#[derive(Debug, Args)]
pub struct DisableArgs {
    /// Module name
    module: String,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: DisableArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(None, shell)?;
    ops::disable::disable(&mut app, &args.module)?;
    shell.status(
        "Disabled",
        format!(
            "`{}` dropped its keys; `aex deploy` starts a fresh instance",
            args.module
        ),
    );
    Ok(())
}
