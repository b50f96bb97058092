use std::collections::BTreeMap;

use aex_crypto::SigningIdentity;

use super::*;
use crate::constitution::{Action, Member, Rule};
use crate::signed::{Ballot, Proposal, Signed, Vote, Withdrawal};

const LIFETIME: u64 = 60_000;

struct Consortium {
    keys: Vec<SigningIdentity>,
    book: Book,
}

fn identity(seed: u8) -> SigningIdentity {
    SigningIdentity::from_seed(&[seed; 32])
}

fn member(name: &str, seed: u8) -> Member {
    Member {
        name: name.into(),
        key: identity(seed).public(),
    }
}

/// Members a, b, c: deploy and update need 2 of 3, disable any 1, add_member all.
fn consortium() -> Consortium {
    let rules = BTreeMap::from([
        (Action::Deploy, Rule::parse("2 of 3", 3).unwrap()),
        (Action::Update, Rule::parse("majority", 3).unwrap()),
        (Action::Disable, Rule::parse("any 1", 3).unwrap()),
        (Action::AddMember, Rule::parse("all", 3).unwrap()),
    ]);
    let members = vec![member("a", 1), member("b", 2), member("c", 3)];
    Consortium {
        keys: vec![identity(1), identity(2), identity(3)],
        book: Book::new(
            "ping-pong",
            Constitution::new(members, rules, LIFETIME).unwrap(),
        ),
    }
}

fn proposal(action: Action, change: [u8; 32], created_ms: u64) -> Proposal {
    Proposal {
        application: "ping-pong".into(),
        action,
        change,
        summary: format!("{action}: the plan"),
        created_ms,
    }
}

fn ballot(id: ProposalId, vote: Vote, by: &SigningIdentity) -> Vec<u8> {
    Ballot { proposal: id, vote }.sign(by)
}

impl Consortium {
    fn propose(&mut self, action: Action, by: usize, now: u64) -> ProposalId {
        let signed = proposal(action, [9; 32], now).sign(&self.keys[by]);
        self.book.propose(&signed, now).unwrap().id
    }

    fn vote(&mut self, id: ProposalId, vote: Vote, by: usize, now: u64) -> Status {
        let signed = ballot(id, vote, &self.keys[by]);
        self.book.vote(id, &signed, now).unwrap().status
    }
}

#[test]
fn one_member_alone_cannot_pass_a_2_of_3_deploy_and_two_can() {
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 10);
    assert_eq!(c.vote(id, Vote::Approve, 0, 11), Status::Open);
    // The same member again (even with the same ballot) still counts once.
    assert_eq!(c.vote(id, Vote::Approve, 0, 12), Status::Open);
    let err = c.book.apply(id, 13).unwrap_err();
    assert_eq!(
        err,
        GovernanceError::NotAccepted {
            id,
            status: Status::Open
        }
    );
    assert_eq!(c.vote(id, Vote::Approve, 1, 14), Status::Accepted);
    assert_eq!(c.book.apply(id, 15).unwrap().change, [9; 32]);
    let record = c.book.get(&id).unwrap();
    assert_eq!(
        (record.status, record.decided_ms),
        (Status::Applied, Some(14))
    );
}

#[test]
fn a_proposal_applied_twice_is_refused() {
    let mut c = consortium();
    let id = c.propose(Action::Disable, 2, 0);
    assert_eq!(c.vote(id, Vote::Approve, 2, 1), Status::Accepted);
    c.book.apply(id, 2).unwrap();
    assert_eq!(
        c.book.apply(id, 3).unwrap_err(),
        GovernanceError::AlreadyApplied { id }
    );
    // Nor does it take ballots any more.
    let late = ballot(id, Vote::Reject, &c.keys[0]);
    assert_eq!(
        c.book.vote(id, &late, 4).unwrap_err(),
        GovernanceError::Closed {
            id,
            status: Status::Applied
        }
    );
}

