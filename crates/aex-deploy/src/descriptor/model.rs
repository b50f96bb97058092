//! The validated deployment descriptor: what the deployer works from.
//!
//! Every value here has been checked by [`Descriptor::load`]: names are unique and well formed,
//! addresses parse, modules sit on declared nodes, connections name declared modules. What only
//! the deployer can check later (ports exist, measurements match) it reports with
//! [`Descriptor::error_at`], which points at the same file, line and field.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aex_crypto::Algorithm;
use aex_tee::TeeKind;

use super::error::DescriptorError;
use super::field::Field;
use super::keys::{parse_key, KEY_HELP};
use super::source::Source;
use super::suggest;

/// A parsed and validated deployment descriptor.
///
/// Two descriptors are equal when their public fields are; the source text kept for locating
/// later errors is ignored, so the TOML, YAML and JSON spellings of one deployment compare equal
/// once `path` is set alike.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// The descriptor file, as found (relative paths stay relative).
    pub path: PathBuf,
    /// The file's directory, the base of every relative path in it.
    pub dir: PathBuf,
    /// The application name: `[application] name`, else the directory's name.
    pub application: String,
    /// The nodes, in file order.
    pub nodes: Vec<NodeSpec>,
    /// The modules, in file order.
    pub modules: Vec<ModuleSpec>,
    /// The connections, in file order.
    pub connections: Vec<ConnectionSpec>,
    /// The `[[up]]` steps `aex up` runs once the application is connected, in file order.
    pub up: Vec<UpStep>,
    /// The `[[periodic]]` triggers, in file order.
    pub periodic: Vec<PeriodicSpec>,
    /// The `[[run]]` commands `aex up` runs after its `[[up]]` steps, in file order.
    pub run: Vec<RunStep>,
    /// Other stakeholders' applications `aex up` runs on the same local nodes, in file order.
    pub tenants: Vec<TenantSpec>,
    /// `[governance]`: the consortium's members and the rule of each kind of action, checked
    /// by `aex_governance`. Declared only: nothing enforces it yet, so the commands that change
    /// nodes refuse a governed descriptor ([`crate::ops::governed::refuse_if_governed`]).
    pub governance: Option<aex_governance::Constitution>,
    /// `[governance]`'s `governor`, `governor_node` and `governor_measurement`: where members
    /// reach the governor and what they pin of it (`aex propose`, `aex vote`); `None` when
    /// the descriptor leaves them out.
    pub governor: Option<GovernorSpec>,
    /// The text and format the descriptor was read from, to locate later errors.
    pub(super) source: Source,
}

impl PartialEq for Descriptor {
    fn eq(&self, other: &Self) -> bool {
        // `source` is deliberately left out: see the type's doc.
        self.path == other.path
            && self.dir == other.dir
            && self.application == other.application
            && self.nodes == other.nodes
            && self.modules == other.modules
            && self.connections == other.connections
            && self.up == other.up
            && self.periodic == other.periodic
            && self.run == other.run
            && self.tenants == other.tenants
            && self.governance == other.governance
            && self.governor == other.governor
    }
}

impl Eq for Descriptor {}

/// Where a consortium's governor serves, and what each member pins of it. Members appraise
/// the governor as the deployer appraises a module: its node's TEE kind, simulation and debug
/// policy and platform key come from the `[[node]]` it runs on, its code from the pinned
/// measurement (which every member computes from the same source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernorSpec {
    /// The URL as written, `https://HOST:PORT/`.
    pub url: String,
    /// Its `HOST:PORT`, resolved when a command connects.
    pub address: String,
    /// The `[[node]]` the governor runs on (an `sgx` node: members must be able to check
    /// its evidence themselves, which symmetric kinds do not allow).
    pub node: String,
    /// The governor's measurement.
    pub measurement: aex_crypto::Measurement,
}

/// One node: a machine running the aex node agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Unique node name.
    pub name: String,
    /// Where the node agent listens.
    pub address: SocketAddr,
    /// The TEE the node offers.
    pub tee: TeeKind,
    /// Whether the TEE is simulated (default `true`).
    pub simulation: bool,
    /// The trusted platform identity, if the descriptor pins one (`sgx`).
    pub platform_key: Option<PlatformKeySource>,
    /// The node's identity key (its links prove it), if the descriptor pins one (`identity` or
    /// `identity_file`); else the deployer looks in the local node's data directory.
    pub identity: Option<NodeIdentitySource>,
    /// Symmetric kinds: the file holding this deployer identity's provider key for the node
    /// in hex (a secret, so never inline), which the node's operator gave it. Unset: the
    /// file `aex up` writes for a local node (`.aex/nodes/<node>/provider-<key>.key`).
    pub provider_key_file: Option<PathBuf>,
    /// Symmetric kinds: the fingerprint of the one provider key this deployer may use for the
    /// node (`provider_key_fingerprint`), which its operator publishes. Required in a governed
    /// descriptor, where the key reaches the governor over the network: the pin, approved with
    /// the descriptor, is what keeps a member from handing it a key of the member's choosing.
    pub provider_key_fingerprint: Option<[u8; aex_tee::symmetric::FINGERPRINT_LEN]>,
    /// Whether evidence of a debug enclave is acceptable (default `false`).
    pub allow_debug: bool,
    /// The node's devices, as its operator declares them (`devices = ["valve=digital_out"]`).
    /// `aex up` configures a local node with them; for other nodes they let the deployer check
    /// bindings before loading. Empty: not declared here.
    pub devices: Vec<aex_tee::devices::DeviceSpec>,
}

