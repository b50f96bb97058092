//! The `aex` command-line tool: develop, deploy and use aex applications.
//!
//! This binary is a thin layer: each `commands/<name>.rs` parses its arguments and calls one
//! operation of `aex-deploy` (or `aex-node` for `aex node`). All terminal output goes through
//! [`shell::Shell`]: status to stderr, data and `--json` to stdout.

mod commands;
mod dashboard;
mod governor;
mod payload;
mod progress;
mod report;
mod scaffold;
mod shell;
mod table;
mod timeout;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse().and_then(commands::Cli::settle) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    setup_logging(cli.log_format());
    let shell = shell::Shell::new();
    match commands::run(cli, &shell) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if shell::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            shell.error(&e);
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr, filtered by `AEX_LOG` (default: warnings), as text (ANSI only on a
/// terminal) or as one JSON object per line.
fn setup_logging(format: commands::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("AEX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        commands::LogFormat::Json => builder.json().try_init(),
        commands::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
