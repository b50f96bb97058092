use proptest::prelude::*;

use super::*;
use std::collections::BTreeMap;

use crate::signed::open;

fn header() -> BackupHeader {
    BackupHeader {
        version: 0,
        application: "app".into(),
        constitution: [3; 32],
        key_id: [0; 32],
        threshold: 2,
        shares: BTreeMap::new(),
        sequence: 7,
        proposals: 1,
        ledger_size: 0,
        ledger_root: String::new(),
        made_ms: 1,
        nonce: [0; 24],
    }
}

#[test]
fn any_k_shares_rebuild_the_key_and_fewer_do_not() {
    let key = RecoveryKey::random();
    let shares = key.split(2, 3).unwrap();
    assert_eq!(shares.len(), 3);
    assert!(shares.iter().all(|s| s.len() == SHARE_LEN));
    let points: Vec<u8> = shares.iter().map(|s| s[0]).collect();
    assert_eq!(points, [1, 2, 3], "member i holds the point i + 1");
    for (i, j) in [(0, 1), (0, 2), (1, 2), (2, 0)] {
        let again = combine(2, &[&shares[i], &shares[j]]).unwrap();
        assert_eq!(again, key, "shares {i} and {j}");
    }
    assert_eq!(
        combine(2, &[&shares[1]]).unwrap_err(),
        RecoveryError::TooFew { have: 1, need: 2 }
    );
    // The same share twice is one share.
    assert_eq!(
        combine(2, &[&shares[1], &shares[1]]).unwrap_err(),
        RecoveryError::TooFew { have: 1, need: 2 }
    );
    // A wrong share of the right form gives another key: the backup refuses it.
    let mut wrong = shares[1].to_vec();
    wrong[5] ^= 1;
    assert_ne!(combine(2, &[&shares[0], &wrong]).unwrap(), key);
    for (bad, says) in [
        (vec![1u8; 3], "3 bytes, not 33"),
        (vec![0u8; SHARE_LEN], "its point is 0"),
    ] {
        let err = combine(2, &[&shares[0], &bad]).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert!(key.split(0, 3).is_err());
    assert!(key.split(4, 3).is_err());
    assert!(key.split(2, 256).is_err());
}

#[test]
fn a_share_sealed_to_a_request_opens_only_with_its_secret() {
    let member = aex_crypto::SigningIdentity::from_seed(&[1; 32]);
    let reply = ReplySecret::new();
    let request = ShareRequest {
        application: "app".into(),
        reply_key: reply.public(),
        created_ms: 5,
    }
    .sign(&member);
    let opened = open::<ShareRequest>(&request).unwrap();
    assert_eq!(opened.signer, member.public());
    let share = [9u8; SHARE_LEN];
    let header = ShareHeader {
        application: "app".into(),
        member: "a".into(),
        key_id: [1; 32],
        threshold: 2,
        members: 3,
        constitution: [2; 32],
        ephemeral: [0; 32],
        reply_key: opened.body.reply_key,
    };
    let sealed = seal_share(header.clone(), &share).unwrap();
    assert!(
        !sealed.to_bytes().windows(SHARE_LEN).any(|w| w == share),
        "the share is not in the clear"
    );
    let bytes = sealed.to_bytes();
    let back = SealedShare::from_bytes(&bytes).unwrap();
    assert_eq!(&reply.open(&back).unwrap()[..], &share);

    // Another secret (a replayer's) does not open it, even with the header rewritten.
    let replayer = ReplySecret::new();
    let err = replayer.open(&back).unwrap_err().to_string();
    assert!(err.contains("sealed to another request's key"), "{err}");
    let mut relabelled = back.clone();
    let thief = ReplySecret::new();
    relabelled.header.reply_key = thief.public();
    assert!(thief.open(&relabelled).is_err());
    // Any altered header field or ciphertext byte is refused.
    type Alter = fn(&mut SealedShare);
    let alterations: [Alter; 3] = [
        |s| s.header.member = "b".into(),
        |s| s.header.threshold = 1,
        |s| s.ciphertext[0] ^= 1,
    ];
    for alter in alterations {
        let again = ReplySecret::new();
        let mut sealed = seal_share(
            ShareHeader {
                reply_key: again.public(),
                ..header.clone()
            },
            &share,
        )
        .unwrap();
        alter(&mut sealed);
        let err = again.open(&sealed).unwrap_err().to_string();
        assert!(err.contains("altered on the way"), "{err}");
    }
    // A low-order reply key is refused rather than sealed to.
    let err = seal_share(
        ShareHeader {
            reply_key: [0; 32],
            ..header
        },
        &share,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("low-order"), "{err}");
}

#[test]
fn a_backup_opens_under_its_key_only_and_any_change_is_refused() {
    let key = RecoveryKey::random();
    let state = b"the governor's recoverable state".to_vec();
    let bytes = seal_backup(&key, header(), &state);
    let backup = Backup::from_bytes(&bytes).unwrap();
    assert_eq!(backup.header.key_id, key.id());
    assert_eq!(backup.header.sequence, 7);
    assert_eq!(&backup.open(&key).unwrap()[..], &state[..]);

    let other = RecoveryKey::random();
    let err = backup.open(&other).unwrap_err().to_string();
    assert!(err.contains("another recovery key"), "{err}");

    // A sequence rewritten to pass for a later backup is refused.
    let mut later = backup.clone();
    later.header.sequence = 99;
    let err = later.open(&key).unwrap_err().to_string();
    assert!(err.contains("altered or truncated"), "{err}");
    let mut cut = backup.clone();
    cut.ciphertext.truncate(cut.ciphertext.len() - 1);
    assert!(cut.open(&key).is_err());
    // Truncated bytes do not even decode, with a clear error.
    let err = Backup::from_bytes(&bytes[..bytes.len() / 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid recovery backup"), "{err}");
    // Every single flipped byte is refused, whether or not it still decodes.
    for i in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        if let Ok(b) = Backup::from_bytes(&bad) {
            assert!(b.open(&key).is_err(), "byte {i} flipped and still opened");
        }
    }
}

#[test]
fn a_submission_does_not_print_its_share() {
    let s = ShareSubmission {
        application: "app".into(),
        key_id: [1; 32],
        share: vec![0xab; SHARE_LEN],
    };
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("171") && !shown.contains("ab, ab"),
        "{shown}"
    );
    let key = RecoveryKey::from_bytes([0xcd; 32]);
    assert!(!format!("{key:?}").contains("cdcd"));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Backup::from_bytes(&bytes);
        let _ = SealedShare::from_bytes(&bytes);
        let _ = open::<ShareRequest>(&bytes);
        let _ = open::<ShareSubmission>(&bytes);
        let slices: Vec<&[u8]> = bytes.chunks(SHARE_LEN).collect();
        let _ = combine(2, &slices);
    }

    #[test]
    fn any_two_of_n_rebuild(key in any::<[u8; 32]>(), n in 2usize..8, i in 0usize..8, j in 0usize..8) {
        let (i, j) = (i % n, j % n);
        prop_assume!(i != j);
        let key = RecoveryKey::from_bytes(key);
        let shares = key.split(2, n).unwrap();
        prop_assert_eq!(combine(2, &[&shares[i], &shares[j]]).unwrap(), key);
    }
}
