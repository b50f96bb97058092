//! The checks of `[governance]`: the consortium's members and the rule of each kind of action.
//!
//! Invariant: a `[governance]` that passes has 1 to `aex_governance::constitution::MAX_MEMBERS`
//! members with valid, distinct names and distinct Ed25519 keys (64 hex digits, inline or in a
//! file read here, because two members with one key would be one party voting twice), a rule
//! that the members can meet for each action it names (parsed by `aex_governance::Rule::parse`,
//! so the descriptor accepts exactly what governance understands), and a proposal lifetime
//! above zero. An action without a rule needs every member (`all`): that is
//! `aex_governance::Constitution::rule`'s default, the safe one, and the reference says so.
//! Unknown actions are refused by the parser (`RawRules` denies unknown fields).

use std::collections::BTreeMap;
use std::time::Duration;

use aex_crypto::PUBLIC_IDENTITY_LEN;
use aex_governance::constitution::MAX_MEMBERS;
use aex_governance::{Action, Constitution, Member, Rule};

use super::periodic::parse_duration;
use super::{valid_name, Checker, NAME_RULE};
use crate::descriptor::error::DescriptorError;
use crate::descriptor::field::Field;
use crate::descriptor::raw::{RawGovernance, RawMember};

/// How long a proposal stays open when `proposal_lifetime` is not set: a week, time enough for
/// every member of a consortium to read a plan and vote.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a member's key is and where to find it.
pub(crate) const MEMBER_KEY_HELP: &str = "a member's key is the public key of its deployer \
     identity: 64 hex digits, as `aex identity` prints it on the member's machine; give it as \
     `key`, or the path of a file holding it as `key_file`";

