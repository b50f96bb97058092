//! Restarting persistent modules: those whose process ended on its own, and, when the node
//! itself starts again, those its journal recorded (`journal.rs`; [`recover`]).
//!
//! A module that declared itself persistent and has committed sealed state is restarted by
//! its node, with no deployer: a new process of the same binary, handed the platform's keys
//! and then every stored blob, newest first (`ToModule::Resume`, `ToModule::ResumeEnd`). Its
//! runtime resumes from the blob its platform counter names, or refuses and says why ("rollback
//! detected", ...), which status reports. The new process takes the old one's place in the
//! router (routes, credit and devices are the module's, by name) and gets its periodic
//! triggers back.
//!
//! Restarts back off: the n-th restart of a module waits `RESTART_DELAY * 2^(n-1)`, at most
//! [`MAX_RESTART_DELAY`], so a module that crashes on every start costs little. A module that
//! was unloaded or replaced meanwhile, or a node that is stopping, is not restarted, and
//! neither is a module that never committed (it has nothing to resume from and waits for its
//! deployer as before). A module whose blobs disappeared after the node saw one stored is
//! restarted all the same, so that it reports the loss instead of staying silently dead.

use std::sync::{Arc, Weak};
use std::time::Duration;

use std::time::Instant;

use aex_proto::{FromModule, PersistenceStatus, ResumeOutcome, ToModule};
use aex_tee::devices::Holder;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::journal::{ModuleEntry, RouteEntry};
use crate::load::{spawn, Process};
use crate::module::{Expect, Module};
use crate::sealed::{read_chunks, version_of, BlobStore};
use crate::shared::Shared;

/// The wait before a module's first restart.
const RESTART_DELAY: Duration = Duration::from_millis(50);

/// The longest wait between restarts.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// How long a restarted process may take to resume.
const RESUME_LIMIT: Duration = Duration::from_secs(30);

/// Restarts the modules reported on `exits` for as long as the node runs.
pub(crate) async fn supervise(shared: Arc<Shared>, mut exits: mpsc::Receiver<Weak<Module>>) {
    while let Some(module) = exits.recv().await {
        let Some(module) = module.upgrade() else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move { restart(&shared, module).await });
    }
}

async fn restart(shared: &Shared, old: Arc<Module>) {
    let Some(persistent) = old.persistent().cloned() else {
        return;
    };
    let status = persistent.status();
    // Blobs gone that this node saw stored still mean a restart: the module says what is
    // missing, rather than the node quietly leaving it dead.
    if !persistent.has_blobs() && status.stored == 0 {
        info!(
            module = old.name(),
            "persistent module ended before its first commit; not restarted"
        );
        return;
    }
    let delay = RESTART_DELAY
        .saturating_mul(1 << status.restarts.min(16))
        .min(MAX_RESTART_DELAY);
    tokio::time::sleep(delay).await;
    let current = shared.router.module(old.app(), old.name());
    if *shared.shutdown.borrow() || !current.is_some_and(|m| Arc::ptr_eq(&m, &old)) {
        return;
    }
    let process = Process {
        app: old.app(),
        owner: *old.owner(),
        name: old.name(),
        dir: old.dir(),
        measurement: *old.measurement(),
    };
    let new = match spawn(shared, &process, status).await {
        Ok(new) => new,
        Err(e) => {
            warn!(module = old.name(), error = %e.message, "cannot restart persistent module");
            // Said where its owner looks (`aex status`), not only in the node's log.
            persistent.restarted(ResumeOutcome::Refused(format!(
                "the node could not start the process again: {}",
                e.message
            )));
            return;
        }
    };
    let outcome = resume(&new, &persistent.blobs()).await;
    match &outcome {
        ResumeOutcome::Resumed { version } => {
            info!(module = old.name(), version, "module restarted and resumed")
        }
        ResumeOutcome::Refused(reason) => {
            warn!(module = old.name(), %reason, "restarted module refused its sealed state")
        }
    }
    if let Some(p) = new.persistent() {
        p.restarted(outcome);
    }
    if !shared.router.replace_module(&old, new.clone()) {
        // Unloaded or replaced while this process started.
        new.kill();
        return;
    }
    if let Err(e) = new.set_triggers(old.triggers()) {
        warn!(module = old.name(), error = %e.message, "cannot restore periodic triggers");
    }
}

