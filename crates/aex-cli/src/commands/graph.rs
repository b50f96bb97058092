//! `aex graph`: write the application as a Graphviz picture (DOT, and SVG when `dot` is
//! installed).

use std::path::PathBuf;
use std::process::Command;

use aex_deploy::ops;
use anyhow::{Context, Result};
use clap::Args;

use super::AppPath;
use crate::shell::Shell;

/// Draw nodes, modules and connections as a Graphviz DOT (and SVG) picture
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Write FILE.dot (and FILE.svg when Graphviz `dot` is installed) instead of DOT on stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Only the descriptor: do not ask the nodes for live status
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: GraphArgs, shell: &Shell) -> Result<()> {
    let mut app = args.app.open(args.path.as_ref(), shell)?;
    let dot = ops::graph::graph(&mut app, args.offline);
    let Some(output) = args.output else {
        shell.out(dot.trim_end())?;
        return Ok(());
    };
    let dot_path = output.with_extension("dot");
    std::fs::write(&dot_path, &dot)
        .with_context(|| format!("cannot write {}", dot_path.display()))?;
    shell.status("Wrote", dot_path.display().to_string());
    let svg_path = output.with_extension("svg");
    match Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_path)
        .arg("-o")
        .arg(&svg_path)
        .status()
    {
        Ok(s) if s.success() => shell.status("Wrote", svg_path.display().to_string()),
        Ok(s) => shell.status(
            "Warning",
            format!("Graphviz `dot` failed ({s}); only DOT written"),
        ),
        Err(_) => shell.status("Note", "install Graphviz (`dot`) to also get an SVG"),
    }
    Ok(())
}
