//! Command-line definitions: one file per `aex` command, each with its clap arguments and an
//! `exec` that calls one library operation.

mod call;
mod deploy;
mod disable;
mod down;
mod graph;
mod node;
mod output;
mod request;
mod reset;
mod status;
mod up;
mod update;

use std::path::PathBuf;

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
    Node(node::NodeArgs),
}

/// Where the application is: a descriptor file or a directory holding `aex.toml`.
#[derive(Debug, Args)]
pub struct AppPath {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    #[arg(short = 'C', long = "app", value_name = "PATH", global = true)]
    app: Option<PathBuf>,
}

impl AppPath {
    fn resolve(&self, positional: Option<&PathBuf>) -> PathBuf {
        positional
            .or(self.app.as_ref())
            .cloned()
            .unwrap_or_else(|| PathBuf::from("."))
    }
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
        Commands::Node(a) => node::exec(a, shell),
    }
}
