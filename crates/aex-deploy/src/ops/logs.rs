//! `aex logs`: modules' logs (their stderr, as their nodes keep it), read through the nodes'
//! management sessions, so that nobody needs to find a node's data directory or log in to its
//! machine.
//!
//! A node answers [`NodeRequest::Logs`] for the session's own namespace only. A [`LogFeed`]
//! holds its own session with the module's node, not the application: a follower (`aex logs
//! -f`) does not keep the application's state open, so other commands run meanwhile.

use aex_proto::{NodeRequest, NodeResponse};

use crate::app::App;
use crate::client::NodeClient;
use crate::error::{Error, Result};

/// One module's log, read from where the last read ended.
pub struct LogFeed {
    /// The module's name in the descriptor.
    pub module: String,
    node: String,
    addr: std::net::SocketAddr,
    /// Its name on the node (after an update, the instance's slot).
    slot: String,
    client: NodeClient,
    next: u64,
}

/// What a [`LogFeed::read`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// The bytes logged since the last read (module output: not necessarily UTF-8, and not
    /// to be trusted as terminal input).
    pub bytes: Vec<u8>,
    /// The log was rotated since the last read: what was written in between is in the node's
    /// `module.log.1`, and `bytes` start at the new file's beginning.
    pub rotated: bool,
}

/// A feed for `module`, or for every module of the descriptor, each with its own session with
/// its node.
pub fn feeds(app: &mut App, module: Option<&str>) -> Result<Vec<LogFeed>> {
    let names: Vec<String> = match module {
        Some(name) => {
            if app.descriptor().module(name).is_none() {
                return Err(Error::Connection {
                    message: format!("no module `{name}` in the descriptor"),
                    given: Some(name.to_string()),
                    valid: app
                        .descriptor()
                        .modules
                        .iter()
                        .map(|m| m.name.clone())
                        .collect(),
                });
            }
            vec![name.to_string()]
        }
        None => app
            .descriptor()
            .modules
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    };
    let mut feeds = Vec::with_capacity(names.len());
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
        let client = app.session(&node)?;
        feeds.push(LogFeed {
            module: name,
            addr: app.node_spec(&node)?.address,
            node,
            slot,
            client,
            next: 0,
        });
    }
    Ok(feeds)
}

impl LogFeed {
    /// The node the module runs on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Everything logged since the last read (the whole current log the first time).
    pub fn read(&mut self) -> Result<LogChunk> {
        let mut chunk = LogChunk::default();
        loop {
            let ask = NodeRequest::Logs {
                module: self.slot.clone(),
                from: self.next,
            };
            let answer = self.client.request(ask).map_err(|source| Error::Node {
                node: self.node.clone(),
                action: format!("read the log of module `{}`", self.module),
                source,
            })?;
            let NodeResponse::Logs { from, bytes, size } = answer else {
                return Err(Error::Node {
                    node: self.node.clone(),
                    action: format!("read the log of module `{}`", self.module),
                    source: crate::client::ClientError::Unexpected {
                        addr: self.addr,
                        request: "Logs",
                    },
                });
            };
            if from < self.next {
                chunk.rotated = true;
                // Bytes of the old file not yet shown are gone from this view.
                chunk.bytes.clear();
            }
            let got = bytes.len();
            self.next = from + got as u64;
            chunk.bytes.extend_from_slice(&bytes);
            // Caught up when the node had no more to give (a log is at most a few MiB).
            if got < NodeRequest::LOG_CHUNK || self.next >= size {
                return Ok(chunk);
            }
        }
    }
}
