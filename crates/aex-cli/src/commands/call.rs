//! `aex call`: invoke a module's entry point (authenticated under its module key).

use aex_deploy::ops;
use anyhow::Result;
use clap::Args;

use super::AppPath;
use crate::payload;
use crate::shell::Shell;

/// Call an entry point of a module and print its result
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Module name
    module: String,
    /// Entry point name
    entry: String,
    /// Argument: JSON text for typed entry points, `@file`, or hex with --hex
    payload: Option<String>,
    /// The payload is hexadecimal bytes
    #[arg(long)]
    hex: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: CallArgs, shell: &Shell) -> Result<()> {
    let bytes = payload::parse(args.payload.as_deref(), args.hex)?;
    let mut app = args.app.open(None, shell)?;
    let result = ops::call::call(&mut app, &args.module, &args.entry, &bytes)?;
    if !result.is_empty() {
        shell.out(payload::show(&result))?;
    }
    Ok(())
}
