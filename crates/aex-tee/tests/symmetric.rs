//! `trustzone` and `sancus`: node key → provider key (per stakeholder) → module key, and the
//! MAC over the challenge and both ephemeral public keys.

use aex_crypto::Measurement;
use aex_tee::symmetric::{attest_mac, Transcript};
use aex_tee::{
    appraise, open, AppraisalError, Backend, EvidenceError, Expected, PlatformError, ProviderKey,
    SimSymmetricPlatform, SymmetricKind, TeeKind, TrustAnchor,
};

use crate::common::*;

const KINDS: [SymmetricKind; 2] = [SymmetricKind::TrustZone, SymmetricKind::Sancus];

fn exp(kind: SymmetricKind, pk: &ProviderKey) -> Expected<'_> {
    expected(kind.into(), TrustAnchor::ProviderKey(pk))
}

/// Offset of the `simulated` byte in an envelope of `kind`.
fn simulated_at(kind: SymmetricKind) -> usize {
    1 + 1 + kind.name().len()
}

/// Evidence from `node` for `m` whose module MACed `transcript` under `module_key`.
fn wrapped(node: &SymNode, module_key_of: &Measurement, t: &Transcript<'_>) -> Vec<u8> {
    let key = node.platform.provision(&FARM, module_key_of).unwrap();
    node.platform
        .evidence(
            &FARM,
            &code(),
            &CHALLENGE,
            Some(&MODULE_PK),
            Some(&attest_mac(&key, t)),
        )
        .unwrap()
}

#[test]
fn genuine_evidence_passes() {
    for kind in KINDS {
        let node = sym_node(kind);
        let ok = appraise(
            &node.evidence(&code(), &CHALLENGE),
            &exp(kind, &node.provider_key),
        )
        .unwrap();
        assert_eq!(ok.kind(), TeeKind::from(kind));
        assert_eq!(ok.measurement(), code());
        assert_eq!(ok.provider_key_id(), Some(node.provider_key.key_id()));
        assert!(ok.simulated() && !ok.debug() && !ok.insecure());
        // The deployer derives the very key the platform provisioned for it.
        assert_eq!(
            node.provider_key.module_key(&code()).expose_secret(),
            node.platform
                .provision(&FARM, &code())
                .unwrap()
                .expose_secret()
        );
    }
}

/// The co-tenant attack of the outside review, on the key hierarchy: two stakeholders run
/// identical code on one node; each one's provider key derives its own module key only.
#[test]
fn two_stakeholders_with_identical_code_get_different_module_keys() {
    for kind in KINDS {
        let node = sym_node(kind);
        let farms = node.platform.provision(&FARM, &code()).unwrap();
        let insights = node.platform.provision(&INSIGHT, &code()).unwrap();
        assert_ne!(farms.expose_secret(), insights.expose_secret());
        // Insight, holding its own provider key, derives its own module key and not the farm's.
        let insight_key = node.platform.provider_key(&INSIGHT);
        assert_eq!(
            insight_key.module_key(&code()).expose_secret(),
            insights.expose_secret()
        );
        assert_ne!(
            insight_key.module_key(&code()).expose_secret(),
            farms.expose_secret()
        );
        // The farm's evidence does not appraise under insight's key: a precise refusal.
        let ev = node.evidence(&code(), &CHALLENGE);
        assert_eq!(
            appraise(&ev, &exp(kind, &insight_key)),
            Err(AppraisalError::UntrustedProviderKey {
                expected: hex::encode(insight_key.key_id()),
                got: hex::encode(node.provider_key.key_id()),
            })
        );
    }
}

#[test]
fn forged_macs_are_refused() {
    for kind in KINDS {
        let node = sym_node(kind);
        let exp = exp(kind, &node.provider_key);
        let ev = node.evidence(&code(), &CHALLENGE);
        let bad = Err(AppraisalError::BadMac { kind: kind.into() });
        assert_eq!(appraise(&flip(&ev, ev.len() - 1), &exp), bad);
        assert_eq!(appraise(&flip(&ev, ev.len() - 32), &exp), bad);
        let code = code();
        let genuine = transcript(kind, &code, &CHALLENGE);
        // A module of other code, whose node claims the expected measurement.
        let evil = Measurement::of(b"evil");
        let t = transcript(kind, &evil, &CHALLENGE);
        assert_eq!(appraise(&wrapped(&node, &evil, &t), &exp), bad);
        // The other kind's MAC under the right key.
        let other = if kind == SymmetricKind::Sancus {
            SymmetricKind::TrustZone
        } else {
            SymmetricKind::Sancus
        };
        let t = Transcript {
            kind: other.name(),
            ..genuine
        };
        assert_eq!(appraise(&wrapped(&node, &code, &t), &exp), bad);
        // The node swaps the module's ephemeral key for its own, or the deployer's on the
        // way in: the MAC covers both.
        let swapped = Transcript {
            module_pk: &[0x99; 32],
            ..genuine
        };
        assert_eq!(appraise(&wrapped(&node, &code, &swapped), &exp), bad);
        let swapped = Transcript {
            deployer_pk: &[0x99; 32],
            ..genuine
        };
        assert_eq!(appraise(&wrapped(&node, &code, &swapped), &exp), bad);
        // And the genuine transcript under the genuine key passes through the same helper.
        assert!(appraise(&wrapped(&node, &code, &genuine), &exp).is_ok());
    }
}

