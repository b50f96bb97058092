//! Where each module's instance runs, with a management session of its own to its node: for
//! the commands that keep asking nodes about modules after the application's state is closed
//! (`aex logs -f`, `aex events -f`), so that other commands run meanwhile.

use std::net::SocketAddr;

use aex_proto::{NodeRequest, NodeResponse};

use crate::app::App;
use crate::client::{ClientError, NodeClient};
use crate::error::{Error, Result};

/// A module's instance and a session with its node.
pub struct Reached {
    /// The module's name in the descriptor.
    pub module: String,
    /// The node its instance runs on.
    pub node: String,
    addr: SocketAddr,
    /// Its name on the node (after an update, the instance's slot).
    pub(crate) slot: String,
    client: NodeClient,
}

/// `module`, or every module of the descriptor, each with a session with its node.
pub fn reach(app: &mut App, module: Option<&str>) -> Result<Vec<Reached>> {
    let names: Vec<String> = match module {
        Some(name) if app.descriptor().module(name).is_none() => return Err(app.no_module(name)),
        Some(name) => vec![name.to_string()],
        None => app
            .descriptor()
            .modules
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    };
    let mut reached = Vec::with_capacity(names.len());
    for name in names {
        // Where the attested instance runs (after `aex update --node`, maybe not where the
        // descriptor says), and its name there.
        let (node, slot) = match app.module(&name) {
            Some(record) => (record.node.clone(), record.slot(&name)),
            None => {
                let spec = app
                    .descriptor()
                    .module(&name)
                    .expect("names come from the descriptor");
                (spec.node.clone(), spec.name.clone())
            }
        };
        reached.push(Reached {
            client: app.session(&node)?,
            addr: app.node_spec(&node)?.address,
            module: name,
            node,
            slot,
        });
    }
    Ok(reached)
}

impl Reached {
    /// Sends `body` to the module's node; `action` names it in errors.
    pub(crate) fn request(&mut self, action: &str, body: NodeRequest) -> Result<NodeResponse> {
        self.client.request(body).map_err(|source| Error::Node {
            node: self.node.clone(),
            action: format!("{action} of module `{}`", self.module),
            source,
        })
    }

    /// The error for an answer of the wrong kind to `action`.
    pub(crate) fn unexpected(&self, action: &str, request: &'static str) -> Error {
        Error::Node {
            node: self.node.clone(),
            action: format!("{action} of module `{}`", self.module),
            source: ClientError::Unexpected {
                addr: self.addr,
                request,
            },
        }
    }
}
