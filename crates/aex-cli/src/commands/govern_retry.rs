//! `aex retry ID`: asks the governor to carry out again an accepted proposal whose
//! application failed (a node was down, a symmetric node's provider key was not handed yet),
//! and waits for the outcome, so that whoever asked learns at once whether it worked.
//!
//! The governor's `POST /proposals/ID/apply` needs no signature: it only re-runs a proposal
//! the members accepted, with the change they approved, and refuses one already applied or
//! not accepted (409).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;

use super::govern::{open, resolve_id, GovernorArgs};
use super::AppPath;
use crate::governor::{short, Outcome};
use crate::shell::Shell;

/// How often the outcome is asked for while the governor carries the proposal out.
const POLL: Duration = Duration::from_millis(200);

/// Carry out again an accepted proposal whose application failed, and wait for the outcome
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The proposal's id, or the start of it as `aex proposals` shows it
    id: String,
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// How long to wait for the outcome (`0s`: do not wait)
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::timeout::parse_wait)]
    wait: Duration,
    #[command(flatten)]
    governor: GovernorArgs,
    #[command(flatten)]
    pub(super) app: AppPath,
}

/// `aex retry`.
pub fn exec(args: RetryArgs, shell: &Shell) -> Result<()> {
    let (_, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let id = resolve_id(&governor, &args.id, shell)?.hex();
    let (verified, _) = governor.send("POST", &format!("/proposals/{id}/apply"), b"")?;
    governor.announce(&verified, shell);
    shell.status(
        "Queued",
        format!("proposal {}: the governor carries it out again", short(&id)),
    );
    let deadline = Instant::now() + args.wait;
    let path = format!("/proposals/{id}/outcome");
    loop {
        if args.wait.is_zero() {
            return Ok(());
        }
        let (_, outcome) = governor.json::<Outcome>("GET", &path, b"")?;
        match outcome.state.as_str() {
            "applied" => {
                shell.status(
                    "Applied",
                    format!(
                        "proposal {}: {}",
                        short(&id),
                        outcome.report.as_deref().unwrap_or("carried out")
                    ),
                );
                return Ok(());
            }
            "failed" => bail!(
                "proposal {} failed to apply again: {}",
                short(&id),
                outcome
                    .error
                    .as_deref()
                    .unwrap_or("the governor gave no reason")
            ),
            _ => {}
        }
        if Instant::now() >= deadline {
            bail!(
                "proposal {} is still {} after {:?}: the governor goes on; `aex proposals` \
                 shows how it ends",
                short(&id),
                outcome.state,
                args.wait
            );
        }
        std::thread::sleep(POLL);
    }
}
