//! `aex status`: nodes, modules and connections, read live from the nodes.

use std::path::PathBuf;

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// Show nodes, modules (attestation, measurement) and connection counters, live
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Print JSON on stdout instead of tables
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: StatusArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let status = ops::status::status(&mut app)?;
    if args.json {
        shell.out(serde_json::to_string_pretty(&status)?)?;
    } else {
        shell.out(crate::table::status(&status))?;
        for problem in crate::table::problems(&status) {
            // A log's lines (escaped, each on its own line) below the warning.
            let (first, lines) = problem.split_once('\n').unwrap_or((&problem, ""));
            shell.warn(first);
            if !lines.is_empty() {
                shell.note(lines);
            }
        }
        for m in status.modules.iter().filter(|m| m.refused_writes > 0) {
            shell.warn(format!(
                "module `{}`: {} device write(s) held for a commit were refused by its node's TEE layer after module code saw them succeed; its log says which (`module.log` in its node's data directory)",
                m.name, m.refused_writes
            ));
        }
        for node in status.nodes.iter().filter(|n| !n.reachable) {
            shell.warn(format!(
                "node `{}` did not answer, so the state of its modules is unknown: {}",
                node.name,
                node.error.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    Ok(())
}
