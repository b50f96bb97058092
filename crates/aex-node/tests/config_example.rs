//! The example configuration that operators copy, `packaging/node.toml`, stays true: it parses,
//! it sets every option (a field added to `NodeConfig`, a timeout or a limit fails this test
//! until the example documents it), the values it calls defaults are the defaults, and each
//! commented alternative (`# admit = [...]` above `admit = []`) parses in place of the line
//! below it.

use std::path::{Path, PathBuf};

use aex_node::{Limits, NodeConfig, Timeouts};

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging")
}

fn example_text() -> String {
    std::fs::read_to_string(packaging().join("node.toml")).expect("read packaging/node.toml")
}

#[test]
fn the_example_parses_sets_every_option_and_shows_the_defaults() {
    let path = packaging().join("node.toml");
    let config = NodeConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    // Exhaustive on purpose: a new field does not compile here until the example has it.
    let NodeConfig {
        name,
        listen,
        data_dir,
        tee,
        allow_remote_shutdown,
        admit,
        open,
        peers,
        devices,
        timeouts,
        limits,
        metrics,
    } = config;
    assert_eq!(name, "edge-1");
    assert_eq!(listen, "0.0.0.0:7100".parse().unwrap());
    assert_eq!(data_dir, PathBuf::from("/var/lib/aex"));
    assert_eq!(tee, aex_tee::TeeKind::Sgx);
    // The shipped admit file holds only comments: the example admits nobody until the
    // operator adds keys, rather than a stranger's key.
    assert!(admit.is_empty() && !open && !allow_remote_shutdown);
    assert!(peers.is_empty() && devices.is_empty());
    assert_eq!(metrics, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(
        timeouts,
        Timeouts::default(),
        "the example shows the defaults"
    );
    assert_eq!(limits, Limits::default(), "the example shows the defaults");

    let doc: toml::Table = toml::from_str(&example_text()).unwrap();
    let keys = |table: &toml::Table| table.keys().cloned().collect::<Vec<_>>();
    let mut top = keys(&doc);
    top.sort();
    assert_eq!(
        top,
        [
            "admit",
            "admit_file",
            "allow_remote_shutdown",
            "data_dir",
            "devices",
            "limits",
            "listen",
            "metrics",
            "name",
            "open",
            "peers",
            "tee",
            "timeouts"
        ]
    );
    let sorted = |names: &[&str]| {
        let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        keys(doc["timeouts"].as_table().unwrap()),
        sorted(&Timeouts::names()),
        "[timeouts] names every timeout"
    );
    assert_eq!(
        keys(doc["limits"].as_table().unwrap()),
        sorted(&Limits::names()),
        "[limits] names every limit"
    );
}

#[test]
fn every_commented_alternative_parses_in_place_of_its_line() {
    let text = example_text();
    let lines: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(packaging().join("deployers"), dir.path().join("deployers")).unwrap();
    let mut tried = vec![];
    for (i, pair) in lines.windows(2).enumerate() {
        let Some(alternative) = pair[0].strip_prefix("# ") else {
            continue;
        };
        let Some((key, _)) = pair[1].split_once(" = ") else {
            continue;
        };
        if !alternative.starts_with(&format!("{key} = ")) {
            continue;
        }
        let mut edited: Vec<&str> = lines.clone();
        edited[i] = alternative;
        edited.remove(i + 1);
        let path = dir.path().join("node.toml");
        std::fs::write(&path, edited.join("\n")).unwrap();
        let config = NodeConfig::from_file(&path)
            .unwrap_or_else(|e| panic!("line {}: `{alternative}`: {e}", i + 1));
        let set = match key {
            "admit" => !config.admit.is_empty(),
            "peers" => !config.peers.is_empty(),
            "devices" => config.devices.len() == 3,
            other => panic!("a commented alternative for `{other}`: add its check here"),
        };
        assert!(set, "line {}: `{alternative}` was not applied", i + 1);
        tried.push(key);
    }
    assert_eq!(tried, ["admit", "peers", "devices"]);
}
