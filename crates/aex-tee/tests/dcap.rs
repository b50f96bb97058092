//! `sgx` with real Intel DCAP quotes (fixtures from dcap-qvl 0.7.1's `sample/`, see
//! `fixtures/dcap/README.md`): the same appraisal path as simulated quotes, with Intel's chain.

use aex_crypto::Measurement;
use aex_tee::sgx::{verify_sgx_quote, DcapCollateral, QuoteAnchor, QuoteIssuer};
use aex_tee::{appraise, sgx_evidence, AppraisalError, Expected, TeeKind, TrustAnchor};

use crate::common::*;

const QUOTE: &[u8] = include_bytes!("fixtures/dcap/sgx_quote");
const COLLATERAL: &[u8] = include_bytes!("fixtures/dcap/sgx_quote_collateral.json");
const TDX_QUOTE: &[u8] = include_bytes!("fixtures/dcap/tdx_quote");

/// 2025-07-01T00:00:00Z: inside the collateral's validity window, which runs from
/// 2025-06-19T10:56:11Z (TCB info issueDate) to 2025-07-19T10:01:18Z (QE identity nextUpdate).
const FIXED_NOW: u64 = 1_751_328_000;
/// 2025-08-01T00:00:00Z: after every nextUpdate.
const EXPIRED_NOW: u64 = 1_754_006_400;

/// `mr_enclave` of the sample quote.
const SAMPLE_MR_ENCLAVE: &str = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";

fn collateral() -> DcapCollateral {
    DcapCollateral::from_json(COLLATERAL).unwrap()
}

fn intel(c: &DcapCollateral, now: u64) -> TrustAnchor<'_> {
    TrustAnchor::IntelDcap {
        collateral: c,
        now_unix: now,
    }
}

/// The SGX half of [`intel`], for [`verify_sgx_quote`] alone.
fn chain(c: &DcapCollateral, now: u64) -> QuoteAnchor<'_> {
    QuoteAnchor::Intel {
        collateral: c,
        now_unix: now,
    }
}

