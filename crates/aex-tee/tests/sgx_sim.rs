//! `sgx` in simulation: the chain simulated root → attestation key → quote, and the common
//! checks on the report body.

use aex_crypto::Measurement;
use aex_tee::sgx::{
    verify_sgx_quote, QuoteAnchor, QuoteIssuer, SimSgxPlatform, SimSgxVendor, SIM_QUOTE_LEN,
};
use aex_tee::{
    appraise, report_data, sgx_evidence, AppraisalError, Expected, TeeKind, TrustAnchor,
};

use crate::common::*;

fn exp(root: &aex_tee::sgx::SimRootPublicKey) -> Expected<'_> {
    expected(TeeKind::Sgx, TrustAnchor::SimSgxRoot(root))
}

/// A quote from `platform` for `m`, binding `pk` and `challenge`.
fn quote(p: &SimSgxPlatform, m: &Measurement, pk: &[u8; 32], challenge: &[u8; 32]) -> Vec<u8> {
    p.quote(&p.report_body(m, &report_data(pk, challenge)))
}

#[test]
fn genuine_evidence_passes() {
    let node = sgx_node();
    let ok = appraise(&node.evidence(&code(), &CHALLENGE), &exp(&node.root)).unwrap();
    assert_eq!(ok.kind(), TeeKind::Sgx);
    assert_eq!(ok.measurement(), code());
    assert!(ok.simulated() && !ok.debug() && !ok.insecure());
    assert_eq!(ok.tcb_status(), None);
}

#[test]
fn the_chain_is_verified_and_the_body_extracted() {
    let node = sgx_node();
    let q = quote(&node.platform, &code(), &MODULE_PK, &CHALLENGE);
    assert_eq!(q.len(), SIM_QUOTE_LEN);
    let v = verify_sgx_quote(&q, QuoteAnchor::SimRoot(&node.root)).unwrap();
    assert_eq!(v.issuer(), QuoteIssuer::Simulated);
    assert_eq!(v.body().mr_enclave, code().0);
    assert_eq!(v.body().mr_signer, aex_tee::sgx::sim_mr_signer());
    assert_eq!(v.body().report_data, report_data(&MODULE_PK, &CHALLENGE));
    assert!(!v.body().debug());
    assert_eq!((v.header().version, v.header().tee_type), (3, 0));
}

#[test]
fn flipped_quote_bytes_break_the_signature() {
    let node = sgx_node();
    let ev = node.evidence(&code(), &CHALLENGE);
    let q = quote(&node.platform, &code(), &MODULE_PK, &CHALLENGE);
    let at = find(&ev, &q);
    // Header user data, mr_enclave, attributes (the DEBUG flag), report data, signature.
    for off in [30, 48 + 64, 48 + 48, 48 + 320, 436, 436 + 63] {
        assert_eq!(
            appraise(&flip(&ev, at + off), &exp(&node.root)),
            Err(AppraisalError::BadSignature),
            "flip at quote offset {off}"
        );
    }
    // The attestation key itself: another key, so the signature fails (or the point is invalid).
    let err = appraise(&flip(&ev, at + 500 + 10), &exp(&node.root)).unwrap_err();
    assert!(
        matches!(
            err,
            AppraisalError::BadSignature | AppraisalError::Malformed { .. }
        ),
        "{err}"
    );
}

#[test]
fn untrusted_root_and_forged_certificates_are_refused() {
    let node = sgx_node();
    let other = sgx_node();
    // A quote certified by another vendor's root.
    let ev = other.evidence(&code(), &CHALLENGE);
    assert!(matches!(
        appraise(&ev, &exp(&node.root)),
        Err(AppraisalError::UntrustedRoot { .. })
    ));
    // The same quote with the issuer field rewritten to the trusted root: the certificate
    // signature does not verify under it.
    let mut q = quote(&other.platform, &code(), &MODULE_PK, &CHALLENGE);
    q[564..597].copy_from_slice(&node.root.to_sec1());
    let ev = sgx_evidence(q, true, &CHALLENGE);
    assert_eq!(
        appraise(&ev, &exp(&node.root)),
        Err(AppraisalError::BadCertificate)
    );
    // A flipped certificate signature.
    let q = quote(&node.platform, &code(), &MODULE_PK, &CHALLENGE);
    let ev = sgx_evidence(flip(&q, 600), true, &CHALLENGE);
    assert_eq!(
        appraise(&ev, &exp(&node.root)),
        Err(AppraisalError::BadCertificate)
    );
}

