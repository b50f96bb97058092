//! Members, and the rule that decides each kind of action.
//!
//! A rule names how many members' approvals an action needs:
//!
//! | rule        | approvals needed, with `n` members |
//! |-------------|------------------------------------|
//! | `K of N`    | `K` (and `N` must be `n`, so the rule says what the consortium is) |
//! | `any K`     | `K` |
//! | `majority`  | more than half: `n / 2 + 1` |
//! | `all`       | `n` |
//!
//! An action the constitution gives no rule needs `all`: a consortium that forgets a kind of
//! action is never opened to fewer members than it has. A proposal is rejected as soon as
//! enough members rejected it that the rest can no longer reach its rule.

use std::collections::BTreeMap;
use std::fmt;

use aex_crypto::PUBLIC_IDENTITY_LEN;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::action::Action;
use crate::error::ConstitutionError;

/// The most members a consortium may have (every ballot is checked against each key).
pub const MAX_MEMBERS: usize = 64;

/// The longest member name, in bytes.
pub const MAX_NAME: usize = 64;

/// How many approvals an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// At least this many (`K of N`, `any K`).
    AtLeast(u32),
    /// More than half of the members.
    Majority,
    /// Every member.
    All,
}

impl Rule {
    /// Parses a rule for a consortium of `members`: `K of N`, `any K`, `majority` or `all`.
    pub fn parse(text: &str, members: usize) -> Result<Rule, String> {
        const VALID: &str =
            "valid rules: `K of N` (N the number of members), `any K`, `majority`, `all`";
        let words: Vec<&str> = text.split_whitespace().collect();
        let count = |word: &str| -> Result<u32, String> {
            word.parse::<u32>()
                .map_err(|_| format!("`{word}` is not a number of members; {VALID}"))
        };
        let rule = match words[..] {
            ["majority"] => Rule::Majority,
            ["all"] => Rule::All,
            ["any", k] => Rule::AtLeast(count(k)?),
            [k, "of", n] => {
                let (k, n) = (count(k)?, count(n)?);
                if n as usize != members {
                    return Err(format!(
                        "`{text}` counts {n} members, but the constitution has {members}"
                    ));
                }
                Rule::AtLeast(k)
            }
            _ => return Err(format!("`{text}` is not a rule; {VALID}")),
        };
        if let Rule::AtLeast(k) = rule {
            if k == 0 {
                return Err(format!(
                    "`{text}` needs no approval at all: at least 1 member must approve"
                ));
            }
            if k as usize > members {
                return Err(format!(
                    "`{text}` needs {k} approvals, but the constitution has {members} members"
                ));
            }
        }
        Ok(rule)
    }

    /// Approvals needed with `members` members.
    pub fn required(self, members: usize) -> usize {
        match self {
            Rule::AtLeast(k) => k as usize,
            Rule::Majority => members / 2 + 1,
            Rule::All => members,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::AtLeast(k) => write!(f, "any {k}"),
            Rule::Majority => f.write_str("majority"),
            Rule::All => f.write_str("all"),
        }
    }
}

/// A member: a name people use, and the Ed25519 key that signs for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Unique within the consortium.
    pub name: String,
    /// Ed25519 public key (a deployer identity's).
    #[serde(with = "serde_bytes")]
    pub key: [u8; PUBLIC_IDENTITY_LEN],
}

/// The members, and the rule of each kind of action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constitution {
    members: Vec<Member>,
    rules: BTreeMap<Action, Rule>,
    /// How long a proposal stays open, in milliseconds.
    lifetime_ms: u64,
    /// How many members' recovery shares restore the governor (`recovery` in the rules;
    /// [`Constitution::recovery_threshold`]). Not an action: nobody proposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery: Option<Rule>,
}

