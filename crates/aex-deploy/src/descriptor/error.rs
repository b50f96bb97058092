//! The one error type of the descriptor: where it is wrong, what is wrong, what would be valid.
//!
//! Users fix descriptors by hand, so an error names the file, the line and column when known, and
//! the field (`connection[1].to`), and its `help` says what would be valid. `Display` follows
//! rustc and cargo: one line for location, field and message, then an indented `help:` line.
//! Messages never contain key material.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a descriptor could not be found, read, parsed or accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorError {
    // Boxed: errors are rare and `Result<_, DescriptorError>` should stay small.
    inner: Box<Inner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    kind: Kind,
    file: PathBuf,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<String>,
    message: String,
    help: Option<String>,
}

/// Whether the file is missing or unreadable (the message says it all) or its content is wrong
/// (the message follows `invalid deployment descriptor <location>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unreadable,
    Invalid,
}

impl DescriptorError {
    /// The file (or directory, when no descriptor was found in it) the error is about.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.inner.line
    }

    /// The 1-based column (in characters), when known.
    pub fn column(&self) -> Option<usize> {
        self.inner.column
    }

    /// The field path, e.g. `connection[1].to`, when the error is about one field or entry.
    pub fn field(&self) -> Option<String> {
        self.inner.field.clone()
    }

    /// What is wrong, e.g. ``no module `pnog` ``.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// What would be valid or what to do, e.g. ``did you mean `pong`? valid modules: ping, pong``.
    pub fn help(&self) -> Option<&str> {
        self.inner.help.as_deref()
    }

    /// A missing or unreadable file or directory.
    pub(super) fn unreadable(file: &Path, message: String, help: Option<String>) -> Self {
        let (line, column, field) = (None, None, None);
        let inner = Inner {
            kind: Kind::Unreadable,
            file: file.to_path_buf(),
            line,
            column,
            field,
            message,
            help,
        };
        Self {
            inner: Box::new(inner),
        }
    }

    /// Wrong content, not yet located.
    pub(super) fn invalid(file: &Path, message: impl Into<String>, help: Option<String>) -> Self {
        let (line, column, field, message) = (None, None, None, message.into());
        let inner = Inner {
            kind: Kind::Invalid,
            file: file.to_path_buf(),
            line,
            column,
            field,
            message,
            help,
        };
        Self {
            inner: Box::new(inner),
        }
    }

    /// Sets the line and column.
    pub(super) fn at(mut self, position: Option<(usize, usize)>) -> Self {
        if let Some((line, column)) = position {
            self.inner.line = Some(line);
            self.inner.column = Some(column);
        }
        self
    }

    /// Sets the field path.
    pub(super) fn in_field(mut self, field: Option<String>) -> Self {
        self.inner.field = field;
        self
    }
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this = &self.inner;
        if this.kind == Kind::Invalid {
            write!(f, "invalid deployment descriptor {}", this.file.display())?;
            if let Some(line) = this.line {
                write!(f, ":{line}")?;
                if let Some(column) = this.column {
                    write!(f, ":{column}")?;
                }
            }
            f.write_str(": ")?;
            if let Some(field) = &this.field {
                write!(f, "{field}: ")?;
            }
        }
        f.write_str(&this.message)?;
        if let Some(help) = &this.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DescriptorError {}
