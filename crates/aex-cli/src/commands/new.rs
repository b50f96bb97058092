//! `aex new`: scaffold an application (`crate::scaffold`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::scaffold::{self, Sdk, Template};
use crate::shell::Shell;

/// Create a new application: a Cargo workspace with two modules, a descriptor and a README
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The application's name, and the directory created for it
    name: String,
    /// What the two modules do
    #[arg(long, value_enum, default_value = "ping-pong")]
    template: Template,
    /// Write it into DIR instead of ./NAME
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The aex checkout to build the SDK from [default: the one this aex was built from, if it
    /// is still there; else the crates.io release]
    #[arg(long, value_name = "CHECKOUT")]
    sdk: Option<PathBuf>,
}

pub fn exec(args: NewArgs, shell: &Shell) -> Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = Sdk::find(args.sdk.as_deref())?;
    scaffold::create(&dir, &args.name, args.template, &sdk)?;
    let from = match &sdk {
        Sdk::Checkout(root) => format!("the aex checkout {}", root.display()),
        Sdk::Registry => "crates.io".to_owned(),
    };
    shell.status(
        "Created",
        format!(
            "application `{}` in {} (SDK from {from})",
            args.name,
            dir.display()
        ),
    );
    if sdk == Sdk::Registry {
        shell.warn(format!(
            "no aex checkout was found, so the scaffold depends on `aex-sdk` {} from crates.io; \
             if it is not published there yet, pass `--sdk` with the path of an aex checkout",
            env!("CARGO_PKG_VERSION")
        ));
    }
    shell.note(format!(
        "\nRun it: `cd {} && aex up` (the first build takes a few minutes).",
        dir.display()
    ));
    Ok(())
}
