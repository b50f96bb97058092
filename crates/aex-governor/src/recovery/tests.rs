use std::collections::BTreeMap;

use aex_governance::recovery::{Backup, ReplySecret, SealedShare, ShareSubmission};
use aex_governance::signed::Signed;
use aex_governance::{Action, Proposal};

use super::*;
use crate::service::tests::{document, key, APP};

/// A governor holding a book with one proposal, a deployer key and shares.
fn lost_governor() -> Governor {
    let mut g = Governor::default();
    service::adopt(&mut g.held, APP, &document()).unwrap();
    g.deployer.get_or_make().unwrap();
    let proposal = Proposal {
        application: APP.into(),
        action: Action::Deploy,
        change: [7; 32],
        summary: "deploy".into(),
        created_ms: 1,
    };
    let held = g.held.as_mut().unwrap();
    held.book.propose(&proposal.sign(&key(1)), 10).unwrap();
    g.recorded.insert("ab".repeat(32));
    g.provider_keys
        .install("node2", "5a".repeat(32).as_bytes())
        .unwrap();
    ensure(&mut g).unwrap();
    g
}

/// Member `seed`'s share, fetched as `aex recovery share` does.
fn fetch_share(g: &mut Governor, seed: u8) -> (SealedShare, Zeroizing<Vec<u8>>) {
    let reply = ReplySecret::new();
    let request = ShareRequest {
        application: APP.into(),
        reply_key: reply.public(),
        created_ms: 1,
    }
    .sign(&key(seed));
    let r = share_for(g, &request);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sealed = SealedShare::from_bytes(&r.body).unwrap();
    let share = reply.open(&sealed).unwrap();
    (sealed, share)
}

fn submit(
    g: &mut Governor,
    seed: u8,
    key_id: [u8; 32],
    share: &[u8],
    dir: &std::path::Path,
) -> Reply {
    let signed = ShareSubmission {
        application: APP.into(),
        key_id,
        share: share.to_vec(),
    }
    .sign(&key(seed));
    submit_share(g, &signed, dir)
}

fn fresh() -> Governor {
    let mut g = Governor::default();
    begin(&mut g, APP, &document()).unwrap();
    g
}

fn body(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn k_members_shares_and_the_backup_restore_the_book_and_the_deployer_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = lost_governor();
    let (sealed_a, share_a) = fetch_share(&mut old, 1);
    let (_, share_b) = fetch_share(&mut old, 2);
    assert_eq!(sealed_a.header.member, "a");
    assert_eq!((sealed_a.header.threshold, sealed_a.header.members), (2, 3));
    let key_id = sealed_a.header.key_id;
    let backup = make_backup(&mut old, Some(b"ledger bytes".to_vec()), 5).unwrap();
    assert_eq!(Backup::from_bytes(&backup).unwrap().header.sequence, 1);

    // A non-member's request gets no share.
    let reply = ReplySecret::new();
    let request = ShareRequest {
        application: APP.into(),
        reply_key: reply.public(),
        created_ms: 1,
    }
    .sign(&key(9));
    let r = share_for(&mut old, &request);
    assert_eq!(r.status, 403, "{}", body(&r));

    let mut new = fresh();
    assert_eq!(submit_backup(&mut new, &backup, dir.path()).status, 202);
    // One share: nothing recovered, and the status says how far it is.
    let r = submit(&mut new, 1, key_id, &share_a, dir.path());
    assert_eq!(r.status, 202, "{}", body(&r));
    let s: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (
            s["shares"].as_array().unwrap().len(),
            s["threshold"].as_u64()
        ),
        (1, Some(2))
    );
    assert!(new.held.is_none());
    // A non-member's share (even a real share's bytes) is refused.
    let r = submit(&mut new, 9, key_id, &share_b, dir.path());
    assert_eq!(r.status, 403, "{}", body(&r));
    assert!(body(&r).contains("no member's key"));
    // The same member twice is one share.
    assert_eq!(
        submit(&mut new, 1, key_id, &share_a, dir.path()).status,
        202
    );

    let r = submit(&mut new, 2, key_id, &share_b, dir.path());
    assert_eq!(r.status, 200, "{}", body(&r));
    let (was, is) = (old.held.as_ref().unwrap(), new.held.as_ref().unwrap());
    assert_eq!(
        serde_json::to_string(&was.book).unwrap(),
        serde_json::to_string(&is.book).unwrap()
    );
    assert_eq!(old.deployer.seed(), new.deployer.seed());
    assert_eq!(
        old.recorded, new.recorded,
        "decided proposals are not recorded twice"
    );
    assert_eq!(
        new.provider_keys.list(),
        old.provider_keys.list(),
        "the operators need not hand the provider keys over again"
    );
    assert_eq!(new.provider_keys.list().len(), 1);
    assert_eq!(new.recovery.sequence, 1);
    let ledger = aex_deploy::audit::ledger_path(dir.path());
    assert_eq!(fs::read(ledger).unwrap(), b"ledger bytes");
    // A new recovery key: the shares handed in open no later backup.
    assert_ne!(key_of(&new).unwrap().id(), key_id);
    let later = Backup::from_bytes(&make_backup(&mut new, None, 6).unwrap()).unwrap();
    assert_eq!(
        later.header.sequence, 2,
        "the sequence goes on from the backup's"
    );
    // Recovered: it takes no more shares.
    assert_eq!(
        submit(&mut new, 3, key_id, &share_b, dir.path()).status,
        409
    );
}

