//! Why a constitution, a proposal, a ballot or an action was refused.

use thiserror::Error;

use crate::action::Action;
use crate::id::ProposalId;
use crate::status::Status;

/// A constitution that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConstitutionError {
    /// Too few or too many members.
    #[error("a consortium has 1 to {max} members; this one has {count} members")]
    Members {
        /// Members given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// A name that is empty, too long, or has characters other than letters, digits, `-`, `_`.
    #[error("member name `{name}`: use 1 to {max} ASCII letters, digits, `-` or `_`")]
    MemberName {
        /// The name.
        name: String,
        /// The longest allowed.
        max: usize,
    },
    /// A member key that is not 64 hex digits (a 32-byte Ed25519 public key).
    #[error("member `{name}`: its key must be 64 hex digits (an Ed25519 public key, as `aex identity` prints it)")]
    MemberKey {
        /// The member's name.
        name: String,
    },
    /// Two members with one name.
    #[error("two members are named `{name}`")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Two members with one key (one party would count twice).
    #[error("members `{first}` and `{second}` have the same key: one party would vote twice")]
    DuplicateKey {
        /// The first member with the key.
        first: String,
        /// The second.
        second: String,
    },
    /// A rule the members cannot meet, or that needs nobody.
    #[error("the rule for `{action}`: {reason}")]
    Rule {
        /// The kind of action.
        action: Action,
        /// What is wrong, and what is valid.
        reason: String,
    },
    /// An unknown kind of action.
    #[error(transparent)]
    UnknownAction(#[from] crate::action::UnknownAction),
    /// A recovery rule that the members cannot meet, or that one member meets alone.
    #[error("the rule for `recovery`: {reason}")]
    Recovery {
        /// What is wrong, and what is valid.
        reason: String,
    },
    /// Proposals that expire at once.
    #[error("a proposal's lifetime must be above zero")]
    Lifetime,
}

/// A proposal, ballot, withdrawal or action that was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GovernanceError {
    /// Not a COSE_Sign1 of the expected kind with a well-formed payload; says why.
    #[error("not a valid {what}: {reason}")]
    Malformed {
        /// What was expected (`proposal`, `ballot`, `withdrawal`).
        what: &'static str,
        /// Why not.
        reason: String,
    },
    /// Its signature does not verify under the key it names.
    #[error("the {what}'s signature does not verify under the key it names (forged or altered)")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// Signed by a key that is no member's.
    #[error("the {what} is signed by {key}, which is no member's key")]
    NotMember {
        /// What was signed.
        what: &'static str,
        /// The key, in hex.
        key: String,
    },
    /// For another application.
    #[error("the proposal is for application `{found}`, not `{expected}`")]
    WrongApplication {
        /// The governed application.
        expected: String,
        /// The one the proposal names.
        found: String,
    },
    /// No such proposal.
    #[error("there is no proposal {id}")]
    UnknownProposal {
        /// Its id.
        id: ProposalId,
    },
    /// The same proposal again.
    #[error("proposal {id} was already made")]
    AlreadyProposed {
        /// Its id.
        id: ProposalId,
    },
    /// A ballot for another proposal than the one it was given for (a ballot replayed from
    /// another proposal).
    #[error("the ballot is for proposal {signed_for}, not for proposal {given_for}")]
    OtherProposal {
        /// The proposal the ballot was given for.
        given_for: ProposalId,
        /// The proposal the member signed it for.
        signed_for: ProposalId,
    },
    /// The proposal is no longer open.
    #[error("proposal {id} is {status}: it takes no more ballots or withdrawals")]
    Closed {
        /// Its id.
        id: ProposalId,
        /// Its status.
        status: Status,
    },
    /// Only the proposer withdraws a proposal.
    #[error("only `{proposer}`, who made proposal {id}, can withdraw it")]
    NotProposer {
        /// Its id.
        id: ProposalId,
        /// Who made it.
        proposer: String,
    },
    /// Applied once already.
    #[error("proposal {id} was already applied")]
    AlreadyApplied {
        /// Its id.
        id: ProposalId,
    },
    /// Not accepted (open, rejected, withdrawn or expired).
    #[error("proposal {id} is {status}, not accepted: it cannot be applied")]
    NotAccepted {
        /// Its id.
        id: ProposalId,
        /// Its status.
        status: Status,
    },
    /// A constitution change applied with another constitution than the one approved.
    #[error("proposal {id} approved constitution {approved}, not the one given ({given})")]
    OtherConstitution {
        /// Its id.
        id: ProposalId,
        /// The digest the members approved, in hex.
        approved: String,
        /// The digest of the one given, in hex.
        given: String,
    },
    /// A change of members or rules applied as an ordinary action, or the reverse.
    #[error("proposal {id} is a `{action}` proposal: {reason}")]
    WrongKind {
        /// Its id.
        id: ProposalId,
        /// Its kind.
        action: Action,
        /// How it must be applied.
        reason: &'static str,
    },
    /// A new constitution that is not the change its proposal's action says (an
    /// `add_member` that also changes a rule, ...).
    #[error("proposal {id}: {mismatch}")]
    NotItsAction {
        /// Its id.
        id: ProposalId,
        /// What the action allows, and what the new constitution does.
        mismatch: ChangeMismatch,
    },
    /// Too many open proposals (memory is bounded).
    #[error("{open} proposals are open, the most there may be: decide or withdraw some first")]
    TooManyOpen {
        /// Open proposals.
        open: usize,
    },
}

/// A new constitution that is not the change its proposal's action says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a `{action}` proposal must {must}; this one {found}")]
pub struct ChangeMismatch {
    /// The proposal's action.
    pub action: Action,
    /// What the action allows.
    pub must: &'static str,
    /// What the new constitution does instead.
    pub found: String,
}
