//! Command-line definitions: one file per `aex` command, each with its clap arguments and an
//! `exec` that calls one library operation.

mod bill;
mod call;
mod checkpoint;
mod dashboard;
mod deploy;
mod device;
mod disable;
mod down;
mod events;
mod govern;
mod govern_disable;
mod govern_provider;
mod govern_retry;
mod graph;
mod identity;
mod ledger;
mod ledger_governed;
mod logs;
mod new;
mod node;
mod output;
mod recovery;
mod request;
mod reset;
mod status;
mod tls;
mod up;
mod update;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aex_deploy::{App, Identity};
use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand};

pub use node::LogFormat;

use crate::shell::Shell;
use crate::timeout::{self, TimeoutArg};

/// aex: develop, deploy and use distributed applications whose modules run in TEEs.
#[derive(Debug, Parser)]
#[command(name = "aex", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
    /// Limit on each wait for a node, e.g. `500ms`, `5s` [default: 15 s for an answer; env:
    /// AEX_TIMEOUT]
    ///
    /// One limit for every node wait of the command: each answer, a local node's start and
    /// stop, a request's reply; and for the wait on another `aex` that holds the application's
    /// state. Unset, each wait keeps its own default (the state: as long as it takes). `aex node` takes
    /// NAME=DURATION instead, to set one of the node's own timeouts (repeatable; names:
    /// hello, start, body, reply, stats, write, connect, backoff, backoff_max, stale, stop,
    /// exit; see `[timeouts]` in its configuration file).
    #[arg(
        long,
        global = true,
        value_name = "[NAME=]DURATION",
        value_parser = timeout::parse
    )]
    timeout: Vec<TimeoutArg>,
}

impl Cli {
    /// The log format asked for: `aex node --log-format`, else `AEX_LOG_FORMAT`, else text.
    pub fn log_format(&self) -> node::LogFormat {
        node::resolve(match &self.command {
            Commands::Node(node) => node.log_format,
            _ => None,
        })
    }

    /// Hands the global `--timeout` (or `AEX_TIMEOUT`) to the command, in the form it takes;
    /// the other form is a usage error, like any invalid option value.
    pub fn settle(mut self) -> Result<Cli, clap::Error> {
        let args = std::mem::take(&mut self.timeout);
        let settled = match &mut self.command {
            Commands::Node(node) => timeout::for_node(&args).map(|t| node.timeouts = t),
            command => {
                let env = std::env::var(timeout::ENV).ok();
                let needs_env = command.app_path().is_some();
                timeout::for_deployer(&args, env.as_deref().filter(|_| needs_env)).map(|t| {
                    if let Some(app) = command.app_path() {
                        app.timeout = t;
                    }
                })
            }
        };
        settled.map_err(|message| {
            Cli::command().error(clap::error::ErrorKind::ValueValidation, message)
        })?;
        Ok(self)
    }
}