impl Constitution {
    /// A constitution, checked: 1 to [`MAX_MEMBERS`] members with distinct names and keys,
    /// rules that the members can meet, and a proposal lifetime above zero.
    pub fn new(
        members: Vec<Member>,
        rules: BTreeMap<Action, Rule>,
        lifetime_ms: u64,
    ) -> Result<Self, ConstitutionError> {
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(ConstitutionError::Members {
                count: members.len(),
                max: MAX_MEMBERS,
            });
        }
        for (i, m) in members.iter().enumerate() {
            if m.name.is_empty()
                || m.name.len() > MAX_NAME
                || !m
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConstitutionError::MemberName {
                    name: m.name.clone(),
                    max: MAX_NAME,
                });
            }
            if let Some(other) = members[..i].iter().find(|o| o.name == m.name) {
                return Err(ConstitutionError::DuplicateName {
                    name: other.name.clone(),
                });
            }
            if let Some(other) = members[..i].iter().find(|o| o.key == m.key) {
                return Err(ConstitutionError::DuplicateKey {
                    first: other.name.clone(),
                    second: m.name.clone(),
                });
            }
        }
        for (action, rule) in &rules {
            let needed = rule.required(members.len());
            if needed == 0 || needed > members.len() {
                return Err(ConstitutionError::Rule {
                    action: *action,
                    reason: format!(
                        "`{rule}` needs {needed} approvals, but the constitution has {} members",
                        members.len()
                    ),
                });
            }
        }
        if lifetime_ms == 0 {
            return Err(ConstitutionError::Lifetime);
        }
        Ok(Constitution {
            members,
            rules,
            lifetime_ms,
            recovery: None,
        })
    }

    /// The constitution with `rule` as its recovery rule: how many members' recovery shares
    /// restore the governor on a new node (docs/ARCHITECTURE.md, "Recovery"). With two
    /// members or more it must need at least 2: one member alone must not be able to take
    /// every key the governor holds.
    pub fn with_recovery(mut self, rule: Rule) -> Result<Self, ConstitutionError> {
        let n = self.members.len();
        let needed = rule.required(n);
        let reason = if needed == 0 || needed > n {
            Some(format!(
                "`{rule}` needs {needed} shares, but the constitution has {n} members"
            ))
        } else if needed < 2 && n >= 2 {
            Some(format!(
                "`{rule}` lets one member alone recover every key the governor holds; with \
                 {n} members it needs at least 2 shares (`majority`, the default, needs {})",
                Rule::Majority.required(n)
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ConstitutionError::Recovery { reason }),
            None => {
                self.recovery = Some(rule);
                Ok(self)
            }
        }
    }

    /// The recovery rule written in the constitution, if any.
    pub fn recovery_rule(&self) -> Option<Rule> {
        self.recovery
    }

    /// How many members' recovery shares restore the governor: the `recovery` rule, else a
    /// majority of the members.
    pub fn recovery_threshold(&self) -> usize {
        self.recovery
            .unwrap_or(Rule::Majority)
            .required(self.members.len())
    }

    /// The members.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member whose key is `key`.
    pub fn member_by_key(&self, key: &[u8; PUBLIC_IDENTITY_LEN]) -> Option<&Member> {
        self.members.iter().find(|m| &m.key == key)
    }

    /// The rule of `action` (`all` where the constitution names none).
    pub fn rule(&self, action: Action) -> Rule {
        self.rules.get(&action).copied().unwrap_or(Rule::All)
    }

    /// Approvals `action` needs now.
    pub fn required(&self, action: Action) -> usize {
        self.rule(action).required(self.members.len())
    }

    /// How long a proposal stays open, in milliseconds.
    pub fn lifetime_ms(&self) -> u64 {
        self.lifetime_ms
    }

    /// The SHA-256 of its canonical encoding ([`Constitution::canonical_bytes`]): what a
    /// proposal that changes the constitution names as its change, and what the governor
    /// attests in its TLS certificate under [`CERTIFICATE_KEY_NAME`], so that each member
    /// checks the governor holds the constitution of their own descriptor.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// Its canonical encoding: a CBOR map (RFC 8949) of `members` (name and key of each, in
    /// name order), `rules` (in the order of [`Action::ALL`]), `lifetime_ms` and, when set,
    /// `recovery`. Members are
    /// sorted so that two parties who list the same members in another order (a descriptor,
    /// a `start` payload) compute the same digest: the order means nothing to the book.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            members: Vec<&'a Member>,
            rules: &'a BTreeMap<Action, Rule>,
            lifetime_ms: u64,
            // Left out when unset, so a constitution without one keeps the digest it had.
            #[serde(skip_serializing_if = "Option::is_none")]
            recovery: Option<Rule>,
        }
        let mut members: Vec<&Member> = self.members.iter().collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let canonical = Canonical {
            members,
            rules: &self.rules,
            lifetime_ms: self.lifetime_ms,
            recovery: self.recovery,
        };
        let mut bytes = Vec::new();
        // Invariant: names, byte strings, integers and a map with enum keys always encode.
        ciborium::into_writer(&canonical, &mut bytes).unwrap_or_default();
        bytes
    }

    /// The rules written in the constitution (an action missing here needs `all`).
    pub fn rules(&self) -> &BTreeMap<Action, Rule> {
        &self.rules
    }
}

