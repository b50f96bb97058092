//! The locator on the styles each format allows: block and flow YAML, one-line JSON, TOML with
//! comments and quoted keys, CRLF line ends, and its fallbacks.

use super::super::field::Section;
use super::super::format::Format;
use super::super::locate::{Outline, Pos};
use super::*;

/// Where `field` is, as `(line, column)`.
fn locate(text: &str, format: Format, field: Field) -> Option<(usize, usize)> {
    Outline::new(text, format).locate(field).map(Pos::pair)
}

#[test]
fn toml_headers_keys_and_fallbacks() {
    let text = "\
# [[connection]] in a comment is not a header
[application]
name = \"x\"

[[node]]   # first
name = \"a\"
[[connection]]
\"from\" = \"deployer\"
description = '''
[[connection]]
to = \"not.this\"
'''
to=\"a.b\"
[[ connection ]]
from = \"a.b\"
";
    let toml = Format::Toml;
    assert_eq!(locate(text, toml, Field::Application("name")), Some((3, 8)));
    assert_eq!(locate(text, toml, Field::Node(0, "name")), Some((6, 8)));
    assert_eq!(
        locate(text, toml, Field::Connection(0, "from")),
        Some((8, 10))
    );
    assert_eq!(
        locate(text, toml, Field::Connection(0, "to")),
        Some((13, 4))
    );
    assert_eq!(
        locate(text, toml, Field::Connection(1, "from")),
        Some((15, 8))
    );
    // A field not written falls back to its entry's header; a missing entry to nothing.
    assert_eq!(
        locate(text, toml, Field::Connection(1, "to")),
        Some((14, 1))
    );
    assert_eq!(locate(text, toml, Field::Connection(2, "to")), None);
    assert_eq!(locate(text, toml, Field::Module(0, "name")), None);
    // Inline arrays are not followed: the section's line is the best guess.
    let inline = "node = [{ name = \"a\" }]\n";
    assert_eq!(locate(inline, toml, Field::Node(0, "name")), Some((1, 1)));
}

