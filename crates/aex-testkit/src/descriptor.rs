//! Descriptors for the tests: the ping-pong example copied with other ports, and generated
//! variants for clusters of test-started nodes.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::paths;

/// Copies the example's `aex.toml` to `dest_dir`, with its two nodes moved to `node1` and
/// `node2` and its module crates given as absolute paths. Everything else (connections,
/// `[[up]]` steps) is the example's own.
pub fn copy_example(dest_dir: &Path, node1: SocketAddr, node2: SocketAddr) -> PathBuf {
    let text = std::fs::read_to_string(paths::example("ping-pong").join("aex.toml"))
        .expect("read example");
    let mut doc: toml::Table = toml::from_str(&text).expect("example descriptor is TOML");
    let nodes = doc["node"].as_array_mut().expect("[[node]] array");
    assert_eq!(nodes.len(), 2, "the example has two nodes");
    for (node, addr) in nodes.iter_mut().zip([node1, node2]) {
        node["address"] = toml::Value::String(addr.to_string());
    }
    for module in doc["module"].as_array_mut().expect("[[module]] array") {
        let name = module["crate"]
            .as_str()
            .expect("crate is a string")
            .to_string();
        module["crate"] = toml::Value::String(paths::ping_pong_crate(&name).display().to_string());
    }
    let path = dest_dir.join("aex.toml");
    std::fs::write(&path, toml::to_string(&doc).expect("serialize descriptor")).unwrap();
    path
}

/// The `aex.toml` of example `example` (a directory under `examples/`) as a TOML table, with
/// its nodes moved to `nodes` (in the descriptor's order) and its module crates given as
/// absolute paths, for the caller to adjust further and write with [`write_toml`].
pub fn example_descriptor(example: &str, nodes: &[SocketAddr]) -> toml::Table {
    let dir = paths::example(example);
    let text = std::fs::read_to_string(dir.join("aex.toml")).expect("read example");
    let mut doc: toml::Table = toml::from_str(&text).expect("example descriptor is TOML");
    let node_array = doc["node"].as_array_mut().expect("[[node]] array");
    assert_eq!(
        node_array.len(),
        nodes.len(),
        "nodes of example `{example}`"
    );
    for (node, addr) in node_array.iter_mut().zip(nodes) {
        node["address"] = toml::Value::String(addr.to_string());
    }
    for module in doc["module"].as_array_mut().expect("[[module]] array") {
        // A Rust module's crate, or a C module's directory.
        let field = if module.get("c").is_some() {
            "c"
        } else {
            "crate"
        };
        let rel = module[field]
            .as_str()
            .expect("the module's path is a string");
        module[field] = toml::Value::String(dir.join(rel).display().to_string());
    }
    doc
}

/// Writes `doc` as `dest_dir/aex.toml`.
pub fn write_toml(dest_dir: &Path, doc: &toml::Table) -> PathBuf {
    let path = dest_dir.join("aex.toml");
    std::fs::write(&path, toml::to_string(doc).expect("serialize descriptor")).unwrap();
    path
}

/// The application name of [`PingPong`] descriptors.
pub const APP: &str = "ping-pong-test";

/// How a generated descriptor names a node's trusted platform key.
#[derive(Debug, Clone)]
pub enum PlatformKey {
    /// `platform_key_file = "<path>"`.
    File(PathBuf),
    /// `platform_key = "<hex>"`.
    Inline(String),
}

/// How a generated descriptor pins a node's identity key.
#[derive(Debug, Clone)]
pub enum IdentityPin {
    /// `identity_file = "<path>"` (a node's `node-identity.pub`).
    File(PathBuf),
    /// `identity = "<hex>"`.
    Inline(String),
}

/// A ping-pong descriptor for nodes the test started itself.
///
/// Connections: `ping-to-pong`, `pong-to-ping`, the direct `kick` (deployer → ping.kick) and
/// `stats` (deployer → ping.report), and with `poke` also the direct `poke` (deployer →
/// pong.ping), which gives node2 a second route to pong's input. No `[[up]]` steps.
#[derive(Debug, Clone)]
pub struct PingPong {
    /// `node1` (runs ping) and `node2` (runs pong): address and trusted platform key.
    pub nodes: [(SocketAddr, PlatformKey); 2],
    /// Their pinned identity keys (none: the deployer looks in `.aex/nodes/`).
    pub identities: [Option<IdentityPin>; 2],
    /// Whether to add the direct connection `poke`.
    pub poke: bool,
    /// Whether pong is the C pong (examples/ping-pong-c), not the Rust one.
    pub c_pong: bool,
}