#[test]
fn replayed_challenge_is_stale() {
    let node = sgx_node();
    // Evidence recorded for an old challenge, replayed.
    let old = node.evidence(&code(), &OLD_CHALLENGE);
    assert_eq!(
        appraise(&old, &exp(&node.root)),
        Err(AppraisalError::StaleChallenge)
    );
    // The old quote re-wrapped under the fresh challenge: the report data gives it away.
    let q = quote(&node.platform, &code(), &MODULE_PK, &OLD_CHALLENGE);
    assert_eq!(
        appraise(&sgx_evidence(q, true, &CHALLENGE), &exp(&node.root)),
        Err(AppraisalError::KeyNotBound)
    );
    // A quote binding another module's key.
    let q = quote(&node.platform, &code(), &[9; 32], &CHALLENGE);
    assert_eq!(
        appraise(&sgx_evidence(q, true, &CHALLENGE), &exp(&node.root)),
        Err(AppraisalError::KeyNotBound)
    );
}

#[test]
fn other_code_is_a_measurement_mismatch() {
    let node = sgx_node();
    let evil = Measurement::of(b"evil");
    assert_eq!(
        appraise(&node.evidence(&evil, &CHALLENGE), &exp(&node.root)),
        Err(AppraisalError::MeasurementMismatch {
            expected: code(),
            got: evil
        })
    );
}

#[test]
fn debug_enclaves_follow_the_policy() {
    let vendor = SimSgxVendor::generate();
    let platform = SimSgxPlatform::provisioned_by(&vendor).with_debug(true);
    let q = quote(&platform, &code(), &MODULE_PK, &CHALLENGE);
    let ev = sgx_evidence(q, true, &CHALLENGE);
    let production = exp(vendor.public_key());
    assert_eq!(
        appraise(&ev, &production),
        Err(AppraisalError::DebugRefused { kind: TeeKind::Sgx })
    );
    let debug_ok = Expected {
        allow_debug: true,
        ..production
    };
    assert!(appraise(&ev, &debug_ok).unwrap().debug());
}

#[test]
fn simulation_under_a_hardware_only_policy() {
    let node = sgx_node();
    let hw = Expected {
        allow_simulated: false,
        ..exp(&node.root)
    };
    let ev = node.evidence(&code(), &CHALLENGE);
    let refused = Err(AppraisalError::SimulatedRefused { kind: TeeKind::Sgx });
    assert_eq!(appraise(&ev, &hw), refused);
    // An envelope that lies "hardware" about a simulated quote: the chain proves simulation.
    let q = quote(&node.platform, &code(), &MODULE_PK, &CHALLENGE);
    let liar = sgx_evidence(q, false, &CHALLENGE);
    assert_eq!(appraise(&liar, &hw), refused);
    assert!(matches!(
        appraise(&liar, &exp(&node.root)),
        Err(AppraisalError::Malformed { .. })
    ));
}

#[test]
fn platform_material_is_created_once_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let a = SimSgxPlatform::load_or_create(dir.path()).unwrap();
    let b = SimSgxPlatform::load_or_create(dir.path()).unwrap();
    assert_eq!(a.root_public_key(), b.root_public_key());
    let text = std::fs::read_to_string(dir.path().join("platform.pub")).unwrap();
    assert_eq!(text, format!("{}\n", a.root_public_key().to_hex()));
    let root = aex_tee::sgx::SimRootPublicKey::from_hex(&text).unwrap();
    // Evidence from the reloaded platform verifies under the published root.
    let q = quote(&b, &code(), &MODULE_PK, &CHALLENGE);
    let ev = sgx_evidence(q, true, &CHALLENGE);
    appraise(&ev, &exp(&root)).unwrap();
    #[cfg(unix)]
    for f in ["sgx-ak.key", "sim-vendor/sgx-root.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // A certificate for another key is a clear error, not a silent re-certification.
    let other = tempfile::tempdir().unwrap();
    SimSgxPlatform::load_or_create(other.path()).unwrap();
    std::fs::copy(
        other.path().join("sgx-ak.cert"),
        dir.path().join("sgx-ak.cert"),
    )
    .unwrap();
    let err = SimSgxPlatform::load_or_create(dir.path()).err().unwrap();
    assert!(err.to_string().contains("certifies another key"), "{err}");
    assert!(aex_tee::sgx::SimRootPublicKey::from_hex("02abcd").is_err());
}
