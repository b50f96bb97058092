//! Whether a new constitution is the change its proposal's action says.
//!
//! Each kind of change of the constitution has its own rule (`add_member = "all"`,
//! `rotate_key = "any 1"`, ...), so a proposal must not smuggle a change of another kind
//! under the rule of its action: a `rotate_key` that members approve under a lax rule must
//! not also lower the deploy rule. Hence:
//!
//! | action          | the new constitution must |
//! |-----------------|---------------------------|
//! | `add_member`    | add exactly one member (a new name and a new key), and change nothing else |
//! | `remove_member` | remove exactly one member, and change nothing else |
//! | `rotate_key`    | give exactly one member a new key (a key no member has), and change nothing else |
//! | `constitution`  | differ in anything |
//!
//! "Nothing else" is the written rules and the proposal lifetime: a rule such as `2 of 3` is
//! kept as "at least 2", so it stays the same rule with 4 members; `majority` and `all` count
//! the members there are. A new constitution identical to the one in force is no change.
//! Whatever holds the book checks this when it applies the change
//! ([`crate::Book::apply_constitution`]), and may check it earlier, when the proposal
//! arrives; a member checks it before approving.

use std::fmt;

use crate::constitution::{Action, Constitution, Member, Rule};
pub use crate::error::ChangeMismatch;

/// How one constitution differs from another, for people and for the checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Difference {
    /// Members only the new one has.
    pub added: Vec<Member>,
    /// Members only the old one has.
    pub removed: Vec<Member>,
    /// Members of both whose key changed: name, old key, new key.
    pub rekeyed: Vec<(String, [u8; 32], [u8; 32])>,
    /// Actions whose written rule changed: old, new (`None`: not written, so `all`).
    pub rules: Vec<(Action, Option<Rule>, Option<Rule>)>,
    /// The proposal lifetime, old and new, if it changed.
    pub lifetime_ms: Option<(u64, u64)>,
}

impl Difference {
    /// How `new` differs from `old`. Members are matched by name.
    pub fn between(old: &Constitution, new: &Constitution) -> Difference {
        let find =
            |c: &Constitution, name: &str| c.members().iter().find(|m| m.name == name).cloned();
        let added = new
            .members()
            .iter()
            .filter(|m| find(old, &m.name).is_none())
            .cloned()
            .collect();
        let removed = old
            .members()
            .iter()
            .filter(|m| find(new, &m.name).is_none())
            .cloned()
            .collect();
        let rekeyed = old
            .members()
            .iter()
            .filter_map(|m| {
                let other = find(new, &m.name)?;
                (other.key != m.key).then(|| (m.name.clone(), m.key, other.key))
            })
            .collect();
        let rules = Action::ALL
            .into_iter()
            .filter_map(|a| {
                let (was, is) = (old.rules().get(&a).copied(), new.rules().get(&a).copied());
                (was != is).then_some((a, was, is))
            })
            .collect();
        let lifetime_ms = (old.lifetime_ms() != new.lifetime_ms())
            .then_some((old.lifetime_ms(), new.lifetime_ms()));
        Difference {
            added,
            removed,
            rekeyed,
            rules,
            lifetime_ms,
        }
    }

    /// Whether the two are the same constitution.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.rekeyed.is_empty()
            && self.rules.is_empty()
            && self.lifetime_ms.is_none()
    }

    /// One line per difference: `member `d` added (key 5f0c…)`, `rule for `deploy`: any 2 →
    /// majority`, ...
    pub fn lines(&self) -> Vec<String> {
        let rule = |r: &Option<Rule>| match r {
            Some(r) => r.to_string(),
            None => "all (no rule written)".into(),
        };
        let mut lines = Vec::new();
        for m in &self.added {
            lines.push(format!(
                "member `{}` added (key {})",
                m.name,
                hex::encode(m.key)
            ));
        }
        for m in &self.removed {
            lines.push(format!(
                "member `{}` removed (key {})",
                m.name,
                hex::encode(m.key)
            ));
        }
        for (name, old, new) in &self.rekeyed {
            lines.push(format!(
                "member `{name}`: key {} replaced by {}",
                hex::encode(old),
                hex::encode(new)
            ));
        }
        for (action, old, new) in &self.rules {
            lines.push(format!(
                "rule for `{action}`: {} → {}",
                rule(old),
                rule(new)
            ));
        }
        if let Some((old, new)) = self.lifetime_ms {
            lines.push(format!("proposal lifetime: {old} ms → {new} ms"));
        }
        lines
    }

    /// What else changed besides the members (rules, lifetime), as one phrase.
    fn others(&self) -> Vec<String> {
        let mut others: Vec<String> = self
            .rules
            .iter()
            .map(|(a, _, _)| format!("the rule for `{a}`"))
            .collect();
        if self.lifetime_ms.is_some() {
            others.push("the proposal lifetime".into());
        }
        others
    }
}

