//! The one place that writes to the terminal.
//!
//! Status and errors go to stderr, data to stdout. Errors follow cargo's shape: a first line
//! naming what failed, a `Caused by:` list, then a `help:` line with what to do.

use std::io::{IsTerminal, Write};

/// Terminal output.
pub struct Shell {
    color: bool,
}

impl Shell {
    /// A shell that colours stderr only when it is a terminal.
    pub fn new() -> Self {
        Shell {
            color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// Whether stderr is a terminal (progress bars and live views).
    pub fn interactive(&self) -> bool {
        std::io::stderr().is_terminal()
    }

    /// A status line on stderr, e.g. `  Deployed 2 modules`.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        let verb = if self.color {
            format!("\x1b[1;32m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        eprintln!("{verb} {}", message.as_ref());
    }

    /// A warning on stderr: something worked, but needs the user's attention.
    pub fn warn(&self, message: impl AsRef<str>) {
        let label = if self.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        eprintln!("{label}: {}", message.as_ref());
    }

    /// A plain line on stderr.
    pub fn note(&self, message: impl AsRef<str>) {
        eprintln!("{}", message.as_ref());
    }

    /// Data on stdout.
    pub fn out(&self, data: impl AsRef<str>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", data.as_ref())?;
        out.flush()
    }

    /// Prints an error with its causes and help.
    pub fn error(&self, e: &anyhow::Error) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        eprintln!("{label}: {e}");
        let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        if !causes.is_empty() {
            eprintln!("\nCaused by:");
            for c in causes {
                for (i, line) in c.lines().enumerate() {
                    if i == 0 {
                        eprintln!("  {line}");
                    } else {
                        eprintln!("    {line}");
                    }
                }
            }
        }
        if let Some(help) = help_of(e) {
            let label = if self.color {
                "\x1b[1;36mhelp\x1b[0m"
            } else {
                "help"
            };
            eprintln!("\n{label}: {help}");
        }
    }
}

fn help_of(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<aex_deploy::Error>())
        .and_then(|d| d.help())
}

/// Whether the error is a closed stdout (`aex status --json | head`), which is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
