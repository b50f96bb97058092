//! Management requests: what a deployer may ask of the node, one request at a time per session.
//!
//! Each deployer session has one task running this file's [`serve`]: requests of a session are
//! answered in order, while other sessions and event routing carry on (a slow module delays
//! only the session waiting for it). Every request acts in the session's namespace only: a
//! deployer can load, attest, command, route, list and unload its own modules and no others,
//! and read the windows the node keeps for its own events (`Window`).
//! Requests the session layer refused (unauthenticated, unadmitted, badly signed or replayed)
//! arrive here already answered, so answers keep the order of requests. The node relays attestation and commands without
//! understanding them: commands and their replies are sealed under module keys it never sees,
//! and the evidence comes from the TEE backend, bound to the module's own public key.

use std::sync::Arc;
use std::time::Duration;

use aex_crypto::Measurement;
use aex_proto::frame::encode;
use aex_proto::{
    AppId, DeployerKey, FromModule, FromNode, NodeError as WireError, NodeErrorKind, NodeRequest,
    NodeResponse, NodeStatus, ToModule,
};
use aex_tee::Provider;
use tokio::task::JoinSet;
use tokio::time::sleep;
use tracing::{debug, info, instrument, warn};

use crate::error::refuse;
use crate::journal::RouteEntry;
use crate::load::Uploads;
use crate::module::{Expect, Module};
use crate::queue;
use crate::shared::Shared;

/// A request the session layer checked, or its refusal.
pub(crate) type Checked = (u64, Result<NodeRequest, WireError>);

/// Answers one session's requests, in order, until the session ends. The session acts in
/// namespace `app`, which belongs to deployer `owner` (the namespace derives from its key):
/// on symmetric TEEs its modules are keyed under `owner`'s provider key.
#[instrument(skip_all, fields(session, app = %app))]
pub(crate) async fn serve(
    shared: Arc<Shared>,
    session: u64,
    app: AppId,
    owner: DeployerKey,
    mut requests: queue::Receiver<Checked>,
    out: queue::Sender,
) {
    tracing::Span::current().record("session", session);
    let mut uploads = Uploads::new(app, owner);
    while let Some((id, checked)) = requests.recv().await {
        let body = match checked {
            Ok(body) => body,
            Err(refusal) => {
                let answer = FromNode::Response {
                    id,
                    result: Err(refusal),
                };
                if !out.send(encode(&answer)).await {
                    break;
                }
                continue;
            }
        };
        let shutdown = matches!(body, NodeRequest::Shutdown);
        debug!(id, request = request_name(&body), "request");
        let result = handle(&shared, app, &mut uploads, body, Working::new(id, &out)).await;
        if let Err(e) = &result {
            debug!(id, error = %e, "request refused");
        }
        let stop = shutdown && result.is_ok();
        if !out.send(encode(&FromNode::Response { id, result })).await {
            break;
        }
        if stop {
            info!("remote shutdown requested");
            // Give the session's writer a moment to send the answer before everything stops.
            for _ in 0..50 {
                if out.is_empty() {
                    break;
                }
                sleep(Duration::from_millis(10)).await;
            }
            sleep(Duration::from_millis(20)).await;
            shared.stop();
        }
    }
}

/// Tells the deployer that a request is still in progress ([`FromNode::Working`]), at most
/// once per [`Working::EVERY`]: its timeout then bounds the node's silence, not the work.
struct Working<'a> {
    id: u64,
    out: &'a queue::Sender,
    told: Duration,
}

impl<'a> Working<'a> {
    /// Well inside the deployer's timeout (15 s by default; fault tests shorten it).
    const EVERY: Duration = Duration::from_millis(250);

    fn new(id: u64, out: &'a queue::Sender) -> Self {
        Working {
            id,
            out,
            told: Duration::ZERO,
        }
    }

    /// The module showed progress after `waited`.
    fn progressed(&mut self, waited: Duration) {
        if waited >= self.told + Self::EVERY {
            self.told = waited;
            // Never waits: when the session's queue is full, the answer is not far behind.
            let _ = self
                .out
                .try_send(encode(&FromNode::Working { id: self.id }));
        }
    }
}

