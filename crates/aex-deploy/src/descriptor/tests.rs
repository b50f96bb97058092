//! Tests of the descriptor: the three formats agree, every check fails at the right field and
//! line in each format, the locator follows each format's styles, and no input panics.
//!
//! The fixtures are `tests/data/descriptors/demo.{toml,yaml,json}`; [`Project`] copies one into a
//! temporary directory holding the crate directories and key file it names.

mod governance;
mod invalid;
mod locate;
mod reference;

use std::path::{Path, PathBuf};

use aex_crypto::Algorithm;
use aex_tee::TeeKind;

use super::*;

const TOML: &str = include_str!("../../tests/data/descriptors/demo.toml");
const YAML: &str = include_str!("../../tests/data/descriptors/demo.yaml");
const JSON: &str = include_str!("../../tests/data/descriptors/demo.json");

/// Each fixture with its extension.
const FORMATS: [(&str, &str); 3] = [("toml", TOML), ("yaml", YAML), ("json", JSON)];

/// The inline platform key of the fixtures.
const KEY: [u8; 33] = [0x1f; 33];

/// A temporary application directory with `mods/ping`, `mods/pong` (crates), `mods` (not a
/// crate) and `keys/n1.pub`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aex-test-")
            .tempdir()
            .unwrap();
        for name in ["ping", "pong"] {
            let crate_dir = dir.path().join("mods").join(name);
            std::fs::create_dir_all(&crate_dir).unwrap();
            std::fs::write(crate_dir.join("Cargo.toml"), "[package]\n").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::write(
            dir.path().join("keys/n1.pub"),
            format!("{}\n", "2e".repeat(33)),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `aex.<ext>` and returns its path.
    fn write(&self, ext: &str, text: &str) -> PathBuf {
        let file = self.path().join(format!("aex.{ext}"));
        std::fs::write(&file, text).unwrap();
        file
    }

    /// Writes `aex.<ext>` and loads it.
    fn load(&self, ext: &str, text: &str) -> Result<Descriptor, DescriptorError> {
        Descriptor::load(&self.write(ext, text))
    }
}

#[test]
fn formats_agree() {
    let project = Project::new();
    let mut loaded = FORMATS.map(|(ext, text)| {
        project
            .load(ext, text)
            .unwrap_or_else(|e| panic!("{ext}: {e}"))
    });
    let toml = loaded[0].clone();
    for other in &mut loaded[1..] {
        other.path = toml.path.clone();
        assert_eq!(*other, toml);
    }
}

#[test]
fn values_and_defaults() {
    let project = Project::new();
    let d = project.load("toml", TOML).unwrap();
    assert_eq!(d.path, project.path().join("aex.toml"));
    assert_eq!(d.dir, project.path());
    assert_eq!(d.application, "demo");
    let n1 = d.node("n1").unwrap();
    assert_eq!(n1.address, "127.0.0.1:7101".parse().unwrap());
    assert_eq!(n1.tee, TeeKind::Sgx);
    assert!(n1.simulation, "simulation defaults to true");
    assert_eq!(
        n1.platform_key,
        Some(PlatformKeySource::File(project.path().join("keys/n1.pub")))
    );
    let n2 = d.node("n2").unwrap();
    assert!(!n2.simulation);
    assert_eq!(
        n2.platform_key,
        Some(PlatformKeySource::Inline(KEY.to_vec()))
    );
    assert_eq!(d.platform_key("n1").unwrap(), Some(vec![0x2e; 33]));
    assert_eq!(d.platform_key("n2").unwrap(), Some(KEY.to_vec()));
    assert_eq!(
        d.module("pong").unwrap().crate_dir,
        project.path().join("mods/pong")
    );
    assert_eq!(d.module("pong").unwrap().node, "n2");
    assert!(d.node("n3").is_none() && d.module("n1").is_none());

    let names: Vec<&str> = d.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ping.ping->pong.ping",
            "back",
            "deployer->ping.kick",
            "direct"
        ]
    );
    let first = &d.connections[0];
    assert_eq!(
        first.from,
        From::Port(PortRef {
            module: "ping".into(),
            port: "ping".into()
        })
    );
    assert_eq!(first.to.to_string(), "pong.ping");
    assert_eq!(first.algorithm, Algorithm::AesGcm);
    assert_eq!(d.connections[1].algorithm, Algorithm::ChaCha20Poly1305);
    assert_eq!(d.connections[2].from, From::Deployer);

    let every: Vec<(&str, &str, u128)> = d
        .periodic
        .iter()
        .map(|p| (p.module.as_str(), p.entry.as_str(), p.every.as_millis()))
        .collect();
    assert_eq!(every, [("pong", "tick", 5_000), ("ping", "tick", 500)]);

    let step = &d.up[0];
    assert_eq!(
        (step.module.as_str(), step.entry.as_str()),
        ("ping", "start")
    );
    assert_eq!(step.payload, br#"{"count": 3}"#);
    assert_eq!((step.until.as_deref(), step.show), (Some("done"), true));

    let devices: Vec<String> = d.nodes[0].devices.iter().map(|d| d.to_string()).collect();
    assert_eq!(devices, ["button=digital_in", "valve=digital_out"]);
    assert!(d.nodes[1].devices.is_empty());
    assert_eq!(d.module("ping").unwrap().devices, ["valve"]);
    assert!(d.module("pong").unwrap().devices.is_empty());
    assert_eq!(
        d.tenants,
        [TenantSpec {
            descriptor: project.path().join("mods"),
            identity: project.path().join("keys/tenant.identity"),
        }]
    );
}

