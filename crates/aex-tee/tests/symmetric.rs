//! `trustzone` and `sancus`: node key → vendor key → module key, and the challenge MAC.

use aex_crypto::Measurement;
use aex_tee::symmetric::attest_mac;
use aex_tee::{
    appraise, open, AppraisalError, Backend, EvidenceError, Expected, SimSymmetricPlatform,
    SymmetricKind, TeeKind, TrustAnchor, VendorKey,
};

use crate::common::*;

const KINDS: [SymmetricKind; 2] = [SymmetricKind::TrustZone, SymmetricKind::Sancus];

fn exp(kind: SymmetricKind, vk: &VendorKey) -> Expected<'_> {
    Expected {
        module_pk: None,
        ..expected(kind.into(), TrustAnchor::VendorKey(vk))
    }
}

/// Offset of the `simulated` byte in an envelope of `kind`.
fn simulated_at(kind: SymmetricKind) -> usize {
    1 + 1 + kind.name().len()
}

#[test]
fn genuine_evidence_passes() {
    for kind in KINDS {
        let node = sym_node(kind, 7);
        let ok = appraise(
            &node.evidence(&code(), &CHALLENGE),
            &exp(kind, &node.vendor_key),
        )
        .unwrap();
        assert_eq!(ok.kind(), TeeKind::from(kind));
        assert_eq!(ok.measurement(), code());
        assert_eq!(ok.vendor_id(), Some(7));
        assert!(ok.simulated() && !ok.debug() && !ok.insecure());
        // The deployer derives the very key the platform provisioned.
        assert_eq!(
            node.vendor_key.module_key(&code()).expose_secret(),
            node.platform.provision(&code()).unwrap().expose_secret()
        );
    }
}

#[test]
fn forged_macs_are_refused() {
    for kind in KINDS {
        let node = sym_node(kind, 7);
        let exp = exp(kind, &node.vendor_key);
        let ev = node.evidence(&code(), &CHALLENGE);
        let bad = Err(AppraisalError::BadMac { kind: kind.into() });
        assert_eq!(appraise(&flip(&ev, ev.len() - 1), &exp), bad);
        assert_eq!(appraise(&flip(&ev, ev.len() - 32), &exp), bad);
        // A module of other code, whose node claims the expected measurement.
        let evil = Measurement::of(b"evil");
        let evil_key = node.platform.provision(&evil).unwrap();
        let mac = attest_mac(kind, true, &evil_key, &CHALLENGE, &evil);
        let ev = node
            .platform
            .evidence(&code(), &CHALLENGE, None, Some(&mac))
            .unwrap();
        assert_eq!(appraise(&ev, &exp), bad);
        // The other kind's MAC under the right key.
        let other = if kind == SymmetricKind::Sancus {
            SymmetricKind::TrustZone
        } else {
            SymmetricKind::Sancus
        };
        let key = node.platform.provision(&code()).unwrap();
        let mac = attest_mac(other, true, &key, &CHALLENGE, &code());
        let ev = node
            .platform
            .evidence(&code(), &CHALLENGE, None, Some(&mac))
            .unwrap();
        assert_eq!(appraise(&ev, &exp), bad);
    }
}

#[test]
fn wrong_vendor_key_or_vendor_id_is_refused() {
    for kind in KINDS {
        let node = sym_node(kind, 7);
        let ev = node.evidence(&code(), &CHALLENGE);
        // Another node's key for the same vendor id: a wrong key file.
        let stranger = sym_node(kind, 7);
        assert!(matches!(
            appraise(&ev, &exp(kind, &stranger.vendor_key)),
            Err(AppraisalError::UntrustedVendorKey { vendor_id: 7, .. })
        ));
        // Evidence that copies the trusted key id but is MACed under another key.
        let mut forged = stranger.evidence(&code(), &CHALLENGE);
        let at = find(&forged, &stranger.vendor_key.key_id());
        forged[at..at + 8].copy_from_slice(&node.vendor_key.key_id());
        assert_eq!(
            appraise(&forged, &exp(kind, &node.vendor_key)),
            Err(AppraisalError::BadMac { kind: kind.into() })
        );
        // The same node's key, for another vendor.
        let vendor_8 = node.platform.export_vendor_key(8);
        assert_eq!(
            appraise(&ev, &exp(kind, &vendor_8)),
            Err(AppraisalError::WrongVendor {
                expected: 8,
                got: 7
            })
        );
    }
}

