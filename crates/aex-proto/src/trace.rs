//! The event trace a module's runtime keeps for `aex events`: each event it sealed or was
//! handed, with what became of it, and when.
//!
//! A runtime keeps the last [`TRACE_CAPACITY`] entries (older ones are overwritten: a trace is
//! for watching, not for accounting, which the counters in [`crate::ConnStats`] do). A node
//! relays the trace unauthenticated, like the counters: a lying node can alter what the
//! deployer sees of it, not what the module accepted.

use serde::{Deserialize, Serialize};

use crate::{ConnId, Direction};

/// Entries a runtime keeps.
pub const TRACE_CAPACITY: usize = 512;

/// A runtime's answer to a trace request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReport {
    /// The sequence number of the last entry it recorded: below what the asker saw last, it
    /// is another instance (restarted or updated), whose trace starts again from 1.
    pub last: u64,
    /// The entries after the one asked, oldest first.
    pub entries: Vec<TraceEntry>,
}

/// One event as a module's runtime saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Its place in the module's trace, from 1: a reader asks for the entries after the last
    /// it saw, and a jump says entries were overwritten before it asked.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch, by the module's clock.
    pub at_ms: u64,
    /// The connection.
    pub conn: ConnId,
    /// Its direction.
    pub dir: Direction,
    /// The event's counter (as it claimed, for a refused one).
    pub counter: u64,
    /// Ciphertext bytes.
    pub size: u32,
    /// What became of it.
    pub outcome: TraceOutcome,
}

/// What became of a traced event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TraceOutcome {
    /// Sealed and handed to the node.
    Sent,
    /// Authenticated and accepted; `gap` counters before it were never seen (events lost on
    /// the way).
    Accepted {
        /// Counters skipped since the last accepted event.
        gap: u64,
    },
    /// Refused: bad tag, replayed or stale counter, wrong direction or kind.
    Rejected,
    /// For a connection the module holds no key for.
    UnknownConn,
    /// Authenticated and accepted (after `gap` skipped counters), and then the module code it
    /// went to failed on it: its payload did not decode, the code returned an error, or it
    /// panicked (`ModuleStats::failures` says which port and why).
    Failed {
        /// Counters skipped before it.
        gap: u64,
    },
}
