//! Node configuration: what an operator writes in `node.toml`.
//!
//! The file names the node, where it listens, where it keeps its data (platform key, module
//! binaries and logs) and which TEE backend it offers. Parsing reports the file and the field
//! at fault and says what would be valid, because operators read these errors, not programmers.
//!
//! It also says which deployers the node admits (`admit`, `admit_file`) or that it admits any
//! (`open`); a node that admits nobody refuses to start.
//!
//! It names the peer nodes whose links it admits besides those its routes name (`peers`: node
//! identity keys, the content of their `node-identity.pub`).
//!
//! It declares the node's devices (`devices`): the sensors and actuators its TEE layer
//! grants, each exclusively, to driver modules (see `aex_tee::devices`).
//!
//! Its optional `[timeouts]` table changes how long the node waits for deployers, peer nodes
//! and modules (see [`Timeouts`]), e.g. `hello = "250ms"`; its optional `[limits]` table how
//! much of the node connections, peer links, modules and deployers may take (see [`Limits`]),
//! e.g. `max_connections = 4096`, `module_queue = "16MiB"`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aex_proto::{DeployerKey, NodeKey};
use aex_tee::devices::{DeviceSpec, DeviceSpecError};
use aex_tee::TeeKind;
use serde::Deserialize;

use crate::admission::read_admit_file;
use crate::error::ConfigError;
use crate::limits::Limits;
use crate::timeouts::{TimeoutError, Timeouts};

/// How a node agent runs.
///
/// In `node.toml` every field is a top-level key, except `timeouts` and `limits`: a
/// `[timeouts]` table of human durations keyed by timeout name (`hello = "250ms"`, `reply =
/// "30s"`; see [`Timeouts`] for the names), and a `[limits]` table of counts and byte sizes
/// keyed by limit name (`max_connections = 4096`, `peer_queue = "128MiB"`; see [`Limits`] for
/// the names and defaults), each optional, unknown names refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's name, reported in status (informational: nothing trusts it).
    pub name: String,
    /// Where the node listens for deployers and peer nodes (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directory for the platform key, `node.addr`, `node.pid`, `modules/` and the
    /// physical-world socket `devices.sock`.
    pub data_dir: PathBuf,
    /// The TEE backend the node offers.
    pub tee: TeeKind,
    /// Whether a deployer may stop the node with a `Shutdown` request (local development).
    pub allow_remote_shutdown: bool,
    /// Deployer keys admitted to manage applications on this node.
    pub admit: Vec<DeployerKey>,
    /// Admit any deployer (local development only; logged loudly). Deployers stay isolated
    /// from each other: each manages only its own namespaces.
    pub open: bool,
    /// Identity keys of peer nodes whose links are admitted even when no route names them as a
    /// source (routes admit the nodes they name by themselves).
    pub peers: Vec<NodeKey>,
    /// The node's devices (names unique), granted exclusively to driver modules.
    pub devices: Vec<DeviceSpec>,
    /// How long the node waits for deployers, peer nodes and modules (`[timeouts]`).
    pub timeouts: Timeouts,
    /// How much of the node connections, peer links, modules and deployers may take
    /// (`[limits]`).
    pub limits: Limits,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere: unauthenticated, so a
    /// loopback or management address (port 0 picks a free port, written to `metrics.addr`).
    pub metrics: Option<SocketAddr>,
}

/// The file as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    listen: String,
    data_dir: PathBuf,
    tee: String,
    #[serde(default)]
    allow_remote_shutdown: bool,
    /// Removed (symmetric kinds derive one provider key per deployer); kept to say so.
    vendor_id: Option<toml::Value>,
    #[serde(default)]
    admit: Vec<String>,
    admit_file: Option<PathBuf>,
    #[serde(default)]
    open: bool,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    timeouts: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: BTreeMap<String, toml::Value>,
    metrics: Option<String>,
}