/// Checks that `new` is the change `action` says, from `old` (see the module doc); returns
/// how they differ.
pub fn check(
    action: Action,
    old: &Constitution,
    new: &Constitution,
) -> Result<Difference, ChangeMismatch> {
    let diff = Difference::between(old, new);
    let must = match action {
        Action::AddMember => {
            "add exactly one member (a new name with a key no member has) and change nothing else"
        }
        Action::RemoveMember => "remove exactly one member and change nothing else",
        Action::RotateKey => {
            "give exactly one member a new key (one no member has) and change nothing else"
        }
        Action::Constitution => "change the constitution in force",
        _ => "not change the constitution: it is no change of members or rules",
    };
    let refuse = |found: String| ChangeMismatch {
        action,
        must,
        found,
    };
    if !action.changes_constitution() {
        return Err(refuse("names a new constitution".into()));
    }
    if diff.is_empty() {
        return Err(refuse(
            "names the constitution in force: it changes nothing".into(),
        ));
    }
    let others = diff.others();
    let (added, removed, rekeyed) = (diff.added.len(), diff.removed.len(), diff.rekeyed.len());
    let exact = match action {
        Action::AddMember => (added, removed, rekeyed) == (1, 0, 0),
        Action::RemoveMember => (added, removed, rekeyed) == (0, 1, 0),
        Action::RotateKey => (added, removed, rekeyed) == (0, 0, 1),
        _ => true,
    };
    // Keys are distinct within a constitution (`Constitution::new`): an added member or a new
    // key is never an existing member's.
    if exact && (action == Action::Constitution || others.is_empty()) {
        return Ok(diff);
    }
    let mut found = Vec::new();
    let count = |n: usize, what: &str| match n {
        1 => format!("{what}s 1 member"),
        n => format!("{what}s {n} members"),
    };
    if added > 0 {
        found.push(count(added, "add"));
    }
    if removed > 0 {
        found.push(count(removed, "remove"));
    }
    if rekeyed > 0 {
        found.push(format!("changes the key of {rekeyed} member(s)"));
    }
    if !others.is_empty() {
        found.push(format!("changes {}", others.join(", ")));
    }
    Err(refuse(found.join(" and ")))
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.is_empty() {
            true => f.write_str("no difference"),
            false => f.write_str(&self.lines().join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn member(name: &str, seed: u8) -> Member {
        Member {
            name: name.into(),
            key: aex_crypto::SigningIdentity::from_seed(&[seed; 32]).public(),
        }
    }

    /// a, b, c; deploy `2 of 3`, add_member `all`.
    fn three() -> Constitution {
        constitution(&[("a", 1), ("b", 2), ("c", 3)], "2")
    }

    fn constitution(members: &[(&str, u8)], deploy: &str) -> Constitution {
        let members: Vec<Member> = members.iter().map(|(n, s)| member(n, *s)).collect();
        let n = members.len();
        let rules = BTreeMap::from([
            (
                Action::Deploy,
                Rule::parse(&format!("any {deploy}"), n).unwrap(),
            ),
            (Action::AddMember, Rule::All),
        ]);
        Constitution::new(members, rules, 60_000).unwrap()
    }

    fn refused(action: Action, new: &Constitution) -> String {
        check(action, &three(), new).unwrap_err().to_string()
    }

    #[test]
    fn each_member_action_allows_exactly_its_own_change() {
        let old = three();
        let added = constitution(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], "2");
        let diff = check(Action::AddMember, &old, &added).unwrap();
        assert_eq!(diff.added, [member("d", 4)]);
        assert_eq!(
            diff.lines(),
            [format!(
                "member `d` added (key {})",
                hex::encode(member("d", 4).key)
            )]
        );

        let removed = constitution(&[("a", 1), ("b", 2)], "2");
        let diff = check(Action::RemoveMember, &old, &removed).unwrap();
        assert_eq!(diff.removed, [member("c", 3)]);

        let rotated = constitution(&[("a", 1), ("b", 9), ("c", 3)], "2");
        let diff = check(Action::RotateKey, &old, &rotated).unwrap();
        assert_eq!(
            diff.rekeyed,
            [("b".into(), member("b", 2).key, member("b", 9).key)]
        );
        assert!(diff.lines()[0].starts_with("member `b`: key "), "{diff}");

        // `constitution` allows anything, members and rules at once.
        let anything = constitution(&[("a", 1), ("e", 5)], "1");
        let diff = check(Action::Constitution, &old, &anything).unwrap();
        assert_eq!(
            (diff.added.len(), diff.removed.len(), diff.rules.len()),
            (1, 2, 1)
        );
        assert!(
            diff.lines()
                .contains(&"rule for `deploy`: any 2 → any 1".to_owned()),
            "{diff}"
        );
    }

    #[test]
    fn a_member_action_that_changes_anything_else_is_refused_saying_what() {
        // add_member that also lowers the deploy rule: the attack this check exists for.
        let err = refused(
            Action::AddMember,
            &constitution(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], "1"),
        );
        assert!(
            err.contains("a `add_member` proposal must add exactly one member"),
            "{err}"
        );
        assert!(
            err.contains("this one adds 1 member and changes the rule for `deploy`"),
            "{err}"
        );
        // Two members at once.
        let err = refused(
            Action::AddMember,
            &constitution(&[("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)], "2"),
        );
        assert!(err.contains("this one adds 2 members"), "{err}");
        // A rotation dressed as an addition (b's name, a new key), and the reverse.
        let err = refused(
            Action::AddMember,
            &constitution(&[("a", 1), ("b", 9), ("c", 3)], "2"),
        );
        assert!(err.contains("changes the key of 1 member(s)"), "{err}");
        let err = refused(
            Action::RotateKey,
            &constitution(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], "2"),
        );
        assert!(err.contains("adds 1 member"), "{err}");
        // Two keys at once, or a key and a rule.
        let err = refused(
            Action::RotateKey,
            &constitution(&[("a", 7), ("b", 9), ("c", 3)], "2"),
        );
        assert!(err.contains("changes the key of 2 member(s)"), "{err}");
        let err = refused(
            Action::RemoveMember,
            &constitution(&[("a", 1), ("b", 2)], "1"),
        );
        assert!(
            err.contains("removes 1 member and changes the rule for `deploy`"),
            "{err}"
        );
        // A longer lifetime is a change of rules too.
        let mut lifetime = Document::of(&constitution(&[("a", 1), ("b", 2)], "2"));
        lifetime.proposal_lifetime_ms = 1;
        let err = refused(Action::RemoveMember, &lifetime.to_constitution().unwrap());
        assert!(err.contains("changes the proposal lifetime"), "{err}");
        // The constitution in force is no change, whatever the action.
        for action in [Action::AddMember, Action::Constitution] {
            assert!(refused(action, &three()).contains("it changes nothing"));
        }
        // An action that is no change of constitution names none.
        assert!(refused(Action::Deploy, &constitution(&[("a", 1)], "1"))
            .contains("a `deploy` proposal must not change the constitution"));
    }

    #[test]
    fn the_order_members_are_listed_in_is_no_difference() {
        let old = three();
        let reordered = constitution(&[("c", 3), ("a", 1), ("b", 2)], "2");
        assert!(Difference::between(&old, &reordered).is_empty());
        assert_eq!(
            Difference::between(&old, &reordered).to_string(),
            "no difference"
        );
    }

    use crate::document::Document;
}
