//! Revoking connections the descriptor no longer has: dropped, or re-wired (its source or
//! destination changed, e.g. `sensor.temp` moved from `heater` to `logger`).
//!
//! A connection's key lives in its endpoint modules, and its routes on their nodes. Removing
//! it from the deployer's records alone would leave the old receiver able to accept what the
//! old sender sent (recorded by a network attacker, or replayed by a node). So:
//! 1. every stale connection record moves to [`State::revocations`] with the module instances
//!    that may hold its key and the nodes that may hold its routes — in one save, before
//!    anything is sent; its id is never used again (a re-wired connection gets a new one);
//! 2. each holder is sent a sealed `Revoke{conn}` (it drops every key it holds for the
//!    connection) and each node `Unroute{conn, dir}` for both directions; each confirmation
//!    removes that holder or node from the revocation, and a complete revocation is dropped.
//!
//! Both commands are idempotent, so a revocation a crash interrupted is simply completed by
//! the next deployment. A holder or node that does not confirm stays listed (with a warning)
//! and is asked again by the next deployment; a holder that is no longer the recorded
//! instance of its module needs nothing more (a replaced instance retired or was replaced
//! with every key it held), and a module that leaves the descriptor is disabled as a whole.
//!
//! [`State::revocations`]: crate::state::State::revocations

use std::collections::{BTreeMap, BTreeSet};

use aex_proto::{Command, ConnId, Direction, NodeRequest};

use super::endpoints::from_string;
use super::report::DeployReport;
use crate::app::App;
use crate::error::error_chain;
use crate::error::Result;
use crate::state::Revocation;

/// Moves every connection record that the descriptor no longer has, or has re-wired, to the
/// pending revocations (one save).
pub(super) fn record_stale_connections(app: &mut App) -> Result<()> {
    let stale: Vec<String> = app
        .connections()
        .iter()
        .filter(|(name, r)| {
            match app
                .descriptor()
                .connections
                .iter()
                .find(|c| &c.name == *name)
            {
                None => true,
                Some(spec) => r.from != from_string(spec) || r.to != spec.to.to_string(),
            }
        })
        .map(|(name, _)| name.clone())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    for name in stale {
        let Some(record) = app.forget_connection(&name) else {
            continue;
        };
        let endpoints = [record.from.as_str(), record.to.as_str()]
            .into_iter()
            .filter(|e| *e != "deployer")
            .filter_map(|e| e.split_once('.').map(|(module, _)| module.to_string()));
        let mut holders = BTreeMap::new();
        let mut nodes = BTreeSet::new();
        for module in endpoints {
            let Some(m) = app.module(&module) else {
                continue;
            };
            nodes.insert(m.node.clone());
            // Whatever `record.instances` says: a crash may have delivered the key to an
            // instance before the record listed it.
            if app.descriptor().module(&module).is_some() {
                holders.insert(module, m.instance);
            }
        }
        app.record_revocation(Revocation {
            connection: name,
            id: record.id,
            holders,
            nodes,
        });
    }
    app.save()?;
    crate::crash::point("revoke-recorded");
    Ok(())
}

/// Sends what every pending revocation still needs; completed ones are dropped.
pub(super) fn complete(app: &mut App, report: &mut DeployReport) -> Result<()> {
    let pending = app.revocations().to_vec();
    for mut revocation in pending {
        let conn = ConnId(revocation.id);
        let name = revocation.connection.clone();
        // Instances no longer recorded hold nothing that matters any more (replaced ones
        // retired or were replaced with every key they held), nor do modules being disabled
        // as a whole. A retiring instance is still asked: its `Retire` may not have arrived.
        revocation.holders.retain(|module, instance| {
            app.module(module)
                .is_some_and(|m| m.instance == *instance && !m.disabling)
                && app.descriptor().module(module).is_some()
        });
        revocation
            .nodes
            .retain(|node| app.descriptor().node(node).is_some());
        let holders: Vec<String> = revocation.holders.keys().cloned().collect();
        for module in holders {
            let action = format!("drop the keys of revoked connection `{name}`");
            match app.command(&module, &action, &Command::Revoke { conn }) {
                Ok(_) => {
                    revocation.holders.remove(&module);
                }
                Err(e) => report.warnings.push(format!(
                    "connection `{name}` ({conn}) is not yet revoked in module `{module}` \
                     (the next `aex deploy` asks again): {}",
                    error_chain(&e)
                )),
            }
        }
        let nodes: Vec<String> = revocation.nodes.iter().cloned().collect();
        for node in nodes {
            let action = format!("remove the routes of revoked connection `{name}`");
            let unrouted = [Direction::Forward, Direction::Backward]
                .into_iter()
                .try_for_each(|dir| {
                    app.request(&node, &action, NodeRequest::Unroute { conn, dir })
                        .map(|_| ())
                });
            match unrouted {
                Ok(()) => {
                    revocation.nodes.remove(&node);
                }
                Err(e) => report.warnings.push(format!(
                    "the routes of revoked connection `{name}` ({conn}) are not yet removed \
                     from node `{node}` (the next `aex deploy` asks again): {}",
                    error_chain(&e)
                )),
            }
        }
        crate::crash::point("revoked");
        let done = app.settle_revocation(revocation);
        app.save()?;
        if done {
            report.revoked.push(name);
        }
    }
    Ok(())
}
