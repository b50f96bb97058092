//! Descriptor and command-line errors: exit codes 1 and 2, located descriptor errors with
//! suggestions, valid choices for unknown names, and a help line for an unreachable node.

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{IdentityPin, PingPong, PlatformKey};
use aex_testkit::free_addr;

/// A ping-pong application whose nodes are not running, its descriptor passed through `edit`.
fn offline_app(edit: impl FnOnce(String) -> String) -> AppDir {
    let app = AppDir::new();
    let key = app.path().join("platform.pub");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    let desc = PingPong {
        nodes: [
            (free_addr(), PlatformKey::File(key.clone())),
            (free_addr(), PlatformKey::File(key)),
        ],
        // Pinned, so that the deployer gets as far as connecting.
        identities: [
            Some(IdentityPin::Inline("22".repeat(32))),
            Some(IdentityPin::Inline("33".repeat(32))),
        ],
        poke: false,
        c_pong: false,
    };
    app.write_descriptor(&edit(desc.render()));
    app
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

#[test]
fn typo_in_a_connection_port_names_file_line_field_and_suggests() {
    let app = offline_app(|d| d.replacen("to = \"pong.ping\"", "to = \"pong.pnig\"", 1));
    let text = std::fs::read_to_string(app.path().join("aex.toml")).unwrap();
    let line = line_of(&text, "pong.pnig");
    let run = app.deploy().code(1);
    run.stderr_has(&[
        &format!("aex.toml:{line}:"),
        "connection[0].to",
        "`pnig`",
        "did you mean `ping`",
    ]);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("error: ")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "errors go to stderr: {}", run.stdout);
}

#[test]
fn unknown_node_of_a_module_is_located_and_suggested() {
    let app = offline_app(|d| d.replacen("node = \"node1\"", "node = \"nod1\"", 1));
    let text = std::fs::read_to_string(app.path().join("aex.toml")).unwrap();
    let line = line_of(&text, "\"nod1\"");
    // Invalid descriptors are refused by every command before anything else happens.
    for args in [&["deploy"][..], &["status"], &["call", "ping", "stats"]] {
        app.aex(args).code(1).stderr_has(&[
            &format!("aex.toml:{line}:"),
            "module[0].node",
            "`nod1`",
            "did you mean `node1`",
            "node1, node2",
        ]);
    }
}

#[test]
fn missing_directory_fails_with_help() {
    let app = AppDir::new();
    let missing = app.path().join("no-such-app");
    let missing = missing.display().to_string();
    for args in [&["deploy", &missing][..], &["status", "-C", &missing]] {
        cli::run(None, args, COMMAND_TIMEOUT).code(1).stderr_has(&[
            "error: ",
            "no-such-app",
            "not found",
            "help: ",
        ]);
    }
    // A directory without a descriptor.
    cli::run(Some(app.path()), &["status"], COMMAND_TIMEOUT)
        .code(1)
        .stderr_has(&["no aex.toml", "help: "]);
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["frobnicate"][..],
        &["deploy", "--bogus"],
        &["call"],
        &["call", "ping"],
        &["status", "a", "b"],
        &["node", "--listen", "not-an-address"],
    ] {
        let run = cli::run(None, args, COMMAND_TIMEOUT).code(2);
        assert!(run.stderr.starts_with("error: "), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    // No command at all: the usage, on stderr.
    let run = cli::run(None, &[], COMMAND_TIMEOUT).code(2);
    assert!(
        run.stderr.contains("Usage: aex [OPTIONS] <COMMAND>"),
        "{run:?}"
    );
    for args in [&["--help"][..], &["--version"], &["deploy", "--help"]] {
        let run = cli::run(None, args, COMMAND_TIMEOUT).ok();
        assert!(!run.stdout.is_empty(), "{run:?}");
    }
}

#[test]
fn node_limits_are_checked_by_name_and_kind() {
    for (limit, says) in [
        (
            "max_conections=1",
            "unknown limit `max_conections`: valid names are max_connections, \
             max_connections_per_address,",
        ),
        ("module_queue=1MiB", "`module_queue` must be at least 2 MiB"),
        (
            "max_connections=lots",
            "invalid value `lots` for `max_connections`",
        ),
        ("max_connections", "is not NAME=VALUE"),
    ] {
        cli::run(None, &["node", "--open", "--limit", limit], COMMAND_TIMEOUT)
            .code(1)
            .stderr_has(&[&format!("invalid `--limit {limit}`"), says]);
    }
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let app = offline_app(|d| d);
    // Direct connections, by name: a typo gets a suggestion and the list.
    app.aex(&["request", "stat"]).code(1).stderr_has(&[
        "no direct connection `stat`",
        "did you mean `stats`",
        "kick, stats",
    ]);
    // A connection that exists but is not direct is not a valid choice either.
    app.aex(&["output", "ping-to-pong", "{}"])
        .code(1)
        .stderr_has(&["`ping-to-pong`", "kick, stats"]);
    app.aex(&["call", "pnog", "count"]).code(1).stderr_has(&[
        "no module `pnog`",
        "did you mean `pong`",
        "ping, pong",
    ]);
}

#[test]
fn deploy_to_a_node_that_is_not_running_names_it_with_help() {
    let app = offline_app(|d| d);
    let text = std::fs::read_to_string(app.path().join("aex.toml")).unwrap();
    let node1 = text
        .lines()
        .find_map(|l| l.strip_prefix("address = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("node1 address")
        .to_string();
    let run = app.deploy().code(1);
    run.stderr_has(&[
        &format!("cannot reach node `node1` at {node1}"),
        "help: ",
        "aex node",
    ]);
}

#[test]
fn status_reports_unreachable_nodes_without_failing() {
    let app = offline_app(|d| d);
    let status = app.status();
    let listed = (
        status.nodes.len(),
        status.modules.len(),
        status.connections.len(),
    );
    assert_eq!(
        listed,
        (2, 2, 4),
        "everything the descriptor names: {status:#?}"
    );
    for n in &status.nodes {
        assert!(!n.reachable, "{status:#?}");
    }
    for m in &status.modules {
        assert!(!m.reachable && !m.attested && !m.running, "{status:#?}");
    }
    for c in &status.connections {
        assert!(!c.keyed, "{status:#?}");
    }
    // The table says what is known: nothing, rather than "not attested".
    let table = app.aex(&["status"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    let header = lines.iter().find(|l| l.starts_with("MODULE")).unwrap();
    let column = header.find("ATTESTED").unwrap();
    for module in ["ping", "pong"] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(module))
            .unwrap_or_else(|| panic!("no row for {module}:\n{}", table.stdout));
        let cells: Vec<&str> = row[column..].split_whitespace().take(2).collect();
        assert_eq!(cells, ["unknown", "unknown"], "{row}");
    }
    table.stderr_has(&["node `node1` did not answer, so the state of its modules is unknown"]);
}
