//! Carrying out accepted proposals: the governor deploys the bundle a `deploy`, `update` or
//! `move` proposal approved, and disables what a `disable` proposal's order names
//! (`disable.rs`), as the application's only deployer.
//!
//! The governor's own deployer identity (made in the TEE at the first `start`, sealed) is
//! the one key the application's nodes admit for it, and the deployer state (module keys,
//! connection keys, counters) lives in the governor's sealed state only: no member's machine
//! holds a key that loads, keys, updates or disables the governed application. A deployment
//! runs on a thread of its own, outside the module's lock, from a copy of the sealed state;
//! its result (the new deployer state, and the proposal marked applied or failed) is
//! committed in one call, so a crash in between leaves the proposal accepted and the next
//! `start` runs it again (a deployment converges: what was done is kept).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aex::Handle;
use aex_crypto::SigningIdentity;
use aex_deploy::error::error_chain as chain;
use aex_deploy::ops::deploy::{apply, Options};
use aex_deploy::progress::Quiet;
use aex_deploy::state::State;
use aex_deploy::Identity;
use aex_governance::{Action, ProposalId, Status};

use crate::job::{carried_out, failed, load_bundle, note_authority, Job, Outcome};
use crate::store::Store;
use crate::Governor;

impl Governor {
    /// The next accepted proposal to carry out (marked `applying`), if any.
    fn next_job(&mut self) -> Option<Job> {
        let held = self.held.as_ref()?;
        let record = held.book.records().find(|r| {
            r.status == Status::Accepted
                && carried_out(r.proposal.action)
                && self
                    .outcomes
                    .get(&r.id.hex())
                    .is_none_or(|o| o.state == "applying")
        })?;
        let (id, record) = (record.id, record.clone());
        let state = match &self.deployed {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| format!("the sealed deployer state does not read back: {e}")),
            None => Ok(State::default()),
        };
        let seed = self
            .deployer
            .seed()
            .ok_or_else(|| "the sealed deployer key is damaged".to_owned());
        let (state, seed) = match (state, seed) {
            (Ok(state), Ok(seed)) => (state, seed),
            // Said where the members look (the proposal's outcome), not only in a log.
            (Err(e), _) | (_, Err(e)) => {
                self.outcomes.insert(id.hex(), failed(e));
                return None;
            }
        };
        let job = Job {
            id,
            change: record.proposal.change,
            action: record.proposal.action,
            application: held.book.application().to_owned(),
            in_force: crate::disable::in_force(&held.book),
            record,
            seed,
            state,
            provider_keys: self.provider_keys.clone(),
        };
        self.outcomes.insert(
            job.id.hex(),
            Outcome {
                state: "applying".into(),
                error: None,
                report: None,
            },
        );
        Some(job)
    }

    /// Keeps what a deployment left: the deployer state, and the proposal applied or failed.
    fn finish(&mut self, id: ProposalId, state: Option<String>, result: Result<String, String>) {
        if let Some(state) = state {
            self.deployed = Some(state);
        }
        let outcome = match result {
            Ok(report) => {
                let now = self.held.as_mut().map(|h| h.tick(crate::wall_ms()));
                match (self.held.as_mut(), now) {
                    (Some(h), Some(now)) => match h.book.apply(id, now) {
                        Ok(_) => Outcome {
                            state: "applied".into(),
                            error: None,
                            report: Some(report),
                        },
                        Err(e) => failed(format!("deployed, but the book refused it: {e}")),
                    },
                    _ => failed("the governor lost its book".into()),
                }
            }
            Err(e) => failed(e),
        };
        self.outcomes.insert(id.hex(), outcome);
    }

    /// Asks for a failed proposal to be carried out again (its change is still the approved
    /// one; a node that was down may be back).
    pub fn retry(&mut self, id: &ProposalId) -> Result<(), String> {
        let held = self.held.as_ref().ok_or("no constitution yet")?;
        let record = held.book.get(id).ok_or("no such proposal")?;
        let action = record.proposal.action;
        if record.status != Status::Accepted || !carried_out(action) {
            return Err(format!(
                "proposal {} is {} ({}): only an accepted deploy, update, move, disable or \
                 change of members or rules is carried out",
                id.hex(),
                record.status,
                record.proposal.action
            ));
        }
        self.outcomes.remove(&id.hex());
        Ok(())
    }
}

