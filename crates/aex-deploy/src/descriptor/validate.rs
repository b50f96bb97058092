//! Checks a parsed descriptor and builds the [`Descriptor`] the deployer works from.
//!
//! Invariant: a `Descriptor` returned by `validate` has at least one node, unique well-formed
//! node and module names, every module on a declared node with an existing crate directory, and
//! every connection between declared modules (never *to* the deployer), with a known algorithm,
//! a unique name and no twin with the same ends. The first failure is returned, located at its
//! field. Connections and `[[up]]` steps are checked in `links`, `[governance]` in `governance`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aex_tee::TeeKind;

use super::error::DescriptorError;
use super::field::Field;
use super::keys::{parse_key, KEY_HELP};
use super::model::{Descriptor, Language, ModuleSpec, NodeSpec, PlatformKeySource};
use super::raw::{RawDescriptor, RawModule, RawNode};
use super::source::Source;
use super::suggest;

mod devices;
mod governance;
mod governor;

pub use governor::parse_governor_url;
mod identity;
mod links;
mod periodic;
mod placement;

/// Where a symmetric node's provider key comes from, for errors about it.
const PROVIDER_KEY_HELP: &str = "each stakeholder has its own provider key on a trustzone or \
     sancus node: ask the node's operator for yours (`aex node provider-key --data-dir DIR --tee \
     KIND --deployer KEY`, KEY as `aex identity` prints it) and give its path as \
     `provider_key_file`; for local nodes `aex up` writes it";

/// The rule for node, module, port and application names.
pub(super) const NAME_RULE: &str = "names are 1 to 64 letters, digits, `_` or `-`";

/// Checks `raw`, read from `file` in `dir`, and builds the descriptor. With `prebuilt`, the
/// modules' sources are not looked for (their binaries come from elsewhere: a governor's
/// bundle).
pub(super) fn validate(
    raw: RawDescriptor,
    file: PathBuf,
    dir: PathBuf,
    source: Source,
    prebuilt: bool,
) -> Result<Descriptor, DescriptorError> {
    let checker = Checker {
        file: &file,
        dir: &dir,
        source: &source,
        prebuilt,
    };
    let application = checker.application(raw.application.and_then(|a| a.name))?;
    if raw.node.is_empty() {
        let help =
            "add a node with `name`, `address` and `tee`, e.g. a `[[node]]` table".to_owned();
        return Err(DescriptorError::invalid(
            &file,
            "the descriptor declares no nodes",
            Some(help),
        ));
    }
    let nodes = raw
        .node
        .iter()
        .enumerate()
        .map(|(i, node)| checker.node(i, node))
        .collect::<Result<Vec<_>, _>>()?;
    checker.unique(nodes.iter().map(|n| n.name.as_str()), "node", |i| {
        Field::Node(i, "name")
    })?;
    let node_names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut modules = raw
        .module
        .iter()
        .enumerate()
        .map(|(i, module)| checker.module(i, module, &node_names))
        .collect::<Result<Vec<_>, _>>()?;
    checker.bindings(&raw.module, &nodes, &mut modules)?;
    checker.unique(modules.iter().map(|m| m.name.as_str()), "module", |i| {
        Field::Module(i, "name")
    })?;
    checker.insecure(&nodes, &modules)?;
    let module_names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
    let connections = raw
        .connection
        .iter()
        .enumerate()
        .map(|(i, connection)| checker.connection(i, connection, &module_names))
        .collect::<Result<Vec<_>, _>>()?;
    checker.distinct_ends(&connections)?;
    checker.algorithms(&nodes, &modules, &connections)?;
    checker.unique(
        connections.iter().map(|c| c.name.as_str()),
        "connection",
        |i| Field::Connection(i, "name"),
    )?;
    let up = raw
        .up
        .iter()
        .enumerate()
        .map(|(i, step)| checker.up(i, step, &module_names))
        .collect::<Result<Vec<_>, _>>()?;
    let periodic = checker.periodic(&raw.periodic, &module_names)?;
    let tenants = checker.tenants(&raw.tenant)?;
    let governance = checker.governance(raw.governance.as_ref())?;
    let governor = checker.governor(raw.governance.as_ref(), &nodes)?;
    let run = raw
        .run
        .iter()
        .enumerate()
        .map(|(i, step)| checker.run(i, step))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Descriptor {
        path: file.clone(),
        dir: dir.clone(),
        application,
        nodes,
        modules,
        connections,
        up,
        periodic,
        run,
        tenants,
        governance,
        governor,
        source,
    })
}

/// Checks one descriptor's entries, locating errors in its source.
pub(super) struct Checker<'a> {
    file: &'a Path,
    dir: &'a Path,
    source: &'a Source,
    /// The modules' sources are not needed (nor looked for).
    prebuilt: bool,
}

