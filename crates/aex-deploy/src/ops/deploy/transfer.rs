//! Handing a module's state from its old instance to its new one: `aex update`, and
//! `aex deploy` when a running module's code or node changed.
//!
//! Order of work, and why (every step is saved before the next, so a crash anywhere loses no
//! state and reuses no counter):
//! 1. the new instance is loaded under a fresh node-side name next to the old one, and
//!    attested (by the caller);
//! 2. the old instance is marked `retiring` (saved with the command's counter), then
//!    *retires*: it snapshots its state after the last event it accepted and drops every
//!    connection key, so nothing can change the state after the snapshot, and answers the
//!    snapshot's length and SHA-256. The deployer reads the snapshot in chunks
//!    (`ReadState`) and checks it against that digest. Asked again after a crash, the old
//!    instance answers the same snapshot; and a `retiring` record is replaced by the next
//!    deployment even if its instance still runs;
//! 3. the new record, holding the snapshot as `pending_state`, replaces the old one in the
//!    state, and the old instance is listed for unloading — in one save;
//! 4. the snapshot is written into the new instance in chunks (`WriteState`) and applied
//!    (`Restore{len, digest}`) before any of its connections is keyed (the module refuses a
//!    restore afterwards), then forgotten;
//! 5. the caller re-keys every connection touching the module (its instance changed) and
//!    installs the routes; then the retired instance is unloaded.
//!
//! A state is never given up on the node's word. An instance its node reports gone (not
//! running, or running other code) is still asked, with a sealed `Retire`, before anything is
//! loaded (`take_unconfirmed`); if it does not answer, the deployment stops with
//! [`Error::StateLost`], naming the module, unless the user discards that state
//! (`--discard-state`).
//!
//! The snapshot travels sealed under the old module key, then under the new one; the deployer
//! holds it in between, as it holds every key.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aex_proto::{
    Command, NodeErrorKind, NodeRequest, Retired, SnapshotInfo, StateBytes, STATE_CHUNK,
};

use super::pipeline::pipeline;
use super::plan::{Plan, StateSource};
use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};
use crate::progress::{Observer, StateLoss};
use crate::state::{ModuleRecord, RetiredInstance, Snapshot};

/// The largest snapshot the deployer takes over (it holds it in memory and in its state).
pub const MAX_SNAPSHOT: u64 = 1 << 30;

/// State chunks in flight at once, each way (bounds what the deployer and the node buffer).
const IN_FLIGHT: usize = 8;

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
    /// Whether the new instance took the state from the old one's sealed blobs on their
    /// node (both seal by signer) rather than from the deployer's copy.
    pub adopted: bool,
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

/// Retires the recorded instance of `module` (unless a snapshot of it is already held) and
/// installs `new` in its place with the old state as its pending snapshot. Saved before it
/// returns. `planned` is where the plan expected the state from (for the report).
pub(super) fn hand_over(
    app: &mut App,
    module: &str,
    mut new: ModuleRecord,
    planned: StateSource,
) -> Result<HandOver> {
    let Some(old) = app.module(module) else {
        return Err(Error::NotDeployed {
            module: module.into(),
        });
    };
    let from_node = old.node.clone();
    let old_slot = old.slot(module);
    let pending = old.pending_state.clone();
    let pending_sealed = old.pending_sealed;
    let pending_predecessor = old.pending_predecessor.clone();
    let old_seals = old.seals_by_signer;
    let retired_at = Instant::now();
    let ((snapshot, sealed), source) = match pending {
        // The instance its node called gone answered, before this run loaded anything.
        Some(s) if planned == StateSource::Unconfirmed => {
            ((Some(s), pending_sealed), StateSource::Unconfirmed)
        }
        // The owner's checkpoint, for an instance that is gone for good.
        Some(s) if planned == StateSource::Checkpoint => {
            ((Some(s), pending_sealed), StateSource::Checkpoint)
        }
        // An earlier hand-over was interrupted: its snapshot is the state.
        Some(s) => ((Some(s), pending_sealed), StateSource::Snapshot),
        None => (retire_or_lost(app, module)?, StateSource::Running),
    };
    let transfer = Transfer {
        module: module.into(),
        from_node: from_node.clone(),
        to_node: new.node.clone(),
        source,
        bytes: snapshot.as_ref().map(|s| s.bytes().len()),
        gap: Duration::ZERO,
        adopted: false,
    };
    // Both seal by signer on one node: the new instance can open the old one's blobs. An
    // interrupted hand-over's snapshot came from the instance before.
    new.pending_predecessor = match source {
        StateSource::Running if from_node == new.node && new.seals_by_signer && old_seals => {
            Some(old_slot.clone())
        }
        StateSource::Snapshot if from_node == new.node => pending_predecessor,
        _ => None,
    };
    new.pending_state = snapshot;
    new.pending_sealed = sealed;
    app.retire_instance(
        module,
        RetiredInstance {
            node: from_node,
            slot: old_slot,
        },
    );
    app.record_module(module, new);
    app.save()?;
    crate::crash::point("handed-over");
    Ok(HandOver {
        transfer,
        retired_at,
    })
}

