//! Handing a module's state from its old instance to its new one: `aex update`, and
//! `aex deploy` when a running module's code or node changed.
//!
//! Order of work, and why (every step is saved before the next, so a crash anywhere loses no
//! state and reuses no counter):
//! 1. the new instance is loaded under a fresh node-side name next to the old one, and
//!    attested (by the caller);
//! 2. the old instance *retires*: it snapshots its state after the last event it accepted and
//!    drops every connection key, so nothing can change the state after the snapshot. Asked
//!    again after a crash, it answers the same snapshot;
//! 3. the new record, holding the snapshot as `pending_state`, replaces the old one in the
//!    state, and the old instance is listed for unloading — in one save;
//! 4. the snapshot is restored into the new instance before any of its connections is keyed
//!    (the module refuses a restore afterwards), then forgotten;
//! 5. the caller re-keys every connection touching the module (its instance changed) and
//!    installs the routes; then the retired instance is unloaded.
//!
//! The snapshot travels sealed under the old module key, then under the new one; the deployer
//! holds it in between, as it holds every key.

use std::time::{Duration, Instant};

use aex_proto::{Command, NodeErrorKind, NodeRequest, Retired};
use zeroize::Zeroizing;

use super::plan::StateSource;
use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};
use crate::state::{ModuleRecord, RetiredInstance, StoredBytes};

/// How one module's state moved to its new instance.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The module.
    pub module: String,
    /// Node of the old instance.
    pub from_node: String,
    /// Node of the new instance.
    pub to_node: String,
    /// Where the new instance's state came from.
    pub source: StateSource,
    /// Size of the snapshot moved, if any.
    pub bytes: Option<usize>,
    /// From the old instance's retirement until every connection touching the module was
    /// re-keyed and routed: the time the module took part in no connection.
    pub gap: Duration,
}

/// A hand-over in progress: the gap is running.
pub(super) struct HandOver {
    transfer: Transfer,
    retired_at: Instant,
}

impl HandOver {
    /// Stops the clock: the module's connections are keyed again.
    pub(super) fn finish(mut self) -> Transfer {
        self.transfer.gap = self.retired_at.elapsed();
        self.transfer
    }
}

/// Retires the recorded instance of `module` (if `live`) and installs `new` in its place with
/// the old state as its pending snapshot. Saved before it returns.
pub(super) fn hand_over(
    app: &mut App,
    module: &str,
    mut new: ModuleRecord,
    live: bool,
) -> Result<HandOver> {
    let Some(old) = app.state.state.modules.get_mut(module) else {
        return Err(Error::NotDeployed {
            module: module.into(),
        });
    };
    let from_node = old.node.clone();
    let old_slot = old.slot(module);
    let pending = old.pending_state.take();
    let retired_at = Instant::now();
    let (snapshot, source) = match pending {
        // An earlier hand-over was interrupted: its snapshot is the state (the instance it
        // was meant for never got to run with it).
        Some(s) => (Some(s), StateSource::Snapshot),
        None if live => (retire(app, module)?, StateSource::Running),
        None => (None, StateSource::Fresh),
    };
    let transfer = Transfer {
        module: module.into(),
        from_node: from_node.clone(),
        to_node: new.node.clone(),
        source,
        bytes: snapshot.as_ref().map(|s| s.0.len()),
        gap: Duration::ZERO,
    };
    new.pending_state = snapshot;
    app.state
        .state
        .retired
        .entry(module.into())
        .or_default()
        .push(RetiredInstance {
            node: from_node,
            slot: old_slot,
        });
    app.state.state.modules.insert(module.into(), new);
    app.state.save()?;
    Ok(HandOver {
        transfer,
        retired_at,
    })
}

/// Asks the old instance for its state and to leave every connection.
fn retire(app: &mut App, module: &str) -> Result<Option<StoredBytes>> {
    let answer = app.command(module, "retire the old instance", &Command::Retire)?;
    let retired = Retired::decode(&answer).map_err(|source| Error::Command {
        module: module.into(),
        source,
    })?;
    Ok(retired
        .state
        .map(|s| StoredBytes(Zeroizing::new(s.0.clone()))))
}

/// Restores every snapshot still pending (this run's hand-overs and any an interrupted run
/// left) into its module's current instance.
pub(super) fn restore_pending(app: &mut App) -> Result<()> {
    let pending: Vec<String> = app
        .state
        .state
        .modules
        .iter()
        .filter(|(_, r)| r.pending_state.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    for module in pending {
        let state = match &app.state.state.modules[&module].pending_state {
            Some(s) => aex_proto::StateBytes(s.0.to_vec()),
            None => continue,
        };
        app.command(&module, "restore the state", &Command::Restore { state })?;
        if let Some(r) = app.state.state.modules.get_mut(&module) {
            r.pending_state = None;
        }
        app.state.save()?;
    }
    Ok(())
}

/// Unloads retired instances; one whose node cannot be reached stays listed for next time.
pub(super) fn unload_retired(app: &mut App) -> Result<()> {
    if app.state.state.retired.is_empty() {
        return Ok(());
    }
    let retired = std::mem::take(&mut app.state.state.retired);
    for (module, instances) in retired {
        for inst in instances {
            let gone = app.desc.node(&inst.node).is_none()
                || match app.request(
                    &inst.node,
                    &format!("unload the retired instance of `{module}`"),
                    NodeRequest::Unload {
                        module: inst.slot.clone(),
                    },
                ) {
                    Ok(_) => true,
                    Err(Error::Node {
                        source: ClientError::Node(e),
                        ..
                    }) => e.kind == NodeErrorKind::UnknownModule,
                    Err(_) => false,
                };
            if !gone {
                app.state
                    .state
                    .retired
                    .entry(module.clone())
                    .or_default()
                    .push(inst);
            }
        }
    }
    app.state.save()?;
    Ok(())
}