impl Checker<'_> {
    pub(super) fn error(
        &self,
        field: Field,
        message: String,
        help: Option<String>,
    ) -> DescriptorError {
        self.source.error(self.file, field, message, help)
    }

    /// The application name, by default the descriptor directory's name.
    fn application(&self, name: Option<String>) -> Result<String, DescriptorError> {
        let field = Field::Application("name");
        if let Some(name) = name {
            return match valid_name(&name) {
                true => Ok(name),
                false => Err(self.error(
                    field,
                    format!("invalid application name `{name}`"),
                    Some(NAME_RULE.to_owned()),
                )),
            };
        }
        let dir = self
            .dir
            .canonicalize()
            .unwrap_or_else(|_| self.dir.to_path_buf());
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if valid_name(&name) {
            return Ok(name);
        }
        let message = format!("the directory name `{name}` is not a valid application name");
        let help = format!("set `name` in the `application` table; {NAME_RULE}");
        Err(self.error(field, message, Some(help)))
    }

    fn node(&self, i: usize, node: &RawNode) -> Result<NodeSpec, DescriptorError> {
        self.name(Field::Node(i, "name"), "node", &node.name)?;
        let address: SocketAddr = node.address.trim().parse().map_err(|_| {
            let message = format!("`{}` is not an IP address and port", node.address);
            self.error(
                Field::Node(i, "address"),
                message,
                Some("write e.g. `127.0.0.1:7101` or `[::1]:7101`".to_owned()),
            )
        })?;
        let tee = TeeKind::from_name(&node.tee).map_err(|_| {
            let names: Vec<String> = TeeKind::NAMES.iter().map(|n| n.to_string()).collect();
            let help = suggest::help(&node.tee, "TEE kinds", &names);
            self.error(
                Field::Node(i, "tee"),
                format!("unknown TEE kind `{}`", node.tee),
                help,
            )
        })?;
        let platform_key = match (&node.platform_key, &node.platform_key_file) {
            (Some(_), Some(_)) => {
                let message = "both `platform_key` and `platform_key_file` are set".to_owned();
                return Err(self.error(
                    Field::Node(i, "platform_key_file"),
                    message,
                    Some("keep one of them".to_owned()),
                ));
            }
            (Some(key), None) => Some(PlatformKeySource::Inline(parse_key(key).map_err(
                |message| {
                    self.error(
                        Field::Node(i, "platform_key"),
                        message,
                        Some(KEY_HELP.to_owned()),
                    )
                },
            )?)),
            (None, Some(file)) if file.trim().is_empty() => {
                let help = "give the path of a file holding the key in hex".to_owned();
                return Err(self.error(
                    Field::Node(i, "platform_key_file"),
                    "empty path".to_owned(),
                    Some(help),
                ));
            }
            (None, Some(file)) => Some(PlatformKeySource::File(self.dir.join(file))),
            (None, None) => None,
        };
        let simulation = node.simulation.unwrap_or(true);
        let symmetric = tee.symmetric().is_some();
        if platform_key.is_some() && tee != TeeKind::Sgx {
            let field = if node.platform_key.is_some() {
                "platform_key"
            } else {
                "platform_key_file"
            };
            return Err(self.error(
                Field::Node(i, field),
                format!("a `{}` node has no platform key", tee.name()),
                Some("`platform_key` pins the simulated root of `sgx` nodes; trustzone and sancus nodes use `provider_key_file`".to_owned()),
            ));
        }
        let retired = [
            ("vendor_key_file", node.vendor_key_file.is_some()),
            ("vendor_id", node.vendor_id.is_some()),
        ];
        for (retired, set) in retired {
            if set {
                return Err(self.error(
                    Field::Node(i, retired),
                    format!("`{retired}` was replaced by `provider_key_file`"),
                    Some(PROVIDER_KEY_HELP.to_owned()),
                ));
            }
        }
        if !symmetric && node.provider_key_file.is_some() {
            return Err(self.error(
                Field::Node(i, "provider_key_file"),
                format!("a `{}` node has no provider key", tee.name()),
                Some("provider keys belong to the symmetric kinds: trustzone, sancus".to_owned()),
            ));
        }
        if symmetric && !simulation {
            return Err(self.error(
                Field::Node(i, "simulation"),
                format!(
                    "a `{}` node cannot be required to give hardware evidence",
                    tee.name()
                ),
                Some(format!(
                    "aex has no hardware trust anchor for trustzone and sancus: their evidence is a \
                     MAC under a key the node's own files derive, so \"hardware\" evidence would be a \
                     MAC the node's operator can compute. Remove `simulation = false` (the \
                     evidence is accepted as simulated, and `aex status` says so), or run the \
                     modules that need a hardware-only policy on an `sgx` node (node `{}`)",
                    node.name
                )),
            ));
        }
        let provider_key_file = match &node.provider_key_file {
            Some(f) if f.trim().is_empty() => {
                return Err(self.error(
                    Field::Node(i, "provider_key_file"),
                    "empty path".to_owned(),
                    Some(PROVIDER_KEY_HELP.to_owned()),
                ))
            }
            Some(f) => Some(self.dir.join(f)),
            None => None,
        };
        Ok(NodeSpec {
            name: node.name.clone(),
            address,
            tee,
            simulation,
            platform_key,
            identity: self.node_identity(i, node)?,
            provider_key_file,
            provider_key_fingerprint: self.provider_key_fingerprint(i, node, symmetric)?,
            allow_debug: node.allow_debug.unwrap_or(false),
            devices: self.node_devices(i, node.devices.as_deref().unwrap_or_default())?,
        })
    }

    fn module(
        &self,
        i: usize,
        module: &RawModule,
        nodes: &[String],
    ) -> Result<ModuleSpec, DescriptorError> {
        self.name(Field::Module(i, "name"), "module", &module.name)?;
        if !nodes.contains(&module.node) {
            let help = suggest::help(&module.node, "nodes", nodes);
            return Err(self.error(
                Field::Module(i, "node"),
                format!("no node `{}`", module.node),
                help,
            ));
        }
        let (field, given, language) =
            match (&module.crate_dir, &module.c) {
                (Some(dir), None) => ("crate", dir, Language::Rust),
                (None, Some(dir)) => ("c", dir, Language::C),
                (Some(_), Some(_)) => {
                    return Err(self.error(
                        Field::Module(i, "c"),
                        "a module has `crate` or `c`, not both".to_owned(),
                        Some(
                            "`crate` names a Rust module's crate directory, `c` a C module's \
                         directory of `.c` files"
                                .into(),
                        ),
                    ))
                }
                (None, None) => return Err(self.error(
                    Field::Module(i, "name"),
                    format!("module `{}` has no `crate` (or `c`)", module.name),
                    Some(
                        "`crate = \"dir\"` names a Rust module's crate directory, `c = \"dir\"` \
                         a C module's directory of `.c` files, relative to the descriptor"
                            .into(),
                    ),
                )),
            };
        let crate_dir = self.dir.join(given);
        let help = || {
            Some(match language {
                Language::Rust => format!(
                    "`crate` is the module's crate directory, relative to {}",
                    self.dir.display()
                ),
                Language::C => format!(
                    "`c` is the directory of the module's `.c` files, relative to {}",
                    self.dir.display()
                ),
            })
        };
        if given.trim().is_empty() {
            return Err(self.error(
                Field::Module(i, field),
                format!("empty {field} path"),
                help(),
            ));
        }
        if self.prebuilt {
            // Built elsewhere: the path only names the module's sources.
        } else if !crate_dir.is_dir() {
            let message = match language {
                Language::Rust => format!("crate directory {} does not exist", crate_dir.display()),
                Language::C => format!("C module directory {} does not exist", crate_dir.display()),
            };
            return Err(self.error(Field::Module(i, field), message, help()));
        }
        if !self.prebuilt && language == Language::Rust && !crate_dir.join("Cargo.toml").is_file() {
            let message = format!("crate directory {} has no Cargo.toml", crate_dir.display());
            return Err(self.error(Field::Module(i, "crate"), message, help()));
        }
        if !self.prebuilt && language == Language::C && !has_c_file(&crate_dir) {
            let message = format!(
                "C module directory {} holds no `.c` file",
                crate_dir.display()
            );
            return Err(self.error(Field::Module(i, "c"), message, help()));
        }
        Ok(ModuleSpec {
            name: module.name.clone(),
            crate_dir,
            language,
            node: module.node.clone(),
            allow_insecure: module.allow_insecure.unwrap_or(false),
            // Filled in by `bindings`, which sees every node's devices.
            devices: Vec::new(),
        })
    }

    /// Checks a node or module name against [`NAME_RULE`].
    fn name(&self, field: Field, kind: &str, name: &str) -> Result<(), DescriptorError> {
        match valid_name(name) {
            true => Ok(()),
            false => Err(self.error(
                field,
                format!("invalid {kind} name `{name}`"),
                Some(NAME_RULE.to_owned()),
            )),
        }
    }

    /// Fails on the second use of a name.
    pub(super) fn unique<'n>(
        &self,
        names: impl Iterator<Item = &'n str>,
        kind: &str,
        field: impl Fn(usize) -> Field,
    ) -> Result<(), DescriptorError> {
        let mut seen = HashMap::new();
        for (i, name) in names.enumerate() {
            if let Some(first) = seen.insert(name, i) {
                let at = self.source.line(field(first));
                let first = at.map_or(format!("{kind}[{first}]"), |line| {
                    format!("{kind}[{first}], line {line}")
                });
                let help = format!("{kind} names must be unique; the first `{name}` is {first}");
                return Err(self.error(
                    field(i),
                    format!("duplicate {kind} name `{name}`"),
                    Some(help),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` matches `[A-Za-z0-9_-]{1,64}`.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `dir` holds a `.c` file (a C module's directory).
fn has_c_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "c") && e.path().is_file())
    })
}