impl NodeConfig {
    /// Reads and validates a TOML configuration file.
    ///
    /// Fields: `name`, `listen` (`ip:port`), `data_dir` (relative paths are resolved against the
    /// file's directory), `tee` (e.g. `"sgx"`), and optionally `allow_remote_shutdown`,
    /// `admit` (deployer keys in hex), `admit_file`, `metrics` (`ip:port`) (one key per line, resolved like
    /// `data_dir`), `open`, `peers` (node identity keys in hex), `devices` (e.g.
    /// `["button=digital_in", "valve=digital_out",
    /// "soil=analog_in:100@35"]`), a `[timeouts]` table (e.g. `hello = "250ms"`) and a
    /// `[limits]` table (e.g. `max_connections = 4096`).
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        Self::from_toml(&text, path, base)
    }

    /// Parses configuration text; `path` is used in errors, `base` resolves a relative
    /// `data_dir`.
    fn from_toml(text: &str, path: &Path, base: &Path) -> Result<NodeConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let field = |field: &str, message: String| ConfigError::Field {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        if raw.name.trim().is_empty() {
            return Err(field("name", "must not be empty".into()));
        }
        let listen = raw.listen.parse::<SocketAddr>().map_err(|_| {
            field(
                "listen",
                format!(
                    "`{}` is not an `ip:port` address (e.g. \"127.0.0.1:7700\")",
                    raw.listen
                ),
            )
        })?;
        if raw.data_dir.as_os_str().is_empty() {
            return Err(field("data_dir", "must not be empty".into()));
        }
        let data_dir = if raw.data_dir.is_relative() {
            base.join(&raw.data_dir)
        } else {
            raw.data_dir
        };
        let tee = TeeKind::from_name(&raw.tee).map_err(|e| field("tee", e.to_string()))?;
        if raw.vendor_id.is_some() {
            return Err(field(
                "vendor_id",
                "no longer exists: trustzone and sancus nodes derive one provider key per \
                 deployer identity; remove the field and hand each deployer its own key with \
                 `aex node provider-key --data-dir DIR --tee KIND --deployer KEY`"
                    .into(),
            ));
        }
        let mut admit = raw
            .admit
            .iter()
            .map(|k| k.parse::<DeployerKey>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| field("admit", e.to_string()))?;
        if let Some(file) = raw.admit_file {
            admit.extend(read_admit_file(&base.join(file))?);
        }
        let peers = raw
            .peers
            .iter()
            .map(|k| k.parse::<NodeKey>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| field("peers", e.to_string()))?;
        let metrics = raw
            .metrics
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    field(
                        "metrics",
                        format!("`{text}` is not an `ip:port` address (e.g. \"127.0.0.1:9464\")"),
                    )
                })
            })
            .transpose()?;
        let devices = parse_devices(&raw.devices).map_err(|e| field("devices", e.to_string()))?;
        let timeouts = parse_timeouts(&raw.timeouts).map_err(|(f, e)| field(&f, e))?;
        let limits = parse_limits(&raw.limits).map_err(|(f, e)| field(&f, e))?;
        Ok(NodeConfig {
            name: raw.name,
            listen,
            data_dir,
            tee,
            allow_remote_shutdown: raw.allow_remote_shutdown,
            admit,
            open: raw.open,
            peers,
            devices,
            timeouts,
            limits,
            metrics,
        })
    }
}

/// Parses device declarations (`name=kind[@initial]`), refusing a repeated name.
fn parse_devices<S: AsRef<str>>(texts: &[S]) -> Result<Vec<DeviceSpec>, DeviceSpecError> {
    let mut devices: Vec<DeviceSpec> = Vec::with_capacity(texts.len());
    for text in texts {
        let spec = DeviceSpec::parse(text.as_ref())?;
        if devices.iter().any(|d| d.name == spec.name) {
            return Err(DeviceSpecError::Twice { device: spec.name });
        }
        devices.push(spec);
    }
    Ok(devices)
}

/// Reads a `[timeouts]` table over the defaults; an error names the field at fault
/// (`timeouts` or `timeouts.NAME`).
fn parse_timeouts(table: &BTreeMap<String, toml::Value>) -> Result<Timeouts, (String, String)> {
    let mut timeouts = Timeouts::default();
    for (name, value) in table {
        let at = || format!("timeouts.{name}");
        if !Timeouts::names().contains(&name.as_str()) {
            let e = TimeoutError::Unknown { name: name.clone() };
            return Err(("timeouts".into(), e.to_string()));
        }
        let Some(text) = value.as_str() else {
            return Err((
                at(),
                format!("write the duration as a string with a unit, e.g. `{name} = \"10s\"`"),
            ));
        };
        let value = Timeouts::parse_duration(text).map_err(|e| (at(), e.to_string()))?;
        timeouts
            .set(name, value)
            .map_err(|e| (at(), e.to_string()))?;
    }
    timeouts
        .check()
        .map_err(|e| ("timeouts".into(), e.to_string()))?;
    Ok(timeouts)
}

