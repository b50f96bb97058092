//! The kinds of action a proposal can ask for: each has its own rule in the constitution.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a proposal asks for. Each kind has its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Load, attest and connect modules that were not there (a first deployment, or new
    /// modules and connections).
    Deploy,
    /// Replace a module's code, keeping its state.
    Update,
    /// Move a module to another node, keeping its state.
    Move,
    /// Disable modules or connections (their keys are revoked).
    Disable,
    /// Add a member.
    AddMember,
    /// Remove a member.
    RemoveMember,
    /// Replace a member's key.
    RotateKey,
    /// Change the rules themselves.
    Constitution,
}

impl Action {
    /// Every kind, in the order the descriptor documents them.
    pub const ALL: [Action; 8] = [
        Action::Deploy,
        Action::Update,
        Action::Move,
        Action::Disable,
        Action::AddMember,
        Action::RemoveMember,
        Action::RotateKey,
        Action::Constitution,
    ];

    /// Its name in descriptors and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Update => "update",
            Action::Move => "move",
            Action::Disable => "disable",
            Action::AddMember => "add_member",
            Action::RemoveMember => "remove_member",
            Action::RotateKey => "rotate_key",
            Action::Constitution => "constitution",
        }
    }

    /// Whether applying it changes the constitution (its members or its rules), so that the
    /// proposal's change is the new constitution's digest.
    pub fn changes_constitution(self) -> bool {
        matches!(
            self,
            Action::AddMember | Action::RemoveMember | Action::RotateKey | Action::Constitution
        )
    }

    fn names() -> String {
        Action::ALL
            .iter()
            .map(|a| format!("`{}`", a.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAction { name: s.to_owned() })
    }
}

/// A name that is no kind of action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a kind of action; valid: {}", Action::names())]
pub struct UnknownAction {
    /// The name given.
    pub name: String,
}
