//! `[governance]`: the members and rules parse into the constitution `aex_governance` checks,
//! the same in all three formats, and every check fails at its field and line in each format,
//! as `invalid` does for the other sections.

use aex_governance::{Action, Rule};

use super::invalid::{at, position_of, replace_nth};
use super::Project;

const ALICE: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const BOB: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CAROL: &str = "3333333333333333333333333333333333333333333333333333333333333333";

const TOML: &str = r#"[[node]]
name = "n1"
address = "127.0.0.1:7101"
tee = "sgx"

[governance]
proposal_lifetime = "48h"
governor = "https://127.0.0.1:7443/"
governor_node = "n1"
governor_measurement = "abababababababababababababababababababababababababababababababab"

[[governance.member]]
name = "alice"
key = "1111111111111111111111111111111111111111111111111111111111111111"

[[governance.member]]
name = "bob"
key = "2222222222222222222222222222222222222222222222222222222222222222"

[[governance.member]]
name = "carol"
key_file = "keys/carol.pub"

[governance.rules]
deploy = "2 of 3"
update = "majority"
disable = "any 1"
add_member = "all"
recovery = "2 of 3"
"#;

const YAML: &str = r#"node:
  - name: "n1"
    address: "127.0.0.1:7101"
    tee: "sgx"
governance:
  member:
    - name: "alice"
      key: "1111111111111111111111111111111111111111111111111111111111111111"
    - name: "bob"
      key: "2222222222222222222222222222222222222222222222222222222222222222"
    - name: "carol"
      key_file: "keys/carol.pub"
  rules:
    deploy: "2 of 3"
    update: "majority"
    disable: "any 1"
    add_member: "all"
    recovery: "2 of 3"
  proposal_lifetime: "48h"
  governor: "https://127.0.0.1:7443/"
  governor_node: "n1"
  governor_measurement: "abababababababababababababababababababababababababababababababab"
"#;

const JSON: &str = r#"{
  "node": [{"name": "n1", "address": "127.0.0.1:7101", "tee": "sgx"}],
  "governance": {
    "member": [
      {"name": "alice", "key": "1111111111111111111111111111111111111111111111111111111111111111"},
      {"name": "bob", "key": "2222222222222222222222222222222222222222222222222222222222222222"},
      {"name": "carol", "key_file": "keys/carol.pub"}
    ],
    "rules": {
      "deploy": "2 of 3",
      "update": "majority",
      "disable": "any 1",
      "add_member": "all",
      "recovery": "2 of 3"
    },
    "proposal_lifetime": "48h",
    "governor": "https://127.0.0.1:7443/",
    "governor_node": "n1",
    "governor_measurement": "abababababababababababababababababababababababababababababababab"
  }
}
"#;

const FORMATS: [(&str, &str); 3] = [("toml", TOML), ("yaml", YAML), ("json", JSON)];

/// A project whose `keys/carol.pub` holds carol's key (and `keys/n1.pub` a P-256 key).
fn project() -> Project {
    let project = Project::new();
    std::fs::write(project.path().join("keys/carol.pub"), format!("{CAROL}\n")).unwrap();
    project
}

fn key(hex: &str) -> [u8; 32] {
    hex.parse::<aex_proto::DeployerKey>().unwrap().0
}

#[test]
fn members_and_rules_become_the_constitution_in_each_format() {
    for (ext, text) in FORMATS {
        let project = project();
        let d = project
            .load(ext, text)
            .unwrap_or_else(|e| panic!("{ext}: {e}"));
        let c = d.governance.as_ref().expect("declared");
        let members: Vec<(&str, [u8; 32])> = c
            .members()
            .iter()
            .map(|m| (m.name.as_str(), m.key))
            .collect();
        assert_eq!(
            members,
            [
                ("alice", key(ALICE)),
                ("bob", key(BOB)),
                ("carol", key(CAROL))
            ],
            "{ext}"
        );
        assert_eq!(c.rule(Action::Deploy), Rule::AtLeast(2));
        assert_eq!(c.rule(Action::Update), Rule::Majority);
        assert_eq!(c.rule(Action::Disable), Rule::AtLeast(1));
        assert_eq!(c.rule(Action::AddMember), Rule::All);
        // No rule: every member must approve (aex_governance's default, documented).
        assert_eq!(c.rule(Action::Move), Rule::All);
        assert_eq!(c.required(Action::Constitution), 3);
        assert_eq!(c.lifetime_ms(), 48 * 3600 * 1000);
        assert_eq!(c.recovery_rule(), Some(Rule::AtLeast(2)));
        assert_eq!(c.recovery_threshold(), 2);
        assert_eq!(
            d.governance_line(),
            Some(position_of(text, "governance", 1).0)
        );
    }
}

