//! `native`: no TEE; refused unless the descriptor opts in for the module.

use aex_crypto::Measurement;
use aex_tee::{
    appraise, AppraisalError, Backend, EvidenceError, Expected, NativePlatform, TeeKind,
    TrustAnchor,
};

use crate::common::*;

fn opted_in() -> Expected<'static> {
    Expected {
        allow_insecure: true,
        ..expected(TeeKind::Native, TrustAnchor::None)
    }
}

#[test]
fn refused_unless_the_descriptor_opts_in() {
    let ev = native_evidence(&code(), &CHALLENGE, &MODULE_PK);
    assert_eq!(
        appraise(&ev, &expected(TeeKind::Native, TrustAnchor::None)),
        Err(AppraisalError::InsecureRefused)
    );
    let ok = appraise(&ev, &opted_in()).unwrap();
    assert!(ok.insecure() && ok.simulated() && !ok.debug());
    assert_eq!(ok.kind(), TeeKind::Native);
    assert_eq!(ok.measurement(), code());
}

#[test]
fn a_hardware_only_policy_refuses_native_even_when_opted_in() {
    let ev = native_evidence(&code(), &CHALLENGE, &MODULE_PK);
    let hw = Expected {
        allow_simulated: false,
        ..opted_in()
    };
    assert_eq!(
        appraise(&ev, &hw),
        Err(AppraisalError::SimulatedRefused {
            kind: TeeKind::Native
        })
    );
}

#[test]
fn honest_mistakes_are_caught() {
    let exp = opted_in();
    let evil = Measurement::of(b"old build");
    assert_eq!(
        appraise(&native_evidence(&evil, &CHALLENGE, &MODULE_PK), &exp),
        Err(AppraisalError::MeasurementMismatch {
            expected: code(),
            got: evil
        })
    );
    assert_eq!(
        appraise(&native_evidence(&code(), &OLD_CHALLENGE, &MODULE_PK), &exp),
        Err(AppraisalError::StaleChallenge)
    );
    assert_eq!(
        appraise(&native_evidence(&code(), &CHALLENGE, &[1; 32]), &exp),
        Err(AppraisalError::KeyNotBound)
    );
    // A flipped report-data byte, and a truncated body.
    let ev = native_evidence(&code(), &CHALLENGE, &MODULE_PK);
    assert_eq!(
        appraise(&flip(&ev, ev.len() - 40), &exp),
        Err(AppraisalError::KeyNotBound)
    );
    assert!(matches!(
        appraise(&ev[..ev.len() - 1], &exp),
        Err(AppraisalError::Malformed { .. })
    ));
}

#[test]
fn the_platform_needs_the_module_key() {
    let p = NativePlatform;
    assert!(p.simulated() && p.platform_identity().is_empty());
    assert!(p.provision(&FARM, &code()).is_none());
    assert_eq!(
        p.evidence(&FARM, &code(), &CHALLENGE, None, Some(&[0; 32])),
        Err(EvidenceError::Missing {
            kind: TeeKind::Native,
            what: "module public key"
        })
    );
}
