//! The descriptor as written, before validation.
//!
//! Every field is kept as the user wrote it (strings, options) so that the parsers only report
//! syntax and type errors, with their own positions, and `validate` reports everything else with
//! the field's location. The same structs serve TOML, YAML and JSON.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDescriptor {
    #[serde(default)]
    pub application: Option<RawApplication>,
    #[serde(default, alias = "nodes")]
    pub node: Vec<RawNode>,
    #[serde(default, alias = "modules")]
    pub module: Vec<RawModule>,
    #[serde(default, alias = "connections")]
    pub connection: Vec<RawConnection>,
    #[serde(default)]
    pub up: Vec<RawUp>,
    #[serde(default)]
    pub periodic: Vec<RawPeriodic>,
    #[serde(default)]
    pub run: Vec<RawRun>,
    #[serde(default, alias = "tenants")]
    pub tenant: Vec<RawTenant>,
    #[serde(default)]
    pub governance: Option<RawGovernance>,
}

/// `[application]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApplication {
    pub name: Option<String>,
}

/// Fields aex no longer takes: parsed only so that validation says, at their line, what
/// replaced them; never listed as valid.
pub(super) const RETIRED_FIELDS: [&str; 2] = ["vendor_id", "vendor_key_file"];

/// One `[[node]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub name: String,
    pub address: String,
    pub tee: String,
    pub simulation: Option<bool>,
    pub platform_key: Option<String>,
    pub platform_key_file: Option<String>,
    pub identity: Option<String>,
    pub identity_file: Option<String>,
    pub provider_key_file: Option<String>,
    pub provider_key_fingerprint: Option<String>,
    /// Removed fields, kept so that validation says what replaced them (at their line).
    pub vendor_id: Option<serde::de::IgnoredAny>,
    pub vendor_key_file: Option<serde::de::IgnoredAny>,
    pub allow_debug: Option<bool>,
    pub devices: Option<Vec<String>>,
}

/// One `[[module]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModule {
    pub name: String,
    #[serde(rename = "crate")]
    pub crate_dir: Option<String>,
    pub c: Option<String>,
    pub node: String,
    pub allow_insecure: Option<bool>,
    pub devices: Option<Vec<String>>,
}

/// One `[[connection]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    pub name: Option<String>,
    pub from: String,
    pub to: String,
    pub algorithm: Option<String>,
}

/// One `[[up]]` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUp {
    pub call: String,
    pub payload: Option<String>,
    pub until: Option<String>,
    pub show: Option<bool>,
}

/// One `[[run]]` command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub command: Vec<String>,
}

/// One `[[periodic]]` trigger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeriodic {
    pub call: String,
    pub every: String,
}

/// One `[[tenant]]`: another stakeholder's application `aex up` deploys on the same local nodes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub descriptor: String,
    pub identity: String,
}

/// `[governance]`: the consortium that owns the application (not yet enforced).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGovernance {
    #[serde(default)]
    pub member: Vec<RawMember>,
    pub rules: Option<RawRules>,
    pub proposal_lifetime: Option<String>,
    /// Where members reach the governor, and what they pin of it (`validate/governor.rs`).
    pub governor: Option<String>,
    pub governor_node: Option<String>,
    pub governor_measurement: Option<String>,
}

/// One `[[governance.member]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMember {
    pub name: String,
    pub key: Option<String>,
    pub key_file: Option<String>,
}

/// `[governance.rules]`: one optional rule per kind of action. A struct rather than a map so
/// that an unknown action is refused by the parser at its line, listing the valid ones, and so
/// that the reference test sees every action as a field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    pub deploy: Option<String>,
    pub update: Option<String>,
    pub r#move: Option<String>,
    pub disable: Option<String>,
    pub add_member: Option<String>,
    pub remove_member: Option<String>,
    pub rotate_key: Option<String>,
    pub constitution: Option<String>,
    /// Not a kind of action: how many members' recovery shares restore the governor.
    pub recovery: Option<String>,
}

impl RawRules {
    /// The rule written for `action`. The match is exhaustive, so a kind of action added to
    /// `aex_governance::Action` fails to compile here until the descriptor takes it too.
    pub fn get(&self, action: aex_governance::Action) -> Option<&String> {
        use aex_governance::Action;
        match action {
            Action::Deploy => self.deploy.as_ref(),
            Action::Update => self.update.as_ref(),
            Action::Move => self.r#move.as_ref(),
            Action::Disable => self.disable.as_ref(),
            Action::AddMember => self.add_member.as_ref(),
            Action::RemoveMember => self.remove_member.as_ref(),
            Action::RotateKey => self.rotate_key.as_ref(),
            Action::Constitution => self.constitution.as_ref(),
        }
    }
}
