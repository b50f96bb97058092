//! `aex-bench`: how close aex comes to the transport's limit, and how its cost grows.
//!
//! One run measures, side by side on loopback with real processes:
//!
//! * the round trip of an event ping → pong → ping across two `aex node` processes, and the
//!   same round trip through a raw baseline of the same process topology (module process →
//!   node process → node process → module process, plain length-prefixed forwarding) and a
//!   plain two-process TCP echo;
//! * sustained one-way throughput over one connection, aex against the raw baseline;
//! * deploy + attest + connect time of prebuilt modules for growing applications;
//! * resident memory of a node agent and of module processes.
//!
//! The raw baseline's processes are this binary in its hidden `raw-node`, `raw-module` and
//! `tcp-echo` modes, so every hop really crosses a process boundary. Progress goes to
//! stderr, the results table to stdout, and `--json FILE` writes every figure. See
//! `BENCHMARKS.md` at the repository root for the method and the latest results.
//!
//! ```text
//!  aex:  ping ─pipe─ aex node ─TCP─ aex node ─pipe─ pong      (sealed events, routed by header)
//!  raw:  raw-module ─pipe─ raw-node ─TCP─ raw-node ─pipe─ raw-module   (length-prefixed bytes)
//!  tcp:  aex-bench ─TCP─ tcp-echo
//! ```
#![allow(
    clippy::disallowed_macros,
    reason = "a command-line tool: progress goes to stderr, the results table to stdout"
)]

mod aexrun;
mod cluster;
mod deploy;
mod procs;
mod raw;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks of aex on loopback: latency, throughput, deploy time and memory.
#[derive(Debug, Parser)]
#[command(name = "aex-bench", version)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    mode: Option<Mode>,
}

/// Options of a benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Fewer iterations and smaller deployments (seconds instead of a minute)
    #[arg(long)]
    pub quick: bool,
    /// Write every figure as one JSON object to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Round trips measured per payload size, over all rounds (default 10000, 1000 with
    /// --quick)
    #[arg(long, value_name = "N")]
    pub iterations: Option<usize>,
    /// Interleaved rounds of every latency and throughput measurement; figures are the
    /// medians of the rounds' figures
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub rounds: usize,
    /// Events per 64-byte stream, a tenth of that for 16 KiB (default 1000000, 100000 with
    /// --quick)
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,
    /// Application sizes deployed across two nodes (default 2,10,100; 2,10,50 with --quick)
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    pub deploy_sizes: Option<Vec<usize>>,
    /// Application sizes deployed on one node (default 1000, 200 with --quick; 0 skips it)
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    pub deploy_one_node: Option<Vec<usize>>,
    /// Only the deployments, each with the resident memory of every process afterwards (no
    /// event runs)
    #[arg(long)]
    pub deploy_only: bool,
    /// The `aex` binary (default: the one next to this binary, brought up to date with cargo)
    #[arg(long, value_name = "PATH")]
    pub aex: Option<PathBuf>,
    /// Only the one-way streams of these payload sizes (for example 16384), aex and raw in
    /// turn each round, with their rates and CPU per event on stderr: no round trips, no
    /// persistent stream, no deployments, no table. For profiling and A/B comparisons of
    /// the event path
    #[arg(long, value_name = "BYTES,..", value_delimiter = ',')]
    pub streams_only: Option<Vec<usize>>,
}

/// Internal modes: the processes of the raw baseline.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Raw baseline node: forwards length-prefixed frames between its module and one TCP link
    #[command(hide = true)]
    RawNode(raw::NodeArgs),
    /// Raw baseline module: pings, echoes, sources or sinks length-prefixed frames on stdio
    #[command(hide = true)]
    RawModule(raw::ModuleArgs),
    /// Plain TCP echo server for one connection
    #[command(hide = true)]
    TcpEcho,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Some(Mode::RawNode(args)) => raw::node(args),
        Some(Mode::RawModule(args)) => raw::module(args),
        Some(Mode::TcpEcho) => raw::tcp_echo(),
        None => report::run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
