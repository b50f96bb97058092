//! A descriptor's text format, told by its file's extension. Its own file because the text
//! outline (`locate`) scans by format and is used in turn by `source` and `load`.

use std::path::Path;

use super::error::DescriptorError;

/// A descriptor's text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    /// The format of `path`, from its extension.
    pub(super) fn of(path: &Path) -> Result<Self, DescriptorError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match extension.to_ascii_lowercase().as_str() {
            "toml" => Ok(Format::Toml),
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            _ => {
                let message = if extension.is_empty() {
                    "the file name has no extension to tell its format".to_owned()
                } else {
                    format!("unknown file extension `.{extension}`")
                };
                let help = "expected .toml, .yaml, .yml or .json".to_owned();
                Err(DescriptorError::invalid(path, message, Some(help)))
            }
        }
    }
}
