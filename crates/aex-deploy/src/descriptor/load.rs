//! Finding, reading and parsing a descriptor file, and turning parser errors into located ones.
//!
//! The format follows the extension. Each parser reports its own syntax and type errors with a
//! position; this file rewrites their messages into the descriptor's error shape (message,
//! `help:` with the valid field names) and names the enclosing field using [`Outline`].

use std::path::{Path, PathBuf};

use super::error::DescriptorError;
use super::field::Section;
use super::format::Format;
use super::locate::{Outline, Pos};
use super::model::Descriptor;
use super::raw::RawDescriptor;
use super::source::Source;
use super::{suggest, validate};

/// The file names looked for in a directory, in order of preference.
const FILE_NAMES: [&str; 4] = ["aex.toml", "aex.yaml", "aex.yml", "aex.json"];

impl Descriptor {
    /// Finds, reads, parses and validates a descriptor.
    ///
    /// `path` is a descriptor file or a directory holding `aex.toml` (else `aex.yaml`, `aex.yml`,
    /// `aex.json`); when the user gives nothing, pass `"."`. Relative paths inside the file are
    /// resolved against its directory; crate directories must exist and hold a `Cargo.toml`.
    pub fn load(path: &Path) -> Result<Descriptor, DescriptorError> {
        let file = Self::find(path)?;
        // An unknown extension is reported before the file is read.
        Format::of(&file)?;
        let text = std::fs::read_to_string(&file).map_err(|e| {
            DescriptorError::unreadable(
                &file,
                format!("cannot read deployment descriptor {}: {e}", file.display()),
                None,
            )
        })?;
        Self::from_text(&file, text)
    }

    /// Parses and validates descriptor `text` as if read from `file` (whose extension picks
    /// the format and whose directory anchors relative paths).
    pub fn from_text(file: &Path, text: String) -> Result<Descriptor, DescriptorError> {
        Self::checked(file, text, false)
    }

    /// [`Descriptor::from_text`] for modules built elsewhere: crate and C directories are
    /// not looked for (a governor deploys a member's builds; it has no sources). Every other
    /// path (key files) is still read, relative to `file`'s directory.
    pub fn prebuilt_from_text(file: &Path, text: String) -> Result<Descriptor, DescriptorError> {
        Self::checked(file, text, true)
    }

    fn checked(file: &Path, text: String, prebuilt: bool) -> Result<Descriptor, DescriptorError> {
        let format = Format::of(file)?;
        let raw = parse(file, &text, format)?;
        validate::validate(
            raw,
            file.to_path_buf(),
            dir_of(file),
            Source { text, format },
            prebuilt,
        )
    }

