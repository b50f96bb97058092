//! Proposals decided without being carried out (rejected, withdrawn, expired) go into the
//! ledger too, so that it holds every proposal and every ballot, not only those that changed
//! something: a member can show afterwards what was proposed and who voted how, whatever
//! became of it.
//!
//! They are appended on the applier's thread, the ledger's one writer, when no accepted
//! proposal waits: the governor's attested certificate, the signed proposal, each ballot as
//! signed, then `proposal rejected`, `proposal withdrawn` or `proposal expired`. Which ones
//! are in the ledger is kept in the sealed state with the ledger's new mark, in one commit; a
//! crash between the append and the commit appends them again at the next run (the ledger
//! then shows them twice, never not at all).

use std::collections::BTreeSet;

use aex::Handle;
use aex_deploy::audit::GovernanceRecord;
use aex_deploy::state::State;
use aex_governance::{Record, Status};

use crate::job::append_authority;
use crate::store::Store;
use crate::Governor;

/// The ids (hex) of the decided proposals already in the ledger.
pub type Recorded = BTreeSet<String>;

/// One decided proposal to record, with what appending needs from the sealed state.
pub struct Unrecorded {
    record: Record,
    seed: [u8; 32],
    state: State,
}

/// The ledger kind that closes a proposal decided with `status` without being carried out.
fn closing_kind(status: Status) -> Option<&'static str> {
    match status {
        Status::Rejected => Some("proposal rejected"),
        Status::Withdrawn => Some("proposal withdrawn"),
        Status::Expired => Some("proposal expired"),
        _ => None,
    }
}

impl Governor {
    /// The next decided proposal that was not carried out and is not in the ledger yet.
    /// Forgets the ids of proposals the book no longer keeps, so the set stays as bounded as
    /// the book.
    pub(crate) fn next_unrecorded(&mut self) -> Option<Unrecorded> {
        let held = self.held.as_ref()?;
        let book = &held.book;
        self.recorded
            .retain(|id| crate::parse_id(id).is_some_and(|id| book.get(&id).is_some()));
        let record = book
            .records()
            .find(|r| closing_kind(r.status).is_some() && !self.recorded.contains(&r.id.hex()))?
            .clone();
        let state = match &self.deployed {
            Some(json) => serde_json::from_str(json).ok()?,
            None => State::default(),
        };
        Some(Unrecorded {
            record,
            seed: self.deployer.seed()?,
            state,
        })
    }
}

/// Appends one decided proposal to the ledger and commits that it is there. Returns false
/// when the applier should stop (the module is gone, or the ledger cannot be written: the
/// next kick tries again).
pub fn record(handle: &Handle<Governor>, store: &Store, job: Unrecorded) -> bool {
    let Unrecorded {
        record,
        seed,
        mut state,
    } = job;
    let Some(closing) = closing_kind(record.status) else {
        return false;
    };
    let id = record.id.hex();
    let closing_record = GovernanceRecord::Signed {
        kind: closing,
        proposal: &id,
        member: &record.proposer,
        signed: &record.signed,
    };
    let appended = append_authority(store, &record, closing_record, &seed, &mut state);
    if let Err(e) = appended {
        eprintln!("governor: cannot record proposal {id} ({closing}) in the ledger: {e}");
        return false;
    }
    let json = serde_json::to_string(&state).ok();
    handle
        .call_committed(move |g: &mut Governor, _ctx| {
            if json.is_some() {
                g.deployed = json;
            }
            g.recorded.insert(id);
        })
        .is_ok()
}
