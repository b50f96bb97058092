//! A small JSON tokenizer that records where descriptor entries and fields are.
//!
//! It follows only the shape of a descriptor (a top-level object whose section keys hold an
//! object or an array of objects) and skips every other value. It also runs on text that failed
//! to parse, to name the field of a syntax error, so it stops at the first surprise instead of
//! failing, and every loop consumes input.

use super::{Outline, Pos};
use crate::descriptor::field::Section;

pub(super) struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(source: &'a str) -> Self {
        Self {
            chars: source.chars().peekable(),
            line: 1,
            column: 1,
        }
    }

    /// The top-level object; `None` when the text stops making sense.
    pub(super) fn document(&mut self, outline: &mut Outline) -> Option<()> {
        self.expect('{')?;
        loop {
            if self.peek()? == '}' {
                return Some(());
            }
            let key_pos = self.pos();
            let key = self.string()?;
            self.expect(':')?;
            let value_pos = self.pos();
            match (Section::from_key(&key), self.peek()?) {
                (Some(section), '{') if section.is_table() => self.entry(outline, section)?,
                (Some(section), '[') if !section.is_table() => {
                    self.list(outline, section, key_pos)?
                }
                (Some(section), _) => {
                    outline.sections.push((section, value_pos));
                    self.skip_value()?;
                }
                (None, _) => self.skip_value()?,
            }
            self.comma()?;
        }
    }

    /// A list of entries of `section` (the cursor is on its `[`).
    fn list(&mut self, outline: &mut Outline, section: Section, key_pos: Pos) -> Option<()> {
        outline.sections.push((section, key_pos));
        self.bump();
        while self.peek()? != ']' {
            if self.peek()? == '{' {
                self.entry(outline, section)?;
            } else {
                self.skip_value()?;
            }
            self.comma()?;
        }
        self.bump();
        Some(())
    }

    /// One entry object, its fields and where it ends. In `governance`, the `member` list and
    /// the `rules` object are followed as their own sections, and the governance table goes on
    /// as a second piece after them.
    fn entry(&mut self, outline: &mut Outline, section: Section) -> Option<()> {
        outline.open(section, self.pos());
        self.bump();
        loop {
            if self.peek()? == '}' {
                if let Some(entry) = outline.entries.last_mut() {
                    entry.end = self.pos();
                }
                self.bump();
                return Some(());
            }
            let key = self.pos();
            let name = self.string()?;
            self.expect(':')?;
            let value = self.pos();
            outline.field(&name, key, value);
            let nested = match section {
                Section::Governance => super::governance_block(&name),
                _ => None,
            };
            match (nested, self.peek()?) {
                (Some(sub), '[') if !sub.is_table() => {
                    self.list(outline, sub, key)?;
                    outline.open(section, self.pos());
                }
                (Some(sub), '{') if sub.is_table() => {
                    self.entry(outline, sub)?;
                    outline.open(section, self.pos());
                }
                _ => self.skip_value()?,
            }
            self.comma()?;
        }
    }

    /// Skips one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            '"' => self.string().map(drop),
            '{' | '[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        '"' => {
                            self.string()?;
                            continue;
                        }
                        '{' | '[' => depth += 1,
                        '}' | ']' => depth -= 1,
                        _ => {}
                    }
                    self.bump();
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
            ',' | '}' | ']' | ':' => None,
            _ => {
                while !matches!(
                    self.chars.peek(),
                    None | Some(',' | '}' | ']') | Some(' ' | '\t' | '\r' | '\n')
                ) {
                    self.bump();
                }
                Some(())
            }
        }
    }

    /// A string (the cursor is on its opening quote), unescaped only as far as names need.
    fn string(&mut self) -> Option<String> {
        if self.peek()? != '"' {
            return None;
        }
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(out),
                '\\' => out.push(self.bump()?),
                c => out.push(c),
            }
        }
    }

    /// Consumes a `,` if one comes next.
    fn comma(&mut self) -> Option<()> {
        if self.peek()? == ',' {
            self.bump();
        }
        Some(())
    }

    fn expect(&mut self, c: char) -> Option<()> {
        (self.peek()? == c).then(|| self.bump()).map(drop)
    }

    /// The next non-blank character, without consuming it.
    fn peek(&mut self) -> Option<char> {
        while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
            self.bump();
        }
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            (self.line, self.column) = (self.line + 1, 1);
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// Where the next non-blank character is.
    fn pos(&mut self) -> Pos {
        let _ = self.peek();
        Pos {
            line: self.line,
            column: self.column,
        }
    }
}
