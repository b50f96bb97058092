//! Finds where an entry or field is written in the descriptor's text.
//!
//! The parsers give positions only for the errors they find themselves; the checks made after
//! parsing (unknown module, bad address, later the deployer's own checks) need the line of a
//! field too. [`Outline`] scans the text once, per format, and records where each `node`,
//! `module` and `connection` entry and each of their fields starts. It is best effort and never
//! fails: TOML and YAML are scanned line by line (`[[section]]` headers, block lists, flow
//! mappings on one line), JSON with a small tokenizer. Inline forms it does not follow simply
//! leave fields unlocated, and callers fall back to the entry's start, then to no line.

use super::field::{Field, Section};
use super::format::Format;

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn new(line: usize, column: usize) -> Self {
        Self { line, column }
    }

    /// The position of a byte offset into `source` (clamped to its end).
    pub(super) fn of_offset(source: &str, offset: usize) -> Self {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self::new(
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }

    /// As a `(line, column)` pair.
    pub(super) fn pair(self) -> (usize, usize) {
        (self.line, self.column)
    }
}

/// Where the entries of one descriptor text and their fields are.
#[derive(Debug, Default)]
pub(super) struct Outline {
    /// Where each section's key or first header is.
    sections: Vec<(Section, Pos)>,
    entries: Vec<Entry>,
}

/// One `[[node]]` (list item, object) or the application table.
#[derive(Debug)]
struct Entry {
    section: Section,
    index: usize,
    start: Pos,
    end: Pos,
    fields: Vec<FieldPos>,
}

#[derive(Debug)]
struct FieldPos {
    name: String,
    key: Pos,
    value: Pos,
}

impl Outline {
    /// Scans `source`, written in `format`.
    pub(super) fn new(source: &str, format: Format) -> Self {
        let mut outline = Outline::default();
        match format {
            Format::Toml => outline.scan_toml(source),
            Format::Yaml => outline.scan_yaml(source),
            Format::Json => {
                // `None` only means the text ended early or is not JSON: keep what was found.
                let _ = json::Scanner::new(source).document(&mut outline);
            }
        }
        outline
    }

    /// Where `field`'s value is written; else where its entry starts; else, when its section
    /// is written in a form the scan does not follow, where the section starts; else, for a
    /// section nested in `[governance]`, where the governance field holding it is written.
    pub(super) fn locate(&self, field: Field) -> Option<Pos> {
        let (section, index, name) = field.parts();
        // A table may be written in several pieces (YAML and JSON `governance` around a nested
        // block): all of them, in order.
        let mut entries = self
            .entries
            .iter()
            .filter(|e| e.section == section && e.index == index)
            .peekable();
        let Some(start) = entries.peek().map(|e| e.start) else {
            let any = self.entries.iter().any(|e| e.section == section);
            let written = self
                .sections
                .iter()
                .find(|(s, _)| *s == section)
                .map(|(_, p)| *p);
            return match (any, written) {
                (true, _) => None,
                (false, Some(pos)) => Some(pos),
                (false, None) => section.parent().and_then(|parent| self.locate(parent)),
            };
        };
        let value = entries.find_map(|e| e.fields.iter().find(|f| f.name == name).map(|f| f.value));
        Some(value.unwrap_or(start))
    }

    /// The entry holding `pos`, and the field whose key comes last at or before it.
    pub(super) fn enclosing(&self, pos: Pos) -> Option<(Section, usize, Option<&str>)> {
        let entry = self
            .entries
            .iter()
            .rfind(|e| e.start <= pos && pos <= e.end)?;
        let field = entry
            .fields
            .iter()
            .rfind(|f| f.key <= pos)
            .map(|f| f.name.as_str());
        Some((entry.section, entry.index, field))
    }

    /// Opens an entry, closing the previous one just before `start`'s line.
    fn open(&mut self, section: Section, start: Pos) {
        self.close(start.line.saturating_sub(1));
        // A table is one entry, however many pieces it is written in.
        let index = match section.is_table() {
            true => 0,
            false => self.entries.iter().filter(|e| e.section == section).count(),
        };
        if index == 0 && !self.sections.iter().any(|(s, _)| *s == section) {
            self.sections.push((section, start));
        }
        let end = Pos::new(usize::MAX, usize::MAX);
        self.entries.push(Entry {
            section,
            index,
            start,
            end,
            fields: Vec::new(),
        });
    }