/// The name of the extra key under which the governor's TLS certificate attests its
/// constitution's [`Constitution::digest`] (`aex::tls::Options::extra`): a member's verifying
/// client compares it with the digest of the constitution in its own descriptor.
pub const CERTIFICATE_KEY_NAME: &str = "aex constitution v1";

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn member(name: &str, seed: u8) -> Member {
        Member {
            name: name.into(),
            key: aex_crypto::SigningIdentity::from_seed(&[seed; 32]).public(),
        }
    }

    #[test]
    fn rules_parse_and_count_as_documented() {
        assert_eq!(Rule::parse("2 of 3", 3), Ok(Rule::AtLeast(2)));
        assert_eq!(Rule::parse("any 1", 3), Ok(Rule::AtLeast(1)));
        assert_eq!(Rule::parse(" majority ", 3), Ok(Rule::Majority));
        assert_eq!(Rule::parse("all", 3), Ok(Rule::All));
        assert_eq!(Rule::Majority.required(3), 2);
        assert_eq!(Rule::Majority.required(4), 3);
        assert_eq!(Rule::All.required(5), 5);
        for (text, says) in [
            ("2 of 4", "counts 4 members, but the constitution has 3"),
            (
                "4 of 3",
                "needs 4 approvals, but the constitution has 3 members",
            ),
            (
                "any 4",
                "needs 4 approvals, but the constitution has 3 members",
            ),
            ("any 0", "at least 1 member must approve"),
            ("two of 3", "`two` is not a number of members; valid rules:"),
            ("most", "`most` is not a rule; valid rules: `K of N`"),
            ("", "is not a rule"),
        ] {
            let err = Rule::parse(text, 3).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_constitution_refuses_what_cannot_work() {
        let three = vec![member("a", 1), member("b", 2), member("c", 3)];
        let ok = Constitution::new(three.clone(), BTreeMap::new(), 1000).unwrap();
        assert_eq!(ok.required(Action::Deploy), 3, "no rule: all");

        let err = |members: Vec<Member>, rules: BTreeMap<Action, Rule>, lifetime| {
            Constitution::new(members, rules, lifetime)
                .unwrap_err()
                .to_string()
        };
        assert!(err(vec![], BTreeMap::new(), 1).contains("0 members"));
        let dup = vec![member("a", 1), member("a", 2)];
        assert!(err(dup, BTreeMap::new(), 1).contains("two members are named `a`"));
        let same_key = vec![member("a", 1), member("b", 1)];
        assert!(err(same_key, BTreeMap::new(), 1).contains("`a` and `b` have the same key"));
        let bad_name = vec![member("a b", 1)];
        assert!(err(bad_name, BTreeMap::new(), 1).contains("member name `a b`"));
        let rules = BTreeMap::from([(Action::Update, Rule::AtLeast(4))]);
        assert!(err(three.clone(), rules, 1).contains("rule for `update`"));
        assert!(err(three, BTreeMap::new(), 0).contains("lifetime"));
    }

    #[test]
    fn actions_have_names_and_unknown_ones_list_the_valid() {
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>().unwrap(), a);
        }
        let err = "upgrade".parse::<Action>().unwrap_err().to_string();
        assert!(
            err.contains("`upgrade`") && err.contains("`deploy`, `update`"),
            "{err}"
        );
    }

    #[test]
    fn the_digest_changes_with_any_member_or_rule() {
        let base = Constitution::new(vec![member("a", 1)], BTreeMap::new(), 1000).unwrap();
        let other_key = Constitution::new(vec![member("a", 2)], BTreeMap::new(), 1000).unwrap();
        let other_rule = Constitution::new(
            vec![member("a", 1)],
            BTreeMap::from([(Action::Deploy, Rule::AtLeast(1))]),
            1000,
        )
        .unwrap();
        assert_ne!(base.digest(), other_key.digest());
        assert_ne!(base.digest(), other_rule.digest());
        assert_eq!(base.digest(), base.clone().digest());
    }

    #[test]
    fn the_digest_does_not_depend_on_the_order_members_are_listed_in() {
        let ab = vec![member("a", 1), member("b", 2)];
        let ba = vec![member("b", 2), member("a", 1)];
        let one = Constitution::new(ab, BTreeMap::new(), 1000).unwrap();
        let two = Constitution::new(ba, BTreeMap::new(), 1000).unwrap();
        assert_ne!(one, two, "the lists differ");
        assert_eq!(one.digest(), two.digest());
        assert_eq!(one.canonical_bytes(), two.canonical_bytes());
    }
}
