//! `aex output`: send an authentic event to a module input over a direct connection.

use std::time::Duration;

use aex_deploy::ops;
use aex_deploy::ops::call::Delivery;
use anyhow::{bail, Result};
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

pub fn exec(args: OutputArgs, shell: &Shell) -> Result<()> {
    let bytes = payload::parse(args.payload.as_deref(), args.hex)?;
    let mut app = args.app.open(None, shell)?;
    let sent = format!("{} bytes on `{}`", bytes.len(), args.connection);
    let wait = args
        .wait
        .unwrap_or_else(|| app.timeout_or(ops::call::WINDOW_WAIT));
    let app_wait = app.timeout_or(ops::call::ACCEPT_WAIT);
    match ops::call::output(&mut app, &args.connection, &bytes, wait)? {
        Delivery::Accepted => shell.status("Sent", format!("{sent}: the module accepted it")),
        Delivery::Unknown(why) => {
            shell.status("Sent", &sent);
            shell.warn(format!("whether the module accepted it is unknown: {why}"));
        }
        Delivery::NotAccepted {
            module,
            node,
            counter,
            last_accepted,
            rejected,
        } => {
            let state = match last_accepted {
                Some(last) => format!(
                    "its last accepted event on the connection is number {last}, this one is {counter}; it refused {rejected} so far"
                ),
                None => format!(
                    "it holds no key for the connection (run `aex deploy`); it refused {rejected} events for unknown connections so far"
                ),
            };
            bail!(
                "module `{module}` did not accept the event ({sent}) by the last time node `{node}` reported its counters (it was asked for {} s): the node dropped it, the module refused it, or the module is still busy ({state})",
                app_wait.as_secs_f64()
            );
        }
        Delivery::Failed {
            module,
            port,
            reason,
        } => {
            let (kind, name) = port.split_once(' ').unwrap_or(("port", &port));
            bail!(
                "module `{module}` took the event ({sent}) in, and its {kind} `{name}` failed on it: {reason}; `aex status` counts each port's failures"
            );
        }
        other => shell.status("Sent", format!("{sent} ({other:?})")),
    }
    Ok(())
}