    /// What is known of an application whose descriptor `file` does not parse (or is gone):
    /// where it is, and nothing in it: no nodes, modules, connections or steps, the directory's
    /// name as the application's. `App::open_unparsed` works from it and the application's
    /// state, so that `aex down` still stops what `aex up` started.
    pub(crate) fn unparsed(file: PathBuf) -> Descriptor {
        let dir = dir_of(&file);
        let application = std::path::absolute(&dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Descriptor {
            path: file,
            dir,
            application,
            nodes: vec![],
            modules: vec![],
            connections: vec![],
            up: vec![],
            periodic: vec![],
            run: vec![],
            tenants: vec![],
            governance: None,
            governor: None,
            source: Source {
                text: String::new(),
                format: Format::Toml,
            },
        }
    }

    /// The descriptor file `path` designates: `path` itself if it is a file, else the first of
    /// `aex.toml`, `aex.yaml`, `aex.yml`, `aex.json` in the directory `path`.
    pub fn find(path: &Path) -> Result<PathBuf, DescriptorError> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let help =
            Some("pass the descriptor path, or see docs/TUTORIAL.md to write one".to_owned());
        if path.is_dir() {
            let here = path.as_os_str().is_empty() || path == Path::new(".");
            let candidates = FILE_NAMES.iter().map(|name| {
                if here {
                    PathBuf::from(name)
                } else {
                    path.join(name)
                }
            });
            for candidate in candidates {
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
            let message = format!("no aex.toml in {}", path.display());
            Err(DescriptorError::unreadable(path, message, help))
        } else if path.exists() {
            Ok(path.to_path_buf())
        } else {
            let message = format!("deployment descriptor {} not found", path.display());
            Err(DescriptorError::unreadable(path, message, help))
        }
    }
}

/// The directory of descriptor `file`: the base of its relative paths and of `.aex/`.
fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Parses `text` as `format`, with the parser's errors located and explained.
fn parse(file: &Path, text: &str, format: Format) -> Result<RawDescriptor, DescriptorError> {
    let (message, position) = match format {
        Format::Toml => match toml::from_str(text) {
            Ok(raw) => return Ok(raw),
            Err(e) => (
                e.message().to_owned(),
                e.span().map(|span| Pos::of_offset(text, span.start)),
            ),
        },
        Format::Yaml => match serde_saphyr::from_str(text) {
            Ok(raw) => return Ok(raw),
            Err(e) => {
                let position = e.location().map(|l| Pos {
                    line: usize::try_from(l.line()).unwrap_or(usize::MAX),
                    column: usize::try_from(l.column()).unwrap_or(usize::MAX),
                });
                (e.without_snippet().to_string(), position)
            }
        },
        Format::Json => match serde_json::from_str(text) {
            Ok(raw) => return Ok(raw),
            Err(e) => {
                let position = (e.line() > 0).then(|| Pos {
                    line: e.line(),
                    column: e.column().max(1),
                });
                (e.to_string(), position)
            }
        },
    };
    Err(parse_error(file, text, format, &message, position))
}

/// The descriptor error for a parser's `message` at `position`.
fn parse_error(
    file: &Path,
    text: &str,
    format: Format,
    message: &str,
    position: Option<Pos>,
) -> DescriptorError {
    // serde_json and serde-saphyr append the position to their messages; it is shown apart.
    let mut message = message.trim();
    for marker in [" at line ", ", set DuplicateKeyPolicy"] {
        if let Some(cut) = message.find(marker) {
            message = &message[..cut];
        }
    }
    let (mut message, named, mut help) = explain(message);
    let enclosing = position.and_then(|pos| {
        Outline::new(text, format)
            .enclosing(pos)
            .map(|(section, index, at)| (section, index, at.map(str::to_owned)))
    });
    // In `[governance.rules]` the fields are kinds of action: say so, in governance's words.
    if let (Some((Section::Rules, ..)), Some(name)) = (&enclosing, named) {
        if message.starts_with("unknown field") {
            let actions: Vec<String> = aex_governance::Action::ALL
                .iter()
                .map(|a| a.name().to_owned())
                .chain([aex_governance::RECOVERY.to_owned()])
                .collect();
            message = format!("`{name}` is not a kind of action");
            help = suggest::help(name, "actions", &actions);
        }
    }
    let field = position.map(|_| match &enclosing {
        Some((section, index, at)) => {
            let name = named.or(at.as_deref());
            let mut path = section.key().to_owned();
            if !section.is_table() {
                path.push_str(&format!("[{index}]"));
            }
            name.map(|name| format!("{path}.{name}")).unwrap_or(path)
        }
        None => named.unwrap_or_default().to_owned(),
    });
    let field = field.filter(|f| !f.is_empty());
    DescriptorError::invalid(file, message, help)
        .at(position.map(Pos::pair))
        .in_field(field)
}

/// Splits serde's ``unknown field `x`, expected one of `a`, `b` `` into a message, the field it
/// names and a help line listing the valid fields; names the field of ``missing field `x` ``.
fn explain(message: &str) -> (String, Option<&str>, Option<String>) {
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
    };
    if let Some(name) = named("unknown field `") {
        let valid: Vec<String> = message
            .split_once(", expected ")
            .map(|(_, list)| list.trim_start_matches("one of "))
            .unwrap_or("")
            .split(", ")
            .map(|v| v.trim_matches('`').to_owned())
            .filter(|v| !v.is_empty() && !super::raw::RETIRED_FIELDS.contains(&v.as_str()))
            .collect();
        let help = suggest::help(name, "fields", &valid);
        let help = help.or_else(|| Some("this table takes no fields".to_owned()));
        return (format!("unknown field `{name}`"), Some(name), help);
    }
    if let Some(name) = named("missing field `") {
        return (
            message.to_owned(),
            Some(name),
            Some(format!("add `{name}`")),
        );
    }
    (message.to_owned(), None, None)
}
