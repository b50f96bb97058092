//! Naming a field of the descriptor: [`Field`] is how every check, the parsers' and the
//! deployer's later ones, points at what it found wrong (`connection[1].to`), and `Section`
//! is the kind of entry the text outline records.
//!
//! A file of its own because both the model and the text outline (`locate`) name fields,
//! and the outline must not depend on the model.

use std::fmt;

/// A field of the descriptor, to locate an error: the index into
/// [`Descriptor::nodes`](super::Descriptor::nodes),
/// [`Descriptor::modules`](super::Descriptor::modules) or
/// [`Descriptor::connections`](super::Descriptor::connections) and the field's name as written
/// in the file, e.g. `Field::Connection(1, "to")`, shown as `connection[1].to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// A field of the `[application]` table.
    Application(&'static str),
    /// A field of the node at this index.
    Node(usize, &'static str),
    /// A field of the module at this index.
    Module(usize, &'static str),
    /// A field of the connection at this index.
    Connection(usize, &'static str),
    /// A field of the `[[up]]` step at this index.
    Up(usize, &'static str),
    /// A field of the `[[periodic]]` trigger at this index.
    Periodic(usize, &'static str),
    /// A field of the `[[tenant]]` at this index.
    Tenant(usize, &'static str),
    /// A field of the `[[run]]` command at this index.
    Run(usize, &'static str),
    /// A field of the `[governance]` table, e.g. `governance.proposal_lifetime`.
    Governance(&'static str),
    /// A field of the `[[governance.member]]` at this index, e.g. `governance.member[1].key`.
    Member(usize, &'static str),
    /// The rule of one kind of action in `[governance.rules]`, e.g. `governance.rules.deploy`.
    Rule(&'static str),
}

/// The kinds of entry in a descriptor, as located in its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Application,
    Node,
    Module,
    Connection,
    Up,
    Periodic,
    Tenant,
    Run,
    Governance,
    /// `[[governance.member]]`, inside `[governance]`.
    Member,
    /// `[governance.rules]`, inside `[governance]`.
    Rules,
}

impl Section {
    /// The singular key, used in field paths.
    pub(super) fn key(self) -> &'static str {
        match self {
            Section::Application => "application",
            Section::Node => "node",
            Section::Module => "module",
            Section::Connection => "connection",
            Section::Up => "up",
            Section::Periodic => "periodic",
            Section::Tenant => "tenant",
            Section::Run => "run",
            Section::Governance => "governance",
            Section::Member => "governance.member",
            Section::Rules => "governance.rules",
        }
    }

    /// Whether it is one table (`[application]`), not a list of entries: its fields are
    /// named without an index.
    pub(super) fn is_table(self) -> bool {
        matches!(
            self,
            Section::Application | Section::Governance | Section::Rules
        )
    }

    /// For a section nested in `[governance]`, the governance field that holds it: where its
    /// errors point when the text outline could not follow the nesting (YAML, JSON, inline
    /// tables).
    pub(super) fn parent(self) -> Option<Field> {
        match self {
            Section::Member => Some(Field::Governance("member")),
            Section::Rules => Some(Field::Governance("rules")),
            _ => None,
        }
    }

    /// The section a top-level key opens, plural aliases included.
    pub(super) fn from_key(key: &str) -> Option<Section> {
        match key {
            "application" => Some(Section::Application),
            "node" | "nodes" => Some(Section::Node),
            "module" | "modules" => Some(Section::Module),
            "connection" | "connections" => Some(Section::Connection),
            "up" => Some(Section::Up),
            "periodic" => Some(Section::Periodic),
            "tenant" | "tenants" => Some(Section::Tenant),
            "run" => Some(Section::Run),
            "governance" => Some(Section::Governance),
            // TOML's dotted headers, `[[governance.member]]` and `[governance.rules]`.
            "governance.member" => Some(Section::Member),
            "governance.rules" => Some(Section::Rules),
            _ => None,
        }
    }
}

impl Field {
    /// The section, the entry's index in it (0 for a table) and the field name.
    pub(super) fn parts(self) -> (Section, usize, &'static str) {
        match self {
            Field::Application(name) => (Section::Application, 0, name),
            Field::Node(index, name) => (Section::Node, index, name),
            Field::Module(index, name) => (Section::Module, index, name),
            Field::Connection(index, name) => (Section::Connection, index, name),
            Field::Up(index, name) => (Section::Up, index, name),
            Field::Periodic(index, name) => (Section::Periodic, index, name),
            Field::Tenant(index, name) => (Section::Tenant, index, name),
            Field::Run(index, name) => (Section::Run, index, name),
            Field::Governance(name) => (Section::Governance, 0, name),
            Field::Member(index, name) => (Section::Member, index, name),
            Field::Rule(name) => (Section::Rules, 0, name),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (section, index, name) = self.parts();
        f.write_str(section.key())?;
        if !section.is_table() {
            write!(f, "[{index}]")?;
        }
        if !name.is_empty() {
            write!(f, ".{name}")?;
        }
        Ok(())
    }
}
