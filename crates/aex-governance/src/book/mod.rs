//! The proposals of one governed application, and what their ballots decide.
//!
//! A proposal is open until its approvals reach its action's rule (accepted), its rejections
//! make that impossible (rejected), its proposer withdraws it, or its lifetime passes
//! (expired). An accepted proposal is applied once. Ballots count for the members of the
//! constitution in force when they are counted: a member removed since no longer counts, and
//! a member may change their vote while the proposal is open.
//!
//! Time is the caller's clock (milliseconds since the Unix epoch), passed into each call, so
//! that whatever holds the book decides expiry by its own clock, not a member's.

use crate::constitution::Constitution;
use crate::error::GovernanceError;
use crate::signed::{open, Ballot, Proposal, ProposalId, Signed, Vote, Withdrawal, MAX_SUMMARY};
pub use crate::status::Status;
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The most proposals open at once.
pub const MAX_OPEN: usize = 256;

/// The most decided proposals the book keeps (the ledger keeps them all); older ones are
/// forgotten first, and a ballot or `apply` for a forgotten one is refused as unknown.
pub const MAX_DECIDED: usize = 4096;

/// A proposal and its ballots. Serde, so that whatever holds the book keeps it (the governor
/// seals it as its state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its id.
    pub id: ProposalId,
    /// What it proposes.
    pub proposal: Proposal,
    /// The member who made it.
    pub proposer: String,
    /// The proposal as signed (what the ledger records).
    #[serde(with = "serde_bytes")]
    pub signed: Vec<u8>,
    /// Each member's latest ballot, as signed.
    pub ballots: BTreeMap<String, (Vote, Vec<u8>)>,
    /// Where it stands.
    pub status: Status,
    /// When it was received, by the book's clock.
    pub opened_ms: u64,
    /// When it expires if still open.
    pub expires_ms: u64,
    /// When it stopped being open, by the book's clock.
    pub decided_ms: Option<u64>,
}

impl Record {
    /// Approvals and rejections by members of `constitution`.
    pub fn counts(&self, constitution: &Constitution) -> (usize, usize) {
        let counted = |vote| {
            self.ballots
                .iter()
                .filter(|(name, (v, _))| {
                    *v == vote && constitution.members().iter().any(|m| &m.name == *name)
                })
                .count()
        };
        (counted(Vote::Approve), counted(Vote::Reject))
    }
}

/// The proposals of one application under its constitution.
///
/// Serde, so that whatever holds the book keeps it across restarts (the governor seals it).
/// Deserializing does not check it again: restore only a book this code serialized, from
/// storage that is authentic (a sealed state), never one a party sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Book {
    application: String,
    constitution: Constitution,
    /// As a list of records (each holds its id): formats whose map keys are strings (JSON,
    /// which the module runtime seals state in) have no key for a byte-string id.
    #[serde(with = "as_list")]
    records: BTreeMap<ProposalId, Record>,
    /// Decided proposals, oldest first (to forget beyond [`MAX_DECIDED`]).
    decided: VecDeque<ProposalId>,
}

impl Book {
    /// An empty book for `application`.
    pub fn new(application: impl Into<String>, constitution: Constitution) -> Self {
        Book {
            application: application.into(),
            constitution,
            records: BTreeMap::new(),
            decided: VecDeque::new(),
        }
    }

    /// The application it governs.
    pub fn application(&self) -> &str {
        &self.application
    }

    /// The constitution in force.
    pub fn constitution(&self) -> &Constitution {
        &self.constitution
    }

    /// A proposal.
    pub fn get(&self, id: &ProposalId) -> Option<&Record> {
        self.records.get(id)
    }

