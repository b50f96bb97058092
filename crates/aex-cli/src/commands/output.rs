//! `aex output`: send an authentic event to a module input over a direct connection.

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::payload;
use crate::shell::Shell;

/// Send an event on a direct connection (deployer → module input)
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Direct connection: its name or its target `module.input`
    connection: String,
    /// Event payload: JSON text for typed inputs, `@file`, or hex with --hex
    payload: Option<String>,
    /// The payload is hexadecimal bytes
    #[arg(long)]
    hex: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: OutputArgs, shell: &Shell) -> Result<()> {
    let bytes = payload::parse(args.payload.as_deref(), args.hex)?;
    let mut app = args.app.open(None, shell)?;
    ops::call::output(&mut app, &args.connection, &bytes)?;
    shell.status(
        "Sent",
        format!("{} bytes on `{}`", bytes.len(), args.connection),
    );
    Ok(())
}
