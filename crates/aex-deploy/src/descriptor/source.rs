//! The text a descriptor was read from, kept with it so that errors found after parsing
//! (by validation, or by the deployer much later) point at the line and column of the field.

use std::fmt;
use std::path::Path;

use super::error::DescriptorError;
use super::field::Field;
use super::format::Format;
use super::locate::{Outline, Pos};

/// The text a descriptor was parsed from, kept to locate errors found later.
#[derive(Clone)]
pub(super) struct Source {
    pub text: String,
    pub format: Format,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({:?}, {} bytes)", self.format, self.text.len())
    }
}

impl Source {
    /// The line `field` is written on, if it can be found.
    pub(super) fn line(&self, field: Field) -> Option<usize> {
        Outline::new(&self.text, self.format)
            .locate(field)
            .map(|pos| pos.line)
    }

    /// An error at `field` of the descriptor read from `file`, located in this text.
    pub(super) fn error(
        &self,
        file: &Path,
        field: Field,
        message: String,
        help: Option<String>,
    ) -> DescriptorError {
        let position = Outline::new(&self.text, self.format)
            .locate(field)
            .map(Pos::pair);
        DescriptorError::invalid(file, message, help)
            .at(position)
            .in_field(Some(field.to_string()))
    }
}