/// The thread that carries out accepted proposals, one at a time: started by `kick` when
/// none runs, it ends when no job is left.
pub struct Applier {
    running: AtomicBool,
    /// Set by every kick: a kick that found the thread running while it was finding no job
    /// left (and about to end) makes it look once more, so no accepted proposal waits for
    /// the next request.
    kicked: AtomicBool,
}

impl Applier {
    /// No thread running yet.
    pub const fn new() -> Applier {
        Applier {
            running: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
        }
    }

    /// Starts the thread if it is not running.
    pub fn kick(&'static self, handle: Handle<Governor>, store: Arc<Store>) {
        self.kicked.store(true, Ordering::Release);
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        std::thread::spawn(move || loop {
            self.kicked.store(false, Ordering::Release);
            self.work(&handle, &store);
            self.running.store(false, Ordering::Release);
            // Kicked since this round began, and no other thread took over: once more.
            if !self.kicked.load(Ordering::Acquire) || self.running.swap(true, Ordering::AcqRel) {
                break;
            }
        });
    }

    /// Carries out every accepted proposal, then records the ones decided otherwise, until
    /// none is left (or the module is gone).
    fn work(&self, handle: &Handle<Governor>, store: &Arc<Store>) {
        loop {
            let job = handle.call_committed(|g: &mut Governor, _ctx| g.next_job());
            let Ok(Some(job)) = job else {
                // Nothing accepted waits: record what was decided otherwise.
                let decided = handle.call(|g: &mut Governor, _ctx| g.next_unrecorded());
                let recorded = match decided {
                    Ok(Some(decided)) => crate::decided::record(handle, store, decided),
                    _ => false,
                };
                match recorded {
                    true => continue,
                    false => break,
                }
            };
            if job.record.proposal.action.changes_constitution() {
                // A change of members or rules: no deployment (members.rs).
                let state = job.state;
                match crate::members::carry_out(handle, store, &job.record, &job.seed, state) {
                    true => {
                        crate::recovery::refresh(handle, store);
                        continue;
                    }
                    false => break,
                }
            }
            let id = job.id;
            let (state, result) = run(job, store);
            if handle
                .call_committed(move |g: &mut Governor, _ctx| g.finish(id, state, result))
                .is_err()
            {
                break;
            }
            crate::recovery::refresh(handle, store);
        }
    }
}

/// Deploys one accepted bundle: the new deployer state (when it got as far as opening it)
/// and a report or the reason it failed.
fn run(job: Job, store: &Store) -> (Option<String>, Result<String, String>) {
    if job.action == Action::Disable {
        return crate::disable::run(job, store);
    }
    let bundle = match load_bundle(&job.change, &job.application, store) {
        Ok(bundle) => bundle,
        Err(e) => return (None, Err(e)),
    };
    let identity = Arc::new(Identity::from_signing(
        SigningIdentity::from_seed(&job.seed),
        Path::new("the governor's identity"),
    ));
    let workdir = store.workdir();
    let record = job.record;
    let id = record.id.hex();
    let (mut app, built) = match aex_deploy::bundle::open(
        &workdir,
        &bundle,
        &|d| store.binary(d),
        identity,
        job.state,
        job.provider_keys.keys(),
    ) {
        Ok(opened) => opened,
        Err(e) => return (None, Err(chain(&e))),
    };
    if job.action == Action::Move {
        if let Err(e) = crate::moves::only_moves(&app, &built) {
            return (None, Err(e));
        }
    }
    note_authority(&app, &record);
    let result = apply(&mut app, &built, &Quiet, &Options::default())
        .and_then(|r| {
            app.note_governance("proposal applied", &id, &record.proposer, &record.signed);
            app.save_now().map(|()| r)
        })
        .map(|r| {
            format!(
                "loaded {:?}, kept {:?}, keyed {:?}, removed {:?}",
                r.loaded, r.kept, r.keyed, r.removed
            )
        })
        .map_err(|e| chain(&e));
    let state = serde_json::to_string(app.state()).ok();
    (state, result)
}
