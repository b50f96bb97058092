//! Where a proposal stands.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Taking ballots.
    Open,
    /// Its rule is met; not yet applied.
    Accepted,
    /// Enough members rejected it that its rule can no longer be met.
    Rejected,
    /// Its proposer took it back.
    Withdrawn,
    /// Its lifetime passed while it was open.
    Expired,
    /// Accepted and carried out.
    Applied,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Open => "open",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
            Status::Expired => "expired",
            Status::Applied => "applied",
        })
    }
}
