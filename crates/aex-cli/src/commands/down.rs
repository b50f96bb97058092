//! `aex down`: stop the local nodes `aex up` started (and with them the modules), from the
//! application's state, also when the descriptor no longer parses.

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
    let path = args.app.resolve(args.path.as_ref());
    let identity = args.app.identity(shell)?;
    let on_wait = super::lock_waiter(shell);
    let down = ops::local::down(
        &path,
        identity,
        args.app.timeout,
        &on_wait,
        &Bars::new(shell),
    )?;
    if let Some(e) = &down.unparsed {
        shell.warn(format!(
            "the descriptor cannot be used ({}); the local nodes were stopped from the \
             application's state (.aex/state.redb)",
            first_line(&e.to_string())
        ));
    }
    if down.stopped.is_empty() {
        shell.status("Down", "no local nodes were running for this application");
    } else {
        shell.status("Down", format!("stopped {}", down.stopped.join(", ")));
    }
    Ok(())
}

/// The first line of a (possibly multi-line, located) error message.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
