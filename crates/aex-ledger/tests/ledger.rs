//! The ledger as its users meet it: appends that survive a crash, receipts that verify
//! offline, and a ledger altered in each way refused with the entry named.

use aex_crypto::SigningIdentity;
use aex_ledger::{receipt, verify, Expect, Ledger, Problem};

fn signer() -> SigningIdentity {
    SigningIdentity::from_seed(&[7; 32])
}

/// A ledger of `n` ballots with a signature entry after every 4th, in a temporary directory.
fn ledger(n: u64) -> (tempfile::TempDir, std::path::PathBuf, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.cbor");
    let mut ledger = Ledger::create(&path).unwrap();
    for i in 0..n {
        ledger
            .append("ballot", format!("ballot {i}").as_bytes())
            .unwrap();
        if i % 4 == 3 {
            ledger.sign(&signer()).unwrap();
        }
    }
    ledger.sign(&signer()).unwrap();
    (dir, path, ledger)
}

/// Byte ranges of each entry in the file.
fn ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let (_, used) = aex_ledger::Entry::decode_prefix(&bytes[at..], 0).unwrap();
        out.push(at..at + used);
        at += used;
    }
    out
}

/// A root kept from before, any signer.
fn remembering(root: (u64, [u8; 32])) -> Expect {
    Expect {
        signers: vec![],
        seen: Some(root),
    }
}

/// The file of [`ledger`]`(n)` and its entries' byte ranges.
fn file_of(n: u64) -> (tempfile::TempDir, Vec<u8>, Vec<std::ops::Range<usize>>) {
    let (dir, path, _) = ledger(n);
    let bytes = std::fs::read(&path).unwrap();
    let r = ranges(&bytes);
    (dir, bytes, r)
}

fn trusted() -> Expect {
    Expect {
        signers: vec![signer().public()],
        seen: None,
    }
}

#[test]
fn a_ledger_verifies_and_names_its_signer() {
    let (_dir, path, ledger) = ledger(10);
    let bytes = std::fs::read(&path).unwrap();
    let summary = verify(&bytes, &Expect::default()).unwrap();
    assert_eq!(summary.entries, ledger.len());
    assert_eq!(summary.entries, 10 + 3);
    assert_eq!(summary.signatures, 3);
    assert_eq!(summary.signed, 12);
    assert_eq!(summary.unsigned, 0);
    assert_eq!(summary.signers, vec![signer().public()]);
    // Another signer is not trusted.
    let other = Expect {
        signers: vec![SigningIdentity::from_seed(&[8; 32]).public()],
        seen: None,
    };
    let e = verify(&bytes, &other).unwrap_err();
    assert_eq!(e.entry, Some(4));
    assert!(e.to_string().contains("not a trusted signer"), "{e}");
}

#[test]
fn a_changed_entry_is_named() {
    let (_dir, bytes, r) = file_of(10);
    // Change one byte of entry 2's body ("ballot 2" → "ballot 3").
    let mut bad = bytes.clone();
    let at = r[2].start
        + bytes[r[2].clone()]
            .windows(8)
            .position(|w| w == b"ballot 2")
            .unwrap()
        + 7;
    bad[at] = b'3';
    let e = verify(&bad, &trusted()).unwrap_err();
    assert_eq!((e.entry, e.problem), (Some(2), Problem::Altered));
}