#[test]
fn a_forged_ballot_is_refused_and_changes_nothing() {
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 0);
    c.vote(id, Vote::Approve, 0, 1);
    // Member b's ballot with its signature flipped: one member must not forge another.
    let mut forged = ballot(id, Vote::Approve, &c.keys[1]);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        c.book.vote(id, &forged, 2).unwrap_err(),
        GovernanceError::BadSignature { what: "ballot" }
    );
    let record = c.book.get(&id).unwrap();
    assert_eq!(record.status, Status::Open);
    assert_eq!(record.counts(c.book.constitution()), (1, 0));
}

#[test]
fn a_ballot_by_a_non_member_is_refused() {
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 0);
    let outsider = identity(42);
    let err = c
        .book
        .vote(id, &ballot(id, Vote::Approve, &outsider), 1)
        .unwrap_err();
    assert_eq!(
        err,
        GovernanceError::NotMember {
            what: "ballot",
            key: hex::encode(outsider.public())
        }
    );
    // Nor can an outsider propose.
    let signed = proposal(Action::Deploy, [1; 32], 5).sign(&outsider);
    assert!(matches!(
        c.book.propose(&signed, 5),
        Err(GovernanceError::NotMember { .. })
    ));
}

#[test]
fn a_ballot_replayed_from_another_proposal_is_refused() {
    let mut c = consortium();
    let first = c.propose(Action::Deploy, 0, 0);
    let second = c.propose(Action::Deploy, 0, 1);
    assert_ne!(
        first, second,
        "the same change proposed twice is two proposals"
    );
    let for_first = ballot(first, Vote::Approve, &c.keys[1]);
    c.book.vote(first, &for_first, 2).unwrap();
    assert_eq!(
        c.book.vote(second, &for_first, 3).unwrap_err(),
        GovernanceError::OtherProposal {
            given_for: second,
            signed_for: first
        }
    );
    assert_eq!(
        c.book.get(&second).unwrap().counts(c.book.constitution()),
        (0, 0)
    );
}

#[test]
fn the_same_proposal_twice_and_another_application_are_refused() {
    let mut c = consortium();
    let signed = proposal(Action::Deploy, [1; 32], 7).sign(&c.keys[0]);
    let id = c.book.propose(&signed, 7).unwrap().id;
    assert_eq!(
        c.book.propose(&signed, 8).unwrap_err(),
        GovernanceError::AlreadyProposed { id }
    );
    let mut other = proposal(Action::Deploy, [1; 32], 9);
    other.application = "thermostat".into();
    assert_eq!(
        c.book.propose(&other.sign(&c.keys[0]), 9).unwrap_err(),
        GovernanceError::WrongApplication {
            expected: "ping-pong".into(),
            found: "thermostat".into()
        }
    );
}

#[test]
fn rejections_that_make_the_rule_unreachable_reject_it() {
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 0);
    assert_eq!(
        c.vote(id, Vote::Reject, 1, 1),
        Status::Open,
        "2 of 3 still possible"
    );
    assert_eq!(c.vote(id, Vote::Reject, 2, 2), Status::Rejected);
    // `all`: one rejection decides.
    let add = c.propose(Action::AddMember, 0, 3);
    assert_eq!(c.vote(add, Vote::Reject, 1, 4), Status::Rejected);
}

#[test]
fn a_member_may_change_their_vote_while_it_is_open() {
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 0);
    c.vote(id, Vote::Reject, 1, 1);
    assert_eq!(c.vote(id, Vote::Approve, 1, 2), Status::Open);
    assert_eq!(c.vote(id, Vote::Approve, 2, 3), Status::Accepted);
}

#[test]
fn open_proposals_expire_by_the_books_clock() {
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 1_000);
    c.vote(id, Vote::Approve, 0, 1_001);
    let late = ballot(id, Vote::Approve, &c.keys[1]);
    assert_eq!(
        c.book.vote(id, &late, 1_000 + LIFETIME).unwrap_err(),
        GovernanceError::Closed {
            id,
            status: Status::Expired
        }
    );
    assert_eq!(
        c.book.apply(id, 1_000 + LIFETIME + 1).unwrap_err(),
        GovernanceError::NotAccepted {
            id,
            status: Status::Expired
        }
    );
}