/// When the node starts, before it serves: installs every route its journal recorded, then
/// brings back each persistent module that has sealed state, resumed, with its devices and
/// periodic triggers (concurrently; each resumption is bounded by [`RESUME_LIMIT`]). A
/// deployer that connects then finds them as they were, so its next deploy changes nothing.
/// Modules that do not persist, or never committed, are not started: they wait for their
/// deployer, as before.
pub(crate) async fn recover(shared: &Arc<Shared>) {
    for route in shared.journal.routes() {
        let RouteEntry {
            owner,
            app,
            conn,
            dir,
            to,
            from,
        } = route;
        if let Err(e) = shared.router.install(&owner, app, conn, dir, to, from) {
            warn!(%app, conn = conn.0, error = %e.message, "cannot restore a route");
        }
    }
    let mut restoring = tokio::task::JoinSet::new();
    for entry in shared.journal.modules() {
        if !entry.persistent {
            continue;
        }
        let shared = shared.clone();
        restoring.spawn(async move { restore(&shared, entry).await });
    }
    while restoring.join_next().await.is_some() {}
}

/// Starts a recorded persistent module again and resumes it.
async fn restore(shared: &Shared, entry: ModuleEntry) {
    let Some(measurement) = entry.measurement() else {
        warn!(
            module = entry.name,
            "a journal entry with no valid measurement; not restored"
        );
        return;
    };
    let dir = shared
        .data_dir
        .join("modules")
        .join(entry.app.to_string())
        .join(&entry.name);
    let blobs = BlobStore::new(&dir).versions();
    if blobs.is_empty() {
        info!(
            module = entry.name,
            "persistent module never committed; it waits for its deployer"
        );
        return;
    }
    let holder = Holder::new(entry.app.to_string(), entry.name.as_str());
    if !entry.devices.is_empty() {
        if let Err(e) = shared.devices.claim(&holder, &entry.devices) {
            warn!(module = entry.name, error = %e, "cannot claim the devices of a restored driver");
            return;
        }
    }
    let process = Process {
        app: entry.app,
        owner: entry.owner,
        name: &entry.name,
        dir: &dir,
        measurement,
    };
    let started = Instant::now();
    let new = match spawn(shared, &process, PersistenceStatus::default()).await {
        Ok(new) => new,
        Err(e) => {
            warn!(module = entry.name, error = %e.message, "cannot restore persistent module");
            shared.devices.release(&holder);
            return;
        }
    };
    let Some(persistent) = new.persistent().cloned() else {
        warn!(
            module = entry.name,
            "a module recorded persistent no longer says so; stopped"
        );
        new.kill();
        shared.devices.release(&holder);
        return;
    };
    let outcome = resume(&new, &persistent.blobs()).await;
    info!(
        module = entry.name,
        ?outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "module restored after the node's restart"
    );
    persistent.restarted(outcome);
    if let Err(e) = shared.router.insert_module(new.clone()) {
        warn!(module = entry.name, error = %e.message, "a module of that name was loaded meanwhile");
        new.kill();
        return;
    }
    if let Err(e) = new.set_triggers(entry.triggers) {
        warn!(module = entry.name, error = %e.message, "cannot restore periodic triggers");
    }
}

/// Hands `new` the stored blobs at `paths` (newest first) and waits for its answer.
async fn resume(new: &Module, paths: &[std::path::PathBuf]) -> ResumeOutcome {
    let mut msgs = Vec::new();
    for path in paths {
        let Some(version) = version_of(path) else {
            continue;
        };
        let path = path.clone();
        match tokio::task::spawn_blocking(move || read_chunks(&path, version)).await {
            Ok(Ok(chunks)) => msgs.extend(chunks.into_iter().map(ToModule::Resume)),
            Ok(Err(e)) => warn!(version, error = %e, "cannot read a sealed blob"),
            Err(_) => {}
        }
    }
    msgs.push(ToModule::ResumeEnd);
    match new
        .request_all(msgs, Expect::Resumed, RESUME_LIMIT, |_| ())
        .await
    {
        Ok(FromModule::Resumed(outcome)) => outcome,
        Ok(_) => ResumeOutcome::Refused("the module answered something else".into()),
        Err(e) => ResumeOutcome::Refused(e.message),
    }
}
