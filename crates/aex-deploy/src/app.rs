//! An application as the deployer sees it: its descriptor, its durable state, and open
//! management sessions to its nodes.
//!
//! Every operation (`ops::*`) works on an [`App`]. Sessions are opened lazily, one per node,
//! and reused, so a deployment uses one TCP connection per node. Every session is signed by
//! the deployer's [`Identity`] and acts in the namespace of (identity, application name) on
//! its node.
//!
//! An `App` keeps its parts to itself: the descriptor is read through [`App::descriptor`], and
//! the deployer's records through the accessors of `records`, which say what the caller wants
//! of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aex_proto::{Command, CommandChannel, CommandReply, NodeRequest, NodeResponse, Sealed};

use aex_tee::sgx::SimRootPublicKey;
use aex_tee::{Provider, ProviderKey, Scheme, TrustAnchor};

use crate::audit::Audit;
use crate::client::{ClientError, NodeClient, DEFAULT_TIMEOUT};
use crate::descriptor::{Descriptor, NodeIdentitySource, NodeSpec, PlatformKeySource};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::state::{self, LockHolder, LockWait, State, StateFile};

mod records;

/// The trust anchor of one node, owned (see [`App::trust_anchor`]).
pub enum Anchor {
    /// An `sgx` node's simulated vendor root.
    SgxRoot(SimRootPublicKey),
    /// A symmetric node's provider key of this deployer's identity (a secret).
    Provider(ProviderKey),
    /// A `native` node: nothing to trust.
    None,
}

impl Anchor {
    /// The borrowed form `aex_tee::appraise` takes.
    pub fn as_trust_anchor(&self) -> TrustAnchor<'_> {
        match self {
            Anchor::SgxRoot(k) => TrustAnchor::SimSgxRoot(k),
            Anchor::Provider(k) => TrustAnchor::ProviderKey(k),
            Anchor::None => TrustAnchor::None,
        }
    }
}

/// Reads a file holding bytes in hex.
fn read_hex(path: &Path) -> Option<Vec<u8>> {
    hex::decode(std::fs::read_to_string(path).ok()?.trim()).ok()
}

/// A loaded application.
pub struct App {
    /// The descriptor.
    desc: Descriptor,
    /// The deployer's state beside it.
    state: StateFile,
    clients: HashMap<String, NodeClient>,
    /// Further sessions with a node, by node and lane (1 and up; lane 0 is `clients`).
    lanes: HashMap<(String, usize), NodeClient>,
    /// One limit for every wait on a node, when set (`aex --timeout`).
    timeout: Option<Duration>,
    identity: Arc<Identity>,
    /// Changes noted for the audit ledger, appended at the next save.
    audit: Mutex<Audit>,
    /// Provider keys handed over in memory, by node ([`App::hold_provider_keys`]): the
    /// governor's, which never touch a file.
    provider_keys: HashMap<String, ProviderKey>,
}

impl App {
    /// Loads the descriptor at `path` (a file, or a directory holding `aex.toml`) and its state;
    /// node sessions will be signed by `identity`. Waits silently while another process holds
    /// the application's state.
    pub fn open(path: &Path, identity: Arc<Identity>) -> Result<Self> {
        Self::open_waiting(path, identity, None, &|_| {})
    }

    /// [`App::open`], then [`App::set_timeout`] if `timeout` is set: how `aex up` opens its
    /// tenants, and its applications again while it follows them, with the limit it was
    /// given. The limit bounds the wait for the application's state too.
    pub fn open_with_timeout(
        path: &Path,
        identity: Arc<Identity>,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        Self::open_waiting(path, identity, timeout, &|_| {})
    }

    /// [`App::open_with_timeout`], telling `on_wait` who holds the application's state if
    /// another process does (then waiting at most `timeout`, if set): how `aex` opens an
    /// application.
    pub fn open_waiting(
        path: &Path,
        identity: Arc<Identity>,
        timeout: Option<Duration>,
        on_wait: &dyn Fn(Option<&LockHolder>),
    ) -> Result<Self> {
        let desc = Descriptor::load(path)?;
        Self::with_descriptor(desc, identity, timeout, on_wait)
    }

