//! `aex logs`: modules' logs (their stderr, as their nodes keep it), read through the nodes'
//! management sessions, so that nobody needs to find a node's data directory or log in to its
//! machine.
//!
//! A node answers [`NodeRequest::Logs`] for the session's own namespace only. A [`LogFeed`]
//! holds its own session with the module's node, not the application: a follower (`aex logs
//! -f`) does not keep the application's state open, so other commands run meanwhile.

use aex_proto::{NodeRequest, NodeResponse};

use crate::app::App;
use crate::error::Result;
use crate::ops::reach::{reach, Reached};

/// One module's log, read from where the last read ended.
pub struct LogFeed {
    reached: Reached,
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
    Ok(reach(app, module)?
        .into_iter()
        .map(|reached| LogFeed { reached, next: 0 })
        .collect())
}

impl LogFeed {
    /// The module's name in the descriptor.
    pub fn module(&self) -> &str {
        &self.reached.module
    }

    /// The node the module runs on.
    pub fn node(&self) -> &str {
        &self.reached.node
    }

    /// Everything logged since the last read (the whole current log the first time).
    pub fn read(&mut self) -> Result<LogChunk> {
        const ACTION: &str = "read the log";
        let mut chunk = LogChunk::default();
        loop {
            let ask = NodeRequest::Logs {
                module: self.reached.slot.clone(),
                from: self.next,
            };
            let NodeResponse::Logs { from, bytes, size } = self.reached.request(ACTION, ask)?
            else {
                return Err(self.reached.unexpected(ACTION, "Logs"));
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
