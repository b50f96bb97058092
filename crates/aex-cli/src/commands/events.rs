//! `aex events [MODULE] [-f] [--json]`: the event trace of the application's modules.

use std::time::Duration;

use aex_deploy::ops::events::{feed, TracedEvent};
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// How often `--follow` asks the modules for their new entries.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Show the events modules sealed and received: time, connection, counter, size, and whether
/// each was accepted, rejected, or accepted after a gap (as the modules' runtimes recorded
/// them; the nodes relay this trace unauthenticated, like status counters)
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this module's events [default: every module's]
    module: Option<String>,
    /// Only this connection's events
    #[arg(long, value_name = "NAME")]
    connection: Option<String>,
    /// Keep printing events as they happen, until interrupted
    #[arg(short, long)]
    follow: bool,
    /// One JSON object per event on stdout instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: EventsArgs, shell: &Shell) -> Result<()> {
    let mut feed = {
        let mut app = args.app.open(None, shell)?;
        if let Some(name) = &args.connection {
            let valid: Vec<String> = app
                .descriptor()
                .connections
                .iter()
                .map(|c| c.name.clone())
                .collect();
            if !valid.contains(name) {
                return Err(aex_deploy::Error::Connection {
                    message: format!("no connection `{name}` in the descriptor"),
                    given: Some(name.clone()),
                    valid,
                }
                .into());
            }
        }
        feed(&mut app, args.module.as_deref())?
        // The application's state closes here: a follower leaves other commands free to run.
    };
    let mut header = !args.json;
    let mut said_unavailable = std::collections::BTreeSet::new();
    loop {
        let read = feed.read()?;
        for (module, why) in &read.unavailable {
            if said_unavailable.insert(module.clone()) {
                shell.note(format!("--- `{module}`: no trace ({why})"));
            }
        }
        for (module, missed) in &read.missed {
            shell.note(format!(
                "--- `{module}`: {missed} events happened between two reads and are not shown (its runtime keeps the last {})",
                aex_proto::TRACE_CAPACITY
            ));
        }
        let shown = read
            .events
            .iter()
            .filter(|e| args.connection.as_ref().is_none_or(|c| *c == e.connection));
        let mut lines = Vec::new();
        for event in shown {
            if args.json {
                lines.push(serde_json::to_string(event)?);
            } else {
                if header {
                    lines.push(format!(
                        "{:<12}  {:<14}  {:<16}  {:<8}  {:>8}  {:>7}  OUTCOME",
                        "TIME (UTC)", "MODULE", "CONNECTION", "DIR", "COUNTER", "BYTES"
                    ));
                    header = false;
                }
                lines.push(row(event));
            }
        }
        if !lines.is_empty() {
            shell.out(lines.join("\n"))?;
        }
        if !args.follow {
            if header && !args.json {
                shell.note("no events traced yet");
            }
            return Ok(());
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// One event as a table row.
fn row(e: &TracedEvent) -> String {
    let outcome = match (e.outcome, e.gap) {
        ("accepted", gap) if gap > 0 => format!("accepted after a gap of {gap}"),
        ("failed", _) => "failed (accepted; its input or handler failed on it)".to_string(),
        (outcome, _) => outcome.to_string(),
    };
    format!(
        "{:<12}  {:<14}  {:<16}  {:<8}  {:>8}  {:>7}  {outcome}",
        time_of_day(e.at_ms),
        e.module,
        e.connection,
        e.dir,
        e.counter,
        e.size
    )
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds, in UTC.
fn time_of_day(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let s = (unix_ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_utc_with_milliseconds() {
        // 2026-12-04T19:21:12.576Z
        assert_eq!(time_of_day(1_796_412_072_576), "19:21:12.576");
        assert_eq!(time_of_day(0), "00:00:00.000");
    }
}