#[test]
fn yaml_block_flow_and_indent_styles() {
    let text = "\
---
application: {name: x}
modules:
- name: ping   # comment
  crate: \"mods/ping\"
  node: n1
-   name: pong
    node: n2
connection:
    - {from: 'ping.ping', \"to\": pong.ping, algorithm: aes-gcm}
    -
      from: deployer
      to: ping.kick
node:
  - name: a
    address: \"1.2.3.4:5\"   # trailing: comment
";
    let yaml = Format::Yaml;
    assert_eq!(
        locate(text, yaml, Field::Application("name")),
        Some((2, 21))
    );
    assert_eq!(locate(text, yaml, Field::Module(0, "name")), Some((4, 9)));
    assert_eq!(locate(text, yaml, Field::Module(0, "crate")), Some((5, 10)));
    assert_eq!(locate(text, yaml, Field::Module(1, "node")), Some((8, 11)));
    assert_eq!(locate(text, yaml, Field::Module(1, "crate")), Some((7, 1)));
    assert_eq!(
        locate(text, yaml, Field::Connection(0, "from")),
        Some((10, 14))
    );
    assert_eq!(
        locate(text, yaml, Field::Connection(0, "to")),
        Some((10, 33))
    );
    assert_eq!(
        locate(text, yaml, Field::Connection(0, "algorithm")),
        Some((10, 55))
    );
    assert_eq!(
        locate(text, yaml, Field::Connection(1, "to")),
        Some((13, 11))
    );
    assert_eq!(
        locate(text, yaml, Field::Node(0, "address")),
        Some((16, 14))
    );
    assert_eq!(locate(text, yaml, Field::Node(1, "address")), None);
    let flow = "node: [{name: a}]\n";
    assert_eq!(locate(flow, yaml, Field::Node(0, "name")), Some((1, 1)));
}

#[test]
fn json_one_line_and_nested_values() {
    let text = r#"{"x": {"node": [1]}, "node": [{"name": "a", "extra": {"tee": [1, "]"]}, "tee": "sgx"}, {"name": "b\"c"}], "up": []}"#;
    let json = Format::Json;
    assert_eq!(locate(text, json, Field::Node(0, "name")), Some((1, 40)));
    assert_eq!(locate(text, json, Field::Node(0, "tee")), Some((1, 80)));
    assert_eq!(locate(text, json, Field::Node(1, "name")), Some((1, 97)));
    assert_eq!(locate(text, json, Field::Node(1, "tee")), Some((1, 88)));
    // No entry in the section: its key is the best guess.
    let up = text.find("\"up\"").unwrap() + 1;
    assert_eq!(locate(text, json, Field::Up(0, "call")), Some((1, up)));
    let outline = Outline::new(text, json);
    assert_eq!(
        outline.enclosing(Pos {
            line: 1,
            column: 85
        }),
        Some((Section::Node, 0, Some("tee")))
    );
    assert_eq!(outline.enclosing(Pos { line: 1, column: 5 }), None);
}

#[test]
fn crlf_and_fixtures_agree() {
    // Each fixture's fields are found at the line of their value, with CRLF too.
    let fields = [
        (Field::Application("name"), "\"demo\""),
        (Field::Node(1, "platform_key"), "\"1f1f"),
        (Field::Module(1, "crate"), "\"mods/pong\""),
        (Field::Connection(1, "algorithm"), "\"chacha20-poly1305\""),
        (Field::Connection(3, "to"), "\"pong.kick\""),
        (Field::Up(0, "show"), "true"),
    ];
    for (format, text) in [
        (Format::Toml, TOML),
        (Format::Yaml, YAML),
        (Format::Json, JSON),
    ] {
        let crlf = text.replace('\n', "\r\n");
        for (field, value) in fields {
            let expected = super::invalid::position_of(text, value, 1);
            assert_eq!(
                locate(text, format, field),
                Some(expected),
                "{format:?} {field}"
            );
            assert_eq!(
                locate(&crlf, format, field),
                Some(expected),
                "{format:?} CRLF {field}"
            );
        }
    }
}

#[test]
fn offsets_to_positions() {
    let text = "ab\néé\nc";
    assert_eq!(Pos::of_offset(text, 0).pair(), (1, 1));
    assert_eq!(Pos::of_offset(text, 3).pair(), (2, 1));
    assert_eq!(Pos::of_offset(text, 5).pair(), (2, 2));
    assert_eq!(Pos::of_offset(text, 4).pair(), (2, 1), "inside a character");
    assert_eq!(Pos::of_offset(text, 99).pair(), (3, 2));
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*", cut in 0usize..2000, insert in "[\\[\\]{}\"':,\\-\\n #=a-z0-9.]{0,8}") {
        let project = Project::new();
        for (ext, format, fixture) in [("toml", Format::Toml, TOML), ("yaml", Format::Yaml, YAML), ("json", Format::Json, JSON)] {
            let _ = project.load(ext, &text);
            let mut mutated = fixture.to_owned();
            let at = (cut % mutated.len()..mutated.len()).find(|&i| mutated.is_char_boundary(i)).unwrap_or(0);
            mutated.insert_str(at, &insert);
            let _ = project.load(ext, &mutated);
            let outline = Outline::new(&text, format);
            let _ = outline.locate(Field::Connection(cut % 4, "to"));
            let _ = outline.enclosing(Pos { line: cut % 50, column: cut % 30 });
        }
    }
}

#[test]
fn governance_nesting_in_each_format_and_its_fallbacks() {
    let line = |text: &str, format, field| locate(text, format, field).map(|(l, _)| l);
    // YAML: items at the key's own indent, a nested table, governance fields after both.
    let yaml = "\
governance:
  member:
  - name: a
    key: k
  - name: b
  rules:
    deploy: all
  proposal_lifetime: 1h
node: []
";
    let y = Format::Yaml;
    assert_eq!(line(yaml, y, Field::Member(0, "key")), Some(4));
    assert_eq!(line(yaml, y, Field::Member(1, "name")), Some(5));
    assert_eq!(line(yaml, y, Field::Member(1, "key")), Some(5));
    assert_eq!(line(yaml, y, Field::Rule("deploy")), Some(7));
    assert_eq!(
        line(yaml, y, Field::Governance("proposal_lifetime")),
        Some(8)
    );
    assert_eq!(line(yaml, y, Field::Governance("")), Some(1));
    // A flow mapping is not followed: its errors point at the governance field holding it.
    let flow = "governance:\n  member: []\n  rules: {deploy: all}\n";
    assert_eq!(line(flow, y, Field::Rule("deploy")), Some(3));
    assert_eq!(line(flow, y, Field::Member(0, "key")), Some(2));

    // JSON on one line, governance fields after the nested values.
    let json = r#"{"governance": {"member": [{"name": "a"}], "rules": {"move": "all"}, "proposal_lifetime": "1h"}}"#;
    let j = Format::Json;
    assert_eq!(locate(json, j, Field::Member(0, "name")), Some((1, 37)));
    assert_eq!(locate(json, j, Field::Rule("move")), Some((1, 62)));
    assert_eq!(
        locate(json, j, Field::Governance("proposal_lifetime")),
        Some((1, 91))
    );

    // TOML: dotted headers; an inline rules table points at its key.
    let toml = "[governance]\nrules = { deploy = \"all\" }\n[[governance.member]]\nname = \"a\"\n";
    let t = Format::Toml;
    assert_eq!(line(toml, t, Field::Rule("deploy")), Some(2));
    assert_eq!(line(toml, t, Field::Member(0, "name")), Some(4));
    assert_eq!(line(toml, t, Field::Member(0, "key")), Some(3));
}