    /// The application at `path` from its state alone, for when its descriptor does not
    /// parse (or is gone): a descriptor with no nodes, modules or connections, where the file
    /// is (`aex down` stops the local nodes its state records from it). Waits for the state
    /// as [`App::open_waiting`] does.
    pub fn open_unparsed(
        path: &Path,
        identity: Arc<Identity>,
        timeout: Option<Duration>,
        on_wait: &dyn Fn(Option<&LockHolder>),
    ) -> Result<Self> {
        let file = match Descriptor::find(path) {
            Ok(file) => file,
            // The descriptor was removed: its directory still holds the state.
            Err(_) if path.is_dir() => path.join("aex.toml"),
            Err(e) => return Err(e.into()),
        };
        Self::with_descriptor(Descriptor::unparsed(file), identity, timeout, on_wait)
    }

    /// An application whose state lives in memory, not in `.aex/state.redb`: `state` as its
    /// owner kept it. The governor works this way (its TEE seals the state; the host's disk
    /// never holds the keys in it). [`App::state`] gives the state back, to be kept again
    /// after a deployment; the audit ledger is still appended to `.aex/ledger.cbor` beside
    /// the descriptor, and checked against the state's mark of it.
    pub fn in_memory(desc: Descriptor, identity: Arc<Identity>, state: State) -> Self {
        let path = StateFile::dir_for(&desc.dir).join(crate::state::STATE_FILE);
        App {
            desc,
            state: StateFile::in_memory(path, state),
            clients: HashMap::new(),
            lanes: HashMap::new(),
            timeout: None,
            identity,
            audit: Mutex::default(),
            provider_keys: HashMap::new(),
        }
    }

    fn with_descriptor(
        desc: Descriptor,
        identity: Arc<Identity>,
        timeout: Option<Duration>,
        on_wait: &dyn Fn(Option<&LockHolder>),
    ) -> Result<Self> {
        let wait = LockWait {
            limit: timeout,
            on_wait,
        };
        let state = StateFile::open_waiting(&desc.dir, &wait)?;
        Ok(App {
            desc,
            state,
            clients: HashMap::new(),
            lanes: HashMap::new(),
            timeout,
            identity,
            audit: Mutex::default(),
            provider_keys: HashMap::new(),
        })
    }

    /// The limit set by [`App::set_timeout`], if any.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The deployer's state as it stands (what [`App::in_memory`] takes back).
    pub fn state(&self) -> &State {
        self.state.state()
    }

    /// The descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// Places `module` on `node` in this application's copy of the descriptor (the file is
    /// not rewritten): `aex update --node`.
    pub(crate) fn place_module(&mut self, module: &str, node: &str) {
        if let Some(spec) = self.desc.modules.iter_mut().find(|m| m.name == module) {
            spec.node = node.to_string();
        }
    }