    /// Every proposal the book keeps, by id.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// Takes a signed proposal by a member. It opens with no ballots: its proposer votes like
    /// every member.
    pub fn propose(&mut self, signed: &[u8], now_ms: u64) -> Result<&Record, GovernanceError> {
        self.expire(now_ms);
        let opened = open::<Proposal>(signed)?;
        let proposer = self.member(&opened.signer, Proposal::WHAT)?;
        let proposal = opened.body;
        if proposal.application != self.application {
            return Err(GovernanceError::WrongApplication {
                expected: self.application.clone(),
                found: proposal.application,
            });
        }
        if proposal.summary.len() > MAX_SUMMARY {
            return Err(GovernanceError::Malformed {
                what: Proposal::WHAT,
                reason: format!(
                    "its summary has {} bytes, more than the {MAX_SUMMARY} allowed",
                    proposal.summary.len()
                ),
            });
        }
        let id = ProposalId(opened.digest);
        if self.records.contains_key(&id) {
            return Err(GovernanceError::AlreadyProposed { id });
        }
        let open = self.open_count();
        if open >= MAX_OPEN {
            return Err(GovernanceError::TooManyOpen { open });
        }
        let record = Record {
            id,
            proposal,
            proposer,
            signed: signed.to_vec(),
            ballots: BTreeMap::new(),
            status: Status::Open,
            opened_ms: now_ms,
            expires_ms: now_ms.saturating_add(self.constitution.lifetime_ms()),
            decided_ms: None,
        };
        self.records.insert(id, record);
        Ok(&self.records[&id])
    }

    /// Takes a member's signed ballot on proposal `given_for` (the proposal the caller means:
    /// a ballot signed for another one is refused, so it cannot be replayed here).
    pub fn vote(
        &mut self,
        given_for: ProposalId,
        signed: &[u8],
        now_ms: u64,
    ) -> Result<&Record, GovernanceError> {
        self.expire(now_ms);
        let opened = open::<Ballot>(signed)?;
        if opened.body.proposal != given_for {
            return Err(GovernanceError::OtherProposal {
                given_for,
                signed_for: opened.body.proposal,
            });
        }
        let voter = self.member(&opened.signer, Ballot::WHAT)?;
        let record = self.open_record(given_for)?;
        record
            .ballots
            .insert(voter, (opened.body.vote, signed.to_vec()));
        self.tally(given_for, now_ms);
        Ok(&self.records[&given_for])
    }

    /// Takes a proposer's signed withdrawal of their open proposal.
    pub fn withdraw(&mut self, signed: &[u8], now_ms: u64) -> Result<&Record, GovernanceError> {
        self.expire(now_ms);
        let opened = open::<Withdrawal>(signed)?;
        let by = self.member(&opened.signer, Withdrawal::WHAT)?;
        let id = opened.body.proposal;
        let record = self.open_record(id)?;
        if record.proposer != by {
            return Err(GovernanceError::NotProposer {
                id,
                proposer: record.proposer.clone(),
            });
        }
        self.decide(id, Status::Withdrawn, now_ms);
        Ok(&self.records[&id])
    }

    /// Marks an accepted proposal of an ordinary action (deploy, update, move, disable)
    /// applied, once, and returns it for the caller to carry out. A change of members or
    /// rules goes through [`Book::apply_constitution`].
    pub fn apply(&mut self, id: ProposalId, now_ms: u64) -> Result<&Proposal, GovernanceError> {
        let record = self.accepted(id, now_ms)?;
        if record.proposal.action.changes_constitution() {
            return Err(GovernanceError::WrongKind {
                id,
                action: record.proposal.action,
                reason: "it changes the constitution: apply it with the new constitution",
            });
        }
        self.decide(id, Status::Applied, now_ms);
        Ok(&self.records[&id].proposal)
    }

    /// Puts `new` in force for an accepted proposal whose change is `new`'s digest and is
    /// what its action says ([`crate::change::check`]: an `add_member` adds one member and
    /// changes nothing else, ...), once. Open proposals are counted again under it (a removed
    /// member's ballots stop counting; a member whose key was rotated votes again).
    pub fn apply_constitution(
        &mut self,
        id: ProposalId,
        new: Constitution,
        now_ms: u64,
    ) -> Result<(), GovernanceError> {
        let record = self.accepted(id, now_ms)?;
        let action = record.proposal.action;
        if !action.changes_constitution() {
            return Err(GovernanceError::WrongKind {
                id,
                action,
                reason: "it does not change the constitution: apply it as an action",
            });
        }
        if record.proposal.change != new.digest() {
            return Err(GovernanceError::OtherConstitution {
                id,
                approved: hex::encode(record.proposal.change),
                given: hex::encode(new.digest()),
            });
        }
        let diff = crate::change::check(action, &self.constitution, &new)
            .map_err(|mismatch| GovernanceError::NotItsAction { id, mismatch })?;
        // A key is rotated when it may be lost or stolen: what it signed on open proposals
        // no longer counts, and its member votes again with the new key.
        let rotated: Vec<String> = diff.rekeyed.into_iter().map(|(name, _, _)| name).collect();
        self.constitution = new;
        self.decide(id, Status::Applied, now_ms);
        let open: Vec<ProposalId> = self
            .records
            .values()
            .filter(|r| r.status == Status::Open)
            .map(|r| r.id)
            .collect();
        for id in open {
            if let Some(record) = self.records.get_mut(&id) {
                record.ballots.retain(|name, _| !rotated.contains(name));
            }
            self.tally(id, now_ms);
        }
        Ok(())
    }

