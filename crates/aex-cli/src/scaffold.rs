//! `aex new`: a new application outside the repository, ready for `aex up`.
//!
//! A scaffold is one Cargo workspace with two module crates, a descriptor and a README. The
//! modules' sources are the examples' own (`examples/ping-pong`, `examples/thermostat`),
//! compiled into `aex` here, so a scaffold runs the code the examples' tests run. The
//! workspace depends on the SDK by version (`aex-sdk`, whose library is `aex`), and, when an
//! aex checkout is at hand, overrides it with that checkout (`[patch.crates-io]`) and seeds
//! `Cargo.lock` with the checkout's, so the scaffold builds the SDK and dependencies the
//! checkout was tested with. The checkout at hand is the one this `aex` was built from, if it
//! is still there, or the one `--sdk` names.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The SDK version scaffolds depend on: the workspace's, which the SDK crates share.
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The checkout this `aex` was built from (this crate's manifest is `crates/aex-cli/` in it).
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// What a scaffold starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// Ping measures round trips of authentic events through pong.
    PingPong,
    /// A sensor sampled by its node every second drives a heater.
    SensorActuator,
}

/// A module crate of a template.
struct ModuleCrate {
    name: &'static str,
    main: &'static str,
    serde: bool,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::PingPong => "ping-pong",
            Template::SensorActuator => "sensor-actuator",
        }
    }

    fn descriptor(self) -> &'static str {
        match self {
            Template::PingPong => include_str!("../templates/ping-pong/aex.toml"),
            Template::SensorActuator => include_str!("../templates/sensor-actuator/aex.toml"),
        }
    }

    fn modules(self) -> [ModuleCrate; 2] {
        match self {
            Template::PingPong => [
                ModuleCrate {
                    name: "ping",
                    main: include_str!("../../../examples/ping-pong/ping/src/main.rs"),
                    serde: true,
                },
                ModuleCrate {
                    name: "pong",
                    main: include_str!("../../../examples/ping-pong/pong/src/main.rs"),
                    serde: false,
                },
            ],
            Template::SensorActuator => [
                ModuleCrate {
                    name: "sensor",
                    main: include_str!("../../../examples/thermostat/sensor/src/main.rs"),
                    serde: true,
                },
                ModuleCrate {
                    name: "heater",
                    main: include_str!("../../../examples/thermostat/heater/src/main.rs"),
                    serde: true,
                },
            ],
        }
    }
}

/// Where a scaffold gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sdk {
    /// The aex checkout at this path (its root), through `[patch.crates-io]`.
    Checkout(PathBuf),
    /// crates.io only.
    Registry,
}

impl Sdk {
    /// The checkout `explicit` names (which must be one), else the one this `aex` was built
    /// from if it is still there, else crates.io.
    pub fn find(explicit: Option<&Path>) -> Result<Sdk> {
        if let Some(dir) = explicit {
            return match checkout(dir) {
                Some(root) => Ok(Sdk::Checkout(root)),
                None => bail!(
                    "{} is not an aex checkout (no crates/aex/Cargo.toml of package `aex-sdk` in it)",
                    dir.display()
                ),
            };
        }
        Ok(checkout(Path::new(BUILT_FROM)).map_or(Sdk::Registry, Sdk::Checkout))
    }
}

/// The root of the aex checkout at `dir`, absolute, if it is one.
fn checkout(dir: &Path) -> Option<PathBuf> {
    let root = dir.canonicalize().ok()?;
    let manifest = fs::read_to_string(root.join("crates/aex/Cargo.toml")).ok()?;
    manifest.contains("name = \"aex-sdk\"").then_some(root)
}