#[test]
fn replayed_challenge_is_stale() {
    for kind in KINDS {
        let node = sym_node(kind, 7);
        let exp = exp(kind, &node.vendor_key);
        let old = node.evidence(&code(), &OLD_CHALLENGE);
        assert_eq!(appraise(&old, &exp), Err(AppraisalError::StaleChallenge));
        // The old answer relabelled with the fresh challenge: the MAC gives it away.
        let mut relabelled = old.clone();
        let at = find(&relabelled, &OLD_CHALLENGE);
        relabelled[at..at + 32].copy_from_slice(&CHALLENGE);
        assert_eq!(
            appraise(&relabelled, &exp),
            Err(AppraisalError::BadMac { kind: kind.into() })
        );
    }
}

#[test]
fn other_code_is_a_measurement_mismatch() {
    for kind in KINDS {
        let node = sym_node(kind, 7);
        let evil = Measurement::of(b"evil");
        assert_eq!(
            appraise(
                &node.evidence(&evil, &CHALLENGE),
                &exp(kind, &node.vendor_key)
            ),
            Err(AppraisalError::MeasurementMismatch {
                expected: code(),
                got: evil
            })
        );
    }
}

#[test]
fn the_simulated_flag_is_bound_by_the_mac() {
    for kind in KINDS {
        let node = sym_node(kind, 7);
        let hw = Expected {
            allow_simulated: false,
            ..exp(kind, &node.vendor_key)
        };
        let ev = node.evidence(&code(), &CHALLENGE);
        assert_eq!(
            appraise(&ev, &hw),
            Err(AppraisalError::SimulatedRefused { kind: kind.into() })
        );
        // Someone on the path flips the flag to "hardware".
        let at = simulated_at(kind);
        assert_eq!(ev[at], 1);
        assert_eq!(
            appraise(&flip(&ev, at), &hw),
            Err(AppraisalError::BadMac { kind: kind.into() })
        );
    }
}

#[test]
fn node_files_and_vendor_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(TeeKind::Sancus, dir.path()).unwrap();
    let again = SimSymmetricPlatform::load_or_create(SymmetricKind::Sancus, dir.path(), 1).unwrap();
    let file = dir.path().join("vendor-1.key");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.len(), 65);
    let vk = VendorKey::read_file(1, &file).unwrap();
    assert_eq!(vk.key_id(), again.export_vendor_key(1).key_id());
    assert_eq!(backend.platform_identity(), vk.key_id().to_vec());
    // The file is rewritten identically on every open, and a stale one is replaced.
    std::fs::write(&file, "00".repeat(32)).unwrap();
    let _ = open(TeeKind::Sancus, dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    #[cfg(unix)]
    for f in ["sancus-node.key", "vendor-1.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // Evidence from the opened backend verifies under the file's key.
    let key = backend.provision(&code()).unwrap();
    let mac = attest_mac(SymmetricKind::Sancus, true, &key, &CHALLENGE, &code());
    let ev = backend
        .evidence(&code(), &CHALLENGE, None, Some(&mac))
        .unwrap();
    appraise(&ev, &exp(SymmetricKind::Sancus, &vk)).unwrap();
    // A trustzone node in the same directory has its own node key.
    let tz = open(TeeKind::TrustZone, dir.path()).unwrap();
    assert_ne!(tz.platform_identity(), backend.platform_identity());
    // Bad files and bad calls are clear errors.
    std::fs::write(&file, "xyz").unwrap();
    let err = VendorKey::read_file(1, &file).unwrap_err();
    assert!(err.to_string().contains("not 64 hexadecimal"), "{err}");
    assert!(VendorKey::from_hex(1, &"ab".repeat(32)).is_ok());
    assert!(!format!("{vk:?}").contains(&text.trim()[..16]));
    assert_eq!(
        backend.evidence(&code(), &CHALLENGE, Some(&MODULE_PK), None),
        Err(EvidenceError::Missing {
            kind: TeeKind::Sancus,
            what: "module MAC"
        })
    );
    assert_eq!(
        backend.evidence(&code(), &CHALLENGE, None, Some(&[0; 31])),
        Err(EvidenceError::MacLength {
            kind: TeeKind::Sancus,
            got: 31
        })
    );
}