    /// Expires the open proposals whose lifetime passed by `now_ms`; returns them.
    pub fn expire(&mut self, now_ms: u64) -> Vec<ProposalId> {
        let due: Vec<ProposalId> = self
            .records
            .values()
            .filter(|r| r.status == Status::Open && now_ms >= r.expires_ms)
            .map(|r| r.id)
            .collect();
        for id in &due {
            self.decide(*id, Status::Expired, now_ms);
        }
        due
    }

    fn member(
        &self,
        key: &[u8; aex_crypto::PUBLIC_IDENTITY_LEN],
        what: &'static str,
    ) -> Result<String, GovernanceError> {
        self.constitution
            .member_by_key(key)
            .map(|m| m.name.clone())
            .ok_or_else(|| GovernanceError::NotMember {
                what,
                key: hex::encode(key),
            })
    }

    fn open_record(&mut self, id: ProposalId) -> Result<&mut Record, GovernanceError> {
        let record = self
            .records
            .get_mut(&id)
            .ok_or(GovernanceError::UnknownProposal { id })?;
        if record.status != Status::Open {
            return Err(GovernanceError::Closed {
                id,
                status: record.status,
            });
        }
        Ok(record)
    }

    fn accepted(&mut self, id: ProposalId, now_ms: u64) -> Result<&Record, GovernanceError> {
        self.expire(now_ms);
        let record = self
            .records
            .get(&id)
            .ok_or(GovernanceError::UnknownProposal { id })?;
        match record.status {
            Status::Accepted => Ok(record),
            Status::Applied => Err(GovernanceError::AlreadyApplied { id }),
            status => Err(GovernanceError::NotAccepted { id, status }),
        }
    }

    /// Decides an open proposal by its ballots, if they decide it.
    fn tally(&mut self, id: ProposalId, now_ms: u64) {
        let Some(record) = self.records.get(&id) else {
            return;
        };
        let (approvals, rejections) = record.counts(&self.constitution);
        let required = self.constitution.required(record.proposal.action);
        let members = self.constitution.members().len();
        if approvals >= required {
            self.decide(id, Status::Accepted, now_ms);
        } else if members - rejections.min(members) < required {
            self.decide(id, Status::Rejected, now_ms);
        }
    }

    fn decide(&mut self, id: ProposalId, status: Status, now_ms: u64) {
        let Some(record) = self.records.get_mut(&id) else {
            return;
        };
        let was_open = record.status == Status::Open;
        record.status = status;
        if was_open {
            record.decided_ms = Some(now_ms);
            self.decided.push_back(id);
        }
        while self.decided.len() > MAX_DECIDED {
            if let Some(oldest) = self.decided.pop_front() {
                self.records.remove(&oldest);
            }
        }
    }

    fn open_count(&self) -> usize {
        self.records
            .values()
            .filter(|r| r.status == Status::Open)
            .count()
    }
}

/// The records map as a sequence of its records.
mod as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::Record;
    use crate::signed::ProposalId;

    pub(super) fn serialize<S: Serializer>(
        records: &BTreeMap<ProposalId, Record>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(records.values())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ProposalId, Record>, D::Error> {
        let list = Vec::<Record>::deserialize(d)?;
        Ok(list.into_iter().map(|r| (r.id, r)).collect())
    }
}

#[cfg(test)]
mod tests;