    /// Ends the open entry, if any, at the end of line `line`.
    fn close(&mut self, line: usize) {
        if let Some(entry) = self.entries.last_mut().filter(|e| e.end.line == usize::MAX) {
            entry.end = Pos::new(line.max(entry.start.line), usize::MAX);
        }
    }

    fn field(&mut self, name: &str, key: Pos, value: Pos) {
        if let Some(entry) = self.entries.last_mut().filter(|e| e.end.line == usize::MAX) {
            entry.fields.push(FieldPos {
                name: name.to_owned(),
                key,
                value,
            });
        }
    }

    /// TOML: `[[node]]`-style headers open entries, `key = value` lines are their fields.
    fn scan_toml(&mut self, source: &str) {
        let mut multiline: Option<&str> = None;
        for (number, line) in (1..).zip(source.lines()) {
            if let Some(delimiter) = multiline {
                if line.matches(delimiter).count() % 2 == 1 {
                    multiline = None;
                }
                continue;
            }
            let text = line.trim_start();
            let indent = column(line, line.len() - text.len());
            if text.starts_with('[') {
                self.close(number - 1);
                let array = text.starts_with("[[");
                let inner = text.trim_start_matches('[');
                let name = unquote(inner.split(']').next().unwrap_or("").trim());
                match Section::from_key(name) {
                    // `[application]`, `[governance]`, `[governance.rules]` are tables, the
                    // others `[[lists]]`.
                    Some(section) if section.is_table() != array => {
                        self.open(section, Pos::new(number, indent))
                    }
                    _ => {}
                }
                continue;
            }
            if text.starts_with('#') {
                continue;
            }
            let Some(eq) = text.find('=') else { continue };
            let name = unquote(text[..eq].trim());
            let after = &text[eq + 1..];
            let value = after.trim_start();
            let value_at = line.len() - value.len();
            for delimiter in ["\"\"\"", "'''"] {
                if value.starts_with(delimiter) && value.matches(delimiter).count() == 1 {
                    multiline = Some(delimiter);
                }
            }
            let key = Pos::new(number, indent);
            let value = Pos::new(number, column(line, value_at));
            if self
                .entries
                .last()
                .is_some_and(|e| e.end.line == usize::MAX)
            {
                self.field(name, key, value);
            } else if let Some(section) = Section::from_key(name) {
                self.sections.push((section, key));
            }
        }
        self.close(usize::MAX - 1);
    }

    /// YAML: top-level keys open sections, `- ` items at the first item's indent open entries,
    /// `key: value` lines at the entry's field indent (or one-line `{...}` items) are fields.
    /// Inside `governance`, a `member:` or `rules:` key whose value follows on the next lines
    /// opens that nested section until a line comes back to the key's indent.
    fn scan_yaml(&mut self, source: &str) {
        let mut section = None;
        let mut item_indent = None;
        let mut field_indent = None;
        // The indent of the `governance` field whose block is being read.
        let mut nested: Option<usize> = None;
        for (number, line) in (1..).zip(source.lines()) {
            let text = line.trim_start();
            let indent = line.len() - text.len();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            if indent == 0 && (text.starts_with("---") || text.starts_with("...")) {
                continue;
            }
            if indent == 0 && !text.starts_with('-') {
                self.close(number - 1);
                (item_indent, field_indent, nested) = (None, None, None);
                section = yaml_key(text).and_then(|(key, _)| Section::from_key(key));
                match section {
                    Some(s) if s.is_table() => {
                        self.open(s, Pos::new(number, 1));
                        self.yaml_fields(line, number, 0);
                    }
                    Some(s) => self.sections.push((s, Pos::new(number, 1))),
                    None => {}
                }
                continue;
            }
            if let Some(at) = nested {
                // `member:` may list its items at its own indent.
                let own_item =
                    indent == at && section == Some(Section::Member) && text.starts_with('-');
                if indent <= at && !own_item {
                    // Back to `governance`'s own fields: a second piece of the same table.
                    nested = None;
                    (section, item_indent, field_indent) =
                        (Some(Section::Governance), None, Some(at));
                    self.open(Section::Governance, Pos::new(number, column(line, indent)));
                }
            }
            let Some(current) = section else { continue };
            let item = !current.is_table() && (text.starts_with("- ") || text == "-");
            if item && item_indent.is_none_or(|i| i == indent) {
                item_indent = Some(indent);
                self.open(current, Pos::new(number, column(line, indent)));
                let content = text[1..].trim_start();
                let content_at = line.len() - content.len();
                field_indent = (!content.is_empty()).then_some(content_at);
                self.yaml_fields(line, number, content_at);
                continue;
            }
            if item_indent.is_some_and(|i| indent <= i) {
                continue;
            }
            if *field_indent.get_or_insert(indent) == indent {
                self.yaml_fields(line, number, indent);
                if current == Section::Governance {
                    if let Some(sub) = yaml_block(text).and_then(governance_block) {
                        nested = Some(indent);
                        (section, item_indent, field_indent) = (Some(sub), None, None);
                        let at = Pos::new(number, column(line, indent));
                        match sub.is_table() {
                            true => self.open(sub, at),
                            false => {
                                self.close(number);
                                self.sections.push((sub, at));
                            }
                        }
                    }
                }
            }
        }
        self.close(usize::MAX - 1);
    }

