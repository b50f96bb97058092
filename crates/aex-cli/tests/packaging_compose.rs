//! `packaging/compose/` stays in step: its descriptor, `irrigation.toml`, is a valid
//! descriptor of the irrigation example's own application (same modules, devices,
//! connections and trigger), and it names the nodes `compose.yaml` starts, at their compose
//! addresses and the port of the image's configuration, with the TEE kinds and devices each
//! container is started with. (`packaging/check` runs a compose tool's schema check on
//! `compose.yaml`.)

use std::path::{Path, PathBuf};

use aex_deploy::descriptor::Descriptor;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn toml_file(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The modules of descriptor `doc` (in `dir`) with their crates as canonical paths.
fn modules(doc: &toml::Table, dir: &Path) -> Vec<toml::Value> {
    let mut modules = doc["module"].as_array().unwrap().clone();
    for m in &mut modules {
        let krate = dir
            .join(m["crate"].as_str().unwrap())
            .canonicalize()
            .unwrap();
        m["crate"] = toml::Value::String(krate.display().to_string());
    }
    modules
}

#[test]
fn the_compose_descriptor_is_the_example_on_the_compose_nodes() {
    let compose_dir = repo().join("packaging/compose");
    let example_dir = repo().join("examples/irrigation");
    let desc = toml_file(&compose_dir.join("irrigation.toml"));
    let example = toml_file(&example_dir.join("aex.toml"));

    // The example's application, unchanged.
    for key in ["application", "connection", "periodic"] {
        assert_eq!(
            desc[key], example[key],
            "`{key}` differs from the example's"
        );
    }
    assert_eq!(
        modules(&desc, &compose_dir),
        modules(&example, &example_dir)
    );
    let strip = |n: &toml::Value| {
        let mut n = n.as_table().unwrap().clone();
        for key in [
            "address",
            "identity_file",
            "provider_key_file",
            "platform_key_file",
        ] {
            n.remove(key);
        }
        n
    };
    let nodes = desc["node"].as_array().unwrap();
    let example_nodes = example["node"].as_array().unwrap();
    assert_eq!(
        nodes.iter().map(strip).collect::<Vec<_>>(),
        example_nodes.iter().map(strip).collect::<Vec<_>>(),
        "the same nodes: names, TEE kinds, devices"
    );
    // It is a valid descriptor (module crates found, keys named where each kind needs them).
    Descriptor::load(&compose_dir.join("irrigation.toml")).unwrap_or_else(|e| panic!("{e}"));

    // The nodes compose.yaml starts, where the descriptor says.
    let text = std::fs::read_to_string(compose_dir.join("compose.yaml")).unwrap();
    let compose: serde_json::Value = serde_saphyr::from_str(&text).expect("compose.yaml parses");
    let node_config = toml_file(&repo().join("packaging/node.toml"));
    let port = node_config["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let services = compose["services"].as_object().unwrap();
    assert_eq!(services.len(), nodes.len(), "one service per node");
    for node in nodes {
        let name = node["name"].as_str().unwrap();
        let service = &services[name];
        assert_eq!(service["image"], "localhost/aex-node:latest", "{name}");
        let ip = service["networks"]["farm"]["ipv4_address"]
            .as_str()
            .unwrap();
        assert_eq!(
            node["address"].as_str().unwrap(),
            format!("{ip}:{port}"),
            "{name}"
        );
        let args: Vec<&str> = service["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let tee = format!("--tee={}", node["tee"].as_str().unwrap());
        assert!(
            args.contains(&format!("--name={name}").as_str()) && args.contains(&tee.as_str()),
            "{name}: {args:?}"
        );
        let devices: Vec<String> = args
            .iter()
            .filter_map(|a| a.strip_prefix("--device="))
            .map(str::to_owned)
            .collect();
        let declared: Vec<String> = node
            .get("devices")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(devices, declared, "{name}: the devices it is started with");
        let volumes: Vec<&str> = service["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            volumes.contains(&format!("{name}-data:/var/lib/aex").as_str())
                && volumes.contains(&"./deployers:/etc/aex/deployers:ro"),
            "{name}: {volumes:?}"
        );
    }
}
