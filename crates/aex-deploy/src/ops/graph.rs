//! `aex graph`: the application as a Graphviz DOT picture.
//!
//! Nodes are clusters labelled with their TEE kind, modules are boxes inside them, and
//! connections are edges labelled `output → input` with their algorithm. Direct connections
//! start at a `deployer` ellipse. With a [`AppStatus`] the picture also shows attestation and
//! live counters.

use std::fmt::Write;

use crate::app::App;
use crate::descriptor::{Descriptor, From};
use crate::ops::status::{status, AppStatus};

/// The application as DOT: its descriptor, with the live status of its nodes unless
/// `offline` (a status that cannot be had leaves the picture without it).
pub fn graph(app: &mut App, offline: bool) -> String {
    let live = if offline { None } else { status(app).ok() };
    dot(app.descriptor(), live.as_ref())
}

/// Renders the descriptor (and, if given, live status) as DOT.
pub fn dot(desc: &Descriptor, status: Option<&AppStatus>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&desc.application));
    out.push_str("  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    let direct = desc
        .connections
        .iter()
        .any(|c| matches!(c.from, From::Deployer));
    if direct {
        out.push_str("  deployer [shape=ellipse, style=dashed, label=\"deployer\\n(owner)\"];\n");
    }
    for (i, node) in desc.nodes.iter().enumerate() {
        let reach = status
            .and_then(|s| s.nodes.iter().find(|n| n.name == node.name))
            .map(|n| if n.reachable { "" } else { ", unreachable" })
            .unwrap_or("");
        let sim = if node.simulation { ", simulated" } else { "" };
        let _ = writeln!(out, "  subgraph cluster_{i} {{");
        let _ = writeln!(
            out,
            "    label={};\n    style=rounded;",
            quote(&format!(
                "{} ({}{}{})\\n{}",
                node.name,
                node.tee.name(),
                sim,
                reach,
                node.address
            ))
        );
        for m in desc.modules.iter().filter(|m| m.node == node.name) {
            let view = status.and_then(|s| s.modules.iter().find(|v| v.name == m.name));
            let (label, color) = match view {
                Some(v) if v.attested => (
                    format!(
                        "{}\\n{}…\\nattested",
                        m.name,
                        &v.measurement[..v.measurement.len().min(12)]
                    ),
                    "darkgreen",
                ),
                Some(v) if v.running => (format!("{}\\nnot attested", m.name), "orange"),
                Some(_) => (format!("{}\\nnot running", m.name), "red"),
                None => (m.name.clone(), "black"),
            };
            let _ = writeln!(
                out,
                "    {} [shape=box, color={color}, label={}];",
                quote(&m.name),
                quote(&label)
            );
        }
        out.push_str("  }\n");
    }
    for c in &desc.connections {
        let (src, port) = match &c.from {
            From::Deployer => ("deployer".to_string(), "deployer".to_string()),
            From::Port(p) => (p.module.clone(), p.port.clone()),
        };
        let counts = status
            .and_then(|s| s.connections.iter().find(|v| v.name == c.name))
            .map(|v| {
                format!(
                    "\\n{} sent, {} received, {} rejected",
                    v.sent, v.received, v.rejected
                )
            })
            .unwrap_or_default();
        let label = format!(
            "{} → {}\\n{}{}",
            port,
            c.to.port,
            c.algorithm.name(),
            counts
        );
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            quote(&src),
            quote(&c.to.module),
            quote(&label)
        );
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    // DOT string: escape quotes; `\n` sequences in labels are kept as line breaks.
    format!("\"{}\"", s.replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_pong_graph_has_clusters_modules_and_edges() {
        let dir = tempfile::tempdir().unwrap();
        for m in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(m)).unwrap();
            std::fs::write(dir.path().join(m).join("Cargo.toml"), "").unwrap();
        }
        let text = r#"
[application]
name = "demo"
[[node]]
name = "n1"
address = "127.0.0.1:1"
tee = "sgx"
[[module]]
name = "a"
crate = "a"
node = "n1"
[[module]]
name = "b"
crate = "b"
node = "n1"
[[connection]]
from = "a.out"
to = "b.in"
[[connection]]
from = "deployer"
to = "a.kick"
"#;
        let desc = Descriptor::from_text(&dir.path().join("aex.toml"), text.into()).unwrap();
        let g = dot(&desc, None);
        assert!(g.starts_with("digraph \"demo\" {"), "{g}");
        assert!(g.contains("subgraph cluster_0"));
        assert!(
            g.contains("\"a\" -> \"b\" [label=\"out → in\\naes-gcm\"];"),
            "{g}"
        );
        assert!(g.contains("\"deployer\" -> \"a\""));
    }
}