/// A hardware-only policy expecting the sample enclave.
fn hw(anchor: TrustAnchor<'_>) -> Expected<'_> {
    Expected {
        measurement: Measurement::from_hex(SAMPLE_MR_ENCLAVE).unwrap(),
        allow_simulated: false,
        ..expected(TeeKind::Sgx, anchor)
    }
}

fn evidence(quote: Vec<u8>) -> Vec<u8> {
    sgx_evidence(quote, false, &CHALLENGE)
}

#[test]
fn collateral_window_is_what_the_fixture_time_assumes() {
    let c = collateral();
    assert_eq!(c.valid_from(), 1_750_330_571); // 2025-06-19T10:56:11Z
    assert_eq!(c.valid_until(), 1_752_919_278); // 2025-07-19T10:01:18Z
    assert!((c.valid_from()..c.valid_until()).contains(&FIXED_NOW));
}

#[test]
fn genuine_quote_verifies_at_the_fixed_time() {
    let c = collateral();
    let v = verify_sgx_quote(QUOTE, chain(&c, FIXED_NOW)).unwrap();
    assert_eq!(v.issuer(), QuoteIssuer::Intel);
    assert_eq!(hex::encode(v.body().mr_enclave), SAMPLE_MR_ENCLAVE);
    assert!(!v.body().debug());
    assert_eq!(v.tcb_status(), Some("ConfigurationAndSWHardeningNeeded"));
    assert_eq!(v.advisory_ids(), ["INTEL-SA-00289", "INTEL-SA-00615"]);
}

#[test]
fn genuine_quote_passes_every_common_check_up_to_the_binding() {
    // Under a hardware-only, production (no debug) policy, with the sample's measurement,
    // appraisal passes the chain, the simulation check, the debug check and the measurement
    // check; it stops at the binding, because the sample's report data is not
    // SHA-256(our module pk || our challenge). That is the one check a recorded quote cannot
    // pass, and the right answer for a recorded quote.
    let c = collateral();
    assert_eq!(
        appraise(&evidence(QUOTE.to_vec()), &hw(intel(&c, FIXED_NOW))),
        Err(AppraisalError::KeyNotBound)
    );
}

#[test]
fn flipped_quote_bytes_are_refused() {
    let c = collateral();
    let anchor = intel(&c, FIXED_NOW);
    // In the report body: the attestation key's signature fails (the same check as simulated).
    for off in [48 + 64, 48 + 48, 48 + 320] {
        assert_eq!(
            appraise(&evidence(flip(QUOTE, off)), &hw(anchor)),
            Err(AppraisalError::BadSignature),
            "offset {off}"
        );
    }
    // In the QE report that certifies the attestation key: Intel's chain fails.
    let err = appraise(&evidence(flip(QUOTE, 564 + 100)), &hw(anchor)).unwrap_err();
    assert!(
        matches!(&err, AppraisalError::DcapRejected { reason } if reason.contains("qe_report")),
        "{err}"
    );
}

#[test]
fn other_code_is_a_measurement_mismatch() {
    let c = collateral();
    let exp = Expected {
        measurement: code(),
        ..hw(intel(&c, FIXED_NOW))
    };
    assert_eq!(
        appraise(&evidence(QUOTE.to_vec()), &exp),
        Err(AppraisalError::MeasurementMismatch {
            expected: code(),
            got: Measurement::from_hex(SAMPLE_MR_ENCLAVE).unwrap(),
        })
    );
}

#[test]
fn expired_collateral_is_refused() {
    let c = collateral();
    assert_eq!(
        appraise(&evidence(QUOTE.to_vec()), &hw(intel(&c, EXPIRED_NOW))),
        Err(AppraisalError::CollateralExpired {
            what: "TCB info",
            next_update: "2025-07-19T10:56:11Z".into(),
            now: EXPIRED_NOW,
        })
    );
    // One second after the QE identity's nextUpdate, while TCB info is still valid.
    let just_after = c.valid_until() + 1;
    assert_eq!(
        verify_sgx_quote(QUOTE, chain(&c, just_after)).unwrap_err(),
        AppraisalError::CollateralExpired {
            what: "QE identity",
            next_update: "2025-07-19T10:01:18Z".into(),
            now: just_after,
        }
    );
    assert!(matches!(
        verify_sgx_quote(QUOTE, chain(&c, c.valid_from() - 1)),
        Err(AppraisalError::CollateralNotYetValid {
            what: "TCB info",
            ..
        })
    ));
}

#[test]
fn issuers_must_match_the_anchor() {
    let c = collateral();
    let node = sgx_node();
    // A simulated quote offered to a deployer that trusts Intel.
    let ev = node.evidence(&code(), &CHALLENGE);
    let exp = Expected {
        allow_simulated: true,
        ..hw(intel(&c, FIXED_NOW))
    };
    assert!(matches!(
        appraise(&ev, &exp),
        Err(AppraisalError::UnexpectedIssuer { got, .. }) if got.contains("simulated")
    ));
    // An Intel quote offered to a deployer that trusts a simulated root.
    assert_eq!(
        verify_sgx_quote(QUOTE, QuoteAnchor::SimRoot(&node.root)).unwrap_err(),
        AppraisalError::UnexpectedIssuer {
            expected: "the aex simulated vendor",
            got: "Intel"
        }
    );
}

#[test]
fn tdx_quotes_are_a_precise_refusal() {
    let c = collateral();
    assert_eq!(
        verify_sgx_quote(TDX_QUOTE, chain(&c, FIXED_NOW)).unwrap_err(),
        AppraisalError::UnsupportedQuote {
            version: 4,
            tee_type: 0x81
        }
    );
}

#[test]
fn truncated_and_extended_quotes_are_refused() {
    let c = collateral();
    let anchor = chain(&c, FIXED_NOW);
    for q in [&QUOTE[..40], &QUOTE[..500], &QUOTE[..QUOTE.len() - 1]] {
        assert!(verify_sgx_quote(q, anchor).is_err());
    }
    let mut long = QUOTE.to_vec();
    long.push(0);
    assert!(verify_sgx_quote(&long, anchor).is_err());
}