impl PingPong {
    /// The descriptor text.
    pub fn render(&self) -> String {
        let mut s = format!("[application]\nname = \"{APP}\"\n");
        for (i, (addr, key)) in self.nodes.iter().enumerate() {
            let key = match key {
                PlatformKey::File(p) => {
                    format!("platform_key_file = {:?}", p.display().to_string())
                }
                PlatformKey::Inline(hex) => format!("platform_key = {hex:?}"),
            };
            let pin = match &self.identities[i] {
                Some(IdentityPin::File(p)) => {
                    format!("identity_file = {:?}\n", p.display().to_string())
                }
                Some(IdentityPin::Inline(hex)) => format!("identity = {hex:?}\n"),
                None => String::new(),
            };
            write!(
                s,
                "\n[[node]]\nname = \"node{}\"\naddress = \"{addr}\"\ntee = \"sgx\"\nsimulation = true\n{key}\n{pin}",
                i + 1
            )
            .unwrap();
        }
        for (name, node) in [("ping", "node1"), ("pong", "node2")] {
            let source = if name == "pong" && self.c_pong {
                let dir = paths::example("ping-pong-c").join("pong");
                format!("c = {:?}", dir.display().to_string())
            } else {
                format!(
                    "crate = {:?}",
                    paths::ping_pong_crate(name).display().to_string()
                )
            };
            write!(
                s,
                "\n[[module]]\nname = \"{name}\"\n{source}\nnode = \"{node}\"\n"
            )
            .unwrap();
        }
        let mut conns = vec![
            ("ping-to-pong", "ping.ping", "pong.ping", "aes-gcm"),
            (
                "pong-to-ping",
                "pong.pong",
                "ping.pong",
                "chacha20-poly1305",
            ),
            ("kick", "deployer", "ping.kick", "aes-gcm"),
            ("stats", "deployer", "ping.report", "aes-gcm"),
        ];
        if self.poke {
            conns.push(("poke", "deployer", "pong.ping", "aes-gcm"));
        }
        for (name, from, to, alg) in conns {
            write!(
                s,
                "\n[[connection]]\nname = \"{name}\"\nfrom = \"{from}\"\nto = \"{to}\"\nalgorithm = \"{alg}\"\n"
            )
            .unwrap();
        }
        s
    }
}

/// The application name of [`hoard`] descriptors.
pub const HOARD_APP: &str = "hoard-test";

/// A descriptor of the test kit's `hoard` module (a state of any size, moved by its own
/// `#[save]`/`#[restore]`) on one `sgx` node `node1` at `addr`, with the direct connection
/// `feed` (deployer → `hoard.add`).
pub fn hoard(addr: SocketAddr, platform_key: &Path, identity: &Path) -> String {
    hoard_of("hoard", addr, platform_key, identity)
}

/// [`hoard`] with module `hoard` built from the test kit's crate `krate` (`hoard`, or `vault`:
/// the same module, persistent).
pub fn hoard_of(krate: &str, addr: SocketAddr, platform_key: &Path, identity: &Path) -> String {
    format!(
        "[application]\nname = \"{HOARD_APP}\"\n\n[[node]]\nname = \"node1\"\naddress = \"{addr}\"\ntee = \"sgx\"\nsimulation = true\nplatform_key_file = {:?}\nidentity_file = {:?}\n\n[[module]]\nname = \"hoard\"\ncrate = {:?}\nnode = \"node1\"\n\n[[connection]]\nname = \"feed\"\nfrom = \"deployer\"\nto = \"hoard.add\"\n",
        platform_key.display().to_string(),
        identity.display().to_string(),
        paths::testkit_module(krate).display().to_string()
    )
}

/// A descriptor of the test kit's persistent `tally` module (`crates/aex-testkit/modules/tally`):
/// the simulated `sgx` nodes `nodes` (name and `[[node]]` section, as [`sgx_node`] writes
/// them), one instance per `(module, node)` of `modules`, and the direct connection `feed`
/// (deployer → the first module's `add`), and `relay` (the first module's `receipt` → the
/// second's `add`) when `relay` is set.
pub fn tally(nodes: &[String], modules: &[(&str, &str)], relay: bool) -> String {
    let krate = paths::testkit_module("tally").display().to_string();
    tallies(&format!("crate = {krate:?}"), nodes, modules, relay)
}

/// [`tally`] with the test kit's C tally (`crates/aex-testkit/modules/ctally`, the same ports
/// and more: a handler `peek`, a request `ask`, a deadline on `add`).
pub fn tally_in_c(nodes: &[String], modules: &[(&str, &str)], relay: bool) -> String {
    let dir = paths::testkit_module("ctally").display().to_string();
    tallies(&format!("c = {dir:?}"), nodes, modules, relay)
}

fn tallies(source: &str, nodes: &[String], modules: &[(&str, &str)], relay: bool) -> String {
    let mut text = "[application]\nname = \"tally-test\"\n".to_owned();
    for node in nodes {
        text.push_str(node);
    }
    for (name, node) in modules {
        text.push_str(&format!(
            "\n[[module]]\nname = \"{name}\"\n{source}\nnode = \"{node}\"\n"
        ));
    }
    if let Some((first, _)) = modules.first() {
        text.push_str(&format!(
            "\n[[connection]]\nname = \"feed\"\nfrom = \"deployer\"\nto = \"{first}.add\"\n"
        ));
        if let (true, Some((second, _))) = (relay, modules.get(1)) {
            text.push_str(&format!(
                "\n[[connection]]\nname = \"relay\"\nfrom = \"{first}.receipt\"\nto = \"{second}.add\"\n"
            ));
        }
    }
    text
}

/// A simulated `sgx` `[[node]]` section for a node the kit started: its name, address, and
/// the files holding its platform key and its link identity (as [`crate::node::NodeProcess`]
/// gives them).
pub fn sgx_node(name: &str, addr: SocketAddr, platform_key: &Path, identity: &Path) -> String {
    format!(
        "\n[[node]]\nname = \"{name}\"\naddress = \"{addr}\"\ntee = \"sgx\"\nsimulation = true\nplatform_key_file = {:?}\nidentity_file = {:?}\n",
        platform_key.display().to_string(),
        identity.display().to_string()
    )
}