impl Commands {
    /// The application options of a command that works on an application.
    fn app_path(&mut self) -> Option<&mut AppPath> {
        match self {
            Commands::Up(a) => Some(&mut a.app),
            Commands::Deploy(a) => Some(&mut a.app),
            Commands::Update(a) => Some(&mut a.app),
            Commands::Disable(a) => Some(&mut a.app),
            Commands::Status(a) => Some(&mut a.app),
            Commands::Call(a) => Some(&mut a.app),
            Commands::Checkpoint(a) => Some(&mut a.app),
            Commands::Output(a) => Some(&mut a.app),
            Commands::Request(a) => Some(&mut a.app),
            Commands::Reset(a) => Some(&mut a.app),
            Commands::Down(a) => Some(&mut a.app),
            Commands::Graph(a) => Some(&mut a.app),
            Commands::Logs(a) => Some(&mut a.app),
            Commands::Dashboard(a) => Some(&mut a.app),
            Commands::Events(a) => Some(&mut a.app),
            Commands::Fetch(a) => Some(&mut a.app),
            Commands::Tls(a) => a.app_path(),
            Commands::Device(_)
            | Commands::Node(_)
            | Commands::New(_)
            | Commands::Identity(_)
            | Commands::Ledger(_)
            | Commands::Receipt(_) => None,
            Commands::Bill(a) => Some(&mut a.app),
            Commands::Propose(a) => Some(&mut a.app),
            Commands::Proposals(a) => Some(&mut a.app),
            Commands::Vote(a) => Some(&mut a.app),
            Commands::Withdraw(a) => Some(&mut a.app),
            Commands::Retry(a) => Some(&mut a.app),
            Commands::Governor(a) => Some(&mut a.app),
            Commands::Recovery(a) => Some(&mut a.app),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Commands {
    New(new::NewArgs),
    Up(up::UpArgs),
    Deploy(deploy::DeployArgs),
    Update(update::UpdateArgs),
    Disable(disable::DisableArgs),
    Status(status::StatusArgs),
    Call(call::CallArgs),
    Checkpoint(checkpoint::CheckpointArgs),
    Output(output::OutputArgs),
    Request(request::RequestArgs),
    Reset(reset::ResetArgs),
    Down(down::DownArgs),
    Graph(graph::GraphArgs),
    Logs(logs::LogsArgs),
    Dashboard(dashboard::DashboardArgs),
    Events(events::EventsArgs),
    Fetch(tls::FetchArgs),
    Tls(tls::TlsArgs),
    Device(device::DeviceArgs),
    Node(node::NodeArgs),
    Identity(identity::IdentityArgs),
    Ledger(ledger::LedgerArgs),
    Receipt(ledger::ReceiptArgs),
    Bill(bill::BillArgs),
    Propose(govern::ProposeArgs),
    Proposals(govern::ProposalsArgs),
    Vote(govern::VoteArgs),
    Withdraw(govern::WithdrawArgs),
    Retry(govern_retry::RetryArgs),
    Governor(govern_provider::GovernorCmdArgs),
    Recovery(recovery::RecoveryArgs),
}

/// Where the application is (a descriptor file or a directory holding `aex.toml`), and who
/// deploys it.
#[derive(Debug, Args)]
pub struct AppPath {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    #[arg(short = 'C', long = "app", value_name = "PATH", global = true)]
    app: Option<PathBuf>,
    /// Deployer identity file (Ed25519 key, created on first use) [default: $AEX_IDENTITY,
    /// else ~/.config/aex/identity]
    #[arg(long, value_name = "FILE", global = true)]
    identity: Option<PathBuf>,
    /// The limit on every node wait (`Cli::settle` sets it from `--timeout` or
    /// `AEX_TIMEOUT`); `None` keeps each wait's default.
    #[arg(skip)]
    timeout: Option<Duration>,
}

impl AppPath {
    fn resolve(&self, positional: Option<&PathBuf>) -> PathBuf {
        positional
            .or(self.app.as_ref())
            .cloned()
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The deployer identity, created on first use.
    fn identity(&self, shell: &Shell) -> Result<Arc<Identity>> {
        load_identity(self.identity.as_deref(), shell)
    }

    /// Opens the application, its sessions signed by the deployer identity.
    fn open(&self, positional: Option<&PathBuf>, shell: &Shell) -> Result<App> {
        let identity = self.identity(shell)?;
        self.open_as(&self.resolve(positional), identity, shell)
    }

    /// Opens the application at `path` as `identity`, waiting for its nodes (and for another
    /// `aex` that holds its state, saying who) as long as `--timeout` says.
    fn open_as(&self, path: &Path, identity: Arc<Identity>, shell: &Shell) -> Result<App> {
        let on_wait = lock_waiter(shell);
        Ok(App::open_waiting(path, identity, self.timeout, &on_wait)?)
    }
}

/// What `aex` says when another process holds the application's state: whom it waits for, and
/// how to stop waiting.
fn lock_waiter(shell: &Shell) -> impl Fn(Option<&aex_deploy::state::LockHolder>) + '_ {
    move |holder| {
        let who = holder.map_or_else(
            || "another process (it has not said which yet)".to_owned(),
            ToString::to_string,
        );
        shell.status(
            "Waiting",
            format!(
                "for the application's state, which {who} holds (Ctrl-C stops waiting; \
                 `--timeout` bounds the wait)"
            ),
        );
    }
}

/// Loads the deployer identity from `explicit`, `$AEX_IDENTITY` or the default path, creating
/// it (and saying so) on first use.
fn load_identity(explicit: Option<&Path>, shell: &Shell) -> Result<Arc<Identity>> {
    let located = Identity::locate(explicit).and_then(|p| Identity::load_or_create(&p));
    let (identity, created) = located.map_err(aex_deploy::Error::from)?;
    if created {
        shell.status(
            "Created",
            format!(
                "deployer identity {} (secret, mode 0600); nodes admit it with `aex node --admit {}`",
                identity.path().display(),
                identity.public()
            ),
        );
    }
    Ok(Arc::new(identity))
}

/// Runs the parsed command.
pub fn run(cli: Cli, shell: &Shell) -> Result<()> {
    match cli.command {
        Commands::New(a) => new::exec(a, shell),
        Commands::Up(a) => up::exec(a, shell),
        Commands::Deploy(a) => deploy::exec(a, shell),
        Commands::Update(a) => update::exec(a, shell),
        Commands::Disable(a) => disable::exec(a, shell),
        Commands::Status(a) => status::exec(a, shell),
        Commands::Call(a) => call::exec(a, shell),
        Commands::Checkpoint(a) => checkpoint::exec(a, shell),
        Commands::Output(a) => output::exec(a, shell),
        Commands::Request(a) => request::exec(a, shell),
        Commands::Reset(a) => reset::exec(a, shell),
        Commands::Down(a) => down::exec(a, shell),
        Commands::Graph(a) => graph::exec(a, shell),
        Commands::Logs(a) => logs::exec(a, shell),
        Commands::Dashboard(a) => dashboard::exec(a, shell),
        Commands::Events(a) => events::exec(a, shell),
        Commands::Fetch(a) => tls::exec_fetch(a, shell),
        Commands::Tls(a) => tls::exec_tls(a, shell),
        Commands::Device(a) => device::exec(a, shell),
        Commands::Node(a) => node::exec(a, shell),
        Commands::Identity(a) => identity::exec(a, shell),
        Commands::Ledger(a) => ledger::exec(a, shell),
        Commands::Receipt(a) => ledger::exec_receipt(a, shell),
        Commands::Bill(a) => bill::exec(a, shell),
        Commands::Propose(a) => govern::exec_propose(a, shell),
        Commands::Proposals(a) => govern::exec_proposals(a, shell),
        Commands::Vote(a) => govern::exec_vote(a, shell),
        Commands::Withdraw(a) => govern::exec_withdraw(a, shell),
        Commands::Retry(a) => govern_retry::exec(a, shell),
        Commands::Governor(a) => govern_provider::exec(a, shell),
        Commands::Recovery(a) => recovery::exec(a, shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args).and_then(Cli::settle)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeout_reaches_the_command_in_its_form() {
        let ms = Duration::from_millis;
        // Before or after the command name; the last one wins.
        for args in [
            &["aex", "--timeout", "250ms", "status"][..],
            &["aex", "status", "--timeout", "250ms"],
            &["aex", "--timeout", "9s", "status", "--timeout", "250ms"],
        ] {
            let mut cli = settled(args).unwrap();
            let app = cli.command.app_path().unwrap();
            assert_eq!(app.timeout, Some(ms(250)), "{args:?}");
        }
        let Commands::Node(node) = settled(&[
            "aex",
            "node",
            "--timeout",
            "hello=250ms",
            "--timeout",
            "stale=1m",
        ])
        .unwrap()
        .command
        else {
            panic!("not the node command");
        };
        assert_eq!(node.timeouts, [("hello", ms(250)), ("stale", ms(60_000))]);

        for (args, says) in [
            (
                &["aex", "status", "--timeout", "soon"][..],
                "invalid duration `soon`",
            ),
            (&["aex", "--timeout", "0s", "deploy"], "longer than zero"),
            (
                &["aex", "status", "--timeout", "hello=1s"],
                "only `aex node`",
            ),
            (
                &["aex", "identity", "--timeout", "hello=1s"],
                "only `aex node`",
            ),
            (&["aex", "node", "--timeout", "1s"], "takes NAME=DURATION"),
            (
                &["aex", "node", "--timeout", "helo=1s"],
                "unknown timeout `helo`",
            ),
        ] {
            let e = settled(args).unwrap_err();
            // A usage error: clap prints it and `aex` exits with status 2.
            assert!(e.use_stderr() && e.exit_code() == 2, "{args:?}");
            assert!(e.to_string().contains(says), "{args:?}: {e}");
        }
    }
}