#[test]
fn a_wrong_share_or_a_foreign_backup_recovers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = lost_governor();
    let (sealed, share_a) = fetch_share(&mut old, 1);
    let (_, share_b) = fetch_share(&mut old, 2);
    let key_id = sealed.header.key_id;
    let backup = make_backup(&mut old, None, 5).unwrap();

    // B's share altered: named as not of the backup's key, and dropped.
    let mut new = fresh();
    submit_backup(&mut new, &backup, dir.path());
    submit(&mut new, 1, key_id, &share_a, dir.path());
    let mut bad = share_b.to_vec();
    bad[3] ^= 1;
    let r = submit(&mut new, 2, key_id, &bad, dir.path());
    assert_eq!(r.status, 202, "{}", body(&r));
    assert!(body(&r).contains("the shares of b are not of the backup's recovery key"));
    assert!(new.held.is_none());
    // b sends the right one again: recovered.
    assert_eq!(
        submit(&mut new, 2, key_id, &share_b, dir.path()).status,
        200
    );

    // A backup with its sequence raised (to pass for a later one) does not open.
    let mut forged = Backup::from_bytes(&backup).unwrap();
    forged.header.sequence += 10;
    let bytes = forged.to_bytes();
    let mut new = fresh();
    submit_backup(&mut new, &bytes, dir.path());
    submit(&mut new, 1, key_id, &share_a, dir.path());
    let r = submit(&mut new, 2, key_id, &share_b, dir.path());
    assert_eq!(r.status, 422, "{}", body(&r));
    assert!(body(&r).contains("altered or truncated"), "{}", body(&r));
    assert!(new.held.is_none());
    // It locks nothing out: the real backup, posted after it, recovers with the same shares.
    let r = submit_backup(&mut new, &backup, dir.path());
    assert_eq!(r.status, 200, "{}", body(&r));

    // Another constitution's governor refuses the backup outright; garbage is a clear 400.
    let mut other = document();
    other.proposal_lifetime_ms += 1;
    let mut elsewhere = Governor::default();
    begin(&mut elsewhere, APP, &other).unwrap();
    let r = submit_backup(&mut elsewhere, &backup, dir.path());
    assert_eq!(r.status, 422, "{}", body(&r));
    let r = submit_backup(&mut elsewhere, &backup[..backup.len() / 2], dir.path());
    assert_eq!(r.status, 400, "{}", body(&r));
    assert!(body(&r).contains("not a valid recovery backup"));
    // A governor that holds a book recovers nothing.
    assert_eq!(submit_backup(&mut old, &backup, dir.path()).status, 409);
}

#[test]
fn a_change_of_constitution_makes_and_splits_a_new_key() {
    let mut g = lost_governor();
    let first = key_of(&g).unwrap().id();
    ensure(&mut g).unwrap();
    assert_eq!(
        key_of(&g).unwrap().id(),
        first,
        "same constitution, same key"
    );
    // The members change (as an applied member change would leave the book).
    let mut doc = document();
    doc.members.pop();
    doc.rules.clear();
    let mut held = None;
    service::adopt(&mut held, APP, &doc).unwrap();
    g.held = held;
    ensure(&mut g).unwrap();
    assert_ne!(key_of(&g).unwrap().id(), first);
    assert_eq!(g.recovery.shares.len(), 2);
}

#[test]
fn one_member_cannot_recover_a_state_of_their_own_making() {
    // Member a makes a key of their own, "splits" it 1 of 1, and seals a forged state (a
    // deployer key a knows) under it, with a header that says 1 share is enough.
    let dir = tempfile::tempdir().unwrap();
    let mut forged_state = lost_governor();
    forged_state.deployer.seed = Some(hex::encode([0x66u8; 32]));
    let own = RecoveryKey::random();
    let own_share = own.split(1, 1).unwrap().remove(0);
    let real = make_backup(&mut forged_state, None, 1).unwrap();
    let mut header = Backup::from_bytes(&real).unwrap().header;
    header.threshold = 1;
    header.shares = BTreeMap::from([(
        "a".to_owned(),
        serde_bytes::ByteBuf::from(share_digest(&own_share).to_vec()),
    )]);
    let recoverable = Recoverable {
        held: forged_state.held.clone().unwrap(),
        deployer: forged_state.deployer.seed.clone(),
        deployed: None,
        outcomes: Outcomes::default(),
        recorded: Default::default(),
        provider_keys: Default::default(),
        ledger: None,
    };
    let forged = seal_backup(&own, header, &serde_json::to_vec(&recoverable).unwrap());

    let mut new = fresh();
    assert_eq!(submit_backup(&mut new, &forged, dir.path()).status, 202);
    let r = submit(&mut new, 1, own.id(), &own_share, dir.path());
    assert_eq!(
        r.status,
        202,
        "the constitution's 2, not the header's 1: {}",
        body(&r)
    );
    assert!(new.held.is_none() && new.deployer.seed.is_none());
}