#[test]
fn only_the_proposer_withdraws_and_only_while_open() {
    let mut c = consortium();
    let id = c.propose(Action::Update, 0, 0);
    let by_b = Withdrawal { proposal: id }.sign(&c.keys[1]);
    assert_eq!(
        c.book.withdraw(&by_b, 1).unwrap_err(),
        GovernanceError::NotProposer {
            id,
            proposer: "a".into()
        }
    );
    let by_a = Withdrawal { proposal: id }.sign(&c.keys[0]);
    assert_eq!(c.book.withdraw(&by_a, 2).unwrap().status, Status::Withdrawn);
    assert!(matches!(
        c.book.withdraw(&by_a, 3),
        Err(GovernanceError::Closed { .. })
    ));
}

#[test]
fn a_new_member_needs_everyone_and_exactly_the_approved_constitution() {
    let mut c = consortium();
    let mut members = c.book.constitution().members().to_vec();
    members.push(member("d", 4));
    let rules = c.book.constitution().rules().clone();
    let new = Constitution::new(members, rules, LIFETIME).unwrap();
    let signed = proposal(Action::AddMember, new.digest(), 0).sign(&c.keys[0]);
    let id = c.book.propose(&signed, 0).unwrap().id;
    for by in 0..3 {
        c.vote(id, Vote::Approve, by, 1);
    }
    // Applied as an ordinary action, or with another constitution: refused.
    assert!(matches!(
        c.book.apply(id, 2),
        Err(GovernanceError::WrongKind { .. })
    ));
    let mut other = new.members().to_vec();
    other[3] = member("d", 5);
    let other = Constitution::new(other, new.rules().clone(), LIFETIME).unwrap();
    assert!(matches!(
        c.book.apply_constitution(id, other, 3),
        Err(GovernanceError::OtherConstitution { .. })
    ));
    c.book.apply_constitution(id, new.clone(), 4).unwrap();
    assert_eq!(c.book.constitution(), &new);
    assert!(matches!(
        c.book.apply_constitution(id, new, 5),
        Err(GovernanceError::AlreadyApplied { .. })
    ));
    // Deploy still needs 2 (`2 of 3` is "at least 2"); d's approval counts, and
    // add_member (`all`) now needs all four.
    c.keys.push(identity(4));
    let deploy = c.propose(Action::Deploy, 3, 6);
    assert_eq!(c.vote(deploy, Vote::Approve, 3, 7), Status::Open);
    assert_eq!(c.vote(deploy, Vote::Approve, 0, 8), Status::Accepted);
    assert_eq!(c.book.constitution().required(Action::AddMember), 4);
}

#[test]
fn a_removed_members_ballots_stop_counting() {
    let mut c = consortium();
    let pending = c.propose(Action::Deploy, 0, 0);
    c.vote(pending, Vote::Approve, 2, 1);
    // Remove c (all three agree; `remove_member` has no rule: all).
    let members = c.book.constitution().members()[..2].to_vec();
    let rules = c.book.constitution().rules().clone();
    let new = Constitution::new(members, rules, LIFETIME).unwrap();
    let signed = proposal(Action::RemoveMember, new.digest(), 2).sign(&c.keys[0]);
    let remove = c.book.propose(&signed, 2).unwrap().id;
    for by in 0..3 {
        c.vote(remove, Vote::Approve, by, 3);
    }
    c.book.apply_constitution(remove, new, 4).unwrap();
    let record = c.book.get(&pending).unwrap();
    assert_eq!(record.counts(c.book.constitution()), (0, 0));
    assert_eq!(c.vote(pending, Vote::Approve, 0, 5), Status::Open);
    assert_eq!(c.vote(pending, Vote::Approve, 1, 6), Status::Accepted);
    // c can no longer vote at all.
    let by_c = ballot(pending, Vote::Reject, &c.keys[2]);
    assert!(matches!(
        c.book.vote(pending, &by_c, 7),
        Err(GovernanceError::NotMember { .. })
    ));
}

#[test]
fn open_proposals_are_bounded() {
    let mut c = consortium();
    for n in 0..MAX_OPEN as u64 {
        c.propose(Action::Deploy, 0, n);
    }
    let signed = proposal(Action::Deploy, [9; 32], 1 << 40).sign(&c.keys[0]);
    assert_eq!(
        c.book.propose(&signed, MAX_OPEN as u64).unwrap_err(),
        GovernanceError::TooManyOpen { open: MAX_OPEN }
    );
}