    /// The deployer identity that signs this application's node sessions.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Sets one limit for every wait on a node that operations on this application make:
    /// each management answer, a local node's start and stop, and a request's reply. Unset,
    /// each wait keeps its own default ([`DEFAULT_TIMEOUT`] for an answer); see
    /// [`App::timeout_or`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
        self.clients.clear();
        self.lanes.clear();
    }

    /// The limit of a wait on a node whose own default is `default`: the one set by
    /// [`App::set_timeout`], if any.
    pub fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }

    /// The directory holding local node data for `node`.
    pub fn node_data_dir(&self, node: &str) -> PathBuf {
        state::node_data_dir(&self.desc.dir, node)
    }

    /// This deployer identity as a provider on symmetric nodes.
    pub fn provider(&self) -> Provider {
        Provider(self.identity.public().0)
    }

    /// Where this deployer's provider key for symmetric node `node` is: the descriptor's
    /// `provider_key_file`, else the file `aex up` writes in the local node's directory,
    /// `.aex/nodes/<node>/provider-<first 16 hex digits of the identity>.key`.
    pub fn provider_key_path(&self, node: &str) -> Result<PathBuf> {
        let spec = self.node_spec(node)?;
        Ok(spec.provider_key_file.clone().unwrap_or_else(|| {
            self.node_data_dir(node)
                .join(ProviderKey::file_name(&self.provider()))
        }))
    }

    /// Holds this deployer's provider keys for symmetric nodes in memory, by node name: they
    /// take the place of [`App::provider_key_path`]'s files for those nodes. The governor
    /// hands over the keys its sealed state holds this way.
    pub fn hold_provider_keys(&mut self, keys: impl IntoIterator<Item = (String, ProviderKey)>) {
        self.provider_keys.extend(keys);
    }

    /// The descriptor's entry for `node`.
    pub fn node_spec(&self, node: &str) -> Result<&NodeSpec> {
        self.desc.node(node).ok_or_else(|| Error::Connection {
            message: format!("no node `{node}` in the descriptor"),
            given: Some(node.to_string()),
            valid: self.desc.nodes.iter().map(|n| n.name.clone()).collect(),
        })
    }

    /// The identity key pinned for `node`: the descriptor's `identity`, the file its
    /// `identity_file` names, or (a local node `aex up` provisioned) `node-identity.pub` in
    /// the node's data directory under `.aex/nodes/`.
    pub fn node_identity(&self, node: &str) -> Result<PinnedIdentity> {
        let spec = self.node_spec(node)?;
        let index = self.desc.nodes.iter().position(|n| n.name == node);
        let (path, field) = match &spec.identity {
            Some(NodeIdentitySource::Inline(key)) => {
                return Ok(PinnedIdentity {
                    key: *key,
                    pinned_by: match index {
                        Some(i) => {
                            format!("`identity` of node[{i}] in {}", self.desc.path.display())
                        }
                        None => "the descriptor".into(),
                    },
                })
            }
            Some(NodeIdentitySource::File(path)) => (path.clone(), true),
            None => (
                self.node_data_dir(node)
                    .join(aex_link::keys::IDENTITY_PUB_FILE),
                false,
            ),
        };
        match aex_link::keys::read_public(&path) {
            Ok(key) => Ok(PinnedIdentity {
                key,
                pinned_by: format!("{}", path.display()),
            }),
            Err(source) => Err(Error::NoNodeIdentity {
                node: node.into(),
                looked: path,
                from_descriptor: field,
                source: Box::new(source),
            }),
        }
    }

    /// The management session with `node`, connecting if needed.
    pub fn client(&mut self, node: &str) -> Result<&mut NodeClient> {
        if !self.clients.contains_key(node) {
            let client = self.connect(node)?;
            self.clients.insert(node.into(), client);
        }
        Ok(self
            .clients
            .get_mut(node)
            .expect("session inserted just above"))
    }

    /// Session number `lane` with `node`: lane 0 is [`App::client`]'s, the others are further
    /// sessions of the same deployer and application, opened when first asked for. A node
    /// answers each session's requests in order, one at a time, and serves sessions side by
    /// side: requests spread over lanes overlap on the node.
    pub(crate) fn lane(&mut self, node: &str, lane: usize) -> Result<&mut NodeClient> {
        if lane == 0 {
            return self.client(node);
        }
        let key = (node.to_string(), lane);
        if !self.lanes.contains_key(&key) {
            let client = self.connect(node)?;
            self.lanes.insert(key.clone(), client);
        }
        Ok(self
            .lanes
            .get_mut(&key)
            .expect("session inserted just above"))
    }

    /// The error for a module name the descriptor does not have, listing those it has.
    pub(crate) fn no_module(&self, name: &str) -> Error {
        Error::Connection {
            message: format!("no module `{name}` in the descriptor"),
            given: Some(name.to_string()),
            valid: self.desc.modules.iter().map(|m| m.name.clone()).collect(),
        }
    }

    /// A management session with `node` of its own, for a caller that outlives the
    /// application's state (a log follower).
    pub(crate) fn session(&self, node: &str) -> Result<NodeClient> {
        self.connect(node)
    }

    /// Opens a new management session with `node`.
    fn connect(&self, node: &str) -> Result<NodeClient> {
        let addr = self.node_spec(node)?.address;
        let pinned = self.node_identity(node)?;
        NodeClient::connect(
            addr,
            pinned.key,
            self.timeout_or(DEFAULT_TIMEOUT),
            self.identity.clone(),
            &self.desc.application,
        )
        .map_err(|source| match source {
            ClientError::WrongIdentity { keys, .. } => Error::NodeIdentity {
                node: node.into(),
                addr: addr.to_string(),
                keys,
                pinned_by: pinned.pinned_by.clone(),
            },
            source => Error::Unreachable {
                node: node.into(),
                addr: addr.to_string(),
                source,
            },
        })
    }

    /// Drops the session with `node` (after an I/O error, say).
    pub fn disconnect(&mut self, node: &str) {
        self.clients.remove(node);
        self.lanes.retain(|(n, _), _| n != node);
    }

    /// Sends one request to `node`, naming `action` in the error.
    pub fn request(&mut self, node: &str, action: &str, body: NodeRequest) -> Result<NodeResponse> {
        let result = self.client(node)?.request(body);
        result.map_err(|source| {
            if matches!(source, ClientError::Io { .. } | ClientError::Closed { .. }) {
                self.disconnect(node);
            }
            Error::Node {
                node: node.into(),
                action: action.into(),
                source,
            }
        })
    }

    /// What the deployer trusts for `node`'s evidence: for `sgx`, the simulated root key from
    /// the descriptor or, for a local node this deployer provisioned, from its data directory;
    /// for `trustzone`/`sancus`, this deployer identity's provider key held in memory
    /// ([`App::hold_provider_keys`]), else its file ([`App::provider_key_path`]); for
    /// `native`, nothing.
    pub fn trust_anchor(&self, node: &str) -> Result<Anchor> {
        let spec = self.node_spec(node)?;
        let missing = |looked: PathBuf| Error::NoPlatformKey {
            node: node.into(),
            looked: Some(looked),
        };
        match spec.tee.scheme() {
            Scheme::Quote => {
                let (bytes, looked) = match &spec.platform_key {
                    Some(PlatformKeySource::Inline(k)) => (k.clone(), None),
                    Some(PlatformKeySource::File(p)) => (
                        read_hex(p).ok_or_else(|| missing(p.clone()))?,
                        Some(p.clone()),
                    ),
                    None => {
                        let p = self.node_data_dir(node).join(aex_tee::PLATFORM_PUB_FILE);
                        (read_hex(&p).ok_or_else(|| missing(p.clone()))?, Some(p))
                    }
                };
                SimRootPublicKey::from_sec1(&bytes)
                    .map(Anchor::SgxRoot)
                    .map_err(|_| Error::NoPlatformKey {
                        node: node.into(),
                        looked,
                    })
            }
            Scheme::Symmetric => {
                let key = match self.provider_keys.get(node) {
                    Some(held) => ProviderKey::new(aex_crypto::SecretKey::from_bytes(
                        *held.expose_secret().expose_secret(),
                    )),
                    None => ProviderKey::read_file(&self.provider_key_path(node)?).map_err(
                        |source| Error::ProviderKey {
                            node: node.into(),
                            deployer: self.identity().public().to_string(),
                            source,
                        },
                    )?,
                };
                // Checked before any evidence is appraised with it: a key the descriptor does
                // not pin could be one a hostile node's agent knows (docs/SECURITY.md).
                match spec.provider_key_fingerprint {
                    Some(pinned) if key.fingerprint() != pinned => Err(Error::ProviderKeyPin {
                        node: node.into(),
                        pinned: hex::encode(pinned),
                        held: hex::encode(key.fingerprint()),
                        deployer: self.identity().public().to_string(),
                    }),
                    _ => Ok(Anchor::Provider(key)),
                }
            }
            _ => Ok(Anchor::None),
        }
    }

    /// Sends `cmd` to `module` sealed under its module key and returns the module's answer.
    ///
    /// The command counter is reserved and saved before the command leaves this process.
    pub fn command(&mut self, module: &str, action: &str, cmd: &Command) -> Result<Vec<u8>> {
        let sent = self.seal_command(module, cmd)?;
        self.save()?;
        let answer = self.request(
            &sent.node,
            action,
            NodeRequest::Command {
                module: sent.slot.clone(),
                sealed: sent.sealed.clone(),
            },
        )?;
        crate::crash::point("command-sent");
        self.command_result(&sent, action, answer)
    }

    /// Seals `cmd` for `module` under its module key and reserves the counter in the state,
    /// without saving it: save the state before sending the command, so that no counter is
    /// ever used twice under a module key, even across crashes. Sealing many commands and
    /// saving once lets a deployment send them all after a single save.
    pub(crate) fn seal_command(&mut self, module: &str, cmd: &Command) -> Result<SealedCommand> {
        let rec = self.module_mut(module).ok_or_else(|| Error::NotDeployed {
            module: module.into(),
        })?;
        let mut channel = CommandChannel::resume(rec.key.expose_secret(), rec.last_command);
        let sealed = channel.seal_command(cmd).map_err(|source| Error::Command {
            module: module.into(),
            source,
        })?;
        rec.last_command = sealed.counter;
        Ok(SealedCommand {
            module: module.into(),
            slot: rec.slot(module),
            node: rec.node.clone(),
            sealed,
            channel,
        })
    }

    /// Opens the module's answer to a command sealed by [`App::seal_command`].
    pub(crate) fn command_result(
        &self,
        sent: &SealedCommand,
        action: &str,
        answer: NodeResponse,
    ) -> Result<Vec<u8>> {
        let module = &sent.module;
        let NodeResponse::CommandReply(reply) = answer else {
            return Err(unexpected(&sent.node, action, self));
        };
        match sent.channel.open_reply(&reply, sent.sealed.counter) {
            Ok(CommandReply::Done(bytes)) => Ok(bytes),
            Ok(CommandReply::Failed(message)) => Err(Error::Refused {
                module: module.clone(),
                action: action.into(),
                message,
            }),
            Ok(_) => Err(Error::Refused {
                module: module.clone(),
                action: action.into(),
                message: "unknown reply".into(),
            }),
            Err(source) => Err(Error::Command {
                module: module.clone(),
                source,
            }),
        }
    }
}

/// A node's pinned identity key and where the pin comes from (for error messages).
#[derive(Debug, Clone)]
pub struct PinnedIdentity {
    /// The key.
    pub key: aex_proto::NodeKey,
    /// The descriptor field or the file that pins it.
    pub pinned_by: String,
}

/// A command sealed under its module's key whose counter is reserved in the state.
pub(crate) struct SealedCommand {
    /// The module it is for.
    pub module: String,
    /// The instance's name on its node.
    pub slot: String,
    /// The module's node.
    pub node: String,
    /// The command as sent.
    pub sealed: Sealed,
    channel: CommandChannel,
}

/// An error for a node answer of the wrong type.
pub(crate) fn unexpected(node: &str, action: &str, app: &App) -> Error {
    let addr = app
        .desc
        .node(node)
        .map(|n| n.address)
        .unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
    Error::Node {
        node: node.into(),
        action: action.into(),
        source: ClientError::Unexpected {
            addr,
            request: "request",
        },
    }
}
