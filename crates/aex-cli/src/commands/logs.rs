//! `aex logs [MODULE] [-f]`: modules' logs, read through their nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use aex_deploy::client::ClientError;
use aex_deploy::ops::logs::{feeds, LogFeed};
use aex_deploy::Error;
use aex_proto::NodeErrorKind;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// How often `--follow` asks the nodes for what was logged since.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Show modules' logs (their stderr, kept by their nodes), read through the nodes
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Module name [default: every module of the descriptor, each line prefixed with its name]
    module: Option<String>,
    /// Keep printing lines as the modules write them, until interrupted
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: LogsArgs, shell: &Shell) -> Result<()> {
    let mut feeds = {
        let mut app = args.app.open(None, shell)?;
        feeds(&mut app, args.module.as_deref())?
        // The application's state closes here: a follower leaves other commands free to run.
    };
    let prefixed = args.module.is_none();
    // Per module: the last line's start while it has no end yet.
    let mut partial: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut silent: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        for feed in &mut feeds {
            let Some(bytes) = read(feed, shell, &mut silent)? else {
                continue;
            };
            let pending = partial.entry(feed.module().to_string()).or_default();
            pending.extend_from_slice(&bytes);
            let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let lines: Vec<u8> = pending.drain(..=end).collect();
            print_lines(shell, prefixed.then_some(feed.module()), &lines)?;
        }
        if !args.follow {
            break;
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
    for (module, rest) in partial.iter().filter(|(_, rest)| !rest.is_empty()) {
        print_lines(shell, prefixed.then_some(module.as_str()), rest)?;
    }
    Ok(())
}

/// What `feed` has logged since it was last read; `None` (said once) when its node keeps no
/// log for it, because the module was never deployed there.
fn read(
    feed: &mut LogFeed,
    shell: &Shell,
    silent: &mut BTreeMap<String, bool>,
) -> Result<Option<Vec<u8>>> {
    match feed.read() {
        Ok(chunk) => {
            silent.remove(feed.module());
            if chunk.rotated {
                shell.note(format!(
                    "--- `{}`: the log was rotated; earlier lines are in `module.log.1` on node `{}`",
                    feed.module(),
                    feed.node()
                ));
            }
            Ok(Some(chunk.bytes))
        }
        Err(Error::Node {
            source: ClientError::Node(e),
            ..
        }) if e.kind == NodeErrorKind::UnknownModule => {
            if !silent
                .insert(feed.module().to_string(), true)
                .unwrap_or(false)
            {
                shell.note(format!(
                    "--- `{}`: node `{}` keeps no log for it (not deployed yet?)",
                    feed.module(),
                    feed.node()
                ));
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints `bytes` (whole lines, but for a log's unterminated end), each line prefixed with
/// `module` if given. Module output is untrusted: the shell escapes control characters.
fn print_lines(shell: &Shell, module: Option<&str>, bytes: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let out = match module {
        Some(module) => text
            .split('\n')
            .map(|line| format!("{module} | {line}"))
            .collect::<Vec<_>>()
            .join("\n"),
        None => text.to_string(),
    };
    shell.out(out)?;
    Ok(())
}
