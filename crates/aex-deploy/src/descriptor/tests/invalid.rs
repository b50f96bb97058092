//! Every check of `load` fails at the expected field, line and column, in all three formats.
//!
//! Each case edits one value of the demo fixtures the same way in each format (values are
//! double-quoted in all three), so the expected position is simply where the edit was made.

use super::{Project, FORMATS, JSON, TOML, YAML};

/// One invalid edit: replace the `nth` occurrence of `from` with `to`; expect an error at that
/// spot, in `field`, whose message and help contain the given texts.
struct Case {
    from: &'static str,
    nth: usize,
    to: &'static str,
    field: &'static str,
    message: &'static str,
    help: &'static str,
}

const fn case(
    from: &'static str,
    nth: usize,
    to: &'static str,
    field: &'static str,
    message: &'static str,
    help: &'static str,
) -> Case {
    Case {
        from,
        nth,
        to,
        field,
        message,
        help,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    case("\"demo\"", 1, "\"my demo\"", "application.name", "invalid application name `my demo`", "1 to 64 letters"),
    case("\"n2\"", 1, "\"n 2\"", "node[1].name", "invalid node name `n 2`", "1 to 64 letters"),
    case("\"n2\"", 1, "\"n1\"", "node[1].name", "duplicate node name `n1`", "the first `n1` is node[0], line "),
    case("\"127.0.0.1:7102\"", 1, "\"localhost:7102\"", "node[1].address", "`localhost:7102` is not an IP address and port", "127.0.0.1:7101"),
    case("\"sgx\"", 1, "\"sgz\"", "node[0].tee", "unknown TEE kind `sgz`", "did you mean `sgx`? valid TEE kinds: sgx"),
    case("\"1f1f1f1f", 1, "\"1f1f1", "node[1].platform_key", "expected 66 hex characters, found 63", "P-256"),
    case("\"1f1f1f1f", 1, "\"zz1f1f1f", "node[1].platform_key", "not a hexadecimal string", "66 hex characters"),
    case("\"keys/n1.pub\"", 1, "\" \"", "node[0].platform_key_file", "empty path", "hex"),
    case("\"pong\"", 1, "\"po ng\"", "module[1].name", "invalid module name `po ng`", "1 to 64 letters"),
    case("\"pong\"", 1, "\"ping\"", "module[1].name", "duplicate module name `ping`", "the first `ping` is module[0]"),
    case("\"n2\"", 2, "\"n3\"", "module[1].node", "no node `n3`", "valid nodes: n1, n2"),
    case("\"mods/pong\"", 1, "\"mods/pongg\"", "module[1].crate", "mods/pongg does not exist", "relative to"),
    case("\"mods/pong\"", 1, "\"mods\"", "module[1].crate", "has no Cargo.toml", "crate directory"),
    case("\"pong.pong\"", 1, "\"pongpong\"", "connection[1].from", "`pongpong` is not `module.port`", "or `deployer`"),
    case("\"pong.pong\"", 1, "\"pong.\"", "connection[1].from", "`pong.` is not `module.port`", "e.g. `ping.ping`"),
    case("\"ping.ping\"", 1, "\"pnig.ping\"", "connection[0].from", "no module `pnig`", "did you mean `ping`? valid modules: ping, pong"),
    case("\"pong.ping\"", 1, "\"pnog.ping\"", "connection[0].to", "no module `pnog`", "did you mean `pong`? valid modules: ping, pong"),
    case("\"pong.ping\"", 1, "\"zzz.ping\"", "connection[0].to", "no module `zzz`", "valid modules: ping, pong"),
    case("\"ping.kick\"", 1, "\"deployer\"", "connection[2].to", "a connection cannot go to the deployer", "only valid in `from`"),
    case("\"chacha20-poly1305\"", 1, "\"chacha20\"", "connection[1].algorithm", "unknown algorithm `chacha20`", "did you mean `chacha20-poly1305`? valid algorithms: aes-gcm, chacha20-poly1305"),
    case("\"pong.kick\"", 1, "\"ping.kick\"", "connection[3].to", "connection `direct` repeats connection[2]", "remove one"),
    case("\"direct\"", 1, "\"back\"", "connection[3].name", "duplicate connection name `back`", "the first `back` is connection[1]"),
    case("\"direct\"", 1, "\"a b\"", "connection[3].name", "invalid connection name `a b`", "without spaces"),
    case("\"ping.start\"", 1, "\"pimg.start\"", "up[0].call", "no module `pimg`", "did you mean `ping`?"),
    case("\"ping.start\"", 1, "\"start\"", "up[0].call", "`start` is not `module.entry`", "`ping.start`"),
    case("\"done\"", 1, "\"\"", "up[0].until", "empty `until` field name", "remove `until`"),
    case("\"pong.tick\"", 1, "\"pnog.tick\"", "periodic[0].call", "no module `pnog`", "did you mean `pong`?"),
    case("\"pong.tick\"", 1, "\"tick\"", "periodic[0].call", "`tick` is not `module.entry`", "`sensor.tick`"),
    case("\"5s\"", 1, "\"5 sec\"", "periodic[0].every", "`5 sec` is not a duration", "`500ms`, `5s`"),
    case("\"500ms\"", 1, "\"5ms\"", "periodic[1].every", "a period of 5 ms is too short", "the shortest period is 10 ms"),
    case("\"500ms\"", 1, "\"9000h\"", "periodic[1].every", "a period of 9000 h is too long", "the longest period is 8760 h"),
    case("\"valve=digital_out\"", 1, "\"valve=servo\"", "node[0].devices", "unknown device kind `servo`", "NAME=KIND"),
    case("\"button=digital_in\"", 1, "\"valve=digital_in\"", "node[0].devices", "device `valve` is declared twice", ""),
    case("\"valve\"", 1, "\"pump\"", "module[0].devices", "node `n1` declares no device `pump`", "valid devices: button, valve"),
    case("\"mods\"", 1, "\"nowhere\"", "tenant[0].descriptor", "nowhere does not exist", ""),
    case("\"keys/tenant.identity\"", 1, "\" \"", "tenant[0].identity", "empty path", "identity"),
    case("\"ping.tick\"", 1, "\"pong.tick\"", "periodic[1].call", "`pong.tick` already has a periodic trigger", "keep one of periodic[0] and periodic[1]"),
];

#[test]
fn each_check_fails_at_its_field_in_each_format() {
    for (ext, text) in FORMATS {
        for case in CASES {
            let (edited, offset) = replace_nth(text, case.from, case.nth, case.to);
            let project = Project::new();
            let err = project
                .load(ext, &edited)
                .expect_err(&format!("{ext}: {} -> {} loaded", case.from, case.to));
            let context = format!("{ext}: {} -> {}: {err}", case.from, case.to);
            assert_eq!(err.field().as_deref(), Some(case.field), "{context}");
            if case.field.ends_with(".devices") {
                // A list: the error points at the list, on the edited line.
                assert_eq!(err.line(), at(&edited, offset).0, "{context}");
            } else {
                assert_eq!((err.line(), err.column()), at(&edited, offset), "{context}");
            }
            assert!(err.message().contains(case.message), "{context}");
            assert!(err.help().unwrap_or("").contains(case.help), "{context}");
            assert_eq!(err.file(), project.path().join(format!("aex.{ext}")));
        }
    }
}

#[test]
fn parser_errors_name_the_field() {
    // An unknown key, a value of the wrong type: both found by the parsers, located by them.
    for (ext, text) in FORMATS {
        let project = Project::new();
        let (edited, offset) = replace_nth(text, "simulation", 1, "simulaton");
        let err = project.load(ext, &edited).unwrap_err();
        assert_eq!(err.line(), at(&edited, offset).0, "{ext}: {err}");
        assert_eq!(
            err.field().as_deref(),
            Some("node[1].simulaton"),
            "{ext}: {err}"
        );
        assert_eq!(err.message(), "unknown field `simulaton`", "{ext}");
        assert!(
            err.help()
                .unwrap()
                .starts_with("did you mean `simulation`? valid fields: name, address"),
            "{ext}: {err}"
        );

        let (edited, offset) = replace_nth(text, "\"127.0.0.1:7102\"", 1, "7102");
        let err = project.load(ext, &edited).unwrap_err();
        assert_eq!(err.line(), at(&edited, offset).0, "{ext}: {err}");
        assert_eq!(
            err.field().as_deref(),
            Some("node[1].address"),
            "{ext}: {err}"
        );

        let (edited, offset) = replace_nth(text, "\"demo\"", 1, "\"demo\", \"nodez\": 1");
        if ext == "json" {
            let err = project.load(ext, &edited).unwrap_err();
            assert_eq!(err.line(), at(&edited, offset).0, "{ext}: {err}");
            assert_eq!(err.message(), "unknown field `nodez`");
        }
    }
}

#[test]
fn unknown_top_level_section() {
    let project = Project::new();
    for (ext, text, line) in [
        ("toml", "nodez = 1\n", 1),
        ("yaml", "nodez: 1\n", 1),
        ("json", "{\n \"nodez\": 1}", 2),
    ] {
        let err = project.load(ext, text).unwrap_err();
        assert_eq!(
            (err.line(), err.field().as_deref()),
            (Some(line), Some("nodez")),
            "{ext}: {err}"
        );
        assert!(
            err.help()
                .unwrap()
                .starts_with("did you mean `node`? valid fields: application, node, nodes"),
            "{err}"
        );
    }
}

#[test]
fn missing_field() {
    let project = Project::new();
    for (ext, text, line) in [
        ("toml", "[[node]]\nname = \"a\"\ntee = \"sgx\"\n", 1),
        ("yaml", "node:\n  - name: a\n    tee: sgx\n", 3),
        (
            "json",
            "{\"node\": [\n {\"name\": \"a\",\n  \"tee\": \"sgx\"}]}",
            3,
        ),
    ] {
        let err = project.load(ext, text).unwrap_err();
        assert_eq!(err.message(), "missing field `address`", "{ext}");
        assert_eq!(
            (err.line(), err.field().as_deref()),
            (Some(line), Some("node[0].address")),
            "{ext}: {err}"
        );
        assert_eq!(err.help(), Some("add `address`"));
    }
}

#[test]
fn syntax_errors_have_positions() {
    let project = Project::new();
    for (ext, text, line) in [
        ("toml", "[[node]\n", 1),
        ("yaml", "node: [\n", 1),
        ("json", "{\"node\": [\n", 2),
        ("json", "", 1),
    ] {
        let err = project.load(ext, text).unwrap_err();
        assert_eq!(err.line(), Some(line), "{ext}: {err}");
        assert!(!err.message().contains(" at line "), "{err}");
    }
}

#[test]
fn at_least_one_node() {
    let project = Project::new();
    for (ext, text) in [
        ("toml", ""),
        ("yaml", "# nothing\n"),
        ("json", "{\"node\": []}"),
    ] {
        let err = project.load(ext, text).unwrap_err();
        assert_eq!(err.message(), "the descriptor declares no nodes", "{ext}");
        assert_eq!((err.line(), err.field()), (None, None));
    }
}

#[test]
fn both_platform_key_forms() {
    let project = Project::new();
    let key = "ab".repeat(33);
    for (ext, text, line) in [
        ("toml", format!("[[node]]\nname = \"a\"\naddress = \"1.2.3.4:5\"\ntee = \"sgx\"\nplatform_key = \"{key}\"\nplatform_key_file = \"k\"\n"), 6),
        ("yaml", format!("node:\n- name: a\n  address: 1.2.3.4:5\n  tee: sgx\n  platform_key: {key}\n  platform_key_file: k\n"), 6),
        ("json", format!("{{\"node\": [{{\"name\": \"a\", \"address\": \"1.2.3.4:5\", \"tee\": \"sgx\",\n\"platform_key\": \"{key}\", \"platform_key_file\": \"k\"}}]}}"), 2),
    ] {
        let err = project.load(ext, &text).unwrap_err();
        assert_eq!(err.message(), "both `platform_key` and `platform_key_file` are set", "{ext}");
        assert_eq!((err.line(), err.field().as_deref()), (Some(line), Some("node[0].platform_key_file")), "{ext}");
        assert!(!err.to_string().contains(&key), "errors never print key material");
    }
}

/// One node with one extra field, in each format: the text and the line of the extra field.
fn one_node(tee: &str, key: &str, value: &str) -> [(&'static str, String, usize); 3] {
    [
        ("toml", format!("[[node]]\nname = \"a\"\naddress = \"1.2.3.4:5\"\ntee = \"{tee}\"\n{key} = {value}\n"), 5),
        ("yaml", format!("node:\n- name: a\n  address: 1.2.3.4:5\n  tee: {tee}\n  {key}: {value}\n"), 5),
        ("json", format!("{{\"node\": [{{\"name\": \"a\", \"address\": \"1.2.3.4:5\", \"tee\": \"{tee}\",\n\"{key}\": {value}}}]}}"), 2),
    ]
}

/// Item 4 of the security review: a hardware-only policy on a symmetric kind would accept a
/// MAC the node's own files produce, so the descriptor refuses it and says why.
#[test]
fn hardware_evidence_from_symmetric_kinds_is_refused() {
    let project = Project::new();
    for tee in ["trustzone", "sancus"] {
        for (ext, text, line) in one_node(tee, "simulation", "false") {
            let err = project.load(ext, &text).unwrap_err();
            let context = format!("{ext} {tee}: {err}");
            assert_eq!(
                (err.line(), err.field().as_deref()),
                (Some(line), Some("node[0].simulation")),
                "{context}"
            );
            assert_eq!(err.file(), project.path().join(format!("aex.{ext}")));
            assert_eq!(
                err.message(),
                format!("a `{tee}` node cannot be required to give hardware evidence"),
                "{context}"
            );
            let help = err.help().unwrap_or("");
            assert!(
                help.contains("no hardware trust anchor for trustzone and sancus")
                    && help.contains("a MAC the node's operator can compute")
                    && help.contains("Remove `simulation = false`")
                    && help.contains("`sgx` node"),
                "{context}"
            );
        }
        // Simulation allowed, said or not: valid.
        for (ext, text, _) in one_node(tee, "simulation", "true") {
            assert!(project.load(ext, &text).is_ok(), "{ext} {tee}");
        }
    }
    // Hardware-only stays possible where a hardware anchor exists.
    for (ext, text, _) in one_node("sgx", "simulation", "false") {
        assert!(
            !project.load(ext, &text).unwrap().nodes[0].simulation,
            "{ext}"
        );
    }
}

#[test]
fn the_vendor_key_fields_say_what_replaced_them() {
    let project = Project::new();
    for (key, value) in [("vendor_key_file", "\"vendor-1.key\""), ("vendor_id", "1")] {
        for (ext, text, line) in one_node("sancus", key, value) {
            let err = project.load(ext, &text).unwrap_err();
            let context = format!("{ext} {key}: {err}");
            assert_eq!(
                (err.line(), err.field().as_deref()),
                (Some(line), Some(format!("node[0].{key}").as_str())),
                "{context}"
            );
            assert_eq!(
                err.message(),
                format!("`{key}` was replaced by `provider_key_file`"),
                "{context}"
            );
            assert!(
                err.help().unwrap_or("").contains("aex node provider-key"),
                "{context}"
            );
        }
    }
    // And they are not offered as valid fields.
    let (_, text, _) = &one_node("sancus", "vendor_key_fil", "\"k\"")[0];
    let err = project.load("toml", text).unwrap_err();
    let help = err.help().unwrap_or("");
    assert!(
        help.contains("provider_key_file") && !help.contains("vendor"),
        "{err}"
    );
}

#[test]
fn provider_key_files() {
    let project = Project::new();
    for tee in ["trustzone", "sancus"] {
        for (ext, text, _) in one_node(tee, "provider_key_file", "\"keys/mine.key\"") {
            let d = project.load(ext, &text).unwrap();
            assert_eq!(
                d.nodes[0].provider_key_file,
                Some(project.path().join("keys/mine.key")),
                "{ext}"
            );
        }
        for (ext, text, line) in one_node(tee, "provider_key_file", "\" \"") {
            let err = project.load(ext, &text).unwrap_err();
            assert_eq!(
                (err.line(), err.field().as_deref(), err.message()),
                (Some(line), Some("node[0].provider_key_file"), "empty path"),
                "{ext}"
            );
        }
    }
    for (ext, text, line) in one_node("sgx", "provider_key_file", "\"k\"") {
        let err = project.load(ext, &text).unwrap_err();
        assert_eq!(
            (err.line(), err.field().as_deref(), err.message()),
            (
                Some(line),
                Some("node[0].provider_key_file"),
                "a `sgx` node has no provider key"
            ),
            "{ext}"
        );
    }
}

/// `text` with the `nth` (1-based) occurrence of `from` replaced by `to`, and its byte offset.
pub(super) fn replace_nth(text: &str, from: &str, nth: usize, to: &str) -> (String, usize) {
    let offset = text
        .match_indices(from)
        .nth(nth - 1)
        .unwrap_or_else(|| panic!("no {nth}th `{from}`"))
        .0;
    (
        format!("{}{to}{}", &text[..offset], &text[offset + from.len()..]),
        offset,
    )
}

/// The 1-based line and column of byte `offset`, counted independently of the locator.
pub(super) fn at(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (Some(line), Some(column))
}

/// The line and column of the `nth` occurrence of `needle` in `text`.
pub(super) fn position_of(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = text.match_indices(needle).nth(nth - 1).unwrap().0;
    let (line, column) = at(text, offset);
    (line.unwrap(), column.unwrap())
}

#[test]
fn fixtures_are_in_sync() {
    // The edits above rely on every fixture holding each edited value.
    for case in CASES {
        for (ext, text) in [("toml", TOML), ("yaml", YAML), ("json", JSON)] {
            assert!(
                text.matches(case.from).count() >= case.nth,
                "{ext} lacks {}",
                case.from
            );
        }
    }
}

/// Two nodes, `ping` on the first and `pong` on the second, with one connection between them;
/// `first_tee`, `module` and `connection` are spliced in.
fn placed(first_tee: &str, module: &str, connection: &str) -> String {
    format!(
        "[[node]]\nname = \"n1\"\naddress = \"127.0.0.1:7101\"\ntee = \"{first_tee}\"\n\n\
         [[node]]\nname = \"n2\"\naddress = \"127.0.0.1:7102\"\ntee = \"sgx\"\n\n\
         [[module]]\nname = \"ping\"\ncrate = \"mods/ping\"\nnode = \"n1\"\n{module}\n\
         [[module]]\nname = \"pong\"\ncrate = \"mods/pong\"\nnode = \"n2\"\n\n\
         [[connection]]\nname = \"p\"\nfrom = \"ping.ping\"\nto = \"pong.ping\"\n{connection}"
    )
}

#[test]
fn placement_is_checked_with_the_descriptor_before_any_build() {
    let project = Project::new();
    // `native` without `allow_insecure`: the help names the field to add.
    let text = placed("native", "", "");
    let e = project.load("toml", &text).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("module[0].node")
            && shown.contains("whose TEE kind is `native`")
            && shown.contains("add `allow_insecure = true` to its `[[module]]` entry"),
        "{shown}"
    );
    assert_eq!(
        e.line(),
        Some(text.lines().position(|l| l == "node = \"n1\"").unwrap() + 1)
    );
    project
        .load("toml", &placed("native", "allow_insecure = true\n", ""))
        .unwrap();
    // AES-GCM (the default) on a sancus node, which offers only ChaCha20-Poly1305.
    let e = project.load("toml", &placed("sancus", "", "")).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("connection[0].algorithm")
            && shown.contains(
                "module `ping` runs on node `n1` (sancus), which offers only chacha20-poly1305"
            )
            && shown.contains("set `algorithm = \"chacha20-poly1305\"` on connection `p`"),
        "{shown}"
    );
    let chacha = "algorithm = \"chacha20-poly1305\"\n";
    project.load("toml", &placed("sancus", "", chacha)).unwrap();
}
