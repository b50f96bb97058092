//! The wire shape of a proposal's standing, shared by the governor, which serves it, and the
//! members' commands, which read it.

use serde::{Deserialize, Serialize};

use crate::{Constitution, Record};

/// A proposal as the governor's `GET /proposals` shows it and members' `aex proposals` reads
/// it: one type on both sides of the wire. Fields a newer governor adds are ignored by older
/// readers (no `deny_unknown_fields`), and those an older one lacks default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Its id, 64 hex digits (the SHA-256 of its signed payload).
    pub id: String,
    /// The kind of action.
    pub action: String,
    /// The member who made it.
    pub proposer: String,
    /// `open`, `accepted`, `rejected`, `withdrawn`, `expired` or `applied`.
    pub status: String,
    /// Approvals by current members.
    pub approvals: usize,
    /// Rejections by current members.
    pub rejections: usize,
    /// The rule that applies to its action (`any 2`, `majority`, `all`).
    pub rule: String,
    /// The approvals that rule needs now.
    pub required: usize,
    /// What it changes: the SHA-256 of the exact change, hex.
    pub change: String,
    /// What members read before voting.
    #[serde(default)]
    pub summary: String,
    /// When the governor received it, and when it expires if still open (milliseconds since
    /// the Unix epoch, by the governor's clock).
    #[serde(default)]
    pub opened_ms: u64,
    /// See `opened_ms`.
    #[serde(default)]
    pub expires_ms: u64,
}

impl ProposalView {
    /// How `record` stands under `constitution`.
    pub fn of(record: &Record, constitution: &Constitution) -> ProposalView {
        let (approvals, rejections) = record.counts(constitution);
        let action = record.proposal.action;
        ProposalView {
            id: record.id.hex(),
            action: action.name().to_owned(),
            proposer: record.proposer.clone(),
            status: record.status.to_string(),
            approvals,
            rejections,
            rule: constitution.rule(action).to_string(),
            required: constitution.required(action),
            change: hex::encode(record.proposal.change),
            summary: record.proposal.summary.clone(),
            opened_ms: record.opened_ms,
            expires_ms: record.expires_ms,
        }
    }
}
