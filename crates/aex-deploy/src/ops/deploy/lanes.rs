//! Loading and attesting many modules at once. A node answers each management session's
//! requests one at a time, and most of a load is the node's own waiting (a process starting,
//! its `Hello`, its key agreement), so the deployer spreads the modules of one binary over
//! [`LANES`] sessions per node ([`App::lane`]) and sends, for each, `LoadStored` and then
//! `Attest` on the same session (in order there: the attestation finds the instance just
//! started), every request of a batch before reading any answer.
//!
//! What goes over the lanes is only what needs no upload and no earlier step: a plain module
//! (no devices), not replacing an instance of the same name, whose binary this deployment
//! already loaded on that node (so the node holds it). The others load one by one first, as
//! before: the first module of each binary per node (which uploads it unless the node holds
//! it), drivers, and replacements (unloaded first). A module the node answers `NotStored` for
//! after all is uploaded then.
//!
//! Records come back in the order of the jobs, one at a time, and the caller records each
//! (or hands its state over) before the next: the state file's rules do not change. When a
//! module fails, those before it are recorded first; later ones of its batch may be loaded
//! and even attested on their node without a record, and the next deployment replaces those
//! instances, as after a crash.

use std::collections::{HashMap, HashSet};

use aex_crypto::Measurement;
use aex_proto::{NodeErrorKind, NodeRequest, NodeResponse};

use super::attest::{attest_instance, Asked};
use super::load::{load, loaded};
use crate::app::App;
use crate::build::Built;
use crate::client::ClientError;
use crate::error::{Error, Result};
use crate::state::ModuleRecord;

/// Management sessions per node that loads and attestations are spread over.
pub(super) const LANES: usize = 8;
/// Modules whose requests are sent before the first answer is read.
const BATCH: usize = 128;

/// One module instance to load and attest.
pub(super) struct Job<'a> {
    /// The module.
    pub(super) name: &'a str,
    /// Its node.
    pub(super) node: &'a str,
    /// The instance's name on the node.
    pub(super) slot: String,
    /// What it is loaded from.
    pub(super) built: &'a Built,
    /// An instance of that name is on the node (unloaded first).
    pub(super) exists: bool,
}

/// Binaries this deployment loaded, by node: the node holds them.
pub(super) type Held = HashSet<(String, Measurement)>;

/// What comes back for one job sent over a lane.
type Sent = (
    Asked,
    std::result::Result<NodeResponse, ClientError>,
    std::result::Result<NodeResponse, ClientError>,
);

/// Loads and attests every job, and hands each record to `done`, in the order of `jobs`;
/// stops at the first error.
pub(super) fn load_and_attest(
    app: &mut App,
    jobs: &[Job<'_>],
    held: &mut Held,
    done: &mut dyn FnMut(&mut App, &Job<'_>, ModuleRecord) -> Result<()>,
) -> Result<()> {
    for batch in jobs.chunks(BATCH) {
        // One by one: what needs an upload or an unload first. A load that fails stops the
        // batch there, and the modules before it are attested and recorded before its error
        // is returned, as if each module were loaded and attested in turn.
        let mut fast = vec![false; batch.len()];
        let mut failed = None;
        for (i, job) in batch.iter().enumerate() {
            let binary = (job.node.to_string(), job.built.measurement);
            if job.built.devices.is_empty() && !job.exists && held.contains(&binary) {
                fast[i] = true;
                continue;
            }
            if let Err(e) = load(app, &job.slot, job.node, job.built, job.exists) {
                failed = Some(e);
                fast.truncate(i);
                break;
            }
            if job.built.devices.is_empty() {
                held.insert(binary);
            }
        }
        let batch = &batch[..fast.len()];
        // Over the lanes: `LoadStored` then `Attest` for each of the others.
        let mut requests = vec![];
        let mut asked = vec![];
        let mut next: HashMap<&str, usize> = HashMap::new();
        for (job, _) in batch.iter().zip(&fast).filter(|(_, f)| **f) {
            let lane = next.entry(job.node).or_default();
            let (ask, attest) = Asked::new(&job.slot);
            let load = NodeRequest::LoadStored {
                module: job.slot.clone(),
                measurement: job.built.measurement.0,
            };
            requests.push((job.node, *lane % LANES, load));
            requests.push((job.node, *lane % LANES, attest));
            asked.push(ask);
            *lane += 1;
        }
        let mut answers = send(app, requests)?.into_iter();
        let mut asked = asked.into_iter();
        let sent: Vec<Option<Sent>> = fast
            .iter()
            .map(|&f| {
                // Two answers for each job sent, in order.
                f.then(|| Some((asked.next()?, answers.next()?, answers.next()?)))
                    .flatten()
            })
            .collect();
        // In order: the attestations.
        for (job, sent) in batch.iter().zip(sent) {
            let record = match sent {
                None => {
                    crate::crash::point("load");
                    attest_instance(app, job.name, &job.slot, job.node, job.built)?
                }
                // The node no longer holds the binary (its modules are gone): uploaded.
                Some((_, Err(ClientError::Node(e)), _)) if e.kind == NodeErrorKind::NotStored => {
                    load(app, &job.slot, job.node, job.built, false)?;
                    crate::crash::point("load");
                    attest_instance(app, job.name, &job.slot, job.node, job.built)?
                }
                Some((ask, load, attest)) => {
                    loaded(app, &job.slot, job.node, job.built, load)?;
                    crate::crash::point("load");
                    ask.finish(app, job.name, job.node, job.built, attest)?
                }
            };
            done(app, job, record)?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

/// Sends every request on its node's lane without waiting for answers in between, then
/// collects the answers, in the order of `requests`; an answer may be a node's refusal. A
/// session that breaks is dropped.
fn send(
    app: &mut App,
    requests: Vec<(&str, usize, NodeRequest)>,
) -> Result<Vec<std::result::Result<NodeResponse, ClientError>>> {
    let mut ids = Vec::with_capacity(requests.len());
    let mut used: Vec<(&str, usize)> = vec![];
    for (node, lane, body) in requests {
        let id = app
            .lane(node, lane)?
            .send_request(body)
            .map_err(|source| broken(app, node, source))?;
        if !used.contains(&(node, lane)) {
            used.push((node, lane));
        }
        ids.push((node, lane, id));
    }
    for (node, lane) in used {
        app.lane(node, lane)?
            .flush()
            .map_err(|source| broken(app, node, source))?;
    }
    let mut answers = Vec::with_capacity(ids.len());
    for (node, lane, id) in ids {
        match app.lane(node, lane)?.response(id) {
            Err(e @ (ClientError::Io { .. } | ClientError::Closed { .. })) => {
                return Err(broken(app, node, e))
            }
            answer => answers.push(answer),
        }
    }
    Ok(answers)
}

/// The error for a session that failed while requests were sent; it is dropped.
fn broken(app: &mut App, node: &str, source: ClientError) -> Error {
    if matches!(source, ClientError::Io { .. } | ClientError::Closed { .. }) {
        app.disconnect(node);
    }
    Error::Node {
        node: node.into(),
        action: "load and attest modules".into(),
        source,
    }
}