async fn handle(
    shared: &Shared,
    app: AppId,
    uploads: &mut Uploads,
    body: NodeRequest,
    mut working: Working<'_>,
) -> Result<NodeResponse, WireError> {
    match body {
        NodeRequest::LoadBegin { module, size } => uploads.begin(shared, module, size),
        NodeRequest::LoadChunk { module, data } => uploads.chunk(&module, &data),
        NodeRequest::LoadEnd { module } => uploads.finish(shared, &module, &[]).await,
        NodeRequest::LoadDriver { module, devices } => {
            uploads.finish(shared, &module, &devices).await
        }
        NodeRequest::LoadStored {
            module,
            measurement,
        } => {
            uploads
                .load_stored(shared, &module, Measurement(measurement))
                .await
        }
        NodeRequest::Attest {
            module,
            challenge,
            deployer_pk,
        } => attest(shared, app, uploads.owner(), &module, challenge, deployer_pk).await,
        NodeRequest::Command { module, sealed } => {
            let m = find(shared, app, &module)?;
            let counter = sealed.counter;
            match m
                .request_all(
                    vec![ToModule::Command(sealed)],
                    Expect::Command(counter),
                    shared.timeouts.reply,
                    |waited| working.progressed(waited),
                )
                .await?
            {
                FromModule::CommandReply(reply) => Ok(NodeResponse::CommandReply(reply)),
                _ => Err(refuse(
                    NodeErrorKind::Refused,
                    format!("module `{module}` rejected the command (not authentic or replayed)"),
                )),
            }
        }
        NodeRequest::Route {
            conn,
            dir,
            to,
            from,
        } => {
            let owner = *uploads.deployer();
            shared
                .router
                .install(&owner, app, conn, dir, to.clone(), from)?;
            shared.journal.record_route(&RouteEntry {
                owner,
                app,
                conn,
                dir,
                to,
                from,
            });
            Ok(NodeResponse::Done)
        }
        NodeRequest::Unroute { conn, dir } => {
            shared.router.uninstall(app, conn, dir);
            shared.journal.forget_route(app, conn, dir);
            Ok(NodeResponse::Done)
        }
        NodeRequest::Window { conn, dir } => match shared.router.window(app, conn, dir) {
            Some(w) => Ok(NodeResponse::Window {
                credit: w.credit,
                in_flight: w.in_flight,
            }),
            None => Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "no route takes the deployer's events on connection {conn} ({dir:?}): route it from the deployer (`Origin::Deployer`) first"
                ),
            )),
        },
        NodeRequest::Status => Ok(NodeResponse::Status(status(shared, app).await)),
        NodeRequest::Module { module } => Ok(NodeResponse::Module(Box::new(
            find(shared, app, &module)?.status(),
        ))),
        NodeRequest::Unload { module } => {
            let m = shared
                .router
                .remove_module(app, &module)
                .ok_or_else(|| unknown(shared, &module))?;
            // `remove_module` has released its devices.
            shared.journal.forget_module(app, &module);
            m.stop(shared.timeouts.stop).await;
            if let Some(p) = m.persistent().cloned() {
                // Gone for good: its counters and blobs go too (`sealed.rs`).
                let _ = tokio::task::spawn_blocking(move || p.destroy()).await;
            }
            // Its link to the stored binary goes, so the binary is pruned once no module
            // links it (`binaries.rs`); its log stays, for whoever looks into what it did.
            let bin = m.dir().join(crate::binaries::MODULE_BIN);
            if let Err(e) = std::fs::remove_file(&bin) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    warn!(module, error = %e, "cannot remove the binary of an unloaded module");
                }
            }
            info!(module, "module unloaded");
            Ok(NodeResponse::Done)
        }
        NodeRequest::Periodic { module, triggers } => {
            find(shared, app, &module)?.set_triggers(triggers.clone())?;
            shared.journal.record_triggers(app, &module, &triggers);
            Ok(NodeResponse::Done)
        }
        NodeRequest::Logs { module, from } => logs(shared, app, &module, from).await,
        NodeRequest::Trace { module, after } => {
            let m = find(shared, app, &module)?;
            match m
                .request(ToModule::Trace { after }, Expect::Trace, shared.timeouts.stats)
                .await?
            {
                FromModule::Trace(report) => Ok(NodeResponse::Trace(report)),
                _ => Err(refuse(
                    NodeErrorKind::ModuleUnavailable,
                    format!("module `{module}` gave no trace"),
                )),
            }
        }
        NodeRequest::Shutdown if shared.allow_remote_shutdown => Ok(NodeResponse::Done),
        NodeRequest::Shutdown => Err(refuse(
            NodeErrorKind::Refused,
            format!(
                "node `{}` does not accept remote shutdown (set `allow_remote_shutdown = true` in its configuration)",
                shared.name
            ),
        )),
        _ => Err(refuse(
            NodeErrorKind::BadRequest,
            "request not supported by this node agent",
        )),
    }
}

#[instrument(skip_all, fields(module = %name))]
async fn attest(
    shared: &Shared,
    app: AppId,
    owner: Provider,
    name: &str,
    challenge: [u8; 32],
    deployer_pk: [u8; 32],
) -> Result<NodeResponse, WireError> {
    let m = find(shared, app, name)?;
    let ask = ToModule::Attest {
        challenge,
        deployer_pk,
    };
    match m
        .request(ask, Expect::Attest, shared.timeouts.reply)
        .await?
    {
        FromModule::Attested {
            public_key,
            confirm,
            mac,
        } => {
            let evidence = shared
                .backend
                .evidence(
                    &owner,
                    m.measurement(),
                    &challenge,
                    Some(&public_key),
                    mac.as_deref(),
                )
                .map_err(|e| {
                    refuse(
                        NodeErrorKind::Refused,
                        format!("no evidence for module `{name}`: {e}"),
                    )
                })?;
            Ok(NodeResponse::Evidence {
                public_key,
                confirm,
                tee: shared.backend.kind().name().into(),
                evidence,
            })
        }
        _ => Err(refuse(
            NodeErrorKind::Refused,
            format!("module `{name}` refused attestation (it is already keyed)"),
        )),
    }
}