#[test]
fn without_the_section_there_is_no_governance_and_the_lifetime_has_a_default() {
    let project = project();
    let d = project
        .load("toml", &TOML[..TOML.find("[governance]").unwrap()])
        .unwrap();
    assert_eq!((&d.governance, d.governance_line()), (&None, None));
    let d = project
        .load("toml", &TOML.replace("proposal_lifetime = \"48h\"\n", ""))
        .unwrap();
    let week = 7 * 24 * 3600 * 1000;
    assert_eq!(d.governance.unwrap().lifetime_ms(), week);
}

/// Replace the `nth` `from` with `to`; expect an error there, at `field`, whose message and help
/// contain the given texts.
type Case = (
    &'static str,
    usize,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const CASES: &[Case] = &[
    ("\"bob\"", 1, "\"alice\"", "governance.member[1].name", "duplicate member name `alice`", "the first is governance.member[0], line "),
    ("\"bob\"", 1, "\"b b\"", "governance.member[1].name", "invalid member name `b b`", "1 to 64 letters"),
    ("\"2222222222222222222222222222222222222222222222222222222222222222\"", 1, "\"1111111111111111111111111111111111111111111111111111111111111111\"", "governance.member[1].key", "members `alice` and `bob` have the same key", "one party would vote twice; the first is governance.member[0], line "),
    ("\"2222", 1, "\"222", "governance.member[1].key", "not a member key (63 characters): expected 64 hex digits", "`aex identity`"),
    ("\"2222", 1, "\"zz22", "governance.member[1].key", "not a member key (non-hex character at position 1)", "64 hex digits"),
    ("\"keys/carol.pub\"", 1, "\"keys/nobody.pub\"", "governance.member[2].key_file", "cannot read", "`key_file`"),
    ("\"keys/carol.pub\"", 1, "\"keys/n1.pub\"", "governance.member[2].key_file", "not a member key (66 characters)", "64 hex digits"),
    ("\"keys/carol.pub\"", 1, "\" \"", "governance.member[2].key_file", "empty path", "`key_file`"),
    ("\"2 of 3\"", 1, "\"4 of 3\"", "governance.rules.deploy", "`4 of 3` needs 4 approvals, but the constitution has 3 members", "with 3 members: `K of 3` or `any K` for K from 1 to 3"),
    ("\"2 of 3\"", 1, "\"3 of 2\"", "governance.rules.deploy", "`3 of 2` counts 2 members, but the constitution has 3", "`majority` (2 members)"),
    ("\"2 of 3\"", 1, "\"0 of 3\"", "governance.rules.deploy", "needs no approval at all: at least 1 member must approve", "K from 1 to 3"),
    ("\"any 1\"", 1, "\"any 9\"", "governance.rules.disable", "`any 9` needs 9 approvals", "K from 1 to 3"),
    ("\"majority\"", 1, "\"most\"", "governance.rules.update", "`most` is not a rule; valid rules: `K of N`", "`all`"),
    ("\"48h\"", 1, "\"2 days\"", "governance.proposal_lifetime", "`2 days` is not a duration", "`48h`"),
    ("\"https://127.0.0.1:7443/\"", 1, "\"http://127.0.0.1:7443/\"", "governance.governor", "not an https URL", "`governor_node`"),
    ("\"https://127.0.0.1:7443/\"", 1, "\"https://127.0.0.1/\"", "governance.governor", "no HOST:PORT", "set all three, or none"),
    ("\"n1\"", 2, "\"n2\"", "governance.governor_node", "no node `n2` in the descriptor", "`n1`"),
    ("\"abab", 1, "\"zbab", "governance.governor_measurement", "not a measurement: expected 64 hex digits", "every member computes"),
    ("\"2 of 3\"", 2, "\"any 1\"", "governance.rules.recovery", "lets one member alone recover every key", "K from 2 to 3"),
    ("\"2 of 3\"", 2, "\"4 of 3\"", "governance.rules.recovery", "needs 4 approvals, but the constitution has 3 members", "`majority` (2 members, the default)"),
    ("\"48h\"", 1, "\"0s\"", "governance.proposal_lifetime", "a proposal's lifetime must be above zero", "a week"),
];

#[test]
fn each_check_fails_at_its_field_and_line_in_each_format() {
    for (ext, text) in FORMATS {
        for &(from, nth, to, field, message, help) in CASES {
            let (edited, offset) = replace_nth(text, from, nth, to);
            let project = project();
            let err = project
                .load(ext, &edited)
                .expect_err(&format!("{ext}: {from} -> {to} loaded"));
            let context = format!("{ext}: {from} -> {to}: {err}");
            assert_eq!(err.field().as_deref(), Some(field), "{context}");
            assert_eq!((err.line(), err.column()), at(&edited, offset), "{context}");
            assert!(err.message().contains(message), "{context}");
            assert!(err.help().unwrap_or("").contains(help), "{context}");
            // The message the user reads names the file, the line and the field.
            let line = at(&edited, offset).0.unwrap();
            assert!(
                err.to_string().contains(&format!("aex.{ext}:{line}:"))
                    && err.to_string().contains(&format!(": {field}: ")),
                "{context}"
            );
        }
    }
}

#[test]
fn an_unknown_action_or_field_is_refused_at_its_line_listing_the_valid_ones() {
    let cases = [
        (
            "update",
            "upgrade",
            "governance.rules.upgrade",
            "`upgrade` is not a kind of action",
        ),
        (
            "key_file",
            "keyfile",
            "governance.member[2].keyfile",
            "unknown field `keyfile`",
        ),
        (
            "proposal_lifetime",
            "lifetime",
            "governance.lifetime",
            "unknown field `lifetime`",
        ),
    ];
    for (ext, text) in FORMATS {
        for (from, to, field, message) in cases {
            let (edited, offset) = replace_nth(text, from, 1, to);
            let err = project().load(ext, &edited).unwrap_err();
            let context = format!("{ext}: {err}");
            assert_eq!(err.line(), at(&edited, offset).0, "{context}");
            assert_eq!(err.field().as_deref(), Some(field), "{context}");
            assert_eq!(err.message(), message, "{context}");
        }
    }
    let err = project()
        .load("toml", &TOML.replace("update =", "updte ="))
        .unwrap_err();
    assert_eq!(
        err.help(),
        Some(
            "did you mean `update`? valid actions: deploy, update, move, disable, add_member, \
             remove_member, rotate_key, constitution, recovery"
        )
    );
}

#[test]
fn a_member_needs_exactly_one_key_and_the_consortium_a_member() {
    let project = project();
    let both = TOML.replace(
        "key_file = \"keys/carol.pub\"",
        &format!("key = \"{CAROL}\"\nkey_file = \"keys/carol.pub\""),
    );
    let err = project.load("toml", &both).unwrap_err();
    assert_eq!(
        err.field().as_deref(),
        Some("governance.member[2].key_file")
    );
    assert_eq!(err.line(), Some(position_of(&both, "key_file", 1).0));
    assert_eq!(err.message(), "both `key` and `key_file` are set");

    let none = TOML.replace("key_file = \"keys/carol.pub\"\n", "");
    let err = project.load("toml", &none).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("governance.member[2].name"));
    assert_eq!(err.line(), Some(position_of(&none, "\"carol\"", 1).0));
    assert_eq!(err.message(), "member `carol` has no `key`");

    let nobody = "[[node]]\nname = \"n1\"\naddress = \"127.0.0.1:7101\"\ntee = \"sgx\"\n\n\
                  [governance]\nproposal_lifetime = \"1h\"\n";
    let err = project.load("toml", nobody).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("governance.member"));
    assert_eq!(err.line(), Some(6));
    assert_eq!(err.message(), "the consortium has no members");
    assert!(err.help().unwrap().contains("[[governance.member]]"));
}