#[test]
fn a_wrong_provider_key_file_is_a_precise_error() {
    for kind in KINDS {
        let node = sym_node(kind);
        let ev = node.evidence(&code(), &CHALLENGE);
        // Another node's key for the same stakeholder: a wrong key file.
        let stranger = sym_node(kind);
        let err = appraise(&ev, &exp(kind, &stranger.provider_key)).unwrap_err();
        assert_eq!(
            err,
            AppraisalError::UntrustedProviderKey {
                expected: hex::encode(stranger.provider_key.key_id()),
                got: hex::encode(node.provider_key.key_id()),
            }
        );
        let text = err.to_string();
        assert!(
            text.contains(&hex::encode(node.provider_key.key_id()))
                && text.contains(&hex::encode(stranger.provider_key.key_id()))
                && text.contains("not this deployer identity's provider key on this node"),
            "{text}"
        );
        // Evidence that copies the trusted key id but is MACed under another key.
        let mut forged = stranger.evidence(&code(), &CHALLENGE);
        let at = find(&forged, &stranger.provider_key.key_id());
        forged[at..at + 8].copy_from_slice(&node.provider_key.key_id());
        assert_eq!(
            appraise(&forged, &exp(kind, &node.provider_key)),
            Err(AppraisalError::BadMac { kind: kind.into() })
        );
    }
}

#[test]
fn replayed_challenge_is_stale() {
    for kind in KINDS {
        let node = sym_node(kind);
        let exp = exp(kind, &node.provider_key);
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
        let node = sym_node(kind);
        let evil = Measurement::of(b"evil");
        assert_eq!(
            appraise(
                &node.evidence(&evil, &CHALLENGE),
                &exp(kind, &node.provider_key)
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
        let node = sym_node(kind);
        let hw = Expected {
            allow_simulated: false,
            ..exp(kind, &node.provider_key)
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
fn the_deployer_must_name_both_public_keys() {
    let node = sym_node(SymmetricKind::Sancus);
    let ev = node.evidence(&code(), &CHALLENGE);
    let base = exp(SymmetricKind::Sancus, &node.provider_key);
    let kind = TeeKind::Sancus;
    let no_module = Expected {
        module_pk: None,
        ..base.clone()
    };
    assert_eq!(
        appraise(&ev, &no_module),
        Err(AppraisalError::MissingModuleKey { kind })
    );
    let no_deployer = Expected {
        deployer_pk: None,
        ..base
    };
    assert_eq!(
        appraise(&ev, &no_deployer),
        Err(AppraisalError::MissingDeployerKey { kind })
    );
}

#[test]
fn node_files_and_provider_key_files() {
    let dir = tempfile::tempdir().unwrap();
    // Exporting from a directory without a node key is refused, not a fresh key nobody uses.
    let err = SimSymmetricPlatform::load(SymmetricKind::Sancus, dir.path())
        .err()
        .unwrap();
    assert!(matches!(err, PlatformError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("sancus-node.key"), "{err}");
    let backend = open(TeeKind::Sancus, dir.path()).unwrap();
    let platform = SimSymmetricPlatform::load(SymmetricKind::Sancus, dir.path()).unwrap();
    // The node writes no key file of any stakeholder by itself.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sancus-node.key"]);
    assert_eq!(backend.platform_identity().len(), 8);
    // The operator writes the farm's key; it reads back, mode 0600, 64 hex + newline.
    let file = dir.path().join(ProviderKey::file_name(&FARM));
    assert_eq!(
        file.file_name().unwrap().to_string_lossy(),
        format!("provider-{}.key", "fa".repeat(8))
    );
    platform.provider_key(&FARM).write_file(&file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.len(), 65);
    let pk = ProviderKey::read_file(&file).unwrap();
    assert_eq!(pk.key_id(), platform.provider_key(&FARM).key_id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [
            "sancus-node.key",
            file.file_name().unwrap().to_str().unwrap(),
        ] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    // Rewritten identically, and a stale key replaced.
    platform.provider_key(&FARM).write_file(&file).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    std::fs::write(&file, "00".repeat(32)).unwrap();
    platform.provider_key(&FARM).write_file(&file).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    // Evidence from the opened backend verifies under the file's key.
    let key = backend.provision(&FARM, &code()).unwrap();
    let code = code();
    let mac = attest_mac(&key, &transcript(SymmetricKind::Sancus, &code, &CHALLENGE));
    let ev = backend
        .evidence(&FARM, &code, &CHALLENGE, Some(&MODULE_PK), Some(&mac))
        .unwrap();
    appraise(&ev, &exp(SymmetricKind::Sancus, &pk)).unwrap();
    // A trustzone node in the same directory has its own node key.
    let tz = open(TeeKind::TrustZone, dir.path()).unwrap();
    assert_ne!(tz.platform_identity(), backend.platform_identity());
    // Bad files and bad calls are clear errors.
    std::fs::write(&file, "xyz").unwrap();
    let err = ProviderKey::read_file(&file).unwrap_err();
    assert!(err.to_string().contains("not 64 hexadecimal"), "{err}");
    assert!(ProviderKey::from_hex(&"ab".repeat(32)).is_ok());
    assert!(!format!("{pk:?}").contains(&text.trim()[..16]));
    assert_eq!(
        backend.evidence(&FARM, &code, &CHALLENGE, Some(&MODULE_PK), None),
        Err(EvidenceError::Missing {
            kind: TeeKind::Sancus,
            what: "module MAC"
        })
    );
    assert_eq!(
        backend.evidence(&FARM, &code, &CHALLENGE, None, Some(&[0; 31])),
        Err(EvidenceError::MacLength {
            kind: TeeKind::Sancus,
            got: 31
        })
    );
}