#[test]
fn a_rewritten_chain_is_caught_by_the_signed_root() {
    // An attacker who changes an entry and recomputes every later hash still cannot sign.
    let dir = tempfile::tempdir().unwrap();
    let honest = dir.path().join("honest.cbor");
    let mut l = Ledger::create(&honest).unwrap();
    l.append("action", b"load ping").unwrap();
    l.append("action", b"load pong").unwrap();
    l.sign(&signer()).unwrap();
    let forged_path = dir.path().join("forged.cbor");
    let mut forged = Ledger::create(&forged_path).unwrap();
    forged.append("action", b"load evil").unwrap();
    forged.append("action", b"load pong").unwrap();
    // Splice the honest signature entry after the forged entries: its root does not match.
    let honest_bytes = std::fs::read(&honest).unwrap();
    let sig = &honest_bytes[ranges(&honest_bytes)[2].clone()];
    let (mut sig_entry, _) = aex_ledger::Entry::decode_prefix(sig, 2).unwrap();
    sig_entry.prev = aex_ledger::entry::hash(forged.get(1).unwrap());
    let mut bytes = std::fs::read(&forged_path).unwrap();
    bytes.extend_from_slice(&sig_entry.encode());
    let e = verify(&bytes, &trusted()).unwrap_err();
    assert_eq!(e.entry, Some(2));
    assert!(e.to_string().contains("one of them was altered"), "{e}");
}

#[test]
fn a_removed_or_reordered_entry_is_named() {
    let (_dir, bytes, r) = file_of(10);
    let removed = [&bytes[..r[5].start], &bytes[r[5].end..]].concat();
    let e = verify(&removed, &trusted()).unwrap_err();
    assert_eq!(
        (e.entry, e.problem),
        (Some(5), Problem::OutOfPlace { found: 6 })
    );
    let swapped = [
        &bytes[..r[5].start],
        &bytes[r[6].clone()],
        &bytes[r[5].clone()],
        &bytes[r[6].end..],
    ]
    .concat();
    let e = verify(&swapped, &trusted()).unwrap_err();
    assert_eq!(
        (e.entry, e.problem),
        (Some(5), Problem::OutOfPlace { found: 6 })
    );
}

#[test]
fn a_truncated_ledger_is_named_against_a_root_seen_before() {
    let (_dir, path, ledger) = ledger(10);
    let bytes = std::fs::read(&path).unwrap();
    let r = ranges(&bytes);
    // A member saw the last signed root (from a receipt or an earlier fetch).
    let receipt = ledger.receipt(3).unwrap();
    let proven = receipt::verify(&receipt, &[signer().public()]).unwrap();
    let last = receipt::verify(&ledger.receipt(11).unwrap(), &[]).unwrap();
    let seen = Expect {
        signers: vec![signer().public()],
        seen: Some((last.root.size, last.root.root)),
    };
    assert!(verify(&bytes, &seen).is_ok());
    // Cut at an entry boundary: a valid prefix, but shorter than what was seen.
    let e = verify(&bytes[..r[9].start], &seen).unwrap_err();
    assert_eq!(
        (e.entry, e.problem),
        (Some(9), Problem::Missing { signed: 12 })
    );
    // Cut inside an entry: incomplete.
    let e = verify(&bytes[..r[9].end - 1], &trusted()).unwrap_err();
    assert_eq!((e.entry, e.problem), (Some(9), Problem::Incomplete));
    assert_eq!(proven.entry.body, b"ballot 3");
}

#[test]
fn receipts_verify_offline_and_a_changed_one_does_not() {
    let (_dir, _path, ledger) = ledger(10);
    let key = signer().public();
    for seq in 0..ledger.len() - 1 {
        let receipt = ledger.receipt(seq).unwrap();
        let proven = receipt::verify(&receipt, &[key]).unwrap();
        assert_eq!(proven.entry.seq, seq);
        assert!(proven.root.size > seq);
    }
    // The last entry (a signature) has no signature after it yet.
    assert!(ledger.receipt(ledger.len() - 1).is_none());
    let receipt = ledger.receipt(6).unwrap();
    let other = SigningIdentity::from_seed(&[8; 32]).public();
    let e = receipt::verify(&receipt, &[other]).unwrap_err();
    assert!(e.to_string().contains("not a trusted signer"), "{e}");
    for i in 0..receipt.len() {
        let mut bad = receipt.clone();
        bad[i] ^= 0x01;
        assert!(
            receipt::verify(&bad, &[key]).is_err(),
            "byte {i} of {} changed and the receipt still verified",
            receipt.len()
        );
    }
}