#[test]
fn a_device_binds_to_one_module_of_its_node() {
    let project = Project::new();
    let nodes = "[[node]]\nname = \"a\"\naddress = \"[::1]:1\"\ntee = \"sancus\"\n\
                 devices = [\"valve=digital_out\"]\n\
                 [[node]]\nname = \"b\"\naddress = \"[::1]:2\"\ntee = \"sancus\"\n";
    let module = |name: &str, node: &str, devices: &str| {
        format!("[[module]]\nname = \"{name}\"\ncrate = \"mods/ping\"\nnode = \"{node}\"\ndevices = {devices}\n")
    };
    let e = project
        .load(
            "toml",
            &format!(
                "{nodes}{}{}",
                module("v", "a", "[\"valve\"]"),
                module("w", "a", "[\"valve\"]")
            ),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("module[1].devices") && e.contains("already bound to module `v`"),
        "{e}"
    );
    let e = project
        .load(
            "toml",
            &format!("{nodes}{}", module("v", "a", "[\"valve\", \"valve\"]")),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("bound twice"), "{e}");
    // A node that declares no devices here (its operator configured them) takes any name, and
    // the same name on two nodes is two devices.
    let d = project
        .load(
            "toml",
            &format!(
                "{nodes}{}{}",
                module("v", "a", "[\"valve\"]"),
                module("w", "b", "[\"valve\"]")
            ),
        )
        .unwrap();
    assert_eq!(d.module("w").unwrap().devices, ["valve"]);
    let e = project
        .load(
            "toml",
            &format!("{nodes}{}", module("v", "b", "[\"no way\"]")),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid device name"), "{e}");
}

#[test]
fn minimal_descriptor_and_directory_name() {
    let project = Project::new();
    let text = "[[node]]\nname = \"a\"\naddress = \"[::1]:1\"\ntee = \"sgx\"\n";
    let d = project.load("toml", text).unwrap();
    let dir_name = project.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(d.application, dir_name);
    assert!(d.modules.is_empty() && d.connections.is_empty() && d.up.is_empty());
    assert_eq!(d.nodes[0].platform_key, None);
    assert_eq!(d.platform_key("a").unwrap(), None);
}

#[test]
fn plural_section_names() {
    let project = Project::new();
    let yaml = YAML
        .replace("\nnode:", "\nnodes:")
        .replace("\nmodule:", "\nmodules:")
        .replace("\nconnection:", "\nconnections:");
    let json = JSON
        .replace("\"node\": [", "\"nodes\": [")
        .replace("\"connection\": [", "\"connections\": [");
    let toml = TOML
        .replace("[[node]]", "[[nodes]]")
        .replace("[[module]]", "[[modules]]");
    let expected = project.load("toml", TOML).unwrap();
    for (ext, text) in [("toml", toml), ("yaml", yaml), ("json", json)] {
        let mut d = project
            .load(ext, &text)
            .unwrap_or_else(|e| panic!("{ext}: {e}"));
        d.path = expected.path.clone();
        assert_eq!(d, expected, "{ext}");
    }
}

#[test]
fn find_prefers_toml_and_explains_a_missing_file() {
    let project = Project::new();
    let err = Descriptor::find(project.path()).unwrap_err();
    assert_eq!(
        err.message(),
        format!("no aex.toml in {}", project.path().display())
    );
    assert_eq!(
        err.help(),
        Some("pass the descriptor path, or see docs/TUTORIAL.md to write one")
    );
    assert_eq!(
        err.to_string(),
        format!("{}\n  help: {}", err.message(), err.help().unwrap())
    );

    let yaml = project.write("yml", YAML);
    assert_eq!(Descriptor::find(project.path()).unwrap(), yaml);
    let toml = project.write("toml", TOML);
    assert_eq!(Descriptor::find(project.path()).unwrap(), toml);
    assert_eq!(Descriptor::load(project.path()).unwrap().path, toml);
    assert_eq!(Descriptor::find(&yaml).unwrap(), yaml);

    let missing = project.path().join("nope.toml");
    let err = Descriptor::load(&missing).unwrap_err();
    assert_eq!(
        err.message(),
        format!("deployment descriptor {} not found", missing.display())
    );
    assert_eq!(
        (err.file(), err.line(), err.field()),
        (missing.as_path(), None, None)
    );
}

#[test]
fn unknown_extension() {
    let project = Project::new();
    let file = project.write("ini", TOML);
    let err = Descriptor::load(&file).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid deployment descriptor {}: unknown file extension `.ini`\n  help: expected .toml, .yaml, .yml or .json",
            file.display()
        )
    );
}