/// Writes a new application named `name` into the directory `dir` (created; it must not exist
/// or be empty); returns the files written.
pub fn create(dir: &Path, name: &str, template: Template, sdk: &Sdk) -> Result<Vec<PathBuf>> {
    if !valid_name(name) {
        bail!("invalid application name `{name}`: names are 1 to 64 letters, digits, `_` or `-`");
    }
    if dir.exists() && fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "{} already exists and is not an empty directory: `aex new` writes a new application only",
            dir.display()
        );
    }
    let [port1, port2] = free_ports()?;
    let modules = template.modules();
    let fill = |text: &str| {
        text.replace("{name}", name)
            .replace("{port1}", &port1.to_string())
            .replace("{port2}", &port2.to_string())
            .replace("{template}", template.name())
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        ("aex.toml".into(), fill(template.descriptor())),
        ("Cargo.toml".into(), workspace_manifest(&modules, sdk)),
        ("README.md".into(), fill(&readme(&modules, sdk))),
        (".gitignore".into(), "/target\n/.aex\n".into()),
    ];
    for m in &modules {
        files.push((format!("{}/Cargo.toml", m.name).into(), module_manifest(m)));
        files.push((format!("{}/src/main.rs", m.name).into(), m.main.to_owned()));
    }
    if let Sdk::Checkout(root) = sdk {
        // The versions the checkout was tested with; cargo drops what this workspace does not
        // use, and resolves anything missing.
        if let Ok(lock) = fs::read_to_string(root.join("Cargo.lock")) {
            files.push(("Cargo.lock".into(), lock));
        }
    }
    let mut written = vec![];
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The workspace's `Cargo.toml`.
fn workspace_manifest(modules: &[ModuleCrate; 2], sdk: &Sdk) -> String {
    let members = modules
        .iter()
        .map(|m| format!("\"{}\"", m.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "[workspace]\nresolver = \"2\"\nmembers = [{members}]\n\n\
         [workspace.dependencies]\n\
         # The aex SDK, published as `aex-sdk`; its library is `aex`.\n\
         aex = {{ package = \"aex-sdk\", version = \"{SDK_VERSION}\" }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n"
    );
    if let Sdk::Checkout(root) = sdk {
        text.push_str(&format!(
            "\n# The SDK from the aex checkout `aex new` found: remove this table to build \
             against the\n# crates.io release.\n[patch.crates-io]\n\
             aex-sdk = {{ path = \"{}\" }}\n",
            root.join("crates/aex").display()
        ));
    }
    text
}

/// A module crate's `Cargo.toml`.
fn module_manifest(m: &ModuleCrate) -> String {
    let serde = if m.serde {
        "serde.workspace = true\n"
    } else {
        ""
    };
    format!(
        "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\naex.workspace = true\n{serde}",
        m.name
    )
}

/// The README, its placeholders left for [`create`] to fill.
fn readme(modules: &[ModuleCrate; 2], sdk: &Sdk) -> String {
    let row = |m: &ModuleCrate| {
        let first = m
            .main
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("//! "))
            .unwrap_or("");
        format!("`{}/` | module `{}`: {first}", m.name, m.name)
    };
    let sdk_note = match sdk {
        Sdk::Checkout(root) => format!(
            "It is built from the aex checkout at `{}` (`[patch.crates-io]` in `Cargo.toml`; \
             remove that table to use the crates.io release).",
            root.display()
        ),
        Sdk::Registry => "It comes from crates.io.".to_owned(),
    };
    include_str!("../templates/README.md")
        .replace("{module1_row}", &row(&modules[0]))
        .replace("{module2_row}", &row(&modules[1]))
        .replace("{sdk_note}", &sdk_note)
}

/// Two loopback ports free now, for the scaffold's nodes.
fn free_ports() -> Result<[u16; 2]> {
    let bind = || TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port");
    // Both held at once, so they differ.
    let (a, b) = (bind()?, bind()?);
    Ok([a.local_addr()?.port(), b.local_addr()?.port()])
}

/// Whether `name` is a valid application name (`[A-Za-z0-9_-]{1,64}`, as the descriptor's).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