/// Where a node's trusted platform identity (an `sgx` node's simulated root public key,
/// compressed P-256) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlatformKeySource {
    /// Given inline as `platform_key` (66 hex characters).
    Inline(Vec<u8>),
    /// A file holding the key in hex, `platform_key_file`, resolved against the descriptor's
    /// directory; read it with [`Descriptor::platform_key`].
    File(PathBuf),
}

/// Where a node's pinned identity key (X25519, the node's `node-identity.pub`) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeIdentitySource {
    /// Given inline as `identity` (64 hex digits).
    Inline(aex_proto::NodeKey),
    /// A file holding it in hex, `identity_file`, resolved against the descriptor's directory.
    File(PathBuf),
}

/// One module: a crate built and loaded into a TEE on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// Unique module name.
    pub name: String,
    /// The module's source directory, resolved against the descriptor's directory: its crate
    /// (holds `Cargo.toml`) for a Rust module, its `.c` files for a C module.
    pub crate_dir: PathBuf,
    /// What the module is written in: `crate = ".."` or `c = ".."`.
    pub language: Language,
    /// The name of the node the module runs on.
    pub node: String,
    /// Whether the deployer may key this module on a `native` node, which has no TEE.
    pub allow_insecure: bool,
    /// The devices of its node this module drives, granted to it exclusively by the node's
    /// TEE layer and covered by its measurement (sorted, no repeats).
    pub devices: Vec<String>,
}

/// What a module is written in, hence how the deployer builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Language {
    /// A Rust binary crate with `aex::main!`, built with cargo (`crate = ".."`).
    #[default]
    Rust,
    /// A directory of `.c` files with `AEX_MAIN`, built with the system's C compiler and
    /// linked with the runtime's C ABI (`c = ".."`).
    C,
}

/// One connection: events flow from an output or request to an input or handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    /// Unique connection name, by default `"<from>-><to>"`.
    pub name: String,
    /// Where events come from.
    pub from: From,
    /// Where events go.
    pub to: PortRef,
    /// The AEAD protecting the connection (default AES-GCM).
    pub algorithm: Algorithm,
}

/// One `[[up]]` step: an entry point `aex up` calls once the application is connected, written
/// `call = "module.entry"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpStep {
    /// The module to call (a declared module).
    pub module: String,
    /// The entry point to call.
    pub entry: String,
    /// The payload: the `payload` string's bytes, empty by default.
    pub payload: Vec<u8>,
    /// Repeat the call until its JSON result has this field set to `true`.
    pub until: Option<String>,
    /// Whether `aex up` shows the result (default `false`).
    pub show: bool,
}

/// One `[[run]]` command: a program `aex up` runs in the descriptor's directory once the
/// application is up and its `[[up]]` steps are done (a demo client, say), with the
/// application's state released so that the program may run `aex` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// The program and its arguments (a relative program path is the descriptor directory's).
    pub command: Vec<String>,
}

/// One `[[periodic]]` trigger: the node calls a module's periodic entry point every period,
/// written `call = "module.entry"`, `every = "5s"`. The trigger is untrusted: the node may
/// delay or drop it (see docs/SECURITY.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodicSpec {
    /// The module (a declared module).
    pub module: String,
    /// The entry point, which the module's binary must declare `#[periodic]`.
    pub entry: String,
    /// The period, at least 10 ms.
    pub every: Duration,
}

/// One `[[tenant]]`: another stakeholder's application that shares this descriptor's local
/// nodes, deployed by `aex up` under its own identity. It stands for a second organisation
/// deploying from its own machine; `aex up` plays both parts so the whole system runs on one
/// laptop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSpec {
    /// The tenant's descriptor (a file, or a directory holding `aex.toml`), resolved against
    /// this descriptor's directory.
    pub descriptor: PathBuf,
    /// The tenant's deployer identity file, created (mode 0600) on first use, resolved the same
    /// way. Its public key is admitted by the local nodes `aex up` starts.
    pub identity: PathBuf,
}

