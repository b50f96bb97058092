//! The one place that writes to the terminal.
//!
//! Status and errors go to stderr, data to stdout. Errors follow cargo's shape: a first line
//! naming what failed, a `Caused by:` list, then a `help:` line with what to do.
//!
//! Much of what is printed comes from nodes, which are untrusted: their error messages, the
//! names and counters in their status, what `aex device` reads from a node's socket. Every
//! line goes through [`escape`] on its way out, so no node can send the terminal a control
//! sequence (recolour, move the cursor, clear the screen, set the title, hide text) or
//! reorder text with bidirectional overrides: such characters are shown as escapes.
#![allow(
    clippy::disallowed_macros,
    reason = "the command-line tool's one writer to the terminal"
)]

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

/// `text` safe for a terminal: every control character (C0, DEL and C1, so every ANSI escape
/// sequence, and newlines and tabs too) and every bidirectional-formatting character is shown
/// as a Rust escape (`\u{1b}`), the rest as it is. Multi-line output is escaped line by line.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` would act on the terminal rather than be shown.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Each line of `text` escaped, the lines kept.
fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

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

    /// Asks `question` on stderr and reads the answer from stdin: true only for `y` or
    /// `yes`; false when stdin or stderr is not a terminal (nobody to ask), or on no answer.
    pub fn ask(&self, question: &str) -> bool {
        if !self.interactive() || !std::io::stdin().is_terminal() {
            return false;
        }
        eprint!("{} [y/N] ", escape(question));
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }

    /// A status line on stderr, e.g. `  Deployed 2 modules`.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        let verb = if self.color {
            format!("\x1b[1;32m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        eprintln!("{verb} {}", escape(message.as_ref()));
    }

    /// A warning on stderr: something worked, but needs the user's attention.
    pub fn warn(&self, message: impl AsRef<str>) {
        let label = if self.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        eprintln!("{label}: {}", escape(message.as_ref()));
    }

    /// Plain lines on stderr.
    pub fn note(&self, message: impl AsRef<str>) {
        eprintln!("{}", escape_lines(message.as_ref()));
    }

    /// Whether stdout is a terminal (`aex status --watch` redraws in place there).
    pub fn stdout_interactive(&self) -> bool {
        std::io::stdout().is_terminal()
    }

    /// Replaces what the terminal shows with `frame`, from its top left corner: each line
    /// overwrites the one shown there before and what remains below is cleared, so a frame
    /// drawn again and again stays in place without flicker. Only for a terminal stdout.
    pub fn redraw(&self, frame: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        write!(out, "\x1b[H")?;
        for line in frame.split('\n') {
            writeln!(out, "{}\x1b[K", escape(line))?;
        }
        write!(out, "\x1b[J")?;
        out.flush()
    }

    /// Data on stdout, line by line.
    pub fn out(&self, data: impl AsRef<str>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", escape_lines(data.as_ref()))?;
        out.flush()
    }

    /// Prints an error with its causes and help.
    pub fn error(&self, e: &anyhow::Error) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        eprintln!("{label}: {}", escape_lines(&e.to_string()));
        let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        if !causes.is_empty() {
            eprintln!("\nCaused by:");
            for c in causes {
                for (i, line) in c.lines().enumerate() {
                    let line = escape(line);
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
            eprintln!("\n{label}: {}", escape_lines(&help));
        }
    }
}

fn help_of(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<aex_deploy::Error>())
        .and_then(|d| d.help())
}

/// Whether the error is a closed stdout (`aex status --json | head`), which is not a failure:
/// met here, or by an operation of the deployer that printed through us (`aex up`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = c.downcast_ref::<std::io::Error>().or_else(|| {
            match c.downcast_ref::<aex_deploy::Error>() {
                Some(aex_deploy::Error::Output(io)) => Some(io),
                _ => None,
            }
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn hostile_text_cannot_drive_the_terminal() {
        // Recolour, clear the screen, set the window title (OSC ... BEL), a C1 CSI, a bell,
        // a carriage return that would overwrite the line, and a right-to-left override.
        let hostile = "ok\x1b[31mRED\x1b[2J\x1b]0;owned\x07\u{9b}1m\rfake\u{202e}txt";
        let shown = escape(hostile);
        assert!(
            !shown.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{shown:?}"
        );
        assert_eq!(
            shown,
            "ok\\u{1b}[31mRED\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{9b}1m\\u{d}fake\\u{202e}txt"
        );
        assert_eq!(escape("line\nnext\ttab"), "line\\u{a}next\\u{9}tab");
        // Ordinary text, non-ASCII included, is untouched (and not copied).
        assert!(matches!(
            escape("café → 20 °C"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn multi_line_output_keeps_its_lines() {
        assert_eq!(super::escape_lines("a\x1b\nb"), "a\\u{1b}\nb");
    }
}
