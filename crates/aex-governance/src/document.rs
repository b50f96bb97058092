//! The constitution as a document: what a party sends to whatever holds the book (the
//! governor's `start` payload, JSON), in the descriptor's own words (`[governance]`).
//!
//! ```json
//! {
//!   "members": [{"name": "farm", "key": "5f0c…64 hex digits"}, …],
//!   "rules": {"deploy": "2 of 3", "update": "majority"},
//!   "proposal_lifetime_ms": 172800000
//! }
//! ```
//!
//! `rules` may be left out (every action then needs `all`). Besides the kinds of action it
//! may hold `recovery` (default `majority`): how many members' recovery shares restore the
//! governor. A document is only text: it
//! becomes a [`Constitution`] through [`Document::to_constitution`], which checks it as the
//! descriptor's `[governance]` is checked. Its digest is the constitution's
//! ([`Constitution::digest`]), whatever order the document lists members or rules in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::constitution::{Action, Constitution, Member, Rule};
use crate::error::ConstitutionError;

/// A constitution as text (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The members, 1 to [`crate::constitution::MAX_MEMBERS`].
    pub members: Vec<MemberDocument>,
    /// A rule per kind of action, by name (`deploy = "2 of 3"`).
    #[serde(default)]
    pub rules: BTreeMap<String, String>,
    /// How long a proposal stays open, in milliseconds.
    pub proposal_lifetime_ms: u64,
}

/// A member as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDocument {
    /// The member's name.
    pub name: String,
    /// Their Ed25519 public key: 64 hex digits, as `aex identity` prints it.
    pub key: String,
}

impl Document {
    /// The document of `constitution` (its members in its order, its rules as text).
    pub fn of(constitution: &Constitution) -> Document {
        Document {
            members: constitution
                .members()
                .iter()
                .map(|m| MemberDocument {
                    name: m.name.clone(),
                    key: hex::encode(m.key),
                })
                .collect(),
            rules: constitution
                .rules()
                .iter()
                .map(|(action, rule)| (action.name().to_owned(), rule.to_string()))
                .chain(
                    constitution
                        .recovery_rule()
                        .map(|rule| (RECOVERY.to_owned(), rule.to_string())),
                )
                .collect(),
            proposal_lifetime_ms: constitution.lifetime_ms(),
        }
    }

    /// The constitution it states, checked as [`Constitution::new`] and [`Rule::parse`] check
    /// the descriptor's; an error names what is wrong and what is valid.
    pub fn to_constitution(&self) -> Result<Constitution, ConstitutionError> {
        let members = self
            .members
            .iter()
            .map(|m| {
                let key = hex::decode(&m.key)
                    .ok()
                    .and_then(|k| <[u8; aex_crypto::PUBLIC_IDENTITY_LEN]>::try_from(k).ok())
                    .ok_or_else(|| ConstitutionError::MemberKey {
                        name: m.name.clone(),
                    })?;
                Ok(Member {
                    name: m.name.clone(),
                    key,
                })
            })
            .collect::<Result<Vec<_>, ConstitutionError>>()?;
        let mut rules = BTreeMap::new();
        let mut recovery = None;
        for (name, text) in &self.rules {
            if name == RECOVERY {
                let rule = Rule::parse(text, members.len())
                    .map_err(|reason| ConstitutionError::Recovery { reason })?;
                recovery = Some(rule);
                continue;
            }
            let action: Action = name.parse()?;
            let rule = Rule::parse(text, members.len())
                .map_err(|reason| ConstitutionError::Rule { action, reason })?;
            rules.insert(action, rule);
        }
        let constitution = Constitution::new(members, rules, self.proposal_lifetime_ms)?;
        match recovery {
            Some(rule) => constitution.with_recovery(rule),
            None => Ok(constitution),
        }
    }
}

/// The name, among the rules, of the recovery rule: how many members' recovery shares
/// restore the governor ([`Constitution::recovery_threshold`]). It is no kind of action.
pub const RECOVERY: &str = "recovery";

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> String {
        hex::encode(aex_crypto::SigningIdentity::from_seed(&[seed; 32]).public())
    }

    fn document() -> Document {
        Document {
            members: ["a", "b", "c"]
                .iter()
                .zip(1..)
                .map(|(name, seed)| MemberDocument {
                    name: (*name).into(),
                    key: key(seed),
                })
                .collect(),
            rules: BTreeMap::from([
                ("deploy".into(), "2 of 3".into()),
                ("disable".into(), "any 1".into()),
            ]),
            proposal_lifetime_ms: 60_000,
        }
    }

    #[test]
    fn a_document_round_trips_through_its_constitution() {
        let c = document().to_constitution().unwrap();
        assert_eq!(c.required(Action::Deploy), 2);
        assert_eq!(c.required(Action::Disable), 1);
        assert_eq!(c.required(Action::Update), 3, "no rule: all");
        let again = Document::of(&c).to_constitution().unwrap();
        assert_eq!(again, c);
        assert_eq!(again.digest(), c.digest());
        assert_eq!(c.recovery_threshold(), 2, "no rule: a majority");
    }

    #[test]
    fn a_recovery_rule_round_trips_and_changes_the_digest_only_when_written() {
        let plain = document().to_constitution().unwrap();
        let mut d = document();
        d.rules.insert("recovery".into(), "all".into());
        let c = d.to_constitution().unwrap();
        assert_eq!(c.recovery_threshold(), 3);
        assert_ne!(c.digest(), plain.digest());
        assert_eq!(Document::of(&c).rules["recovery"], "all");
        assert_eq!(
            Document::of(&c).to_constitution().unwrap().digest(),
            c.digest()
        );
    }

    #[test]
    fn a_document_is_checked_as_the_descriptor_is() {
        let err = |edit: fn(&mut Document)| {
            let mut d = document();
            edit(&mut d);
            d.to_constitution().unwrap_err().to_string()
        };
        assert!(err(|d| d.members[1].key = "zz".into()).contains("member `b`: its key"));
        assert!(err(|d| d.members[1].key = key(1)).contains("have the same key"));
        assert!(err(|d| {
            d.rules.insert("upgrade".into(), "any 1".into());
        })
        .contains("`upgrade` is not a kind of action"));
        assert!(err(|d| {
            d.rules.insert("update".into(), "2 of 4".into());
        })
        .contains("the rule for `update`"));
        assert!(err(|d| d.proposal_lifetime_ms = 0).contains("lifetime"));
        assert!(err(|d| {
            d.rules.insert("recovery".into(), "any 1".into());
        })
        .contains("lets one member alone recover"));
        assert!(err(|d| {
            d.rules.insert("recovery".into(), "4 of 3".into());
        })
        .contains("the rule for `recovery`"));
        assert!(err(|d| {
            d.members.clear();
            d.rules.clear();
        })
        .contains("0 members"));
    }
}