    /// Records the field written at byte `at` of `line`: `key: value`, or a `{...}` mapping.
    fn yaml_fields(&mut self, line: &str, number: usize, at: usize) {
        let text = &line[at..];
        if text.starts_with('{') {
            for (name, key_at, value_at) in flow_fields(line, at) {
                self.field(
                    name,
                    Pos::new(number, column(line, key_at)),
                    Pos::new(number, column(line, value_at)),
                );
            }
        } else if let Some((name, value_at)) = yaml_key(text) {
            if !name.is_empty() {
                let value = Pos::new(number, column(line, at + value_at));
                self.field(name, Pos::new(number, column(line, at)), value);
            }
            let rest = &text[value_at..];
            if rest.starts_with('{') && at == 0 {
                // `application: {name: x}`
                for (name, key_at, value_at) in flow_fields(line, at + value_at) {
                    self.field(
                        name,
                        Pos::new(number, column(line, key_at)),
                        Pos::new(number, column(line, value_at)),
                    );
                }
            }
        }
    }
}

/// The 1-based character column of byte `at` in `line`.
fn column(line: &str, at: usize) -> usize {
    line.get(..at).map_or(at, |before| before.chars().count()) + 1
}

/// `key` without surrounding quotes.
fn unquote(key: &str) -> &str {
    let quoted = key.len() >= 2
        && ((key.starts_with('"') && key.ends_with('"'))
            || (key.starts_with('\'') && key.ends_with('\'')));
    if quoted {
        &key[1..key.len() - 1]
    } else {
        key
    }
}

/// A YAML `key: value` line: the key and the byte offset of the value (or of the line's end).
fn yaml_key(text: &str) -> Option<(&str, usize)> {
    let colon = text.char_indices().find(|&(i, c)| {
        c == ':'
            && text[i + 1..]
                .chars()
                .next()
                .is_none_or(|next| next == ' ' || next == '\t')
    })?;
    let key = unquote(text[..colon.0].trim());
    let after = &text[colon.0 + 1..];
    let value = after.trim_start();
    Some((key, text.len() - value.len()))
}

/// The key of a YAML `key:` line whose value is a block on the next lines (nothing after the
/// colon but a comment).
fn yaml_block(text: &str) -> Option<&str> {
    let (key, value_at) = yaml_key(text)?;
    let rest = text[value_at..].trim();
    (rest.is_empty() || rest.starts_with('#')).then_some(key)
}

/// The section a block under `governance` opens, by its key.
pub(super) fn governance_block(key: &str) -> Option<Section> {
    match key {
        "member" => Some(Section::Member),
        "rules" => Some(Section::Rules),
        _ => None,
    }
}

/// The fields of a one-line flow mapping starting at byte `at` of `line` (`{a: 1, "b": x}`):
/// each name with the byte offsets of its key and value.
fn flow_fields(line: &str, at: usize) -> Vec<(&str, usize, usize)> {
    let mut fields = Vec::new();
    let mut rest = at + 1;
    while rest < line.len() {
        let text = &line[rest..];
        let trimmed = text.trim_start_matches([' ', '\t', ',']);
        let key_at = rest + text.len() - trimmed.len();
        let Some(colon) = trimmed.find(':') else {
            break;
        };
        let name = unquote(trimmed[..colon].trim());
        let after = &trimmed[colon + 1..];
        let value_at = key_at + colon + 1 + after.len() - after.trim_start().len();
        fields.push((name, key_at, value_at));
        // Skip the value, honouring quotes, to the next `,` or `}`.
        let mut quote = None;
        let end = line[value_at..].char_indices().find(|&(_, c)| match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                false
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                false
            }
            None => c == ',' || c == '}',
        });
        match end {
            Some((i, ',')) => rest = value_at + i + 1,
            _ => break,
        }
    }
    fields
}

mod json;