#[test]
fn the_governor_needs_its_url_node_and_measurement_together_on_an_sgx_node() {
    let project = project();
    let d = project.load("toml", TOML).unwrap();
    let g = d.governor.expect("declared");
    assert_eq!(
        (g.url.as_str(), g.address.as_str(), g.node.as_str()),
        ("https://127.0.0.1:7443/", "127.0.0.1:7443", "n1")
    );
    assert_eq!(g.measurement.to_hex(), "ab".repeat(32));

    let unpinned = TOML.replace(
        &format!("governor_measurement = \"{}\"\n", "ab".repeat(32)),
        "",
    );
    let err = project.load("toml", &unpinned).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("governance.governor"));
    assert_eq!(err.line(), Some(position_of(&unpinned, "governor =", 1).0));
    assert_eq!(
        err.message(),
        "`governor` is set but `governor_measurement` is not"
    );

    let native = TOML.replace("tee = \"sgx\"", "tee = \"native\"");
    let err = project.load("toml", &native).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("governance.governor_node"));
    assert!(err.message().contains("is a `native` node"), "{err}");
    assert!(
        err.help().unwrap_or("").contains("only the holder"),
        "{err}"
    );

    let none = TOML
        .lines()
        .filter(|l| !l.starts_with("governor"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(project.load("toml", &none).unwrap().governor, None);
}
