//! An application as the deployer sees it: its descriptor, its durable state, and open
//! management sessions to its nodes.
//!
//! Every operation (`ops::*`) works on an [`App`]. Sessions are opened lazily, one per node,
//! and reused, so a deployment uses one TCP connection per node.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aex_crypto::SecretKey;
use aex_proto::{Command, CommandChannel, CommandReply, NodeRequest, NodeResponse};

use crate::client::{ClientError, NodeClient, DEFAULT_TIMEOUT};
use crate::descriptor::{Descriptor, NodeSpec, PlatformKeySource};
use crate::error::{Error, Result};
use crate::state::{StateFile, STATE_DIR};

/// A loaded application.
pub struct App {
    /// The descriptor.
    pub desc: Descriptor,
    /// The deployer's state beside it.
    pub state: StateFile,
    clients: HashMap<String, NodeClient>,
    timeout: Duration,
}

impl App {
    /// Loads the descriptor at `path` (a file, or a directory holding `aex.toml`) and its state.
    pub fn open(path: &Path) -> Result<Self> {
        let desc = Descriptor::load(path)?;
        let state = StateFile::open(&desc.dir)?;
        Ok(App {
            desc,
            state,
            clients: HashMap::new(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the timeout of every management answer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.clients.clear();
    }

    /// The directory holding local node data for `node`.
    pub fn node_data_dir(&self, node: &str) -> PathBuf {
        let dir = self.desc.dir.join(STATE_DIR).join("nodes").join(node);
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The descriptor's entry for `node`.
    pub fn node_spec(&self, node: &str) -> Result<&NodeSpec> {
        self.desc.node(node).ok_or_else(|| Error::Connection {
            message: format!("no node `{node}` in the descriptor"),
            given: Some(node.to_string()),
            valid: self.desc.nodes.iter().map(|n| n.name.clone()).collect(),
        })
    }

    /// The management session with `node`, connecting if needed.
    pub fn client(&mut self, node: &str) -> Result<&mut NodeClient> {
        if !self.clients.contains_key(node) {
            let addr = self.node_spec(node)?.address;
            let client =
                NodeClient::connect(addr, self.timeout).map_err(|source| Error::Unreachable {
                    node: node.into(),
                    addr: addr.to_string(),
                    source,
                })?;
            self.clients.insert(node.into(), client);
        }
        Ok(self
            .clients
            .get_mut(node)
            .expect("session inserted just above"))
    }

    /// Drops the session with `node` (after an I/O error, say).
    pub fn disconnect(&mut self, node: &str) {
        self.clients.remove(node);
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

    /// The platform identity the deployer trusts for `node`: from the descriptor, or, for a
    /// local node this deployer provisioned, from its data directory.
    pub fn trusted_platform_key(&self, node: &str) -> Result<Vec<u8>> {
        let spec = self.node_spec(node)?;
        let file = match &spec.platform_key {
            Some(PlatformKeySource::Inline(k)) => return Ok(k.to_vec()),
            Some(PlatformKeySource::File(p)) => p.clone(),
            None => self.node_data_dir(node).join(aex_tee::PLATFORM_PUB_FILE),
        };
        let text = std::fs::read_to_string(&file).map_err(|_| Error::NoPlatformKey {
            node: node.into(),
            looked: Some(file.clone()),
        })?;
        hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or(Error::NoPlatformKey {
                node: node.into(),
                looked: Some(file),
            })
    }

    /// Sends `cmd` to `module` sealed under its module key and returns the module's answer.
    ///
    /// The command counter is reserved and saved before the command leaves this process.
    pub fn command(&mut self, module: &str, action: &str, cmd: &Command) -> Result<Vec<u8>> {
        let (node, sealed, channel) = {
            let rec =
                self.state
                    .state
                    .modules
                    .get_mut(module)
                    .ok_or_else(|| Error::NotDeployed {
                        module: module.into(),
                    })?;
            let mut channel = CommandChannel::resume(&rec.key.0, rec.last_command);
            let sealed = channel.seal_command(cmd).map_err(|source| Error::Command {
                module: module.into(),
                source,
            })?;
            rec.last_command = sealed.counter;
            (rec.node.clone(), sealed, channel)
        };
        self.state.save()?;
        let counter = sealed.counter;
        let answer = self.request(
            &node,
            action,
            NodeRequest::Command {
                module: module.into(),
                sealed,
            },
        )?;
        let NodeResponse::CommandReply(reply) = answer else {
            return Err(unexpected(&node, action, self));
        };
        match channel.open_reply(&reply, counter) {
            Ok(CommandReply::Done(bytes)) => Ok(bytes),
            Ok(CommandReply::Failed(message)) => Err(Error::Refused {
                module: module.into(),
                action: action.into(),
                message,
            }),
            Ok(_) => Err(Error::Refused {
                module: module.into(),
                action: action.into(),
                message: "unknown reply".into(),
            }),
            Err(source) => Err(Error::Command {
                module: module.into(),
                source,
            }),
        }
    }

    /// The stored key of a module (for operations that seal under it).
    pub fn module_key(&self, module: &str) -> Result<&SecretKey> {
        self.state
            .state
            .modules
            .get(module)
            .map(|m| &m.key.0)
            .ok_or_else(|| Error::NotDeployed {
                module: module.into(),
            })
    }
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