/// Reads a `[limits]` table over the defaults; an error names the field at fault (`limits` or
/// `limits.NAME`). Counts are integers; byte sizes integers (bytes) or strings with a unit.
fn parse_limits(table: &BTreeMap<String, toml::Value>) -> Result<Limits, (String, String)> {
    let mut limits = Limits::default();
    for (name, value) in table {
        let at = || format!("limits.{name}");
        if !Limits::names().contains(&name.as_str()) {
            let e = crate::limits::LimitError::Unknown { name: name.clone() };
            return Err(("limits".into(), e.to_string()));
        }
        let value = match value {
            toml::Value::Integer(n) => u64::try_from(*n)
                .map_err(|_| (at(), format!("`{name}` must be more than zero")))?,
            toml::Value::String(text) => {
                Limits::parse_value(name, text).map_err(|e| (at(), e.to_string()))?
            }
            _ => {
                return Err((
                    at(),
                    format!("write a number (e.g. `{name} = 4096`) or a size with a unit as a string (e.g. `{name} = \"16MiB\"`)"),
                ))
            }
        };
        limits.set(name, value).map_err(|e| (at(), e.to_string()))?;
    }
    limits
        .check()
        .map_err(|e| ("limits".into(), e.to_string()))?;
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::from_toml(text, Path::new("node.toml"), Path::new("/etc/aex"))
    }

    #[test]
    fn valid_file_parses() {
        let c = parse(
            "name = \"edge-1\"\nlisten = \"127.0.0.1:7700\"\ndata_dir = \"data\"\ntee = \"sgx\"\n",
        )
        .unwrap();
        assert_eq!(c.name, "edge-1");
        assert_eq!(c.listen, "127.0.0.1:7700".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/etc/aex/data"));
        assert_eq!(c.tee, TeeKind::Sgx);
        assert!(!c.allow_remote_shutdown);
    }

    #[test]
    fn absolute_data_dir_and_shutdown_flag() {
        let c = parse(
            "name = \"n\"\nlisten = \"[::1]:0\"\ndata_dir = \"/var/lib/aex\"\ntee = \"sgx\"\nallow_remote_shutdown = true\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/aex"));
        assert!(c.allow_remote_shutdown);
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = parse("name = \"n\"\nlisten = \"localhost\"\ndata_dir = \"d\"\ntee = \"sgx\"\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("node.toml") && msg.contains("`listen`"),
            "{msg}"
        );

        let e = parse("name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"tdx\"\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`tee`") && msg.contains("tdx") && msg.contains("valid: sgx"),
            "{msg}"
        );

        let e = parse("name = \"n\"\nlisten = \"127.0.0.1:1\"\ntee = \"sgx\"\n").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }));
        assert!(e.to_string().contains("data_dir"), "{e}");

        let e = parse(
            "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nport = 1\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");

        let e = parse("name = \"\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("`name`"), "{e}");

        // The vendor id of older nodes: what replaced it.
        let e = parse(
            "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sancus\"\nvendor_id = 1\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("node.toml")
                && msg.contains("`vendor_id`")
                && msg.contains("one provider key per deployer identity")
                && msg.contains("aex node provider-key"),
            "{msg}"
        );
    }

    #[test]
    fn admitted_keys_and_open_mode() {
        let key = "ab".repeat(32);
        let c = parse(&format!(
            "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nadmit = [\"{key}\"]\n"
        ))
        .unwrap();
        assert_eq!(c.admit, vec![key.parse().unwrap()]);
        assert!(!c.open);
        let c = parse("name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nopen = true\n")
            .unwrap();
        assert!(c.open && c.admit.is_empty());
        let e = parse("name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nadmit = [\"x\"]\n")
            .unwrap_err();
        assert!(e.to_string().contains("`admit`"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admit"), format!("# ops\n{key}\n")).unwrap();
        let c = NodeConfig::from_toml(
            "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nadmit_file = \"admit\"\n",
            Path::new("node.toml"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.admit, vec![key.parse().unwrap()]);
    }

    #[test]
    fn peers_parse_and_refuse_with_file_and_field() {
        let head = "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nopen = true\n";
        assert!(parse(head).unwrap().peers.is_empty());
        let key = "cd".repeat(32);
        let c = parse(&format!("{head}peers = [\"{key}\"]\n")).unwrap();
        assert_eq!(c.peers, vec![key.parse().unwrap()]);
        let e = parse(&format!("{head}peers = [\"abc\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node.toml") && e.contains("`peers`") && e.contains("node-identity.pub"),
            "{e}"
        );
    }

    #[test]
    fn devices_parse_and_refuse_with_file_and_field() {
        let head = "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nopen = true\n";
        let c = parse(head).unwrap();
        assert!(c.devices.is_empty());
        let c = parse(&format!(
            "{head}devices = [\"button=digital_in\", \"valve=digital_out\", \"soil=analog_in:100@35\"]\n"
        ))
        .unwrap();
        let names: Vec<_> = c.devices.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            names,
            [
                "button=digital_in",
                "valve=digital_out",
                "soil=analog_in:100@35"
            ]
        );
        for (bad, says) in [
            (
                "[\"valve=servo\"]",
                "valid kinds are digital_in, digital_out, analog_in",
            ),
            ("[\"valve\"]", "NAME=KIND"),
            ("[\"a b=digital_in\"]", "invalid device name"),
            ("[\"v=digital_in\", \"v=digital_out\"]", "declared twice"),
            ("[\"soil=analog_in:10@11\"]", "above its maximum"),
        ] {
            let e = parse(&format!("{head}devices = {bad}\n")).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("node.toml") && msg.contains("`devices`") && msg.contains(says),
                "{bad}: {msg}"
            );
        }
        let e = parse(&format!("{head}devices = \"valve=digital_out\"\n")).unwrap_err();
        assert!(e.to_string().contains("devices"), "{e}");
    }

    #[test]
    fn timeouts_table_sets_some_and_refuses_with_file_and_field() {
        let head = "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nopen = true\n";
        assert_eq!(parse(head).unwrap().timeouts, Timeouts::default());
        let c = parse(&format!(
            "{head}[timeouts]\nhello = \"250ms\"\nreply = \"1m\"\nbackoff_max = \"2 s\"\n"
        ))
        .unwrap();
        let want = Timeouts {
            hello: Duration::from_millis(250),
            reply: Duration::from_secs(60),
            backoff_max: Duration::from_secs(2),
            ..Timeouts::default()
        };
        assert_eq!(c.timeouts, want);

        for (bad, field, says) in [
            (
                "hello = \"ten\"",
                "`timeouts.hello`",
                "invalid duration `ten`",
            ),
            ("hello = \"10\"", "`timeouts.hello`", "e.g. `250ms`, `10s`"),
            ("stop = \"0s\"", "`timeouts.stop`", "longer than zero"),
            ("hello = 10", "`timeouts.hello`", "as a string with a unit"),
            (
                "helo = \"1s\"",
                "`timeouts`",
                "unknown timeout `helo`: valid names are hello,",
            ),
            (
                "backoff = \"5s\"",
                "`timeouts`",
                "`backoff` (5 s) must not exceed `backoff_max` (1 s)",
            ),
        ] {
            let e = parse(&format!("{head}[timeouts]\n{bad}\n")).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("node.toml") && msg.contains(field) && msg.contains(says),
                "{bad}: {msg}"
            );
        }
        let e = parse(&format!("{head}timeouts = \"10s\"\n")).unwrap_err();
        assert!(e.to_string().contains("timeouts"), "{e}");
    }

    #[test]
    fn limits_table_sets_some_and_refuses_with_file_and_field() {
        let head = "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntee = \"sgx\"\nopen = true\n";
        assert_eq!(parse(head).unwrap().limits, Limits::default());
        let c = parse(&format!(
            "{head}[limits]\nmax_connections = 4096\nmodule_queue = \"16MiB\"\npeer_queue = 134217728\n"
        ))
        .unwrap();
        assert_eq!(
            (
                c.limits.max_connections,
                c.limits.module_queue,
                c.limits.peer_queue
            ),
            (4096, 16 << 20, 128 << 20)
        );
        for (bad, field, says) in [
            (
                "max_connections = 0",
                "`limits.max_connections`",
                "more than zero",
            ),
            (
                "max_connections = -5",
                "`limits.max_connections`",
                "more than zero",
            ),
            (
                "max_connections = \"lots\"",
                "`limits.max_connections`",
                "whole number",
            ),
            (
                "module_queue = \"4MB\"",
                "`limits.module_queue`",
                "unit B, KiB, MiB or GiB",
            ),
            (
                "module_queue = \"64KiB\"",
                "`limits.module_queue`",
                "at least 2 MiB",
            ),
            ("module_queue = 1.5", "`limits.module_queue`", "as a string"),
            (
                "max_conections = 1",
                "`limits`",
                "unknown limit `max_conections`: valid names are",
            ),
            (
                "peer_queue_per_namespace = \"128MiB\"",
                "`limits`",
                "must not exceed `peer_queue`",
            ),
        ] {
            let e = parse(&format!("{head}[limits]\n{bad}\n")).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("node.toml") && msg.contains(field) && msg.contains(says),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = NodeConfig::from_file(Path::new("/nonexistent/aex/node.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/aex/node.toml"), "{e}");
    }
}