#[test]
fn display_is_rustc_like() {
    let project = Project::new();
    let err = project
        .load("toml", &TOML.replace("\"pong.ping\"", "\"pnog.ping\""))
        .unwrap_err();
    let file = project.path().join("aex.toml");
    let expected = format!(
        "invalid deployment descriptor {}:33:6: connection[0].to: no module `pnog`\n  \
         help: did you mean `pong`? valid modules: ping, pong",
        file.display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn error_at_locates_later_checks() {
    for (ext, text) in FORMATS {
        let project = Project::new();
        let d = project.load(ext, text).unwrap();
        let valid = ["ping".to_owned(), "kick".to_owned()];
        let err = d.error_at(
            Field::Connection(1, "to"),
            "module `ping` has no input `pnog`",
            &valid,
        );
        let (line, _) = invalid::position_of(text, "\"ping.pong\"", 1);
        assert_eq!(err.line(), Some(line), "{ext}");
        assert_eq!(err.field().as_deref(), Some("connection[1].to"));
        assert_eq!(err.message(), "module `ping` has no input `pnog`");
        assert_eq!(
            err.help(),
            Some("did you mean `ping`? valid values: ping, kick")
        );

        // Without a quoted name, the field's value is compared.
        let err = d.error_at(
            Field::Node(0, "tee"),
            "this node cannot run modules",
            &["sgz".to_owned()],
        );
        assert_eq!(err.help(), Some("did you mean `sgz`? valid values: sgz"));
        // Out of range: the field is named, the line is unknown, nothing panics.
        let err = d.error_at(Field::Module(9, "node"), "gone", &[]);
        assert_eq!(
            (err.line(), err.field().as_deref(), err.help()),
            (None, Some("module[9].node"), None)
        );
    }
}

#[test]
fn platform_key_file_errors_point_at_the_field() {
    let project = Project::new();
    let d = project.load("toml", TOML).unwrap();
    std::fs::write(project.path().join("keys/n1.pub"), "not hex").unwrap();
    let err = d.platform_key("n1").unwrap_err();
    assert_eq!(err.field().as_deref(), Some("node[0].platform_key_file"));
    assert_eq!(err.line(), Some(10));
    assert!(
        err.message()
            .ends_with("expected 66 hex characters, found 7"),
        "{err}"
    );
    std::fs::remove_file(project.path().join("keys/n1.pub")).unwrap();
    assert!(d
        .platform_key("n1")
        .unwrap_err()
        .message()
        .starts_with("cannot read platform key file"));
    assert_eq!(
        d.platform_key("zz").unwrap_err().help(),
        Some("valid nodes: n1, n2")
    );
}

#[test]
fn suggestions() {
    use super::suggest::{did_you_mean, distance as levenshtein};
    assert_eq!(
        levenshtein("pnog", "pong"),
        1,
        "a transposition is one edit"
    );
    assert_eq!(levenshtein("pnog", "ping"), 2);
    assert_eq!(levenshtein("", "abc"), 3);
    assert_eq!(levenshtein("kitten", "sitting"), 3);
    let valid = ["ping".to_owned(), "pong".to_owned(), "node1".to_owned()];
    assert_eq!(did_you_mean("pnog", &valid), Some("pong"));
    assert_eq!(did_you_mean("node", &valid), Some("node1"));
    assert_eq!(did_you_mean("xyz", &valid), None);
    assert_eq!(did_you_mean("p", &valid), Some("ping"));
}

#[test]
fn node_identity_pins_inline_or_by_file_and_their_errors() {
    let project = Project::new();
    let pin = "ab".repeat(32);
    let with = |fields: &str| {
        TOML.replacen(
            "platform_key_file = \"keys/n1.pub\"",
            &format!("platform_key_file = \"keys/n1.pub\"\n{fields}"),
            1,
        )
    };
    let d = project.load("toml", TOML).unwrap();
    assert_eq!(d.node("n1").unwrap().identity, None);
    let d = project
        .load("toml", &with(&format!("identity = \"{pin}\"")))
        .unwrap();
    assert_eq!(
        d.node("n1").unwrap().identity,
        Some(NodeIdentitySource::Inline(pin.parse().unwrap()))
    );
    let d = project
        .load("toml", &with("identity_file = \"keys/n1-identity.pub\""))
        .unwrap();
    assert_eq!(
        d.node("n1").unwrap().identity,
        Some(NodeIdentitySource::File(
            project.path().join("keys/n1-identity.pub")
        ))
    );
    for (fields, field, says) in [
        (
            "identity = \"abc\"",
            "node[0].identity",
            "expected 64 hex digits",
        ),
        (
            "identity = \"{pin}\"\nidentity_file = \"k\"",
            "node[0].identity_file",
            "both `identity` and `identity_file` are set",
        ),
        (
            "identity_file = \" \"",
            "node[0].identity_file",
            "empty path",
        ),
    ] {
        let fields = fields.replace("{pin}", &pin);
        let e = project.load("toml", &with(&fields)).unwrap_err();
        assert_eq!(e.field().as_deref(), Some(field), "{fields}: {e}");
        assert!(e.message().contains(says), "{fields}: {e}");
    }
    let e = project
        .load("toml", &with("identity = \"zz\""))
        .unwrap_err();
    assert!(
        e.help().unwrap_or_default().contains("node-identity.pub"),
        "{e}"
    );
}

#[test]
fn a_provider_key_fingerprint_pins_a_symmetric_node_and_is_refused_elsewhere() {
    let project = Project::new();
    let pin = "5a".repeat(32);
    let tz = |fields: &str| {
        TOML.replacen(
            "tee = \"sgx\"\nplatform_key_file = \"keys/n1.pub\"",
            &format!("tee = \"trustzone\"\n{fields}"),
            1,
        )
    };
    let d = project
        .load(
            "toml",
            &tz(&format!("provider_key_fingerprint = \"{pin}\"")),
        )
        .unwrap();
    assert_eq!(
        d.node("n1").unwrap().provider_key_fingerprint,
        Some([0x5a; 32])
    );
    assert_eq!(
        project
            .load("toml", &tz(""))
            .unwrap()
            .node("n1")
            .unwrap()
            .provider_key_fingerprint,
        None
    );
    let e = project
        .load("toml", &tz("provider_key_fingerprint = \"5a5a\""))
        .unwrap_err();
    assert_eq!(
        e.field().as_deref(),
        Some("node[0].provider_key_fingerprint"),
        "{e}"
    );
    assert!(e.message().contains("expected 64 hex digits"), "{e}");
    assert!(
        e.help().unwrap_or_default().contains("--fingerprint"),
        "{e}"
    );
    let on_sgx = TOML.replacen(
        "platform_key_file = \"keys/n1.pub\"",
        &format!("platform_key_file = \"keys/n1.pub\"\nprovider_key_fingerprint = \"{pin}\""),
        1,
    );
    let e = project.load("toml", &on_sgx).unwrap_err();
    assert_eq!(
        e.field().as_deref(),
        Some("node[0].provider_key_fingerprint"),
        "{e}"
    );
    assert!(
        e.message().contains("a `sgx` node has no provider key"),
        "{e}"
    );
}

#[test]
fn a_c_module_names_a_directory_of_c_files_instead_of_a_crate() {
    let project = Project::new();
    let c_dir = project.path().join("mods/pong-c");
    std::fs::create_dir_all(&c_dir).unwrap();
    let with = |module: &str| TOML.replacen("crate = \"mods/pong\"", module, 1);

    // No `.c` file yet: refused at the field, saying what it must hold.
    let err = project
        .load("toml", &with("c = \"mods/pong-c\""))
        .unwrap_err();
    assert_eq!(err.field().as_deref(), Some("module[1].c"));
    assert!(err.message().contains("holds no `.c` file"), "{err}");
    std::fs::write(c_dir.join("pong.c"), "").unwrap();
    let d = project.load("toml", &with("c = \"mods/pong-c\"")).unwrap();
    let pong = d.module("pong").unwrap();
    assert_eq!(pong.language, super::Language::C);
    assert!(pong.crate_dir.ends_with("mods/pong-c"));
    assert_eq!(d.module("ping").unwrap().language, super::Language::Rust);

    let both = with("crate = \"mods/pong\"\nc = \"mods/pong-c\"");
    let err = project.load("toml", &both).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("module[1].c"));
    assert!(err.message().contains("not both"), "{err}");
    let err = project.load("toml", &with("")).unwrap_err();
    assert!(err.message().contains("has no `crate` (or `c`)"), "{err}");
    let err = project
        .load("toml", &with("c = \"mods/gone\""))
        .unwrap_err();
    assert!(err.message().contains("C module directory"), "{err}");
}

#[test]
fn run_commands_are_read_and_an_empty_one_is_located() {
    let project = Project::new();
    let text = format!("{TOML}\n[[run]]\ncommand = [\"sh\", \"demo.sh\"]\n");
    let d = project.load("toml", &text).unwrap();
    assert_eq!(
        d.run,
        [RunStep {
            command: vec!["sh".into(), "demo.sh".into()]
        }]
    );
    let err = project
        .load("toml", &format!("{TOML}\n[[run]]\ncommand = []\n"))
        .unwrap_err();
    assert_eq!(err.field().as_deref(), Some("run[0].command"), "{err}");
    assert!(err.to_string().contains("no program to run"), "{err}");
    assert!(err.line().is_some(), "{err}");
}
