//! `aex checkpoint`: a copy of a running module's state for its owner to hold, so that a
//! module whose board is lost for good can start elsewhere from it
//! (`aex deploy --restore-state MODULE=FILE`).

use std::path::PathBuf;

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// Take a checkpoint of a running module's state and write it to a file you keep (the state
/// in clear, mode 0600)
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Module name
    module: String,
    /// The file to write
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: CheckpointArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(None, shell)?;
    let done = ops::checkpoint::checkpoint(&mut app, &args.module, &args.output)?;
    shell.status(
        "Checkpoint",
        format!(
            "`{}`: {} bytes of state, SHA-256 {}, in {} (restore with `aex deploy --restore-state {}={}`)",
            done.module,
            done.bytes,
            &done.digest[..16],
            done.path.display(),
            done.module,
            done.path.display()
        ),
    );
    Ok(())
}
