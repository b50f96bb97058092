//! `aex request`: send a request to a module handler over a direct connection and print the
//! authenticated reply.

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::payload;
use crate::shell::Shell;

/// Send a request on a direct connection (deployer → module handler) and print the reply
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Direct connection: its name or its target `module.handler`
    connection: String,
    /// Request payload: JSON text for typed handlers, `@file`, or hex with --hex
    payload: Option<String>,
    /// The payload is hexadecimal bytes
    #[arg(long)]
    hex: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: RequestArgs, shell: &Shell) -> Result<()> {
    let bytes = payload::parse(args.payload.as_deref(), args.hex)?;
    let mut app = args.app.open(None, shell)?;
    let reply = ops::call::request(&mut app, &args.connection, &bytes)?;
    shell.out(payload::show(&reply))?;
    Ok(())
}