/// Node status with the modules of namespace `app`, each running module's own counters
/// fetched live and concurrently. Peers and counters are node-wide.
async fn status(shared: &Shared, app: AppId) -> NodeStatus {
    let modules = shared.router.modules(app);
    let limit = shared.timeouts.stats;
    let mut asks = JoinSet::new();
    for (i, m) in modules.iter().enumerate() {
        if m.running() {
            let m = m.clone();
            asks.spawn(async move {
                let stats = match m.request(ToModule::Stats, Expect::Stats, limit).await {
                    Ok(FromModule::Stats(stats)) => Some(stats),
                    _ => None,
                };
                (i, stats)
            });
        }
    }
    let mut stats = vec![None; modules.len()];
    while let Some(done) = asks.join_next().await {
        if let Ok((i, s)) = done {
            stats[i] = s;
        }
    }
    NodeStatus {
        name: shared.name.clone(),
        tee: shared.backend.kind().name().into(),
        platform_key: shared.platform_key.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        modules: modules
            .iter()
            .zip(stats)
            .map(|(m, stats)| aex_proto::ModuleStatus {
                stats,
                ..m.status()
            })
            .collect(),
        peers: shared.router.peers(),
        dropped: shared.router.dropped(),
        refused: shared.refused(),
    }
}

/// Up to [`NodeRequest::LOG_CHUNK`] bytes of module `name`'s log in namespace `app` from
/// `from` (from 0 if the file is now shorter: rotated). Read from the module's directory, so
/// the log of a module that crashed or was unloaded can be read too.
async fn logs(
    shared: &Shared,
    app: AppId,
    name: &str,
    from: u64,
) -> Result<NodeResponse, WireError> {
    crate::names::check_name(name)?;
    let path = shared
        .data_dir
        .join("modules")
        .join(app.to_string())
        .join(name)
        .join(crate::module::LOG_FILE);
    let read = tokio::task::spawn_blocking(move || read_log(&path, from)).await;
    match read {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown(shared, name)),
        Ok(Err(e)) => Err(refuse(
            NodeErrorKind::Io,
            format!("cannot read the log of module `{name}`: {e}"),
        )),
        Err(_) => Err(refuse(NodeErrorKind::Io, "the log reader failed")),
    }
}

/// What [`logs`] answers, read from the file at `path`.
fn read_log(path: &std::path::Path, from: u64) -> std::io::Result<NodeResponse> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let from = if from > size { 0 } else { from };
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(NodeRequest::LOG_CHUNK as u64)
        .read_to_end(&mut bytes)?;
    Ok(NodeResponse::Logs { from, bytes, size })
}

fn find(shared: &Shared, app: AppId, name: &str) -> Result<Arc<Module>, WireError> {
    shared
        .router
        .module(app, name)
        .ok_or_else(|| unknown(shared, name))
}

fn unknown(shared: &Shared, name: &str) -> WireError {
    refuse(
        NodeErrorKind::UnknownModule,
        format!("no module `{name}` on node `{}`", shared.name),
    )
}

/// A request's variant name, for logs (never its contents).
fn request_name(body: &NodeRequest) -> &'static str {
    match body {
        NodeRequest::LoadBegin { .. } => "LoadBegin",
        NodeRequest::LoadChunk { .. } => "LoadChunk",
        NodeRequest::LoadEnd { .. } => "LoadEnd",
        NodeRequest::Attest { .. } => "Attest",
        NodeRequest::Command { .. } => "Command",
        NodeRequest::Route { .. } => "Route",
        NodeRequest::Status => "Status",
        NodeRequest::Unload { .. } => "Unload",
        NodeRequest::Shutdown => "Shutdown",
        NodeRequest::Periodic { .. } => "Periodic",
        NodeRequest::LoadDriver { .. } => "LoadDriver",
        NodeRequest::Unroute { .. } => "Unroute",
        NodeRequest::Window { .. } => "Window",
        NodeRequest::LoadStored { .. } => "LoadStored",
        NodeRequest::Logs { .. } => "Logs",
        NodeRequest::Trace { .. } => "Trace",
        NodeRequest::Module { .. } => "Module",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use aex_proto::frame::{decode, LEN_PREFIX};

    use super::*;

    /// Progress reaches the deployer as `Working` for the request's id, at most once per
    /// `Working::EVERY` however often the module stores a chunk.
    #[tokio::test]
    async fn working_is_told_to_the_deployer_at_most_every_quarter_second() {
        let (out, mut rx) = queue::channel(1 << 20);
        let mut working = Working::new(7, &out);
        for ms in [10, 100, 260, 300, 400, 520, 600] {
            working.progressed(Duration::from_millis(ms));
        }
        drop(out);
        let mut told = vec![];
        while let Some(frame) = rx.recv().await {
            told.push(decode::<FromNode>(&frame[LEN_PREFIX..]).unwrap());
        }
        assert_eq!(told, vec![FromNode::Working { id: 7 }; 2]);
    }
}
