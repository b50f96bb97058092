//! `aex events`: the event trace of the application's modules, each event with its time,
//! connection, counter, size and what became of it (sent, accepted, rejected, or accepted
//! after a gap), as the modules' runtimes recorded it ([`aex_proto::trace`]).
//!
//! The trace travels like the counters of `aex status`: the node relays it unauthenticated,
//! so a lying node can alter what is shown, never what a module accepted. Each runtime keeps
//! its last [`aex_proto::TRACE_CAPACITY`] entries; a reader that falls further behind is told
//! how many it missed.

use std::collections::BTreeMap;

use aex_proto::{NodeErrorKind, NodeRequest, NodeResponse, TraceOutcome};
use serde::Serialize;

use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};
use crate::ops::reach::{reach, Reached};

/// One traced event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TracedEvent {
    /// When, in milliseconds since the Unix epoch, by the module's clock.
    pub at_ms: u64,
    /// The module that recorded it.
    pub module: String,
    /// The connection's name in the descriptor (`#ID` if the deployer does not know it).
    pub connection: String,
    /// The connection's id on the wire.
    pub conn: u32,
    /// `forward` or `backward`.
    pub dir: &'static str,
    /// The event's counter.
    pub counter: u64,
    /// Ciphertext bytes.
    pub size: u32,
    /// `sent`, `accepted`, `failed` (accepted, then its input or handler failed on it),
    /// `rejected` or `unknown-connection`.
    pub outcome: &'static str,
    /// For an accepted (or failed) event: counters skipped before it (events lost on the way).
    pub gap: u64,
}

/// What one [`EventFeed::read`] found.
#[derive(Debug, Default)]
pub struct TraceRead {
    /// New events of every module, oldest first.
    pub events: Vec<TracedEvent>,
    /// Modules whose runtime overwrote entries before they were read, and how many.
    pub missed: Vec<(String, u64)>,
    /// Modules that could not be asked (not deployed, not running), and why.
    pub unavailable: Vec<(String, String)>,
}

/// The traces of the application's modules, read from where each last read ended.
pub struct EventFeed {
    modules: Vec<(Reached, u64)>,
    /// Connection names by id.
    names: BTreeMap<u32, String>,
}

/// A feed for `module`'s trace, or every module's.
pub fn feed(app: &mut App, module: Option<&str>) -> Result<EventFeed> {
    let names = app
        .connections()
        .iter()
        .map(|(name, record)| (record.id, name.clone()))
        .collect();
    let modules = reach(app, module)?.into_iter().map(|r| (r, 0)).collect();
    Ok(EventFeed { modules, names })
}

impl EventFeed {
    /// Every module's entries since the last read (all it keeps, the first time).
    pub fn read(&mut self) -> Result<TraceRead> {
        const ACTION: &str = "read the event trace";
        let mut read = TraceRead::default();
        for (reached, after) in &mut self.modules {
            let ask = NodeRequest::Trace {
                module: reached.slot.clone(),
                after: *after,
            };
            let report = match reached.request(ACTION, ask) {
                Ok(NodeResponse::Trace(report)) => report,
                Ok(_) => return Err(reached.unexpected(ACTION, "Trace")),
                Err(Error::Node {
                    source: ClientError::Node(e),
                    ..
                }) if matches!(
                    e.kind,
                    NodeErrorKind::UnknownModule | NodeErrorKind::ModuleUnavailable
                ) =>
                {
                    read.unavailable.push((reached.module.clone(), e.message));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let entries = if report.last < *after {
                // Another instance (restarted, updated): its trace starts again from 1.
                *after = 0;
                match reached.request(
                    ACTION,
                    NodeRequest::Trace {
                        module: reached.slot.clone(),
                        after: 0,
                    },
                )? {
                    NodeResponse::Trace(report) => report.entries,
                    _ => return Err(reached.unexpected(ACTION, "Trace")),
                }
            } else {
                report.entries
            };
            // Overwritten before this read (the first read shows what is kept, no more).
            if let (Some(first), true) = (entries.first(), *after > 0) {
                let missed = first.seq.saturating_sub(*after + 1);
                if missed > 0 {
                    read.missed.push((reached.module.clone(), missed));
                }
            }
            if let Some(last) = entries.last() {
                *after = last.seq;
            }
            read.events.extend(entries.into_iter().map(|e| {
                let (outcome, gap) = match e.outcome {
                    TraceOutcome::Sent => ("sent", 0),
                    TraceOutcome::Accepted { gap } => ("accepted", gap),
                    TraceOutcome::Failed { gap } => ("failed", gap),
                    TraceOutcome::Rejected => ("rejected", 0),
                    _ => ("unknown-connection", 0),
                };
                TracedEvent {
                    at_ms: e.at_ms,
                    module: reached.module.clone(),
                    connection: self
                        .names
                        .get(&e.conn.0)
                        .cloned()
                        .unwrap_or_else(|| format!("#{}", e.conn.0)),
                    conn: e.conn.0,
                    dir: match e.dir {
                        aex_proto::Direction::Forward => "forward",
                        aex_proto::Direction::Backward => "backward",
                    },
                    counter: e.counter,
                    size: e.size,
                    outcome,
                    gap,
                }
            }));
        }
        read.events
            .sort_by(|a, b| (a.at_ms, &a.module).cmp(&(b.at_ms, &b.module)));
        Ok(read)
    }
}