#[test]
fn a_book_serialized_and_restored_goes_on_where_it_was() {
    // The governor seals its book after every call and restores it after a restart.
    let mut c = consortium();
    let id = c.propose(Action::Deploy, 0, 10);
    assert_eq!(c.vote(id, Vote::Approve, 0, 11), Status::Open);
    let mut bytes = Vec::new();
    ciborium::into_writer(&c.book, &mut bytes).unwrap();
    c.book = ciborium::from_reader(bytes.as_slice()).unwrap();
    assert_eq!(c.book.application(), "ping-pong");
    assert_eq!(c.book.get(&id).unwrap().ballots.len(), 1);
    // A ballot it had already counted still counts once.
    assert_eq!(c.vote(id, Vote::Approve, 0, 12), Status::Open);
    assert_eq!(c.vote(id, Vote::Approve, 1, 13), Status::Accepted);
}

#[test]
fn a_rotated_key_no_longer_signs_and_its_ballots_on_open_proposals_are_dropped() {
    let mut c = consortium();
    let pending = c.propose(Action::Deploy, 0, 0);
    c.vote(pending, Vote::Approve, 1, 1);
    // b's key becomes seed 9's (rotate_key has no rule: all).
    let mut members = c.book.constitution().members().to_vec();
    members[1] = member("b", 9);
    let rules = c.book.constitution().rules().clone();
    let new = Constitution::new(members, rules, LIFETIME).unwrap();
    let rotate = c.propose_change(Action::RotateKey, &new, 2);
    c.book.apply_constitution(rotate, new, 4).unwrap();
    // b's approval with the old key no longer counts; the old key signs nothing more.
    assert_eq!(
        c.book.get(&pending).unwrap().counts(c.book.constitution()),
        (0, 0)
    );
    let old = ballot(pending, Vote::Approve, &c.keys[1]);
    assert!(matches!(
        c.book.vote(pending, &old, 5),
        Err(GovernanceError::NotMember { .. })
    ));
    let by_old = proposal(Action::Deploy, [5; 32], 5).sign(&c.keys[1]);
    assert!(matches!(
        c.book.propose(&by_old, 5),
        Err(GovernanceError::NotMember { .. })
    ));
    // The new key votes as b.
    c.keys[1] = identity(9);
    assert_eq!(c.vote(pending, Vote::Approve, 1, 6), Status::Open);
    assert_eq!(c.vote(pending, Vote::Approve, 0, 7), Status::Accepted);
    assert_eq!(c.book.get(&pending).unwrap().ballots.len(), 2);
}

#[test]
fn a_change_that_is_not_its_action_is_not_applied_even_when_accepted() {
    let mut c = consortium();
    // "Add d" that also lets any 1 member deploy: all approve the proposal's digest, but the
    // book refuses to put it in force under `add_member`.
    let mut members = c.book.constitution().members().to_vec();
    members.push(member("d", 4));
    let mut rules = c.book.constitution().rules().clone();
    rules.insert(Action::Deploy, Rule::AtLeast(1));
    let smuggled = Constitution::new(members, rules, LIFETIME).unwrap();
    let id = c.propose_change(Action::AddMember, &smuggled, 0);
    let before = c.book.constitution().clone();
    let err = c.book.apply_constitution(id, smuggled, 3).unwrap_err();
    assert!(matches!(err, GovernanceError::NotItsAction { .. }), "{err}");
    assert!(
        err.to_string().contains("changes the rule for `deploy`"),
        "{err}"
    );
    assert_eq!(c.book.constitution(), &before);
    assert_eq!(c.book.get(&id).unwrap().status, Status::Accepted);
}

impl Consortium {
    /// A change of constitution to `new`, proposed by a and approved by all three.
    fn propose_change(&mut self, action: Action, new: &Constitution, at: u64) -> ProposalId {
        let signed = proposal(action, new.digest(), at).sign(&self.keys[0]);
        let id = self.book.propose(&signed, at).unwrap().id;
        for by in 0..3 {
            self.vote(id, Vote::Approve, by, at + 1);
        }
        assert_eq!(self.book.get(&id).unwrap().status, Status::Accepted);
        id
    }
}
