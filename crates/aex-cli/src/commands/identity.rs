//! `aex identity`: print the deployer's public key, for node operators to admit.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::shell::Shell;

/// Print your deployer public key (created on first use); node operators admit it with
/// `aex node --admit KEY`
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Deployer identity file [default: $AEX_IDENTITY, else ~/.config/aex/identity]
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print JSON (`public_key`, `path`) on stdout
    #[arg(long)]
    json: bool,
}

pub fn exec(args: IdentityArgs, shell: &Shell) -> Result<()> {
    let identity = super::load_identity(args.identity.as_deref(), shell)?;
    if args.json {
        let json = serde_json::json!({
            "public_key": identity.public().to_string(),
            "path": identity.path(),
        });
        shell.out(serde_json::to_string_pretty(&json)?)?;
    } else {
        shell.out(identity.public().to_string())?;
    }
    Ok(())
}