impl Checker<'_> {
    /// Checks `[governance]` and builds the constitution it declares; `None` without one.
    pub(super) fn governance(
        &self,
        raw: Option<&RawGovernance>,
    ) -> Result<Option<Constitution>, DescriptorError> {
        let Some(raw) = raw else { return Ok(None) };
        let count = raw.member.len();
        if count == 0 || count > MAX_MEMBERS {
            let message = match count {
                0 => "the consortium has no members".to_owned(),
                _ => format!("the consortium has {count} members, more than {MAX_MEMBERS}"),
            };
            let help = format!(
                "declare 1 to {MAX_MEMBERS} members, each a `[[governance.member]]` with \
                 `name` and `key`"
            );
            return Err(self.error(Field::Governance("member"), message, Some(help)));
        }
        let mut members: Vec<Member> = Vec::with_capacity(count);
        // The field each member's key came from, to point at the first of two equal keys.
        let mut key_fields = Vec::with_capacity(count);
        for (i, member) in raw.member.iter().enumerate() {
            if !valid_name(&member.name) {
                return Err(self.error(
                    Field::Member(i, "name"),
                    format!("invalid member name `{}`", member.name),
                    Some(NAME_RULE.to_owned()),
                ));
            }
            let (field, key) = self.member_key(i, member)?;
            if let Some(first) = members.iter().position(|m| m.name == member.name) {
                let help = self.first_at("member names must be unique", first, "name");
                return Err(self.error(
                    Field::Member(i, "name"),
                    format!("duplicate member name `{}`", member.name),
                    Some(help),
                ));
            }
            if let Some(first) = members.iter().position(|m| m.key == key) {
                let help = self.first_at(
                    "each member signs with its own key, or one party would vote twice",
                    first,
                    key_fields[first],
                );
                return Err(self.error(
                    Field::Member(i, field),
                    format!(
                        "members `{}` and `{}` have the same key",
                        members[first].name, member.name
                    ),
                    Some(help),
                ));
            }
            members.push(Member {
                name: member.name.clone(),
                key,
            });
            key_fields.push(field);
        }
        let mut rules = BTreeMap::new();
        let written = raw.rules.as_ref();
        for action in Action::ALL {
            let Some(text) = written.and_then(|r| r.get(action)) else {
                continue;
            };
            let rule = Rule::parse(text, count).map_err(|message| {
                let help = format!(
                    "with {count} members: `K of {count}` or `any K` for K from 1 to {count}, \
                     `majority` ({} members), or `all`",
                    Rule::Majority.required(count)
                );
                self.error(Field::Rule(action.name()), message, Some(help))
            })?;
            rules.insert(action, rule);
        }
        let lifetime = self.lifetime(raw.proposal_lifetime.as_deref())?;
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        // Every condition `Constitution::new` checks was checked above with its field; this
        // only fails if the two drift apart, and then still reports at the section.
        let constitution = Constitution::new(members, rules, lifetime_ms)
            .map_err(|e| self.error(Field::Governance(""), e.to_string(), None))?;
        let Some(text) = written.and_then(|r| r.recovery.as_ref()) else {
            return Ok(Some(constitution));
        };
        let help = format!(
            "with {count} members: `K of {count}` or `any K` for K from {} to {count}, \
             `majority` ({} members, the default), or `all`",
            2.min(count),
            Rule::Majority.required(count)
        );
        let rule = Rule::parse(text, count)
            .map_err(|message| self.error(Field::Rule("recovery"), message, Some(help.clone())))?;
        constitution
            .with_recovery(rule)
            .map(Some)
            .map_err(|e| self.error(Field::Rule("recovery"), e.to_string(), Some(help)))
    }

    /// Member `i`'s key, `key` or `key_file` (read now: duplicates are checked on the key), and
    /// the field it came from.
    fn member_key(
        &self,
        i: usize,
        member: &RawMember,
    ) -> Result<(&'static str, [u8; PUBLIC_IDENTITY_LEN]), DescriptorError> {
        let help = || Some(MEMBER_KEY_HELP.to_owned());
        let (field, text) = match (&member.key, &member.key_file) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    Field::Member(i, "key_file"),
                    "both `key` and `key_file` are set".to_owned(),
                    Some("keep one of them".to_owned()),
                ))
            }
            (None, None) => {
                return Err(self.error(
                    Field::Member(i, "name"),
                    format!("member `{}` has no `key`", member.name),
                    help(),
                ))
            }
            (Some(key), None) => ("key", key.clone()),
            (None, Some(file)) if file.trim().is_empty() => {
                return Err(self.error(
                    Field::Member(i, "key_file"),
                    "empty path".to_owned(),
                    help(),
                ))
            }
            (None, Some(file)) => {
                let path = self.dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        Field::Member(i, "key_file"),
                        format!("cannot read {}: {e}", path.display()),
                        help(),
                    )
                })?;
                ("key_file", text)
            }
        };
        // The reason never repeats the text: a file given by mistake may hold a secret.
        let key = text.trim().parse::<aex_proto::DeployerKey>().map_err(|e| {
            self.error(
                Field::Member(i, field),
                format!("not a member key ({}): expected 64 hex digits", e.reason),
                help(),
            )
        })?;
        Ok((field, key.0))
    }

    /// `proposal_lifetime`, by default [`DEFAULT_LIFETIME`].
    fn lifetime(&self, text: Option<&str>) -> Result<Duration, DescriptorError> {
        let field = Field::Governance("proposal_lifetime");
        let Some(text) = text else {
            return Ok(DEFAULT_LIFETIME);
        };
        let help = || {
            Some(
                "write a whole number and a unit: `30m`, `48h`, `168h` (the default, a week)"
                    .to_owned(),
            )
        };
        match parse_duration(text) {
            None => Err(self.error(field, format!("`{text}` is not a duration"), help())),
            Some(d) if d.is_zero() => Err(self.error(
                field,
                "a proposal's lifetime must be above zero".to_owned(),
                help(),
            )),
            Some(d) => Ok(d),
        }
    }

    /// `why`, then where the first of two clashing members is: `governance.member[0], line 7`.
    fn first_at(&self, why: &str, first: usize, field: &'static str) -> String {
        let at = self.source.line(Field::Member(first, field));
        let first = Field::Member(first, "").to_string();
        match at {
            Some(line) => format!("{why}; the first is {first}, line {line}"),
            None => format!("{why}; the first is {first}"),
        }
    }
}