#[test]
fn a_torn_append_is_cut_off_on_open_and_the_ledger_goes_on() {
    let (_dir, path, ledger) = ledger(5);
    let n = ledger.len();
    drop(ledger);
    // A crash in the middle of an append.
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[0x85, 0x18, 0x07, 0x1b]);
    std::fs::write(&path, &bytes).unwrap();
    let opened = Ledger::open(&path, &trusted()).unwrap();
    assert_eq!(opened.cut, 4);
    let mut ledger = opened.ledger;
    assert_eq!(ledger.len(), n);
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, whole);
    ledger.append("ballot", b"after the crash").unwrap();
    ledger.sign(&signer()).unwrap();
    let summary = verify(&std::fs::read(&path).unwrap(), &trusted()).unwrap();
    assert_eq!(summary.entries, n + 2);
    // Anything else wrong refuses to open, naming the entry.
    let mut altered = std::fs::read(&path).unwrap();
    let r = ranges(&altered);
    // Entry 1's body, "ballot 1" → "ballot 0".
    altered[r[1].end - 35] ^= 0x01;
    std::fs::write(&path, &altered).unwrap();
    let e = Ledger::open(&path, &Expect::default()).err().unwrap();
    assert_eq!(e.entry, Some(1));
}

#[test]
fn signatures_fall_due_by_count_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l.cbor")).unwrap();
    let policy = aex_ledger::SignPolicy {
        every: 3,
        after: std::time::Duration::from_secs(3600),
    };
    assert!(!l.sign_due(policy));
    l.append("a", b"1").unwrap();
    l.append("a", b"2").unwrap();
    assert!(!l.sign_due(policy));
    l.append("a", b"3").unwrap();
    assert!(l.sign_due(policy));
    l.sign(&signer()).unwrap();
    assert!(!l.sign_due(policy));
    l.append("a", b"4").unwrap();
    let soon = aex_ledger::SignPolicy {
        every: 100,
        after: std::time::Duration::ZERO,
    };
    assert!(l.sign_due(soon));
    assert!(
        Ledger::create(&dir.path().join("l.cbor")).is_err(),
        "never overwrites"
    );
}

/// The holder keeps the last root it signed elsewhere (the deployer: in its state): a ledger
/// file put back to an older copy is refused on open, naming the first missing entry.
#[test]
fn an_older_copy_put_back_is_refused_against_the_last_root_kept() {
    let (dir, path, mut ledger) = ledger(3);
    let older = dir.path().join("older.cbor");
    std::fs::copy(&path, &older).unwrap();
    let entries_then = ledger.len();
    ledger.append("ballot", b"later").unwrap();
    ledger.sign(&signer()).unwrap();
    let kept = ledger.last_root().unwrap();
    assert_eq!(kept.0, entries_then + 1);
    drop(ledger);
    let again = Ledger::open(&path, &remembering(kept)).unwrap();
    assert_eq!(again.ledger.last_root(), Some(kept));
    std::fs::copy(&older, &path).unwrap();
    let e = Ledger::open(&path, &remembering(kept)).err().unwrap();
    assert_eq!(
        (e.entry, e.problem),
        (Some(entries_then), Problem::Missing { signed: kept.0 })
    );
}

/// A copy cut inside an entry, put back: the torn tail would be cut off, but what is left no
/// longer holds the root kept, so it is refused rather than repaired.
#[test]
fn a_torn_older_copy_is_refused_not_repaired() {
    let (_dir, path, ledger) = ledger(8);
    let kept = ledger.last_root().unwrap();
    drop(ledger);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = Ledger::open(&path, &remembering(kept)).err().unwrap();
    assert!(matches!(e.problem, Problem::Missing { .. }), "{e}");
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        bytes.len() / 2,
        "nothing cut"
    );
}
