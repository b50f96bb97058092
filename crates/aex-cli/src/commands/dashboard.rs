//! `aex dashboard`: a live web page of the application (see `crate::dashboard`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// Serve a live page of the application (graph, event rates, alarms, devices) on loopback
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Where to listen: loopback by default; another address exposes a page that reads your
    /// deployer state to whoever reaches it and holds the token
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// How often the page gets a new picture, e.g. `1s`, `500ms`
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = period)]
    every: Duration,
    #[command(flatten)]
    pub(super) app: AppPath,
}

/// A period: a duration above zero.
fn period(text: &str) -> Result<Duration, String> {
    aex_node::Timeouts::parse_duration(text).map_err(|e| e.to_string())
}

pub fn exec(args: DashboardArgs, shell: &Shell) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        shell.warn(format!(
            "listening on {}, not loopback: anyone who reaches it and learns the URL reads this application's status",
            args.listen
        ));
    }
    let options = crate::dashboard::Options {
        path: args.app.resolve(args.path.as_ref()),
        identity: args.app.identity(shell)?,
        listen: args.listen,
        every: args.every,
        timeout: args.app.timeout.unwrap_or(Duration::from_secs(2)),
    };
    crate::dashboard::serve(options, |url| {
        shell.status(
            "Serving",
            "the dashboard; open this URL (it carries a per-run token), Ctrl-C stops:",
        );
        // The URL alone on stdout, for scripts and tests.
        let _ = shell.out(url);
    })
}
