//! `aex request`: send a request to a module handler over a direct connection and print the
//! authenticated reply.

use std::time::Duration;

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
    /// How long to wait for room while the module's window is full, e.g. `500ms`, `30s`;
    /// `0s` does not wait [default: the --timeout, else 5s]
    ///
    /// The node keeps a window of the bytes the deployer sent on the connection that the
    /// module has not taken in yet. While it is full, nothing is sent; if it is still full
    /// after this long, the command fails having sent nothing.
    #[arg(long, value_name = "DURATION", value_parser = crate::timeout::parse_wait)]
    wait: Option<Duration>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: RequestArgs, shell: &Shell) -> Result<()> {
    let bytes = payload::parse(args.payload.as_deref(), args.hex)?;
    let mut app = args.app.open(None, shell)?;
    let wait = args
        .wait
        .unwrap_or_else(|| app.timeout_or(ops::call::WINDOW_WAIT));
    let reply = ops::call::request(&mut app, &args.connection, &bytes, wait)?;
    shell.out(payload::show(&reply))?;
    Ok(())
}