/// The source end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum From {
    /// The deployer itself (a direct connection), written `deployer`.
    Deployer,
    /// A module's output or request.
    Port(PortRef),
}

impl fmt::Display for From {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            From::Deployer => f.write_str("deployer"),
            From::Port(port) => port.fmt(f),
        }
    }
}

/// A port of a module, written `module.port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortRef {
    /// The module's name.
    pub module: String,
    /// The port's name (an output, request, input or handler).
    pub port: String,
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.port)
    }
}

impl Descriptor {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The text the descriptor was read from, exactly.
    pub fn text(&self) -> &str {
        &self.source.text
    }

    /// The module named `name`.
    pub fn module(&self, name: &str) -> Option<&ModuleSpec> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The line `[governance]` starts on, when the descriptor declares it and it can be found.
    pub fn governance_line(&self) -> Option<usize> {
        self.governance
            .as_ref()
            .and_then(|_| self.source.line(Field::Governance("")))
    }

    /// An error located at `field`, for checks made after loading, e.g. ``module `ping` has no
    /// output `pnig` `` at `Field::Connection(0, "from")`.
    ///
    /// `valid` lists what would be valid there; the help line lists it, after "did you mean"
    /// when the offending name is close to one. The offending name is the last `` `quoted` ``
    /// word of `message`, else the field's value.
    pub fn error_at(
        &self,
        field: Field,
        message: impl Into<String>,
        valid: &[String],
    ) -> DescriptorError {
        let message = message.into();
        let quoted = message
            .rsplit('`')
            .nth(1)
            .filter(|_| message.matches('`').count() >= 2);
        let given = quoted
            .map(str::to_owned)
            .or_else(|| self.value(field))
            .unwrap_or_default();
        let help = suggest::help(&given, "values", valid);
        self.source.error(&self.path, field, message, help)
    }

    /// The platform key pinned for the node named `node`, reading `platform_key_file` if that
    /// is how it is given; `Ok(None)` if none is pinned.
    pub fn platform_key(&self, node: &str) -> Result<Option<Vec<u8>>, DescriptorError> {
        let Some(index) = self.nodes.iter().position(|n| n.name == node) else {
            let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
            let help = suggest::help(node, "nodes", &names);
            return Err(DescriptorError::invalid(
                &self.path,
                format!("no node `{node}`"),
                help,
            ));
        };
        let field = Field::Node(index, "platform_key_file");
        match &self.nodes[index].platform_key {
            None => Ok(None),
            Some(PlatformKeySource::Inline(key)) => Ok(Some(key.clone())),
            Some(PlatformKeySource::File(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    let message = format!("cannot read platform key file {}: {e}", path.display());
                    self.source.error(&self.path, field, message, None)
                })?;
                let key = parse_key(&text).map_err(|problem| {
                    let message = format!("platform key file {}: {problem}", path.display());
                    self.source
                        .error(&self.path, field, message, Some(KEY_HELP.to_owned()))
                })?;
                Ok(Some(key))
            }
        }
    }

    /// The value of `field` as written, for "did you mean".
    fn value(&self, field: Field) -> Option<String> {
        let value = match field {
            Field::Application("name") => self.application.clone(),
            Field::Node(i, name) => {
                let node = self.nodes.get(i)?;
                match name {
                    "name" => node.name.clone(),
                    "tee" => node.tee.name().to_owned(),
                    "address" => node.address.to_string(),
                    _ => return None,
                }
            }
            Field::Module(i, name) => {
                let module = self.modules.get(i)?;
                match name {
                    "name" => module.name.clone(),
                    "node" => module.node.clone(),
                    _ => return None,
                }
            }
            Field::Connection(i, name) => {
                let connection = self.connections.get(i)?;
                match name {
                    "name" => connection.name.clone(),
                    "from" => connection.from.to_string(),
                    "to" => connection.to.to_string(),
                    "algorithm" => connection.algorithm.name().to_owned(),
                    _ => return None,
                }
            }
            Field::Up(i, "call") => {
                let step = self.up.get(i)?;
                format!("{}.{}", step.module, step.entry)
            }
            Field::Periodic(i, "call") => {
                let trigger = self.periodic.get(i)?;
                format!("{}.{}", trigger.module, trigger.entry)
            }
            Field::Application(_)
            | Field::Up(..)
            | Field::Periodic(..)
            | Field::Run(..)
            | Field::Tenant(..)
            | Field::Rule(..) => return None,
            Field::Member(i, "name") => {
                let members = self.governance.as_ref()?.members();
                members.get(i)?.name.clone()
            }
            Field::Governance(_) | Field::Member(..) => return None,
        };
        Some(value)
    }
}
