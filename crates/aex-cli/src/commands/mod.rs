//! Command-line definitions: one file per `aex` command, each with its clap arguments and an
//! `exec` that calls one library operation.

mod call;
mod deploy;
mod device;
mod disable;
mod down;
mod graph;
mod identity;
mod node;
mod output;
mod request;
mod reset;
mod status;
mod up;
mod update;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aex_deploy::{App, Identity};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::shell::Shell;

/// aex: develop, deploy and use distributed applications whose modules run in TEEs.
#[derive(Debug, Parser)]
#[command(name = "aex", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    Up(up::UpArgs),
    Deploy(deploy::DeployArgs),
    Update(update::UpdateArgs),
    Disable(disable::DisableArgs),
    Status(status::StatusArgs),
    Call(call::CallArgs),
    Output(output::OutputArgs),
    Request(request::RequestArgs),
    Reset(reset::ResetArgs),
    Down(down::DownArgs),
    Graph(graph::GraphArgs),
    Device(device::DeviceArgs),
    Node(node::NodeArgs),
    Identity(identity::IdentityArgs),
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
        Ok(App::open(&self.resolve(positional), identity)?)
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
        Commands::Up(a) => up::exec(a, shell),
        Commands::Deploy(a) => deploy::exec(a, shell),
        Commands::Update(a) => update::exec(a, shell),
        Commands::Disable(a) => disable::exec(a, shell),
        Commands::Status(a) => status::exec(a, shell),
        Commands::Call(a) => call::exec(a, shell),
        Commands::Output(a) => output::exec(a, shell),
        Commands::Request(a) => request::exec(a, shell),
        Commands::Reset(a) => reset::exec(a, shell),
        Commands::Down(a) => down::exec(a, shell),
        Commands::Graph(a) => graph::exec(a, shell),
        Commands::Device(a) => device::exec(a, shell),
        Commands::Node(a) => node::exec(a, shell),
        Commands::Identity(a) => identity::exec(a, shell),
    }
}