/// Before anything is loaded: asks every instance the plan must take a state from, but whose
/// node reports it gone, for its snapshot, and keeps the snapshot as the record's pending
/// state. Stops at the first that cannot answer ([`Error::StateLost`]).
///
/// An instance that does not answer loses its state: `obs` is asked whether to start the
/// module from its default state instead ([`Observer::start_afresh`]); the modules it agrees
/// to are returned, to be planned as if discarded (`--discard-state`).
pub(super) fn take_unconfirmed(
    app: &mut App,
    plan: &Plan,
    obs: &dyn Observer,
) -> Result<BTreeSet<String>> {
    let unconfirmed: BTreeSet<&str> = plan
        .modules
        .iter()
        .filter(|m| m.state == StateSource::Unconfirmed)
        .map(|m| m.module.as_str())
        .collect();
    let mut afresh = BTreeSet::new();
    for module in unconfirmed {
        let (snapshot, sealed) = match retire_or_lost(app, module) {
            Ok(taken) => taken,
            Err(Error::StateLost {
                module,
                node,
                source,
                ..
            }) if obs.start_afresh(&StateLoss {
                module: module.clone(),
                node: node.clone(),
                why: crate::error::error_chain(&*source),
            }) =>
            {
                afresh.insert(module);
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(r) = app.module_mut(module) {
            r.pending_state = snapshot;
            r.pending_sealed = sealed;
        }
        app.save()?;
    }
    Ok(afresh)
}

/// [`retire`], with a failure that leaves the state out of reach (the node's answer, not the
/// module's own refusal) reported as [`Error::StateLost`].
fn retire_or_lost(app: &mut App, module: &str) -> Result<Retirement> {
    match retire(app, module) {
        Ok(snapshot) => Ok(snapshot),
        // The node's answer, no answer, an unauthentic reply, or a node the descriptor no
        // longer names: nothing the module itself said.
        Err(
            e @ (Error::Node { .. }
            | Error::Unreachable { .. }
            | Error::Timeout { .. }
            | Error::Command { .. }
            | Error::Connection { .. }),
        ) => {
            let (node, slot) = app
                .module(module)
                .map(|r| (r.node.clone(), r.slot(module)))
                .unwrap_or_default();
            Err(Error::StateLost {
                module: module.into(),
                node,
                slot,
                source: Box::new(e),
            })
        }
        Err(e) => Err(e),
    }
}

/// What an old instance handed over: its snapshot (`None`: its state is not transferable),
/// and the sealed-state version it retired at, if it persisted.
type Retirement = (Option<Snapshot>, Option<u64>);

/// Asks the recorded instance for its state and to leave every connection, and reads the
/// snapshot. The instance is marked `retiring` in the same save that reserves the counter.
fn retire(app: &mut App, module: &str) -> Result<Retirement> {
    if let Some(r) = app.module_mut(module) {
        r.retiring = true;
    }
    let answer = app.command(module, "retire the old instance", &Command::Retire)?;
    crate::crash::point("retired");
    let retired = Retired::decode(&answer).map_err(|source| Error::Command {
        module: module.into(),
        source,
    })?;
    let Some(info) = retired.state else {
        return Ok((None, retired.sealed));
    };
    let snapshot = read_snapshot(app, module, info)?;
    crate::crash::point("state-read");
    Ok((Some(snapshot), retired.sealed))
}

/// Reads a retired instance's snapshot (or a checkpoint), [`IN_FLIGHT`] chunks at a time, and checks it
/// against the length and digest the instance answered.
pub(crate) fn read_snapshot(app: &mut App, module: &str, info: SnapshotInfo) -> Result<Snapshot> {
    let unusable = |reason: String| Error::Snapshot {
        module: module.into(),
        reason,
    };
    if info.len > MAX_SNAPSHOT {
        return Err(unusable(format!(
            "it is {} bytes; aex transfers at most {MAX_SNAPSHOT} bytes",
            info.len
        )));
    }
    let mut bytes = StateBytes(Vec::with_capacity(info.len as usize));
    let offsets: Vec<u64> = (0..info.chunks()).map(|i| i * STATE_CHUNK as u64).collect();
    for batch in offsets.chunks(IN_FLIGHT) {
        let mut sent = vec![];
        let mut requests = vec![];
        for &offset in batch {
            let action = format!("read the old instance's state at byte {offset}");
            let sealed = app.seal_command(module, &Command::ReadState { offset })?;
            requests.push((
                sealed.node.clone(),
                action.clone(),
                NodeRequest::Command {
                    module: sealed.slot.clone(),
                    sealed: sealed.sealed.clone(),
                },
            ));
            sent.push((sealed, action, offset));
        }
        // Counters reserved before anything is sent.
        app.save()?;
        let answers = pipeline(app, requests)?;
        for ((sealed, action, offset), answer) in sent.iter().zip(answers) {
            let chunk = StateBytes(app.command_result(sealed, action, answer)?);
            let expected = (info.len - offset).min(STATE_CHUNK as u64);
            if chunk.0.len() as u64 != expected {
                return Err(unusable(format!(
                    "the chunk at byte {offset} holds {} bytes, not {expected}",
                    chunk.0.len()
                )));
            }
            bytes.0.extend_from_slice(&chunk.0);
        }
    }
    if SnapshotInfo::of(&bytes.0) != info {
        return Err(unusable(
            "its bytes do not match the length and SHA-256 the old instance answered".into(),
        ));
    }
    Ok(Snapshot::from_state(bytes))
}

/// Writes `snapshot` into the module's current instance, [`IN_FLIGHT`] chunks at a time, and
/// has it restored.
fn write_snapshot(
    app: &mut App,
    module: &str,
    snapshot: &Snapshot,
    sealed: Option<u64>,
) -> Result<()> {
    let bytes = snapshot.bytes();
    let chunks: Vec<(usize, &[u8])> = bytes
        .chunks(STATE_CHUNK)
        .enumerate()
        .map(|(i, c)| (i * STATE_CHUNK, c))
        .collect();
    for batch in chunks.chunks(IN_FLIGHT) {
        let mut sent = vec![];
        let mut requests = vec![];
        for &(offset, data) in batch {
            let action = format!("stage the state at byte {offset}");
            let cmd = Command::WriteState {
                offset: offset as u64,
                data: StateBytes(data.to_vec()),
            };
            let sealed = app.seal_command(module, &cmd)?;
            requests.push((
                sealed.node.clone(),
                action.clone(),
                NodeRequest::Command {
                    module: sealed.slot.clone(),
                    sealed: sealed.sealed.clone(),
                },
            ));
            sent.push((sealed, action));
        }
        app.save()?;
        let answers = pipeline(app, requests)?;
        for ((sealed, action), answer) in sent.iter().zip(answers) {
            app.command_result(sealed, action, answer)?;
        }
    }
    let info = SnapshotInfo::of(bytes);
    app.command(
        module,
        "restore the state",
        &Command::Restore {
            len: info.len,
            digest: info.digest,
            sealed,
        },
    )?;
    Ok(())
}

/// What [`restore_pending`] did besides staging snapshots.
#[derive(Default)]
pub(super) struct Restored {
    /// Modules whose new instance adopted its predecessor's sealed state.
    pub(super) adopted: BTreeSet<String>,
    /// Why an adoption was refused (the snapshot was staged instead): for the user, since a
    /// refusal may be a node handing over an old or foreign blob.
    pub(super) refused: Vec<String>,
}

/// Restores every snapshot still pending (this run's hand-overs and any an interrupted run
/// left) into its module's current instance: by adoption from its predecessor's sealed blobs
/// where both seal by signer on one node, else by staging the deployer's copy.
pub(super) fn restore_pending(app: &mut App) -> Result<Restored> {
    let pending: Vec<(String, Snapshot, Option<u64>, Option<String>)> = app
        .modules()
        .iter()
        .filter(|(_, r)| !r.retiring)
        .filter_map(|(n, r)| {
            Some((
                n.clone(),
                r.pending_state.clone()?,
                r.pending_sealed,
                r.pending_predecessor.clone(),
            ))
        })
        .collect();
    let mut restored = Restored::default();
    for (module, snapshot, sealed, predecessor) in pending {
        let refusal = match predecessor {
            Some(predecessor) => adopt(app, &module, predecessor, &snapshot, sealed)?,
            None => Some(String::new()),
        };
        match refusal {
            None => {
                restored.adopted.insert(module.clone());
            }
            Some(why) => {
                if !why.is_empty() {
                    restored.refused.push(format!(
                        "`{module}` did not adopt its old instance's sealed state ({why}); \
                         the deployer's copy of the state was restored instead"
                    ));
                }
                write_snapshot(app, &module, &snapshot, sealed)?;
            }
        }
        crate::crash::point("restored");
        if let Some(r) = app.module_mut(&module) {
            r.pending_state = None;
            r.pending_sealed = None;
            r.pending_predecessor = None;
        }
        app.save()?;
    }
    Ok(restored)
}

/// Has `module`'s new instance take `snapshot` from `predecessor`'s sealed blobs on their
/// node; why not if the module refused (no such blob opens, or the node withheld it): the
/// caller then stages the snapshot.
fn adopt(
    app: &mut App,
    module: &str,
    predecessor: String,
    snapshot: &Snapshot,
    sealed: Option<u64>,
) -> Result<Option<String>> {
    let info = SnapshotInfo::of(snapshot.bytes());
    let cmd = Command::Adopt {
        predecessor,
        len: info.len,
        digest: info.digest,
        sealed,
    };
    match app.command(module, "adopt its predecessor's sealed state", &cmd) {
        Ok(_) => Ok(None),
        Err(Error::Refused { message, .. }) => Ok(Some(message)),
        Err(e) => Err(e),
    }
}

/// Unloads retired instances; one whose node cannot be reached stays listed for next time,
/// and so does one whose state its module's new instance has yet to adopt (its sealed blobs
/// go with it).
pub(super) fn unload_retired(app: &mut App) -> Result<()> {
    if app.retired().is_empty() {
        return Ok(());
    }
    let retired = app.take_retired();
    for (module, instances) in retired {
        let adopting = app
            .module(&module)
            .filter(|r| r.pending_state.is_some())
            .and_then(|r| Some((r.node.clone(), r.pending_predecessor.clone()?)));
        for inst in instances {
            if adopting.as_ref() == Some(&(inst.node.clone(), inst.slot.clone())) {
                app.retire_instance(&module, inst);
                continue;
            }
            let gone = app.descriptor().node(&inst.node).is_none()
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
                app.retire_instance(&module, inst);
            }
        }
    }
    app.save()?;
    Ok(())
}
