//! `aex status`: nodes, modules and connections, read from the nodes once, or again and again
//! with `--watch`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aex_deploy::ops;
use aex_deploy::ops::status::AppStatus;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// Show nodes, modules (attestation, measurement) and connection counters, read from the nodes
/// now (`--watch` refreshes them until Ctrl-C)
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Print JSON on stdout instead of tables (with --watch: one line per refresh)
    #[arg(long)]
    json: bool,
    /// Refresh every INTERVAL until Ctrl-C, in place on a terminal, e.g. `--watch=500ms`
    /// [default interval: 1s]
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1s",
        value_parser = crate::timeout::parse_interval
    )]
    watch: Option<Duration>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: StatusArgs, shell: &Shell) -> Result<()> {
    let Some(every) = args.watch else {
        let mut app = args.app.open(args.path.as_ref(), shell)?;
        let status = ops::status::status(&mut app)?;
        if args.json {
            shell.out(serde_json::to_string_pretty(&status)?)?;
        } else {
            shell.out(crate::table::status(&status))?;
            for warning in warnings(&status) {
                // A log's lines (escaped, each on its own line) below the warning.
                let (first, lines) = warning.split_once('\n').unwrap_or((&warning, ""));
                shell.warn(first);
                if !lines.is_empty() {
                    shell.note(lines);
                }
            }
            // A governed application's proposals (issue 20): an unreachable or unverifiable
            // governor is a warning here, not a failure of the nodes' status.
            if let Err(e) = super::govern::status_section(app.descriptor(), args.app.timeout, shell)
            {
                shell.warn(format!("the governor's proposals: {e:#}"));
            }
        }
        return Ok(());
    };
    let path = args.app.resolve(args.path.as_ref());
    let identity = args.app.identity(shell)?;
    let in_place = shell.stdout_interactive() && !args.json;
    for refresh in 0u64.. {
        let started = Instant::now();
        // Opened afresh each time, and let go of at once: other `aex` commands may use the
        // application's state between two refreshes.
        let looked = args
            .app
            .open_as(&path, identity.clone(), shell)
            .and_then(|mut app| Ok(ops::status::status(&mut app)?));
        let status = match looked {
            Ok(status) => status,
            // The first look fails as `aex status` would; a later one is shown and retried
            // (a node restarting, a deploy holding the state for longer than `--timeout`).
            Err(e) if refresh == 0 => return Err(e),
            Err(e) => {
                shell.warn(format!("status failed: {e:#}"));
                std::thread::sleep(every.saturating_sub(started.elapsed()));
                continue;
            }
        };
        if args.json {
            shell.out(serde_json::to_string(&status)?)?;
        } else {
            let mut frame = format!(
                "aex status {} every {} ({}; Ctrl-C stops)\n\n{}",
                path.display(),
                crate::timeout::show(every),
                clock(),
                crate::table::status(&status)
            );
            for warning in warnings(&status) {
                frame.push_str(&format!("\nwarning: {warning}"));
            }
            if in_place {
                shell.redraw(&frame)?;
            } else {
                shell.out(frame + "\n")?;
            }
        }
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
    Ok(())
}

/// The time of day, for a refresh's header (chrono without its clock feature: the time comes
/// from the standard library).
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(String::new, |t| t.format("%H:%M:%S UTC").to_string())
}

/// What needs the user's attention besides the tables: modules that ended or whose ports
/// failed (`table::problems`), writes refused after the module saw them succeed, and nodes
/// that did not answer.
fn warnings(status: &AppStatus) -> Vec<String> {
    let problems = crate::table::problems(status);
    let refused = status.modules.iter().filter(|m| m.refused_writes > 0).map(|m| {
        format!(
            "module `{}`: {} device write(s) held for a commit were refused by its node's TEE layer after module code saw them succeed; its log says which (`module.log` in its node's data directory)",
            m.name, m.refused_writes
        )
    });
    let silent = status.nodes.iter().filter(|n| !n.reachable).map(|node| {
        format!(
            "node `{}` did not answer, so the state of its modules is unknown: {}",
            node.name,
            node.error.as_deref().unwrap_or("no reason given")
        )
    });
    problems.into_iter().chain(refused).chain(silent).collect()
}
