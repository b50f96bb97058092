//! Consortium governance for aex applications that several parties own together.
//!
//! No single member may change such an application: every action (a deployment, an update, a
//! move, a disable, a change of members) takes effect only once a quorum of members has
//! signed that exact change. This crate is the part of it that decides, with no I/O of its
//! own, so that whatever holds the authority (docs/ARCHITECTURE.md, "Governance") links the
//! same code a member uses to check it:
//!
//! * [`constitution`]: the members (a name and an Ed25519 key each) and the rule per kind of
//!   action (`2 of 3`, `any 1`, `majority`, `all`), validated with errors that name the field
//!   and say what is valid;
//! * [`signed`]: proposals, ballots and withdrawals, each a COSE_Sign1 (RFC 9052) by one
//!   member over a CBOR payload (RFC 8949), as the audit ledger's signed roots are;
//! * [`document`]: the constitution as a JSON document (the governor's `start` payload), and
//!   its digest, which the governor's certificate attests;
//! * [`book`]: the open, accepted, rejected, withdrawn, expired and applied proposals, and the
//!   checks that refuse a forged ballot, a ballot by a non-member, a ballot replayed from
//!   another proposal and a proposal applied twice;
//! * [`change`]: whether a new constitution is the change its proposal's action says (an
//!   `add_member` adds one member and changes nothing else, ...), and how two differ;
//! * [`recovery`]: the recovery key split `k` of `n` over the members, their shares sealed
//!   to each member, and the governor's encrypted backup, which restore it on a new node;
//! * [`bundle`]: what a `deploy` or `update` proposal asks to run (the descriptor and each
//!   module's build by digest); the proposal's change is the digest of its bytes;
//! * [`order`]: what a `disable` proposal asks to disable (a [`DisableOrder`]); its change is
//!   the order's digest.
//!
//! docs/PROTOCOL.md ("Governance") gives the encodings.

mod action;
pub mod book;
pub mod bundle;
pub mod change;
pub mod constitution;
pub mod document;
pub mod error;
mod id;
pub mod order;
pub mod recovery;
pub mod signed;
mod status;
mod view;

pub use action::UnknownAction;
pub use book::{Book, Record, Status};
pub use bundle::{Bundle, BundledModule};
pub use change::{ChangeMismatch, Difference};
pub use constitution::{Action, Constitution, Member, Rule, CERTIFICATE_KEY_NAME};
pub use document::{Document, MemberDocument, RECOVERY};
pub use error::{ConstitutionError, GovernanceError};
pub use order::DisableOrder;
pub use signed::{Ballot, Proposal, ProposalId, Vote, Withdrawal};
pub use view::ProposalView;
